//! One probe: a TCP connect or an HTTP(S) GET against one address.
//!
//! A `Probe` is prepared once per target (URL, `Host` header, client) and run every
//! interval. Every way a probe can fail is a [`ProbeError`] with a reason an operator can
//! act on; nothing here panics on bad input or a misbehaving server.
//!
//! # HTTPS, SNI and names
//! The probe must reach *this* address, yet TLS wants a name: SNI, and the name the
//! certificate is verified against. So for HTTPS with a name (`sni`, else `host`) the request
//! goes to `https://NAME:PORT/path` on a client built with `ClientBuilder::resolve(NAME, ADDR)`:
//! the name is pinned to the target address, and rustls sends it as SNI and verifies the
//! certificate against it. Without a name the URL is `https://ADDR:PORT/path`: no SNI, and
//! the certificate must cover the address. Plain HTTP always requests `http://ADDR:PORT/path`
//! and sends `host` as the `Host` header.
//!
//! Clients are built once per distinct TLS setting, `ClientKey`: verification on or off,
//! and the pinned (name, address) if any (reqwest pins names per client, not per request),
//! and shared by every target with that setting. No client ever resolves a name: their
//! resolver fails with [`ProbeError::Unresolved`], so a probe never depends on (or
//! queries) DNS, which might be this very server. They also ignore proxy variables, never
//! follow redirects (a 302 is judged as a 302), and keep no idle connections, so each
//! probe exercises a fresh connect and handshake.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::{HOST, HeaderValue};
use tokio::net::TcpStream;

use super::CheckKind;

/// At most this much of a body is read when looking for `body_contains`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Why a probe failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The target answered the SYN with a reset: nothing listens on the port.
    #[error("connection refused")]
    Refused,
    /// The whole probe (connect, TLS, request, body) took longer than the check's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connecting failed otherwise (unreachable network or host, reset, …).
    #[error("connect failed: {0}")]
    Connect(String),
    /// The TLS handshake failed: certificate not trusted or not for the name, protocol error.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The status is not one of the expected codes.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The first [`BODY_LIMIT`] bytes of the body do not contain the expected text.
    #[error("body does not contain {0:?}")]
    BodyMissing(String),
    /// The connection broke while reading the body.
    #[error("reading the body failed: {0}")]
    Body(String),
    /// Something needed a name resolved; probes only ever connect to their target address.
    #[error("name {0} does not resolve: probes connect to the target address only")]
    Unresolved(String),
    /// The server broke the HTTP exchange (closed early, malformed response, …).
    #[error("HTTP error: {0}")]
    Http(String),
    /// The check cannot form a request (e.g. a `Host` value that is not a valid header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The probe task itself failed (a bug; reported rather than stopping the target's loop).
    #[error("probe failed internally: {0}")]
    Internal(String),
}

impl ProbeError {
    /// Why, as one word for the `reason` label of `meridian_probe_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ProbeError::Refused => "refused",
            ProbeError::Timeout(_) => "timeout",
            ProbeError::Connect(_) => "connect",
            ProbeError::Tls(_) => "tls",
            ProbeError::Status(_) => "status",
            ProbeError::BodyMissing(_) => "body_mismatch",
            ProbeError::Body(_) => "body",
            ProbeError::Unresolved(_) => "unresolved",
            ProbeError::Http(_) => "http",
            ProbeError::InvalidRequest(_) => "invalid_request",
            ProbeError::Internal(_) => "internal",
        }
    }
}

/// A prepared probe of one target.
#[derive(Debug)]
pub(crate) enum Probe {
    /// TCP connect.
    Tcp(SocketAddr),
    /// HTTP(S) GET; a preparation error is reported by every run.
    Http(Box<Result<HttpProbe, ProbeError>>),
}

/// An HTTP(S) GET, ready to send.
#[derive(Debug)]
pub(crate) struct HttpProbe {
    client: reqwest::Client,
    url: reqwest::Url,
    host: Option<HeaderValue>,
    expect: Vec<u16>,
    body_contains: Option<String>,
}

impl Probe {
    /// Prepares the probe of `kind` against `addr`, taking a client from `clients`.
    pub(crate) fn new(kind: &CheckKind, addr: IpAddr, clients: &Clients) -> Self {
        match kind {
            CheckKind::Tcp { port } => Probe::Tcp(SocketAddr::new(addr, *port)),
            CheckKind::Http { .. } => Probe::Http(Box::new(HttpProbe::new(kind, addr, clients))),
        }
    }

    /// Runs the probe once, giving up after `timeout`.
    pub(crate) async fn run(&self, timeout: Duration) -> Result<(), ProbeError> {
        tokio::time::timeout(timeout, self.run_unbounded())
            .await
            .unwrap_or(Err(ProbeError::Timeout(timeout)))
    }

    async fn run_unbounded(&self) -> Result<(), ProbeError> {
        match self {
            Probe::Tcp(addr) => tcp_connect(*addr).await,
            Probe::Http(prepared) => match &**prepared {
                Ok(http) => http.run().await,
                Err(e) => Err(e.clone()),
            },
        }
    }
}

async fn tcp_connect(addr: SocketAddr) -> Result<(), ProbeError> {
    match TcpStream::connect(addr).await {
        Ok(_stream) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(ProbeError::Refused),
        Err(e) => Err(ProbeError::Connect(e.to_string())),
    }
}

impl HttpProbe {
    fn new(kind: &CheckKind, addr: IpAddr, clients: &Clients) -> Result<Self, ProbeError> {
        let (
            CheckKind::Http {
                tls,
                port,
                path,
                host,
                expect,
                body_contains,
                ..
            },
            Some(key),
        ) = (kind, client_key(kind, addr))
        else {
            return Err(ProbeError::Internal("not an HTTP check".into()));
        };
        let client = clients.get(&key)?;
        let authority = match &key.pin {
            Some((name, _)) => format!("{name}:{port}"),
            None => SocketAddr::new(addr, *port).to_string(),
        };
        let scheme = if *tls { "https" } else { "http" };
        let url = format!("{scheme}://{authority}{path}");
        let url = reqwest::Url::parse(&url)
            .map_err(|e| ProbeError::InvalidRequest(format!("URL {url}: {e}")))?;
        let host = host
            .as_deref()
            .map(|h| {
                HeaderValue::from_str(h)
                    .map_err(|_| ProbeError::InvalidRequest(format!("invalid Host header {h:?}")))
            })
            .transpose()?;
        Ok(Self {
            client,
            url,
            host,
            expect: expect.clone(),
            body_contains: body_contains.clone(),
        })
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut request = self.client.get(self.url.clone());
        if let Some(host) = &self.host {
            request = request.header(HOST, host.clone());
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let expected = if self.expect.is_empty() {
            (200..=399).contains(&status)
        } else {
            self.expect.contains(&status)
        };
        if !expected {
            return Err(ProbeError::Status(status));
        }
        let Some(needle) = self.body_contains.as_deref().filter(|n| !n.is_empty()) else {
            return Ok(());
        };
        let needle = needle.as_bytes();
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| ProbeError::Body(root_cause(&e)))?
            else {
                break;
            };
            // Search only where the new bytes can complete a match.
            let from = body.len().saturating_sub(needle.len() - 1);
            body.extend_from_slice(&chunk[..chunk.len().min(BODY_LIMIT - body.len())]);
            if body[from..].windows(needle.len()).any(|w| w == needle) {
                return Ok(());
            }
        }
        Err(ProbeError::BodyMissing(
            String::from_utf8_lossy(needle).into_owned(),
        ))
    }
}

/// Maps a reqwest error to the reason an operator needs.
fn classify(e: reqwest::Error) -> ProbeError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(found) = classify_wrapped(err) {
            return found;
        }
        source = err.source();
    }
    let cause = root_cause(&e);
    if e.is_connect() {
        ProbeError::Connect(cause)
    } else if e.is_body() || e.is_decode() {
        ProbeError::Body(cause)
    } else {
        ProbeError::Http(cause)
    }
}

/// Looks at `err` and into the wrappers whose `source()` skips the error they wrap: a
/// boxed error (its `source` is the inner error's source) and `io::Error` (same).
fn classify_wrapped(err: &(dyn StdError + 'static)) -> Option<ProbeError> {
    if let Some(found) = classify_one(err) {
        return Some(found);
    }
    let inner = err.downcast_ref::<io::Error>()?.get_ref()?;
    classify_wrapped(inner)
}

fn classify_one(err: &(dyn StdError + 'static)) -> Option<ProbeError> {
    if let Some(name) = err.downcast_ref::<NoDnsError>() {
        return Some(ProbeError::Unresolved(name.0.clone()));
    }
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(ProbeError::Tls(tls.to_string()));
    }
    if let Some(io) = err.downcast_ref::<io::Error>() {
        if io.kind() == io::ErrorKind::ConnectionRefused {
            return Some(ProbeError::Refused);
        }
    }
    None
}

/// The innermost message of an error chain: reqwest's outer message repeats the URL,
/// the cause is what says what went wrong.
fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// The distinct TLS setting of an HTTP(S) check, the unit of client sharing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    /// Certificates are verified.
    verify: bool,
    /// The TLS name and the address it is pinned to.
    pin: Option<(String, IpAddr)>,
}

/// The client setting a check needs; `None` for TCP checks.
pub(crate) fn client_key(kind: &CheckKind, addr: IpAddr) -> Option<ClientKey> {
    match kind {
        CheckKind::Tcp { .. } => None,
        // Plain HTTP needs no name: the Host header is enough.
        CheckKind::Http { tls: false, .. } => Some(ClientKey {
            verify: true,
            pin: None,
        }),
        CheckKind::Http {
            tls: true,
            host,
            sni,
            verify_tls,
            ..
        } => Some(ClientKey {
            verify: *verify_tls,
            pin: sni
                .as_ref()
                .or(host.as_ref())
                .map(|name| (name.to_ascii_lowercase(), addr)),
        }),
    }
}

/// Clients by TLS setting.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    map: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

impl Clients {
    /// The client for `key`, built on first use.
    pub(crate) fn get(&self, key: &ClientKey) -> Result<reqwest::Client, ProbeError> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = map.get(key) {
            return Ok(client.clone());
        }
        let client = build_client(key)?;
        map.insert(key.clone(), client.clone());
        Ok(client)
    }

    /// Drops the clients whose setting no check uses any more.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&ClientKey) -> bool) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|k, _| keep(k));
    }

    /// Number of distinct clients.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn build_client(key: &ClientKey) -> Result<reqwest::Client, ProbeError> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .user_agent(concat!("meridian-health/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(NoDns))
        .danger_accept_invalid_certs(!key.verify);
    if let Some((name, addr)) = &key.pin {
        // Port 0: the URL's port is used.
        builder = builder.resolve(name, SocketAddr::new(*addr, 0));
    }
    builder
        .build()
        .map_err(|e| ProbeError::Internal(format!("building the HTTP client: {}", root_cause(&e))))
}

/// The resolver of every probe client: refuses every name (see the module docs).
struct NoDns;

#[derive(Debug, thiserror::Error)]
#[error("name {0} does not resolve")]
struct NoDnsError(String);

impl reqwest::dns::Resolve for NoDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let err = NoDnsError(name.as_str().to_owned());
        Box::pin(async move { Err(Box::new(err) as Box<dyn StdError + Send + Sync>) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::test_support::{HttpServer, Mode, http, refused_port};

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn https(port: u16, verify_tls: bool, sni: Option<&str>, host: Option<&str>) -> CheckKind {
        CheckKind::Http {
            tls: true,
            port,
            path: "/health".into(),
            host: host.map(Into::into),
            expect: vec![],
            body_contains: None,
            verify_tls,
            sni: sni.map(Into::into),
        }
    }

    fn with(
        kind: CheckKind,
        f: impl FnOnce(&mut Vec<u16>, &mut Option<String>, &mut Option<String>),
    ) -> CheckKind {
        let mut kind = kind;
        if let CheckKind::Http {
            expect,
            body_contains,
            host,
            ..
        } = &mut kind
        {
            f(expect, body_contains, host);
        }
        kind
    }

    async fn run(kind: &CheckKind) -> Result<(), ProbeError> {
        run_with(kind, &Clients::default(), TIMEOUT).await
    }

    async fn run_with(
        kind: &CheckKind,
        clients: &Clients,
        timeout: Duration,
    ) -> Result<(), ProbeError> {
        Probe::new(kind, "127.0.0.1".parse().unwrap(), clients)
            .run(timeout)
            .await
    }

    #[tokio::test]
    async fn http_status_default_range() {
        let server = HttpServer::start().await;
        let kind = http(server.port());
        for (status, ok) in [
            (200, true),
            (204, true),
            (302, true),
            (399, true),
            (404, false),
            (500, false),
            (503, false),
        ] {
            server.set_status(status);
            let got = run(&kind).await;
            if ok {
                assert_eq!(got, Ok(()), "{status}");
            } else {
                assert_eq!(got, Err(ProbeError::Status(status)), "{status}");
            }
        }
        assert_eq!(ProbeError::Status(503).to_string(), "unexpected status 503");
    }

    #[tokio::test]
    async fn http_expected_status_list() {
        let server = HttpServer::start().await;
        let kind = with(http(server.port()), |expect, _, _| *expect = vec![200, 503]);
        for (status, ok) in [(200, true), (503, true), (204, false), (302, false)] {
            server.set_status(status);
            assert_eq!(run(&kind).await.is_ok(), ok, "{status}");
        }
    }

    #[tokio::test]
    async fn http_body_substring() {
        let server = HttpServer::start().await;
        server.set_body("status: ok\n");
        let found = with(http(server.port()), |_, body, _| *body = Some("ok".into()));
        assert_eq!(run(&found).await, Ok(()));
        let missing = with(http(server.port()), |_, body, _| {
            *body = Some("ready".into())
        });
        let err = run(&missing).await.unwrap_err();
        assert_eq!(err, ProbeError::BodyMissing("ready".into()));
        assert_eq!(err.to_string(), "body does not contain \"ready\"");
        // Beyond the limit does not count.
        server.set_body(&format!("{}ready", "x".repeat(BODY_LIMIT)));
        assert_eq!(
            run(&missing).await,
            Err(ProbeError::BodyMissing("ready".into()))
        );
        // Straddling the end of the limit does not count either; just inside does.
        server.set_body(&format!("{}ready", "x".repeat(BODY_LIMIT - 3)));
        assert!(run(&missing).await.is_err());
        server.set_body(&format!("{}ready", "x".repeat(BODY_LIMIT - 5)));
        assert_eq!(run(&missing).await, Ok(()));
        // A wrong status fails before the body is looked at.
        server.set_status(500);
        assert_eq!(run(&found).await, Err(ProbeError::Status(500)));
    }

    #[tokio::test]
    async fn http_host_header() {
        let server = HttpServer::start().await;
        run(&http(server.port())).await.unwrap();
        assert_eq!(
            server.last_host().as_deref(),
            Some(format!("127.0.0.1:{}", server.port()).as_str())
        );
        let named = with(http(server.port()), |_, _, host| {
            *host = Some("www.example.com".into())
        });
        run(&named).await.unwrap();
        assert_eq!(server.last_host().as_deref(), Some("www.example.com"));
        // A name that resolves nowhere is only a header for plain HTTP.
        let nowhere = with(http(server.port()), |_, _, host| {
            *host = Some("no-such-host.invalid".into())
        });
        assert_eq!(run(&nowhere).await, Ok(()));
    }

    #[tokio::test]
    async fn invalid_host_header_is_a_failure() {
        let kind = with(http(9), |_, _, host| *host = Some("bad\nhost".into()));
        let err = run(&kind).await.unwrap_err();
        assert!(matches!(err, ProbeError::InvalidRequest(_)), "{err:?}");
    }

    #[tokio::test]
    async fn refused() {
        let port = refused_port().await;
        assert_eq!(run(&http(port)).await, Err(ProbeError::Refused));
        assert_eq!(
            run(&CheckKind::Tcp { port }).await,
            Err(ProbeError::Refused)
        );
        assert_eq!(
            run(&https(port, true, Some("localhost"), None)).await,
            Err(ProbeError::Refused)
        );
    }

    #[tokio::test]
    async fn tcp_connect_succeeds() {
        let server = HttpServer::start().await;
        assert_eq!(
            run(&CheckKind::Tcp {
                port: server.port()
            })
            .await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn timeout() {
        let server = HttpServer::start().await;
        server.set_mode(Mode::Slow);
        let limit = Duration::from_millis(200);
        let started = tokio::time::Instant::now();
        let got = run_with(&http(server.port()), &Clients::default(), limit).await;
        assert_eq!(got, Err(ProbeError::Timeout(limit)));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            ProbeError::Timeout(limit).to_string(),
            "timed out after 200ms"
        );
    }

    #[tokio::test]
    async fn closed_connection_is_an_http_error() {
        let server = HttpServer::start().await;
        server.set_mode(Mode::Close);
        let err = run(&http(server.port())).await.unwrap_err();
        assert!(matches!(err, ProbeError::Http(_)), "{err:?}");
        server.set_mode(Mode::Answer);
        assert_eq!(run(&http(server.port())).await, Ok(()));
    }

    #[tokio::test]
    async fn https_verifies_by_default() {
        let server = HttpServer::start_tls().await;
        // Self-signed for "localhost": not trusted, with or without a name.
        for kind in [
            https(server.port(), true, Some("localhost"), None),
            https(server.port(), true, None, None),
        ] {
            let err = run(&kind).await.unwrap_err();
            assert!(matches!(err, ProbeError::Tls(_)), "{err:?}");
            assert!(err.to_string().starts_with("TLS error: "), "{err}");
        }
        assert_eq!(
            server.hits(),
            0,
            "no request may be sent over an unverified connection"
        );
    }

    #[tokio::test]
    async fn https_without_verification() {
        let server = HttpServer::start_tls().await;
        let kind = https(server.port(), false, Some("localhost"), None);
        assert_eq!(run(&kind).await, Ok(()));
        assert_eq!(server.last_sni().as_deref(), Some("localhost"));
        assert_eq!(
            server.last_host().as_deref(),
            Some(format!("localhost:{}", server.port()).as_str())
        );
        server.set_status(503);
        assert_eq!(run(&kind).await, Err(ProbeError::Status(503)));
    }

    #[tokio::test]
    async fn https_sni_and_host() {
        let server = HttpServer::start_tls().await;
        // `host` alone is the TLS name too.
        run(&https(server.port(), false, None, Some("www.example.com")))
            .await
            .unwrap();
        assert_eq!(server.last_sni().as_deref(), Some("www.example.com"));
        assert_eq!(server.last_host().as_deref(), Some("www.example.com"));
        // `sni` wins for TLS; `host` stays the header.
        run(&https(
            server.port(),
            false,
            Some("tls.example.com"),
            Some("www.example.com"),
        ))
        .await
        .unwrap();
        assert_eq!(server.last_sni().as_deref(), Some("tls.example.com"));
        assert_eq!(server.last_host().as_deref(), Some("www.example.com"));
        // No name: no SNI.
        run(&https(server.port(), false, None, None)).await.unwrap();
        assert_eq!(server.last_sni(), None);
    }

    #[tokio::test]
    async fn unresolvable_names_never_reach_dns() {
        let server = HttpServer::start_tls().await;
        // Pinned to the address: connects although the name resolves nowhere.
        let kind = https(server.port(), false, Some("no-such-host.invalid"), None);
        assert_eq!(run(&kind).await, Ok(()));
        assert_eq!(server.last_sni().as_deref(), Some("no-such-host.invalid"));
        // Verified: fails on the certificate, not on DNS.
        let err = run(&https(
            server.port(),
            true,
            Some("no-such-host.invalid"),
            None,
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, ProbeError::Tls(_)), "{err:?}");
        // A name that is not pinned is refused by the resolver, not looked up.
        let client = Clients::default()
            .get(&client_key(&http(80), "127.0.0.1".parse().unwrap()).unwrap())
            .unwrap();
        let err = classify(
            client
                .get("http://no-such-host.invalid/")
                .send()
                .await
                .unwrap_err(),
        );
        assert_eq!(err, ProbeError::Unresolved("no-such-host.invalid".into()));
    }

    #[tokio::test]
    async fn clients_are_shared_per_tls_setting() {
        let clients = Clients::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for (kind, addr) in [
            (http(80), a),
            (http(81), b),
            (with(http(80), |_, _, h| *h = Some("x.example".into())), a),
            (https(443, true, None, None), a),
            (https(8443, true, None, None), b),
            (https(443, false, None, None), a),
            (https(443, true, Some("x.example"), None), a),
            (https(8443, true, None, Some("X.example")), a),
            (https(443, true, Some("x.example"), None), b),
            (CheckKind::Tcp { port: 1 }, a),
        ] {
            let _ = Probe::new(&kind, addr, &clients);
        }
        // Verified without a name (plain HTTP too), unverified, x.example at a, at b.
        assert_eq!(clients.len(), 4);
        clients.retain(|k| k.pin.is_none());
        assert_eq!(clients.len(), 2);
    }
}
