//! The query log: one JSON line per sampled query, written by a thread of its own.
//!
//! ```text
//! serve thread ── sampled? ── Entry (fixed size, no heap) ── try_send ──▶ queue (bounded)
//!                                     full: dropped, counted ◀──┘            │
//! writer thread ◀───────────────────────────────────────────────────────────┘
//!   line::write (names of zone and data center from the metric slots) ─▶ file, flushed
//!   whenever the queue runs dry, and at shutdown
//! ```
//!
//! The query path pays one per-thread sampling step for every query, and for a sampled one
//! two clock reads, a copy of the question name and a non-blocking send into a queue
//! allocated at start. A writer that falls behind (a slow disk, a blocked pipe) never
//! slows queries down: what does not fit in the queue is dropped and counted in
//! `meridian_query_log_dropped_total`.

mod line;

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, warn};

use crate::config::QueryLogConfig;
use crate::metrics::Slot;
use crate::metrics::events::events;

pub use crate::answer::{Chosen, How};
pub use line::write as write_line;

/// One logged query: plain data of a fixed size, so queuing it allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// When the query arrived.
    pub time: SystemTime,
    /// The packet's source.
    pub client: SocketAddr,
    /// `true` over TCP.
    pub tcp: bool,
    /// The ECS option's address and source prefix.
    pub ecs: Option<(IpAddr, u8)>,
    /// The reply's ECS scope, when it carried one.
    pub scope: Option<u8>,
    /// The question name in wire form (uncompressed labels, up to the root), as asked.
    pub name: [u8; 255],
    /// Bytes of `name` used.
    pub name_len: u8,
    /// QTYPE; `None` when the question could not be read.
    pub qtype: Option<u16>,
    /// The reply's response code (extended: BADVERS is 16).
    pub rcode: u16,
    /// The reply's zone, as its `meridian_queries_total` slot ([`Slot::NO_ZONE`]: none).
    pub zone: Slot,
    /// For a GSLB answer: what chose it.
    pub chosen: Option<Chosen>,
    /// From arrival to the reply encoded.
    pub latency: Duration,
}

impl Entry {
    /// The question name of `packet` copied in wire form: labels from offset 12 up to the
    /// root. A compression pointer or a cut name ends the copy (the log shows what was read).
    pub fn question_name(packet: &[u8]) -> ([u8; 255], u8) {
        let mut name = [0u8; 255];
        let mut at = 12;
        let mut len = 0usize;
        while let Some(&l) = packet.get(at) {
            let l = usize::from(l);
            if l == 0 || l > 63 || len + 1 + l > 254 || at + 1 + l > packet.len() {
                break;
            }
            name[len..len + 1 + l].copy_from_slice(&packet[at..at + 1 + l]);
            len += 1 + l;
            at += 1 + l;
        }
        (name, len as u8)
    }
}

thread_local! {
    /// This thread's share of a sample not yet taken: a query is logged each time it
    /// passes 1, so a rate of 0.25 logs every 4th query of each thread, exactly.
    static OWED: Cell<f64> = const { Cell::new(0.0) };
}

/// The log: where sampled queries go. Shared by every serving thread.
#[derive(Debug)]
pub struct QueryLog {
    queue: SyncSender<Entry>,
    rate: f64,
    stop: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl QueryLog {
    /// Starts the writer thread. The file is opened (created, appended to) by that thread,
    /// so a path that blocks on open (a named pipe with no reader yet) does not hold up the
    /// server; an error opening it is logged and the entries are dropped and counted.
    pub fn start(config: &QueryLogConfig) -> io::Result<Self> {
        let (queue, entries) = sync_channel(config.queue);
        let stop = Arc::new(AtomicBool::new(false));
        let path = config.file.clone();
        let flag = stop.clone();
        let writer = std::thread::Builder::new()
            .name("query-log".into())
            .spawn(move || write_entries(&path, &entries, &flag))?;
        Ok(Self {
            queue,
            rate: config.sample_rate,
            stop,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Whether this query is one to log (per thread: exact at the configured rate).
    #[inline]
    pub fn sample(&self) -> bool {
        if self.rate >= 1.0 {
            return true;
        }
        OWED.with(|owed| {
            let now = owed.get() + self.rate;
            if now >= 1.0 {
                owed.set(now - 1.0);
                true
            } else {
                owed.set(now);
                false
            }
        })
    }

    /// Queues `entry` for the writer; when the queue is full it is dropped and counted.
    pub fn record(&self, entry: Entry) {
        match self.queue.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                events().query_log_dropped();
            }
        }
    }

    /// Writes what is queued, flushes and stops the writer (at shutdown), waiting at most
    /// `limit`: a writer stuck on its file (a pipe nobody reads, a hung network disk) is
    /// left behind rather than holding up the exit. Entries recorded after this are
    /// dropped and counted.
    pub fn close(&self, limit: Duration) {
        self.stop.store(true, Ordering::Release);
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(w) = writer else { return };
        let deadline = Instant::now() + limit;
        while !w.is_finished() {
            if Instant::now() >= deadline {
                warn!(
                    "the query log writer is stuck on its file after {limit:?}; its last lines are lost"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if w.join().is_err() {
            error!("the query log writer panicked");
        }
    }
}

/// How long the writer waits for an entry before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(100);

/// The writer thread: entries to lines until `stop`, then the rest of the queue.
fn write_entries(path: &std::path::Path, entries: &Receiver<Entry>, stop: &AtomicBool) {
    let file = match OpenOptions::new().create(true).append(true).open(path) {
        Ok(f) => f,
        Err(e) => {
            error!(
                "cannot open the query log {}: {e}; queries are not logged",
                path.display()
            );
            // Keep taking entries so that they are counted as dropped, not as queued.
            while !stop.load(Ordering::Acquire) {
                if entries.recv_timeout(POLL).is_ok() {
                    events().query_log_dropped();
                }
            }
            return;
        }
    };
    let mut out = Writer::new(file, path.to_owned());
    let mut names = line::Names::default();
    let mut text = Vec::with_capacity(512);
    let mut put = |entry: &Entry, out: &mut Writer| {
        text.clear();
        line::write(entry, &mut names, &mut text);
        out.write(&text);
    };
    loop {
        match entries.recv_timeout(POLL) {
            Ok(entry) => {
                put(&entry, &mut out);
                // The rest of what is queued, then one flush: batches under load, prompt
                // lines when quiet (the buffer also flushes itself when full).
                while let Ok(entry) = entries.try_recv() {
                    put(&entry, &mut out);
                }
                out.flush();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if stop.load(Ordering::Acquire) {
            while let Ok(entry) = entries.try_recv() {
                put(&entry, &mut out);
            }
            break;
        }
    }
    out.flush();
}

/// The log file with its buffer, and one error report per failure streak.
struct Writer {
    file: BufWriter<File>,
    path: PathBuf,
    failing: bool,
}

impl Writer {
    fn new(file: File, path: PathBuf) -> Self {
        Self {
            file: BufWriter::with_capacity(64 * 1024, file),
            path,
            failing: false,
        }
    }

    fn write(&mut self, line: &[u8]) {
        let r = self.file.write_all(line);
        self.report(r);
    }

    fn flush(&mut self) {
        let r = self.file.flush();
        self.report(r);
    }

    fn report(&mut self, r: io::Result<()>) {
        match r {
            Ok(()) => {
                if self.failing {
                    warn!("writing the query log {} works again", self.path.display());
                }
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    error!("cannot write the query log {}: {e}", self.path.display());
                }
                self.failing = true;
            }
        }
    }
}

/// The clock reads of a sampled query.
#[derive(Clone, Copy, Debug)]
pub struct Started {
    /// Wall time, for the log line.
    pub time: SystemTime,
    /// For the latency.
    pub at: Instant,
}

impl Started {
    /// Now.
    pub fn now() -> Self {
        Self {
            time: SystemTime::now(),
            at: Instant::now(),
        }
    }
}
