//! Reload: rebuild the whole snapshot beside the query path and swap it in atomically.
//!
//! ```text
//!  SIGHUP, POST /v1/reload ──────────────────────────────┐
//!  inotify (watch.rs) ─▶ settle: 250 ms quiet, ≤ 1 s ──────┼─▶ Reloader::reload ─▶ ArcSwap::store
//!  check every reload_check (files.rs fingerprints) ───────┘     (or keep the old snapshot)
//! ```
//!
//! A reload runs on SIGHUP, on `POST /v1/reload` (`meridian reload`), and by itself when
//! the config file, a zone file (`*.toml` in the zones directory) or a GeoIP database
//! changes on disk. Changes are seen two ways:
//!
//! - the watcher (inotify, unless `watch = false`) watches the directories of those files,
//!   not the files, since editors, `mv` and `geoipupdate` replace them. After the first
//!   event it waits for 250 ms without another (at most 1 s), so a file being written is
//!   not read half-way, then reloads: a saved file is served within about a second;
//! - a check every `reload_check` compares each file's modification time, change time,
//!   length and inode with what the last reload read, and reloads once a change has
//!   stayed put for one more check. Beside a working watcher it is a safety net (30 s by
//!   default) for what inotify cannot see (a network file system, a directory swapped
//!   behind a symlink); when watching is off or cannot start, or a directory cannot be
//!   watched, it is how changes are seen (5 s by default).
//!
//! A reload is all or nothing: the config file is read again, then every zone and
//! database is read, validated and compiled into a new [`Snapshot`]; only if all of it
//! succeeds does one `ArcSwap::store` publish it. On any error the old snapshot keeps
//! serving and every diagnostic is logged; the files are not read again until they change
//! again. Queries in flight keep the snapshot they loaded, so a swap drops nothing. Health
//! state is keyed by check and address, so what a reload keeps keeps its state.
//!
//! Settings that shape sockets and threads (`listen`, `udp_threads`, `max_udp_payload`,
//! `[tcp]`, `[rrl]`, `[api]`, `state_dir`, `watch`, `reload_check`) take effect at the next restart;
//! a reload that finds them different from what the server started with says so.

mod files;
mod watch;

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use files::{Fingerprint, Stamp, fingerprint};

use crate::compile::Snapshot;
use crate::config::{self, ServerConfig};
use crate::diag::Diagnostics;
use crate::health::HealthSources;
use crate::load::load_snapshot;
use crate::metrics::events::events;
use files::Watched;
use watch::FileWatcher;

/// Rebuilds and swaps snapshots.
pub struct Reloader {
    /// The config the server started with: what its sockets and threads follow.
    started: ServerConfig,
    /// The config the running snapshot was built from (zones, databases, overrides).
    config: Mutex<ServerConfig>,
    health: HealthSources,
    /// The files as the last reload found them before reading them, whether it succeeded
    /// or not (at first: before the first load). The check reloads when they differ, so a
    /// broken file is not read again until it changes.
    tried: Mutex<Fingerprint>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    lock: tokio::sync::Mutex<()>,
}

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
            tried: Mutex::new(loaded_from),
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

    fn tried(&self) -> Fingerprint {
        self.tried
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the config file anew, loads everything, and swaps it in; returns the new
    /// generation, or the diagnostics that kept the old one serving.
    pub async fn reload(&self) -> Result<u64, Diagnostics> {
        // One reload at a time, so generations increase in order.
        let _guard = self.lock.lock().await;
        crate::systemd::reloading();
        let next = self.snapshot.load().generation + 1;
        let running = self.config();
        let health = self.health.clone();
        let built = tokio::task::spawn_blocking(move || {
            // The config file's state before reading it, the other files' after: a change
            // to any of them while this runs is seen by the next check.
            let config_state = running.file.as_deref().map(files::stamp);
            let mut diags = Diagnostics::new();
            let Some(cfg) = (match &running.file {
                Some(path) => config::load(Some(path), &mut diags).map(ServerConfig::serving),
                None => Some(running.clone()),
            }) else {
                return (fingerprint(&running), Err(diags));
            };
            let mut before = fingerprint(&cfg);
            if let (Some(file), Some(state)) = (&cfg.file, config_state) {
                for entry in before.iter_mut().filter(|(p, _)| p == file) {
                    entry.1 = state;
                }
            }
            let loaded = load_snapshot(&cfg, &health, next).map(|(snap, w)| (cfg, snap, w));
            (before, loaded)
        })
        .await;
        let result = match built {
            Ok((before, loaded)) => {
                *self.tried.lock().unwrap_or_else(PoisonError::into_inner) = before;
                match loaded {
                    Ok((cfg, snap, warnings)) => {
                        self.publish(cfg, snap, &warnings);
                        events().loaded(next, true);
                        Ok(next)
                    }
                    Err(d) => {
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
                }
            }
            Err(e) => {
                events().reload_failed();
                let mut d = Diagnostics::new();
                d.error_global(format!("reload task failed: {e}"), None);
                error!("reload failed: {e}; still serving generation {}", next - 1);
                Err(d)
            }
        };
        crate::systemd::reloaded(&match &result {
            Ok(g) => format!("serving generation {g}"),
            Err(_) => format!("reload rejected; serving generation {}", next - 1),
        });
        result
    }

    /// Swaps in a snapshot that loaded, and stops what it no longer uses.
    fn publish(&self, cfg: ServerConfig, snap: Snapshot, warnings: &Diagnostics) {
        for line in warnings.render().lines() {
            warn!("{line}");
        }
        for setting in self.needs_restart(&cfg) {
            warn!("config: `{setting}` changed; it takes effect at the next restart");
        }
        let generation = snap.generation;
        let keys = snap.health_keys.clone();
        let load_keys = snap.load_keys.clone();
        self.snapshot.store(Arc::new(snap));
        crate::metrics::set_enabled(cfg.metrics);
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = cfg;
        // Probes no name uses any more stop; new ones started when compiled.
        self.health.registry.retain(&keys);
        self.health.loads.retain(&load_keys);
        info!("reloaded: now serving generation {generation}");
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
        if old.query_log != new.query_log {
            changed.push("query_log");
        }
        if old.rrl != new.rrl {
            changed.push("rrl");
        }
        if old.watch != new.watch {
            changed.push("watch");
        }
        if old.reload_check != new.reload_check {
            changed.push("reload_check");
        }
        changed
    }

    /// Reloads when the config, a zone file or a database changes, until `cancel`: on
    /// watcher events (settled), and on the check every `reload_check`. The watches are
    /// set up when this is called, not when the future first runs, so a file saved right
    /// after the server says it is listening is seen.
    pub fn watch(
        self: Arc<Self>,
        cancel: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (tx, mut signals) = mpsc::channel(1);
        let mut watcher = if self.started.watch {
            match FileWatcher::start(tx) {
                Ok(w) => Some(w),
                Err(e) => {
                    warn!(
                        "cannot watch files for changes: {e}; checking them every {:?} instead",
                        self.started.reload_poll(false)
                    );
                    None
                }
            }
        } else {
            None
        };
        let mut watching = self.sync_watch(&mut watcher);
        if let Some(w) = &watcher {
            let dirs: Vec<String> = w.watching().map(|d| d.display().to_string()).collect();
            info!(
                "watching {} for changes; checking every {:?} too",
                dirs.join(" "),
                self.started.reload_poll(watching)
            );
        }
        async move {
            let mut next_check = Instant::now() + self.started.reload_poll(watching);
            let mut pending: Option<Fingerprint> = None;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    Some(()) = signals.recv() => {
                        if !watch::settle(&mut signals, &cancel).await {
                            return;
                        }
                        let cfg = self.config();
                        let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&cfg)).await
                        else {
                            continue;
                        };
                        // Events about what the last reload already read (a second event of
                        // the same save) change nothing.
                        if now != self.tried() {
                            info!("config, zone or GeoIP files changed; reloading");
                            let _ = self.reload().await;
                        }
                        pending = None;
                    }
                    _ = tokio::time::sleep_until(next_check) => {
                        let cfg = self.config();
                        if let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&cfg)).await {
                            pending = self.check(now, pending).await;
                        }
                        next_check = Instant::now() + self.started.reload_poll(watching);
                    }
                }
                // The files a reload reads may have moved (a new zones_dir or database).
                let was = watching;
                watching = self.sync_watch(&mut watcher);
                if watching != was {
                    next_check =
                        next_check.min(Instant::now() + self.started.reload_poll(watching));
                }
            }
        }
    }

    /// One check: reloads when the files differ from what the last reload read and have
    /// stayed as they are since the previous check (`pending`); returns the new `pending`.
    async fn check(&self, now: Fingerprint, pending: Option<Fingerprint>) -> Option<Fingerprint> {
        if now == self.tried() {
            return None;
        }
        // Wait for the files to stay unchanged for one more check before reading them.
        if pending.as_ref() != Some(&now) {
            return Some(now);
        }
        info!("config, zone or GeoIP files changed; reloading");
        let _ = self.reload().await;
        None
    }

    /// Points the watcher at the files of the current config; whether all are watched.
    fn sync_watch(&self, watcher: &mut Option<FileWatcher>) -> bool {
        let Some(w) = watcher else {
            return false;
        };
        w.sync(Watched::of(&self.config()), self.started.reload_poll(false))
    }
}
