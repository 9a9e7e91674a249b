//! Reload: rebuild the whole snapshot beside the query path and swap it in atomically.
//!
//! A reload runs on SIGHUP, on `POST /v1/reload` (`meridian reload`), and by itself when
//! the config file, a zone file or a GeoIP database changes on disk (checked every
//! `reload_check`, and only once a change has stayed put for one more check, so a file
//! being written is not read half-way). It is all
//! or nothing: the config file is read again, then every zone and database is read,
//! validated and compiled into a new [`Snapshot`]; only if all of it succeeds does one
//! `ArcSwap::store` publish it. On any error the old snapshot keeps serving and every
//! diagnostic is logged. Queries in flight keep the snapshot they loaded, so a swap drops
//! nothing.
//!
//! Settings that shape sockets and threads (`listen`, `udp_threads`, `max_udp_payload`,
//! `[tcp]`, `[api]`, `state_dir`, `reload_check`) take effect at the next restart; a reload
//! that finds them different from what the server started with says so.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::compile::Snapshot;
use crate::config::{self, ServerConfig};
use crate::diag::Diagnostics;
use crate::health::HealthSources;
use crate::load::load_snapshot;
use crate::metrics::events::events;

/// Rebuilds and swaps snapshots.
pub struct Reloader {
    /// The config the server started with: what its sockets and threads follow.
    started: ServerConfig,
    /// The config the running snapshot was built from (zones, databases, overrides).
    config: Mutex<ServerConfig>,
    health: HealthSources,
    /// The files as they were before the snapshot being served was loaded.
    loaded_from: Mutex<Fingerprint>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    lock: tokio::sync::Mutex<()>,
}

/// The state of the watched files: path, modification time and length.
pub type Fingerprint = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

impl Reloader {
    /// A reloader for `snapshot`, built from `config` when the files were as `loaded_from`
    /// says (take it with [`fingerprint`] *before* loading, so a file replaced during the
    /// load is noticed).
    pub fn new(
        config: ServerConfig,
        health: HealthSources,
        snapshot: Arc<ArcSwap<Snapshot>>,
        loaded_from: Fingerprint,
    ) -> Arc<Self> {
        Arc::new(Self {
            started: config.clone(),
            config: Mutex::new(config),
            health,
            loaded_from: Mutex::new(loaded_from),
            snapshot,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    fn config(&self) -> ServerConfig {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the config file anew, loads everything, and swaps it in; returns the new
    /// generation, or the diagnostics that kept the old one serving.
    pub async fn reload(&self) -> Result<u64, Diagnostics> {
        // One reload at a time, so generations increase in order.
        let _guard = self.lock.lock().await;
        let next = self.snapshot.load().generation + 1;
        let running = self.config();
        let health = self.health.clone();
        let built = tokio::task::spawn_blocking(move || {
            // The config file's state before reading it, the other files' after: a change
            // to any of them while this runs is seen by the next check.
            let config_state = running.file.as_ref().map(stat);
            let mut diags = Diagnostics::new();
            let cfg = match &running.file {
                Some(path) => config::load(Some(path), &mut diags).ok_or(diags)?,
                None => running.clone(),
            };
            let mut before = fingerprint(&cfg);
            if let (Some(file), Some(state)) = (&cfg.file, config_state) {
                for entry in before.iter_mut().filter(|(p, _)| p == file) {
                    entry.1 = state;
                }
            }
            let (snap, warnings) = load_snapshot(&cfg, &health, next)?;
            Ok::<_, Diagnostics>((cfg, snap, warnings, before))
        })
        .await;
        match built {
            Ok(Ok((cfg, snap, warnings, before))) => {
                for line in warnings.render().lines() {
                    warn!("{line}");
                }
                for setting in self.needs_restart(&cfg) {
                    warn!("config: `{setting}` changed; it takes effect at the next restart");
                }
                let keys = snap.health_keys.clone();
                let load_keys = snap.load_keys.clone();
                self.snapshot.store(Arc::new(snap));
                *self
                    .loaded_from
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = before;
                crate::metrics::set_enabled(cfg.metrics);
                *self.config.lock().unwrap_or_else(PoisonError::into_inner) = cfg;
                // Probes no name uses any more stop; new ones started when compiled.
                self.health.registry.retain(&keys);
                self.health.loads.retain(&load_keys);
                info!("reloaded: now serving generation {next}");
                events().loaded(next, true);
                Ok(next)
            }
            Ok(Err(d)) => {
                events().reload_failed();
                for line in d.render().lines() {
                    error!("{line}");
                }
                error!(
                    "reload rejected: {}; still serving generation {}",
                    d.summary(),
                    next - 1
                );
                Err(d)
            }
            Err(e) => {
                events().reload_failed();
                let mut d = Diagnostics::new();
                d.error_global(format!("reload task failed: {e}"), None);
                error!("reload failed: {e}; still serving generation {}", next - 1);
                Err(d)
            }
        }
    }

    /// Settings of `new` that differ from those the server started with but only apply at
    /// start.
    fn needs_restart(&self, new: &ServerConfig) -> Vec<&'static str> {
        let old = &self.started;
        let mut changed = Vec::new();
        if old.listen != new.listen {
            changed.push("listen");
        }
        if old.udp_threads != new.udp_threads {
            changed.push("udp_threads");
        }
        if old.max_udp_payload != new.max_udp_payload {
            changed.push("max_udp_payload");
        }
        if old.tcp.idle_timeout != new.tcp.idle_timeout
            || old.tcp.message_timeout != new.tcp.message_timeout
            || old.tcp.max_connections != new.tcp.max_connections
        {
            changed.push("tcp");
        }
        if old.api.listen != new.api.listen || old.api.token != new.api.token {
            changed.push("api");
        }
        if old.state_dir != new.state_dir {
            changed.push("state_dir");
        }
        if old.reload_check != new.reload_check {
            changed.push("reload_check");
        }
        changed
    }

    /// Watches the config, zone files and databases until `cancel`; reloads on a change.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let interval = self.config().reload_check;
        let mut pending: Option<Fingerprint> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let cfg = self.config();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&cfg)).await else {
                continue;
            };
            let seen = self
                .loaded_from
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if now == seen {
                pending = None;
                continue;
            }
            // Wait for the files to stay unchanged for one more check before reading them.
            if pending.as_ref() != Some(&now) {
                pending = Some(now);
                continue;
            }
            info!("config, zone or GeoIP files changed; reloading");
            if self.reload().await.is_err() {
                // Do not retry a broken file every check: wait for it to change again.
                *self
                    .loaded_from
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = now;
            }
            pending = None;
        }
    }
}

/// Modification time and length of a file, `None` when it is missing.
fn stat(p: &PathBuf) -> Option<(SystemTime, u64)> {
    std::fs::metadata(p)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// The current state of the config file and every zone file and database it names.
pub fn fingerprint(config: &ServerConfig) -> Fingerprint {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&config.zones_dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.extend(config.file.iter().cloned());
    files.extend(config.geoip.databases.iter().cloned());
    files.extend(config.geoip.asn.iter().cloned());
    files
        .into_iter()
        .map(|p| {
            let s = stat(&p);
            (p, s)
        })
        .collect()
}
