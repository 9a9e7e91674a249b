//! A check target for the health tests: HTTP/1.1 (optionally behind TLS with a self-signed
//! certificate for `localhost`) or plain TCP on a loopback address, whose answer a test
//! switches while it runs.
//!
//! The probe unit tests include this file through `src/health/test_support.rs`, the
//! process tests through `tests/it/main.rs`. The servers run on one runtime of their own,
//! so a test can start them with or without a runtime of its own, and [`CheckServer::close`]
//! can wait until the port is closed.

// Each target that includes this file uses a different part of it.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The runtime every check server of the test binary runs on; tests may block on it for
/// their own async clients.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("check-servers")
            .enable_all()
            .build()
            .expect("tokio runtime for the check servers")
    })
}

/// How the server treats the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    /// Answer with the current status and body.
    Answer = 0,
    /// Read the request, then say nothing for 30 s (past any check timeout).
    Slow = 1,
    /// Read the request, then close the connection.
    Close = 2,
    /// Odd requests get 200, even ones 500, whatever the status is set to.
    Alternate = 3,
}

#[derive(Default)]
struct State {
    mode: AtomicU8,
    status: AtomicU16,
    body: Mutex<String>,
    /// Requests read (HTTPS: after a completed handshake; TCP: connections accepted).
    hits: AtomicUsize,
    last_host: Mutex<Option<String>>,
    last_sni: Mutex<Option<String>>,
}

#[derive(Clone)]
enum Proto {
    Http,
    Https(TlsAcceptor),
    /// Accepts connections and closes them at once.
    Tcp,
}

/// A check target on one loopback address, port chosen by the kernel. Stops (listener
/// and connections) when dropped or [`CheckServer::close`]d.
pub(crate) struct CheckServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: Option<JoinHandle<()>>,
}

impl CheckServer {
    /// HTTP/1.1 on `ip`, answering `200` with body `ok`.
    pub(crate) fn http(ip: &str) -> Self {
        Self::spawn(ip, Proto::Http)
    }

    /// The same behind TLS, with a self-signed certificate for `localhost`.
    pub(crate) fn https(ip: &str) -> Self {
        Self::spawn(ip, Proto::Https(self_signed_acceptor()))
    }

    /// A plain TCP listener.
    pub(crate) fn tcp(ip: &str) -> Self {
        Self::spawn(ip, Proto::Tcp)
    }

    /// HTTP on `ip`, an address of a veth pair the test created (not loopback).
    pub(crate) fn http_on_test_link(ip: &str) -> Self {
        Self::spawn_any(ip, Proto::Http)
    }

    fn spawn(ip: &str, proto: Proto) -> Self {
        let parsed: IpAddr = ip.parse().expect("check server address");
        assert!(parsed.is_loopback(), "check servers stay on 127/8: {ip}");
        Self::spawn_any(ip, proto)
    }

    fn spawn_any(ip: &str, proto: Proto) -> Self {
        let ip: IpAddr = ip.parse().expect("check server address");
        let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0))
            .unwrap_or_else(|e| panic!("bind a check server on {ip}: {e}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        state.status.store(200, Ordering::Relaxed);
        *state.body.lock().unwrap() = "ok".to_owned();
        let st = state.clone();
        let task = runtime().spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            // Dropped with the task: aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let st = st.clone();
                let proto = proto.clone();
                connections.spawn(async move {
                    match proto {
                        Proto::Tcp => {
                            st.hits.fetch_add(1, Ordering::Relaxed);
                        }
                        Proto::Http => answer(stream, &st).await,
                        Proto::Https(acceptor) => {
                            let Ok(tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            *st.last_sni.lock().unwrap() =
                                tls.get_ref().1.server_name().map(str::to_owned);
                            answer(tls, &st).await;
                        }
                    }
                });
                // Reap finished connections.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            state,
            task: Some(task),
        }
    }

    pub(crate) fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::Relaxed);
    }

    pub(crate) fn set_body(&self, body: &str) {
        *self.state.body.lock().unwrap() = body.to_owned();
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Requests read so far.
    pub(crate) fn hits(&self) -> usize {
        self.state.hits.load(Ordering::Relaxed)
    }

    /// `Host` header of the latest request.
    pub(crate) fn last_host(&self) -> Option<String> {
        self.state.last_host.lock().unwrap().clone()
    }

    /// SNI of the latest TLS handshake.
    pub(crate) fn last_sni(&self) -> Option<String> {
        self.state.last_sni.lock().unwrap().clone()
    }

    /// Drops the listener and every connection; returns once the port is closed, so the
    /// next connection attempt is refused. Blocks: call it outside a runtime.
    pub(crate) fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = runtime().block_on(task);
        }
    }
}

impl Drop for CheckServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reads one request head, then answers by `st` and closes.
async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, st: &State) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let n = st.hits.fetch_add(1, Ordering::Relaxed) + 1;
    let head = String::from_utf8_lossy(&head);
    let host = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("host")
            .then(|| value.trim().to_owned())
    });
    *st.last_host.lock().unwrap() = host;
    let status = match st.mode.load(Ordering::Relaxed) {
        1 => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        2 => return,
        3 if n % 2 == 1 => 200,
        3 => 500,
        _ => st.status.load(Ordering::Relaxed),
    };
    // 204 and 304 carry no body (RFC 9110 §15.3.5, §15.4.5).
    let body = if status == 204 || status == 304 {
        String::new()
    } else {
        st.body.lock().unwrap().clone()
    };
    let response = format!(
        "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost`.
fn self_signed_acceptor() -> TlsAcceptor {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("TLS server config");
    TlsAcceptor::from(Arc::new(config))
}

/// A port on `ip` where nothing listens (bound, then released).
pub(crate) fn closed_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind");
    l.local_addr().expect("addr").port()
}
