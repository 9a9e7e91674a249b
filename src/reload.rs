//! Reload: rebuild the whole snapshot beside the query path and swap it in atomically.
//!
//! A reload runs on SIGHUP, and by itself when a zone file or GeoIP database changes on
//! disk (checked every `reload_check`, and only once a change has stayed put for one more
//! check, so a file being written is not read half-way). It is all or nothing: every zone
//! and database is read, validated and compiled into a new [`Snapshot`]; only if all of it
//! succeeds does one `ArcSwap::store` publish it. On any error the old snapshot keeps
//! serving and every diagnostic is logged. Queries in flight keep the snapshot they
//! loaded, so a swap drops nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::compile::{HealthSources, Snapshot};
use crate::config::ServerConfig;
use crate::diag::Diagnostics;
use crate::load::load_snapshot;

/// Rebuilds and swaps snapshots.
pub struct Reloader {
    config: ServerConfig,
    health: HealthSources,
    /// The files as they were before the snapshot being served was loaded.
    loaded_from: std::sync::Mutex<Fingerprint>,
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
            config,
            health,
            loaded_from: std::sync::Mutex::new(loaded_from),
            snapshot,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Loads everything anew and swaps it in; returns the new generation, or the
    /// diagnostics that kept the old one serving.
    pub async fn reload(&self) -> Result<u64, Diagnostics> {
        // One reload at a time, so generations increase in order.
        let _guard = self.lock.lock().await;
        let next = self.snapshot.load().generation + 1;
        let before = fingerprint(&self.config);
        let cfg = self.config.clone();
        let health = self.health.clone();
        let built = tokio::task::spawn_blocking(move || load_snapshot(&cfg, &health, next)).await;
        match built {
            Ok(Ok((snap, warnings))) => {
                for line in warnings.render().lines() {
                    warn!("{line}");
                }
                let keys = snap.health_keys.clone();
                self.snapshot.store(Arc::new(snap));
                *self
                    .loaded_from
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = before;
                // Probes no name uses any more stop; new ones started when compiled.
                self.health.registry.retain(&keys);
                info!("reloaded: now serving generation {next}");
                Ok(next)
            }
            Ok(Err(d)) => {
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
                let mut d = Diagnostics::new();
                d.error_global(format!("reload task failed: {e}"), None);
                error!("reload failed: {e}; still serving generation {}", next - 1);
                Err(d)
            }
        }
    }

    /// Watches zone files and databases until `cancel`; reloads when they change.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut pending: Option<Fingerprint> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.config.reload_check) => {}
            }
            let now = fingerprint(&self.config);
            let seen = self
                .loaded_from
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
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
            info!("zone or GeoIP files changed; reloading");
            if self.reload().await.is_err() {
                // Do not retry a broken file every check: wait for it to change again.
                *self
                    .loaded_from
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
            }
            pending = None;
        }
    }
}

/// The current state of every zone file and database `config` names.
pub fn fingerprint(config: &ServerConfig) -> Fingerprint {
    let stat = |p: &PathBuf| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&config.zones_dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
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
