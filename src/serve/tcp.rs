//! DNS over TCP (RFC 7766): length-prefixed messages, several per connection, answered in
//! order. A connection that sends nothing for `idle_timeout`, or takes longer than
//! `message_timeout` to finish a message it started, is closed; at most `max_connections`
//! are served at once, so slow or silent clients cannot exhaust the server.
//!
//! At the cap a new connection closes the one that has been idle the longest (waiting
//! between messages, RFC 7766 §6.2.3 lets a server close idle connections at any time),
//! and is served in its place; when every connection is in the middle of a message the
//! new one is closed. A connection reads the next message only once the previous answer is
//! written, so pipelined queries wait in the kernel's socket buffer, never in the server:
//! per connection the server holds one message and one answer (each at most 64 KiB), and a
//! client that sends without reading is closed when an answer cannot be written within
//! `message_timeout`.
//!
//! Shutdown has two steps. `drain`: the listener closes (new connections are refused), a
//! connection waiting between messages closes, and one that has sent some of a message
//! gets its answer (and those of any further messages already received), then closes.
//! `close`: whatever is still open closes now; the caller fires it when the drain has
//! taken too long.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::handler::{Outcome, Responder, Transport};
use crate::config::TcpConfig;

/// The two steps of stopping TCP (see the module docs).
#[derive(Clone, Default)]
pub(super) struct Stop {
    /// Stop accepting; let connections finish the messages they have started.
    pub(super) drain: CancellationToken,
    /// Close every connection now.
    pub(super) close: CancellationToken,
}

/// Accepts connections until `stop.drain` fires, then returns once every connection has
/// ended.
pub(super) async fn serve(
    listener: TcpListener,
    responder: Arc<Responder>,
    config: TcpConfig,
    stop: Stop,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let conns = Conns::new();
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            _ = stop.drain.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!("tcp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            // At the cap: close the longest idle connection and take its slot, which it
            // gives back as soon as its task sees the eviction.
            Err(_) if conns.evict_oldest_idle() => {
                match timeout(EVICTION_WAIT, slots.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => continue,
                }
            }
            // Every connection is mid-message: refuse this one now rather than let it wait.
            Err(_) => {
                drop(stream);
                continue;
            }
        };
        let responder = responder.clone();
        let config = config.clone();
        let stop = stop.clone();
        let open = crate::metrics::events::events().tcp_connection();
        let (state, evicted, registered) = conns.register();
        tokio::spawn(async move {
            let _open = open;
            let _registered = registered;
            tokio::select! {
                _ = stop.close.cancelled() => {}
                _ = evicted.cancelled() => {}
                _ = connection(stream, &responder, &config, &stop.drain, &state) => {}
            }
            drop(permit);
        });
    }
    // Closing the listening socket: connects are refused from here on.
    drop(listener);
    // Every connection holds a permit until it ends: having them all back means all ended.
    let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn connection(
    mut stream: TcpStream,
    responder: &Responder,
    config: &TcpConfig,
    drain: &CancellationToken,
    state: &ConnState,
) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let mut msg = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    let mut frame = Vec::with_capacity(4096 + 2);
    // Idle since the last answer was ready (or since the connection opened): stamped before
    // the answer is written, so a client that connects after reading an answer is always
    // idle for less time than the connection that answered it.
    let mut since = state.now();
    loop {
        // Idle from here until the first byte of the next message: evictable.
        let idle = state.idle_since(since);
        // Wait for the next message's length, at most the idle timeout.
        let mut len = [0u8; 2];
        let first = tokio::select! {
            // The read first: bytes already here are a message started before the drain.
            biased;
            r = timeout(config.idle_timeout, stream.read_exact(&mut len[..1])) => r,
            _ = drain.cancelled() => return,
        };
        match first {
            Ok(Ok(_)) => {}
            _ => return,
        }
        // Busy until the answer is written; an eviction that came first wins.
        if !state.busy(idle) {
            return;
        }
        let rest = async {
            stream.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            msg.resize(n, 0);
            stream.read_exact(&mut msg).await?;
            Ok::<(), std::io::Error>(())
        };
        match timeout(config.message_timeout, rest).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        let outcome = responder.respond(&msg, peer, Transport::Tcp, &mut out);
        since = state.now();
        if outcome != Outcome::Reply {
            continue;
        }
        let Ok(n) = u16::try_from(out.len()) else {
            return;
        };
        // Length and message in one write: one segment, one system call.
        frame.clear();
        frame.extend_from_slice(&n.to_be_bytes());
        frame.extend_from_slice(&out);
        let write = stream.write_all(&frame);
        // A client that does not read its answers is as stuck as one that does not write.
        match timeout(config.message_timeout, write).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

/// How long a new connection waits for the slot of the connection it evicted (whose task
/// only has to notice the eviction and end).
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// A connection's state, shared with the acceptor: [`BUSY`], [`EVICTED`], or the time it
/// became idle (nanoseconds since the listener started, plus one, so never 0).
struct ConnState {
    word: AtomicU64,
    epoch: Instant,
}

/// Between reading the first byte of a message and writing its answer.
const BUSY: u64 = 0;
/// Chosen by the acceptor to make room; the connection closes.
const EVICTED: u64 = u64::MAX;

impl ConnState {
    /// The stamp of this moment, for [`Self::idle_since`].
    fn now(&self) -> u64 {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(EVICTED - 1);
        nanos.saturating_add(1).min(EVICTED - 1)
    }

    /// Marks the connection idle since `stamp` (from [`Self::now`]); returns the stamp to
    /// pass to [`Self::busy`].
    fn idle_since(&self, stamp: u64) -> u64 {
        self.word.store(stamp, Ordering::Release);
        stamp
    }

    /// Marks the connection busy; false when it was evicted while idle.
    fn busy(&self, stamp: u64) -> bool {
        self.word
            .compare_exchange(stamp, BUSY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The open connections, for the acceptor to pick one to evict. Locked on accept and when a
/// connection ends, never per message.
#[derive(Clone)]
struct Conns {
    inner: Arc<Mutex<ConnsInner>>,
    epoch: Instant,
}

struct ConnsInner {
    next: u64,
    open: HashMap<u64, (Arc<ConnState>, CancellationToken)>,
}

/// Removes a connection from [`Conns`] when its task ends.
struct Registered {
    conns: Conns,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.conns.lock().open.remove(&self.id);
    }
}

impl Conns {
    fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(ConnsInner {
                next: 0,
                open: HashMap::new(),
            })),
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnsInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a new, busy connection: its state, the token that evicts it, and the guard that
    /// removes it again.
    fn register(&self) -> (Arc<ConnState>, CancellationToken, Registered) {
        let state = Arc::new(ConnState {
            word: AtomicU64::new(BUSY),
            epoch: self.epoch,
        });
        let token = CancellationToken::new();
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        inner.open.insert(id, (state.clone(), token.clone()));
        drop(inner);
        let registered = Registered {
            conns: self.clone(),
            id,
        };
        (state, token, registered)
    }

    /// Evicts the connection idle the longest; false when none is idle.
    fn evict_oldest_idle(&self) -> bool {
        let mut inner = self.lock();
        // A connection may turn busy between the scan and the swap: then try the next.
        for _ in 0..4 {
            let oldest = inner
                .open
                .iter()
                .map(|(&id, (s, _))| (s.word.load(Ordering::Acquire), id))
                .filter(|&(w, _)| w != BUSY && w != EVICTED)
                .min();
            let Some((stamp, id)) = oldest else {
                return false;
            };
            let (state, token) = &inner.open[&id];
            if state
                .word
                .compare_exchange(stamp, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                token.cancel();
                inner.open.remove(&id);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_idle_connection_is_evicted_and_a_busy_one_never() {
        let conns = Conns::new();
        let (a, a_evicted, _a) = conns.register();
        let (b, b_evicted, _b) = conns.register();
        let (c, c_evicted, c_reg) = conns.register();
        // All new connections are busy until they wait for a message.
        assert!(!conns.evict_oldest_idle());
        let a_stamp = a.idle_since(a.now());
        std::thread::sleep(Duration::from_millis(2));
        let b_stamp = b.idle_since(b.now());
        let c_stamp = c.idle_since(c.now());
        // c starts a message: no longer evictable.
        assert!(c.busy(c_stamp));
        assert!(conns.evict_oldest_idle());
        assert!(a_evicted.is_cancelled() && !b_evicted.is_cancelled());
        // The evicted one cannot turn busy; the next idle one is b, then none.
        assert!(!a.busy(a_stamp));
        assert!(conns.evict_oldest_idle());
        assert!(b_evicted.is_cancelled() && !c_evicted.is_cancelled());
        assert!(!b.busy(b_stamp));
        assert!(!conns.evict_oldest_idle());
        // A connection that ended is forgotten.
        assert_eq!(conns.lock().open.len(), 1);
        drop(c_reg);
        assert!(conns.lock().open.is_empty());
    }
}
