//! The whole server put together: load, bind, probe, serve, reload, stop.
//!
//! The `meridian` binary calls [`run`], which adds the runtime and the signals. Tests and
//! benchmarks start the same server in-process with [`Server::load`] and
//! [`Server::start`], and stop it with [`Running::shutdown`].
//!
//! The order of [`Server::start`] is what operators rely on: the DNS and API sockets are
//! bound first, so a port in use fails before anything else happens; the first round of
//! health probes runs next, so the first answer already reflects it; the API comes up
//! before DNS is announced, so `meridian override` works once `listening on udp` is logged.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, ApiState};
use crate::compile::{HealthSources, Snapshot};
use crate::config::ServerConfig;
use crate::diag::Diagnostics;
use crate::health::Registry;
use crate::load::load_snapshot;
use crate::overrides::{OverrideError, Overrides};
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

/// The `meridian serve` process: loads `config`, serves until SIGINT or SIGTERM, reloads
/// on SIGHUP, then stops. Blocks the calling thread.
pub fn run(config: ServerConfig) -> Result<(), RunError> {
    let server = Server::load(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async {
        let running = server.start().await?;
        wait_for_signals(&running).await;
        running.shutdown().await;
        Ok(())
    })
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
        let overrides = Overrides::load(Some(&config.overrides_file()))?;
        let health = HealthSources {
            registry: Registry::new(),
            overrides,
        };
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
        let listeners = Listeners::bind(&cfg.listen)?;
        let api_listener = match cfg.api.listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| RunError::ApiBind { addr, source })?,
            ),
            None => None,
        };

        health.registry.start();
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

        let addrs = listeners.local_addrs();
        let snapshot = Arc::new(ArcSwap::from_pointee(snap));
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut api_addr = None;
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
            };
            tasks.push(tokio::spawn(api::serve(listener, state, stop.clone())));
        }
        let responder = Arc::new(Responder::new(snapshot.clone(), cfg.max_udp_payload));
        let serving = serve::start(listeners, responder, &cfg).map_err(RunError::Serve)?;
        for a in &addrs {
            info!("listening on udp {a}");
            info!("listening on tcp {a}");
        }

        tasks.push(tokio::spawn(serve::all_down::watch(
            snapshot.clone(),
            stop.clone(),
        )));
        let reloader = Reloader::new(cfg, health, snapshot, files);
        tasks.push(tokio::spawn(reloader.clone().watch(stop.clone())));
        Ok(Running {
            addrs,
            api_addr,
            reloader,
            stop,
            tasks,
            serving,
        })
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
    serving: serve::Running,
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

    /// Stops the API, the watchers and the DNS listeners, and waits for them.
    pub async fn shutdown(self) {
        info!("shutting down");
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.serving.shutdown().await;
    }
}

/// Runs until SIGINT or SIGTERM; SIGHUP reloads, keeping the old snapshot on error.
async fn wait_for_signals(running: &Running) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => {
                info!("SIGHUP: reloading");
                let _ = running.reload().await;
            }
        }
    }
}
