//! Real servers for the probe tests: a tiny HTTP/1.1 server (optionally behind TLS with a
//! self-signed certificate for `localhost`) whose behaviour tests switch at run time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// How the server treats the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    /// Answer with the current status and body.
    Answer = 0,
    /// Read the request, then say nothing for a long time.
    Slow = 1,
    /// Read the request, then close the connection.
    Close = 2,
}

#[derive(Default)]
struct State {
    mode: AtomicU8,
    status: AtomicU16,
    body: Mutex<String>,
    /// Requests read (TLS: only after a completed handshake).
    hits: AtomicUsize,
    last_host: Mutex<Option<String>>,
    last_sni: Mutex<Option<String>>,
}

/// A running server; stops (with its connections) when dropped.
pub(crate) struct HttpServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Plain HTTP on 127.0.0.1, answering 200 "ok".
    pub(crate) async fn start() -> Self {
        Self::spawn(None).await
    }

    /// HTTPS with a self-signed certificate for `localhost`.
    pub(crate) async fn start_tls() -> Self {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        Self::spawn(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn spawn(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.status.store(200, Ordering::Relaxed);
        *state.body.lock().unwrap() = "ok".to_owned();
        let st = state.clone();
        let task = tokio::spawn(async move {
            // Dropped with the task: aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls {
                        None => serve(stream, &st).await,
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            *st.last_sni.lock().unwrap() =
                                stream.get_ref().1.server_name().map(str::to_owned);
                            serve(stream, &st).await;
                        }
                    }
                });
                // Reap finished connections.
                while connections.try_join_next().is_some() {}
            }
        });
        Self { addr, state, task }
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
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: impl AsyncRead + AsyncWrite + Unpin, st: &State) {
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
    st.hits.fetch_add(1, Ordering::Relaxed);
    let head = String::from_utf8_lossy(&head);
    let host = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("host")
            .then(|| value.trim().to_owned())
    });
    *st.last_host.lock().unwrap() = host;
    match st.mode.load(Ordering::Relaxed) {
        1 => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        2 => return,
        _ => {}
    }
    let status = st.status.load(Ordering::Relaxed);
    let body = if status == 204 || status == 304 {
        String::new()
    } else {
        st.body.lock().unwrap().clone()
    };
    let response = format!(
        "HTTP/1.1 {status} Test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub(crate) async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; whether it held.
pub(crate) async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A plain HTTP check of `GET /health` on `port`, expecting any 2xx or 3xx.
pub(crate) fn http(port: u16) -> super::CheckKind {
    super::CheckKind::Http {
        tls: false,
        port,
        path: "/health".into(),
        host: None,
        expect: vec![],
        body_contains: None,
        verify_tls: true,
        sni: None,
    }
}
