//! Sockets and the request path.
//!
//! ```text
//!  UDP socket ──▶ udp thread (blocking recv loop, one per core) ─┐
//!                                                               ├─▶ Responder::respond (handler.rs)
//!  TCP listener ─▶ accept (cap) ─▶ task per connection ─────────┘
//!                                  (length-prefixed, pipelined,
//!                                   idle and per-message timeouts)
//!
//!  Responder::respond: parse ─▶ edns.rs (BADVERS, ECS, UDP limit) ─▶ rules.rs (opcode,
//!    QDCOUNT, class, AXFR, OPT) ─▶ answer::resolve ─▶ encode.rs (one encode, cut to fit)
//!
//!  UDP reply ─▶ rrl.rs (response rate limiting, when `[rrl]` is set) ─▶ send, drop or slip
//! ```
//!
//! UDP threads do not go through an async runtime: a query needs no waiting, so a plain
//! receive → answer → send loop per thread has no task spawn, no channel hop and no
//! allocation of its own (hickory's parse and encode allocate: see tests/alloc.rs). The
//! same [`Responder`] serves TCP, and will serve the later fast path and other transports.

pub mod ecs;
pub mod edns;
mod encode;
pub mod fast;
pub mod handler;
pub mod rrl;
pub mod rules;
mod tcp;
mod udp;

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;

pub use handler::{Outcome, Responder, Transport};

use crate::config::ServerConfig;

/// Errors that stop the server from starting.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A listen address could not be bound.
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        /// "udp" or "tcp".
        proto: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// Bound sockets, before serving starts.
#[derive(Debug)]
pub struct Listeners {
    /// Per address, one socket per UDP thread (SO_REUSEPORT: the kernel spreads clients
    /// over them, and no two threads share a socket).
    udp: Vec<Vec<UdpSocket>>,
    tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP (`udp_threads` sockets) and TCP on every address. With port 0, UDP gets an
    /// ephemeral port and TCP the same one, so one number serves both (tests and
    /// `dig +tcp` rely on that).
    pub fn bind(addrs: &[SocketAddr], udp_threads: usize) -> Result<Self, ServeError> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for &addr in addrs {
            // SO_REUSEPORT would let this bind share a port another server (a second
            // Meridian, say) already serves, and split its queries. A plain socket bound
            // first fails on a port in use, whoever holds it; it is closed at once.
            if addr.port() != 0 {
                bind_udp_exclusive(addr).map_err(|source| ServeError::Bind {
                    proto: "udp",
                    addr,
                    source,
                })?;
            }
            let mut last_err = None;
            // An ephemeral UDP port may be taken on TCP; try a few.
            for _ in 0..16 {
                let u = bind_udp(addr).map_err(|source| ServeError::Bind {
                    proto: "udp",
                    addr,
                    source,
                })?;
                let local = u.local_addr().map_err(|source| ServeError::Bind {
                    proto: "udp",
                    addr,
                    source,
                })?;
                match bind_tcp(local) {
                    Ok(t) => {
                        let mut socks = vec![u];
                        for _ in 1..udp_threads.max(1) {
                            socks.push(bind_udp(local).map_err(|source| ServeError::Bind {
                                proto: "udp",
                                addr: local,
                                source,
                            })?);
                        }
                        udp.push(socks);
                        tcp.push(t);
                        last_err = None;
                        break;
                    }
                    Err(e) => {
                        last_err = Some(e);
                        if addr.port() != 0 {
                            break;
                        }
                    }
                }
            }
            if let Some(source) = last_err {
                return Err(ServeError::Bind {
                    proto: "tcp",
                    addr,
                    source,
                });
            }
        }
        Ok(Self { udp, tcp })
    }

    /// The bound addresses (UDP and TCP share them).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.first()?.local_addr().ok())
            .collect()
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // One socket per UDP thread on the same address (see [`Listeners`]).
    s.set_reuse_port(true)?;
    // Bursts of queries wait in the kernel rather than being dropped.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// A UDP socket on `addr` without SO_REUSEPORT: fails when anything holds the port.
fn bind_udp_exclusive(addr: SocketAddr) -> io::Result<()> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// A running server: UDP threads and TCP tasks, stopped together.
pub struct Running {
    stop: Arc<AtomicBool>,
    xdp: Option<crate::xdp::Xdp>,
    tcp_stop: tcp::Stop,
    udp_threads: Vec<JoinHandle<()>>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops taking queries and waits for those taken: UDP threads stop reading (within
    /// their 200 ms receive timeout) and answer the packet they hold; TCP listeners close,
    /// and open connections answer the messages they have started, for at most `grace`,
    /// after which the rest are closed.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.tcp_stop.drain.cancel();
        let drained = tokio::time::timeout(grace, async {
            // Each handle dropped once done: a finished one must not be awaited again.
            while let Some(t) = self.tcp_tasks.last_mut() {
                let _ = t.await;
                self.tcp_tasks.pop();
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("closing TCP connections still open {grace:?} after shutdown began");
            self.tcp_stop.close.cancel();
            for t in self.tcp_tasks {
                let _ = t.await;
            }
        }
        let threads = self.udp_threads;
        let xdp = self.xdp;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
            if let Some(x) = xdp {
                x.join();
            }
        })
        .await;
    }
}

/// Starts serving on `listeners`. Must be called inside a tokio runtime (for TCP).
pub fn start(
    listeners: Listeners,
    responder: Arc<Responder>,
    config: &ServerConfig,
) -> io::Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let tcp_stop = tcp::Stop::default();
    let mut udp_threads = Vec::new();
    // One table for every UDP thread: a network is limited as a whole whichever thread
    // (socket) its packets reach.
    let rrl = config.rrl.as_ref().map(|c| Arc::new(rrl::Rrl::new(c)));
    for socks in listeners.udp {
        for (i, sock) in socks.into_iter().enumerate() {
            let addr = sock.local_addr()?;
            let responder = responder.clone();
            let stop = stop.clone();
            let rrl = rrl.clone();
            udp_threads.push(
                std::thread::Builder::new()
                    .name(format!("udp-{addr}-{i}"))
                    .spawn(move || udp::serve(sock, &responder, rrl.as_deref(), &stop))?,
            );
        }
    }
    // The XDP path is an addition: when it cannot start, the sockets serve alone.
    let xdp = config.xdp.as_ref().and_then(|c| {
        crate::xdp::Xdp::start(c, responder.clone(), rrl.clone(), stop.clone())
            .inspect_err(|e| tracing::error!("{e}; serving from sockets only"))
            .ok()
    });
    let mut tcp_tasks = Vec::new();
    for l in listeners.tcp {
        let l = tokio::net::TcpListener::from_std(l)?;
        tcp_tasks.push(tokio::spawn(tcp::serve(
            l,
            responder.clone(),
            config.tcp.clone(),
            tcp_stop.clone(),
        )));
    }
    Ok(Running {
        stop,
        xdp,
        tcp_stop,
        udp_threads,
        tcp_tasks,
    })
}
