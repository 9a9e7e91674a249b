//! The whole server put together: load, bind, probe, serve, reload, stop.
//!
//! The `meridian` binary calls [`run`], which adds the runtime and the signals. Tests and
//! benchmarks start the same server in-process with [`Server::load`] and
//! [`Server::start`], and stop it with [`Running::shutdown`].
//!
//! The order of [`Server::start`] is what operators rely on: the DNS and API sockets are
//! bound first, so a port in use fails before anything else happens; the first round of
//! health probes runs next, so the first answer already reflects it. The API comes up
//! before that round (so `/readyz` can answer 503 while it runs) and so before DNS is
//! announced: `meridian override` works once `listening on udp` is logged, and `/readyz`
//! answers 200 from then on.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, ApiState, Readiness};
use crate::cluster::Cluster;
use crate::compile::Snapshot;
use crate::config::ServerConfig;
use crate::diag::Diagnostics;
use crate::health::{HealthSources, OverrideError};
use crate::load::load_snapshot;
use crate::querylog::QueryLog;
use crate::reload::{self, Fingerprint, Reloader};
use crate::serve::{self, Listeners, Responder, ServeError};

/// Why the server did not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The overrides state file could not be read.
    #[error(transparent)]
    Overrides(#[from] OverrideError),
    /// The zones or GeoIP databases are invalid; the diagnostics say where and why.
    #[error("not starting: {}", .0.summary())]
    Zones(Diagnostics),
    /// The async runtime could not be created.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The query log's writer thread could not be started.
    #[error("cannot start the query log: {0}")]
    QueryLog(#[source] io::Error),
    /// A DNS listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] ServeError),
    /// The API address could not be bound.
    #[error("cannot listen on api {addr}: {source}")]
    ApiBind {
        /// The configured API address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// No token was configured and none could be written to the state directory.
    #[error("cannot create the API token in {}: {source}", file.display())]
    Token {
        /// The token file.
        file: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The UDP threads or TCP tasks could not be started.
    #[error("cannot start serving: {0}")]
    Serve(#[source] io::Error),
    /// The etcd client could not be set up (the members are not needed to start).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

impl RunError {
    /// Whether the files are at fault (the binary exits 2 for these, 1 for the others).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::Overrides(_) | Self::Zones(_))
    }

    /// Every problem found, for the errors that come from checking the files.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            Self::Zones(d) => Some(d),
            _ => None,
        }
    }
}

/// How long TCP connections may take, after shutdown begins, to finish the queries they
/// have started; then they are closed.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The `meridian serve` process: loads `config`, serves until SIGINT or SIGTERM, reloads
/// on SIGHUP, then stops gracefully ([`Running::shutdown`]). Blocks the calling thread.
pub fn run(config: ServerConfig) -> Result<(), RunError> {
    let server = Server::load(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async {
        // Before the server says it listens: a signal from then on is handled, where before
        // it could still end the process by its default action.
        let signals = Signals::install();
        let running = server.start().await?;
        let signal = wait_for_signals(&running, signals).await;
        info!("{signal} received");
        running.shutdown().await;
        Ok::<_, RunError>(())
    })?;
    // Nothing of the server runs any more; do not wait long for a blocking task (a reload
    // reading files) that has nobody left to report to.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// A server with everything loaded and checked, and nothing bound yet.
pub struct Server {
    config: ServerConfig,
    health: HealthSources,
    snapshot: Snapshot,
    files: Fingerprint,
}

impl Server {
    /// Reads the overrides, every zone and database, and compiles the first snapshot;
    /// logs the warnings and the zones loaded. Blocking: it reads files.
    pub fn load(config: ServerConfig) -> Result<Self, RunError> {
        let config = config.serving();
        let health = HealthSources::new(Some(&config.overrides_file()))?;
        // Before loading: a file replaced while it is read is then seen as changed.
        let files = reload::fingerprint(&config);
        let (snapshot, warnings) = load_snapshot(&config, &health, 1).map_err(RunError::Zones)?;
        for line in warnings.render().lines() {
            warn!("{line}");
        }
        let zones: Vec<String> = snapshot
            .zones()
            .iter()
            .map(|z| z.origin.to_string())
            .collect();
        info!("loaded {} zone(s): {}", zones.len(), zones.join(" "));
        Ok(Self {
            config,
            health,
            snapshot,
            files,
        })
    }

    /// Binds, runs the first health round, and starts answering DNS and the API. The
    /// server's tasks run on the tokio runtime this is called in (UDP has its own threads).
    pub async fn start(self) -> Result<Running, RunError> {
        let Self {
            config: cfg,
            health,
            snapshot: snap,
            files,
        } = self;
        crate::metrics::set_enabled(cfg.metrics);
        let listeners = Listeners::bind(&cfg.listen, cfg.udp_threads)?;
        let api_listener = match cfg.api.listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| RunError::ApiBind { addr, source })?,
            ),
            None => None,
        };

        let addrs = listeners.local_addrs();
        let snapshot = Arc::new(ArcSwap::from_pointee(snap));
        let readiness = Arc::new(Readiness::default());
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut api_addr = None;
        let reloader = Reloader::new(cfg.clone(), health.clone(), snapshot.clone(), files);
        // Before the first probe round: from here on the fleet decides the probe bits.
        let cluster = match &cfg.cluster {
            Some(c) => Some(
                Cluster::start(
                    c.clone(),
                    &health,
                    snapshot.clone(),
                    reloader.clone(),
                    &cfg.state_dir,
                    stop.clone(),
                )
                .await?,
            ),
            None => None,
        };
        // The API answers from here on: `/readyz` says 503 until the first round is done
        // and DNS is served.
        if let Some(listener) = api_listener {
            let file = cfg.token_file();
            let token = api::token::read_or_create(cfg.api.token.as_deref(), &file)
                .map_err(|source| RunError::Token { file, source })?;
            if let Ok(a) = listener.local_addr() {
                if let Err(e) = std::fs::write(cfg.api_address_file(), a.to_string()) {
                    warn!("cannot write {}: {e}", cfg.api_address_file().display());
                }
                info!(
                    "listening on api http://{a} (token in {})",
                    cfg.token_file().display()
                );
                api_addr = Some(a);
            }
            let state = ApiState {
                snapshot: snapshot.clone(),
                overrides: health.overrides.clone(),
                token: Arc::from(token),
                read_requires_token: cfg.api.read_requires_token,
                readiness: readiness.clone(),
                reloader: reloader.clone(),
                cluster: cluster.clone(),
            };
            tasks.push(tokio::spawn(api::serve(listener, state, stop.clone())));
        }

        health.registry.start();
        health.loads.start();
        if !health.registry.is_empty() {
            let targets = health.registry.len();
            let pending = health
                .registry
                .first_round(cfg.health_startup_timeout)
                .await;
            if pending == 0 {
                info!("health: first round done for {targets} target(s)");
            } else {
                warn!(
                    "health: {pending} of {targets} target(s) without a result after {:?}; they keep their initial state",
                    cfg.health_startup_timeout
                );
            }
        }
        readiness.probed();

        let query_log = match &cfg.query_log {
            Some(q) => match QueryLog::start(q) {
                Ok(log) => {
                    info!(
                        "logging {} of queries to {}",
                        if q.sample_rate >= 1.0 {
                            "all".to_owned()
                        } else {
                            format!("{:.3}%", q.sample_rate * 100.0)
                        },
                        q.file.display()
                    );
                    Some(Arc::new(log))
                }
                Err(e) => {
                    stop.cancel();
                    return Err(RunError::QueryLog(e));
                }
            },
            None => None,
        };
        let mut responder = Responder::new(snapshot.clone(), cfg.max_udp_payload);
        if let Some(log) = &query_log {
            responder = responder.with_query_log(log.clone());
        }
        let responder = Arc::new(responder);
        let serving = match serve::start(listeners, responder, &cfg) {
            Ok(s) => s,
            Err(e) => {
                // The API is already up: stop it with the failed start.
                stop.cancel();
                return Err(RunError::Serve(e));
            }
        };
        // Watches set up before the server says it listens: a file saved after that is seen.
        let watching = reloader.clone().watch(stop.clone());
        for a in &addrs {
            info!("listening on udp {a}");
            info!("listening on tcp {a}");
        }
        readiness.ready();
        crate::metrics::events::events().loaded(snapshot.load().generation, false);
        crate::systemd::ready(&addrs);

        tasks.push(tokio::spawn(watching));
        // In a fleet too: etcd's lease ends the override for everyone, but a node cut off
        // from etcd must not keep it past its time.
        tasks.push(tokio::spawn(expire_overrides(
            health.overrides.clone(),
            stop.clone(),
        )));
        tasks.push(tokio::spawn(crate::answer::all_down::watch(
            snapshot.clone(),
            stop.clone(),
        )));
        Ok(Running {
            addrs,
            api_addr,
            reloader,
            stop,
            tasks,
            cluster,
            serving,
            query_log,
        })
    }
}

/// Clears overrides given `--for` when their time is up (checked every second).
async fn expire_overrides(overrides: Arc<crate::health::Overrides>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        let o = overrides.clone();
        let _ = tokio::task::spawn_blocking(move || o.expire(crate::health::unix_now())).await;
    }
}

/// A started server; stop it with [`Running::shutdown`].
pub struct Running {
    addrs: Vec<SocketAddr>,
    api_addr: Option<SocketAddr>,
    reloader: Arc<Reloader>,
    stop: CancellationToken,
    /// The API, the all-down logger and the file watcher.
    tasks: Vec<JoinHandle<()>>,
    cluster: Option<Arc<Cluster>>,
    serving: serve::Running,
    query_log: Option<Arc<QueryLog>>,
}

impl Running {
    /// The DNS addresses, UDP and TCP on each (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The API address, when the API is on.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// Reloads as SIGHUP does: the new generation, or the diagnostics that kept the old
    /// snapshot serving.
    pub async fn reload(&self) -> Result<u64, Diagnostics> {
        self.reloader.reload().await
    }

    /// Stops gracefully: tells systemd, stops taking DNS queries (UDP reading, TCP
    /// accepting) and answers the TCP queries already started, for at most
    /// [`SHUTDOWN_GRACE`]; stops the API, the file watcher and the other background tasks;
    /// logs `stopped` when all is done.
    pub async fn shutdown(self) {
        info!("shutting down");
        crate::systemd::stopping();
        self.stop.cancel();
        let (_, ()) = tokio::join!(self.serving.shutdown(SHUTDOWN_GRACE), async {
            for t in self.tasks {
                let _ = t.await;
            }
            // Its lease is revoked: the other nodes stop counting this one at once.
            if let Some(c) = &self.cluster {
                c.stopped().await;
            }
        });
        // After the last query was answered: every line of it reaches the file.
        if let Some(log) = self.query_log {
            let _ = tokio::task::spawn_blocking(move || log.close(SHUTDOWN_GRACE)).await;
        }
        info!("stopped");
    }
}

/// The SIGINT, SIGTERM and SIGHUP streams; a signal is kept from the moment they exist.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside the runtime); `None` if the system refuses one.
    fn install() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Self {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
            hup: signal(SignalKind::hangup()).ok()?,
        })
    }
}

/// Runs until SIGINT or SIGTERM and says which; SIGHUP reloads, keeping the old snapshot
/// on error.
async fn wait_for_signals(running: &Running, signals: Option<Signals>) -> &'static str {
    let Some(mut s) = signals else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    loop {
        tokio::select! {
            _ = s.int.recv() => return "SIGINT",
            _ = s.term.recv() => return "SIGTERM",
            _ = s.hup.recv() => {
                info!("SIGHUP: reloading");
                let _ = running.reload().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    const ZONE: &str = r#"origin = "example.com"
ttl = "1h"
[soa]
primary = "ns1"
contact = "hostmaster@example.com"
serial = 1
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
"#;

    /// `example.com. SOA` over UDP to `addr`: the reply's header (id, flags, ANCOUNT).
    fn ask_soa(addr: SocketAddr) -> (u16, u16, u16) {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(&q, addr).unwrap();
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf).unwrap();
        assert!(n >= 12, "short reply");
        let word = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        (word(0), word(2), word(6))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_in_process_answers_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        std::fs::write(zones.join("example.com.toml"), ZONE).unwrap();
        let mut config = ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            zones_dir: zones,
            state_dir: dir.path().join("state"),
            ..ServerConfig::default()
        };
        config.api.listen = Some("127.0.0.1:0".parse().unwrap());

        let server = tokio::task::block_in_place(|| Server::load(config.clone())).unwrap();
        let running = server.start().await.unwrap();
        let addr = running.local_addrs()[0];
        assert_ne!(addr.port(), 0);
        let api_addr = running.api_addr().expect("the API is on");
        let written = std::fs::read_to_string(config.api_address_file()).unwrap();
        assert_eq!(written, api_addr.to_string());
        assert!(config.token_file().exists());

        let (id, flags, answers) = tokio::task::block_in_place(|| ask_soa(addr));
        assert_eq!(id, 0x1234);
        assert_eq!(flags & 0x8000, 0x8000, "a response");
        assert_eq!(flags & 0x000f, 0, "NOERROR");
        assert_eq!(answers, 1);
        assert_eq!(running.reload().await.unwrap(), 2);

        running.shutdown().await;
        UdpSocket::bind(addr).expect("the DNS port is free again");
        std::net::TcpListener::bind(api_addr).expect("the API port is free again");
    }

    /// An HTTP check target that holds every probe until `release` is set, then answers
    /// 200.
    fn held_check_server(release: Arc<std::sync::atomic::AtomicBool>) -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let release = release.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    let _ = conn.read(&mut buf);
                    while !release.load(std::sync::atomic::Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                });
            }
        });
        port
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readyz_is_503_until_the_first_probe_round_is_done() {
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let port = held_check_server(release.clone());
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        let zone = format!(
            "{ZONE}[checks.web]\ntype = \"http\"\nport = {port}\npath = \"/health\"\n\
             interval = \"60s\"\ntimeout = \"30s\"\n\
             [datacenters.ams]\naddresses = [\"127.0.0.1\"]\nlocation = [0.0, 0.0]\n\
             check = \"web\"\n\
             [names.www.gslb]\ndatacenters = [\"ams\"]\npolicy = \"map\"\n\
             [names.www.gslb.map]\ndefault = [\"ams\"]\n"
        );
        std::fs::write(zones.join("example.com.toml"), zone).unwrap();
        let mut config = ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            zones_dir: zones,
            state_dir: dir.path().join("state"),
            health_startup_timeout: Duration::from_secs(60),
            ..ServerConfig::default()
        };
        config.api.listen = Some("127.0.0.1:0".parse().unwrap());
        let address_file = config.api_address_file();

        let server = tokio::task::block_in_place(|| Server::load(config)).unwrap();
        let while_probing = async {
            // The API is up (its address written) while the probe is held.
            let addr: SocketAddr = loop {
                if let Some(a) = std::fs::read_to_string(&address_file)
                    .ok()
                    .and_then(|t| t.parse().ok())
                {
                    break a;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));
            let (status, body) = get(addr, "/readyz").await;
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("probe round"), "{body}");
            release.store(true, std::sync::atomic::Ordering::Release);
            addr
        };
        let (running, addr) = tokio::join!(server.start(), while_probing);
        let running = running.unwrap();
        assert_eq!(running.api_addr(), Some(addr));
        // No token is sent: both answer without one; other routes stay 404.
        assert_eq!(get(addr, "/readyz").await, (200, "ready\n".to_owned()));
        assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));
        assert_eq!(get(addr, "/nope").await.0, 404);
        assert_eq!(get(addr, "/v1/overrides").await.0, 401);
        running.shutdown().await;
    }

    #[test]
    fn invalid_zones_are_invalid_input_with_their_diagnostics() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.toml"), "origin = 1\n").unwrap();
        let config = ServerConfig {
            zones_dir: dir.path().to_owned(),
            state_dir: dir.path().join("state"),
            ..ServerConfig::default()
        };
        let Err(e) = Server::load(config) else {
            panic!("an invalid zone loaded");
        };
        assert!(e.is_invalid_input());
        assert!(e.to_string().starts_with("not starting: "), "{e}");
        assert!(e.diagnostics().is_some_and(Diagnostics::has_errors));
    }
}
