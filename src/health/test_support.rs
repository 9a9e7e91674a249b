//! Helpers for the probe and registry tests: the check server they share with the process
//! tests, under the names these tests use, and polling.

use std::time::Duration;

#[path = "../../tests/support/check_server.rs"]
mod check_server;

pub(crate) use check_server::{CheckServer as HttpServer, Mode};

impl HttpServer {
    /// Plain HTTP on 127.0.0.1, answering 200 "ok".
    pub(crate) async fn start() -> Self {
        Self::http("127.0.0.1")
    }

    /// HTTPS on 127.0.0.1 with a self-signed certificate for `localhost`.
    pub(crate) async fn start_tls() -> Self {
        Self::https("127.0.0.1")
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub(crate) async fn refused_port() -> u16 {
    check_server::closed_port("127.0.0.1")
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
