//! The AF_XDP path: UDP queries to our port taken from the network driver before the
//! kernel's socket stack, answered by the same [`Responder`] as the sockets, and sent back
//! from the frame they came in.
//!
//! ```text
//! NIC queue ─▶ XDP program (bpf.rs: UDP to our port? else pass to the kernel)
//!           ─▶ XSKMAP ─▶ XDP socket of the queue (xsk.rs: one thread per queue)
//!           ─▶ frame.rs (Ethernet/IP/UDP) ─▶ Responder::respond ─▶ reply in the same frame
//! ```
//! Everything the program passes (TCP, other ports, fragments, IP options, ARP, VLAN
//! tags) reaches the kernel as before, where the ordinary sockets keep serving. When the
//! path cannot start (no such interface, a kernel without XDP sockets, no CAP_NET_ADMIN
//! and CAP_BPF), the server logs why and serves from its sockets alone.

mod bpf;
pub mod frame;
mod xsk;

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use thiserror::Error;

use crate::serve::Responder;
use crate::serve::rrl::Rrl;

/// `[xdp]`: where to take queries past the socket stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpConfig {
    /// Interfaces, each with one queue or (`None`) all of its queues.
    pub interfaces: Vec<(String, Option<u32>)>,
    /// The UDP destination port steered to Meridian.
    pub port: u16,
}

/// Why the XDP path could not start on an interface.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum XdpError {
    /// No such interface.
    #[error("xdp: no interface {0}")]
    NoInterface(String),
    /// The program could not be loaded or attached.
    #[error(
        "xdp: cannot attach the program to {interface}: {source} (XDP needs root or CAP_NET_ADMIN \
         and CAP_BPF, and a kernel with BPF and XDP sockets)"
    )]
    Attach {
        /// The interface.
        interface: String,
        /// Why.
        source: io::Error,
    },
    /// An XDP socket could not be made or bound.
    #[error("xdp: cannot open an XDP socket on {interface} queue {queue}: {source}")]
    Socket {
        /// The interface.
        interface: String,
        /// The queue.
        queue: u32,
        /// Why.
        source: io::Error,
    },
}

/// The running XDP path: a program attached per interface, a thread per queue.
#[derive(Debug)]
pub struct Xdp {
    /// Dropped after the threads end, which detaches the programs.
    attached: Vec<bpf::Attached>,
    threads: Vec<JoinHandle<()>>,
}

impl Xdp {
    /// Attaches to every configured interface, opens a socket per queue, and only when all
    /// of that worked starts a thread per socket; threads stop when `stop` is set. On the
    /// first failure nothing runs: what was opened is dropped again, which detaches its
    /// programs.
    pub fn start(
        config: &XdpConfig,
        responder: Arc<Responder>,
        rrl: Option<Arc<Rrl>>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, XdpError> {
        let mut attached = Vec::new();
        let mut sockets = Vec::new();
        for (name, queue) in &config.interfaces {
            let c = std::ffi::CString::new(name.as_str())
                .map_err(|_| XdpError::NoInterface(name.clone()))?;
            // SAFETY: a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if ifindex == 0 {
                return Err(XdpError::NoInterface(name.clone()));
            }
            let queues: Vec<u32> = match queue {
                Some(q) => vec![*q],
                None => (0..rx_queues(name)).collect(),
            };
            let slots = queues.iter().max().map_or(1, |q| q + 1);
            let program = bpf::Attached::new(ifindex, config.port, slots).map_err(|source| {
                XdpError::Attach {
                    interface: name.clone(),
                    source,
                }
            })?;
            for q in queues.iter().copied() {
                let socket_err = |source| XdpError::Socket {
                    interface: name.clone(),
                    queue: q,
                    source,
                };
                let sock = xsk::Xsk::new(ifindex, q).map_err(socket_err)?;
                program.insert(q, sock.raw_fd()).map_err(socket_err)?;
                sockets.push((name.clone(), q, sock));
            }
            tracing::info!(
                "xdp: program attached to {name} in {} mode, UDP port {}, queue(s) {queues:?}",
                if program.native { "native" } else { "generic" },
                config.port
            );
            attached.push(program);
        }
        let mut threads = Vec::with_capacity(sockets.len());
        for (name, q, mut sock) in sockets {
            let (responder, rrl, stop) = (responder.clone(), rrl.clone(), stop.clone());
            let (label, port) = (format!("{name}@{q}"), config.port);
            let answered = crate::metrics::events::events().xdp_answers(&name, q);
            let dropped = crate::metrics::events::events().xdp_dropped(&name, q);
            let thread = std::thread::Builder::new()
                .name(format!("xdp-{label}"))
                .spawn(move || {
                    let before = answered.get();
                    sock.serve(port, &responder, rrl.as_deref(), &stop, &answered, &dropped);
                    let n = answered.get() - before;
                    match sock.drops() {
                        Ok(d) => tracing::info!(
                            "xdp: {label} answered {n} queries; the kernel dropped {} \
                             (RX ring full {}, no free frame {}, other {})",
                            d.total(),
                            d.ring_full,
                            d.no_frame,
                            d.other
                        ),
                        Err(_) => tracing::info!("xdp: {label} answered {n} queries"),
                    }
                });
            match thread {
                Ok(t) => threads.push(t),
                Err(source) => {
                    // Those started stop with the server; the rest never ran.
                    tracing::error!("xdp: cannot start a thread for {name}@{q}: {source}");
                }
            }
        }
        Ok(Self { attached, threads })
    }

    /// Waits for the threads (after the stop flag is set), then detaches the programs.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
        drop(self.attached);
    }
}

/// The receive queues of an interface (1 when sysfs does not say).
fn rx_queues(name: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}
