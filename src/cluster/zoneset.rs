//! Zone sets pushed to the fleet: `meridian push` stores every zone file as one new
//! generation in one etcd transaction; each node fetches it, writes it under its state
//! directory and reloads from there.
//!
//! ```text
//! zones/current            {"generation": 7, "files": [...], "by": ..., "at": ...}
//! zones/sets/000000000007/example.com.toml   the file's bytes
//! ```
//!
//! The transaction compares `zones/current` with what the pusher read, so two pushes at
//! once cannot interleave: one wins, the other reads again and becomes the next
//! generation. It also deletes sets older than the previous one, so etcd holds at most two.
//!
//! On a node the set lands in `state_dir/pushed/<generation>/`, and the symlink
//! `state_dir/pushed/current` moves to it in one rename; [`serving_dir`] makes the loader
//! read from there, at start too, so a node restarted while etcd is down serves the last
//! set it had.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::members::Members;
use super::mirror::Entries;
use super::{ClusterConfig, ClusterError};
use crate::reload::Reloader;

/// The head of the pushed zone sets: which generation is current.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZoneSetHead {
    /// Increases by one per push.
    pub generation: u64,
    /// The file names of the set.
    pub files: Vec<String>,
    /// Who pushed it.
    pub by: String,
    /// When, Unix seconds.
    pub at: u64,
}

/// Where a node serves pushed sets from, below its state directory.
fn pushed_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pushed")
}

/// The zones directory a fleet node serves: the last pushed set when it has one, else
/// `zones_dir` as configured.
pub fn serving_dir(state_dir: &Path, zones_dir: &Path) -> PathBuf {
    let current = pushed_dir(state_dir).join("current");
    if current.is_dir() {
        current
    } else {
        zones_dir.to_path_buf()
    }
}

/// The generation of the pushed set a node serves from its files (0: none).
pub(crate) fn serving_generation(state_dir: &Path) -> u64 {
    std::fs::read_link(pushed_dir(state_dir).join("current"))
        .ok()
        .and_then(|t| t.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

fn set_key(cfg: &ClusterConfig, generation: u64) -> String {
    cfg.key(&format!("zones/sets/{generation:012}/"))
}

/// Stores `files` (name, bytes) as the next generation; returns it. The caller has
/// validated them as `check` does.
pub async fn push(
    cfg: &ClusterConfig,
    files: &[(String, Vec<u8>)],
    by: &str,
) -> Result<u64, ClusterError> {
    let members = Members::connect(cfg).await?;
    let err = |what: &str, source| ClusterError::Etcd {
        endpoints: cfg.etcd.clone(),
        what: what.to_owned(),
        source,
    };
    let head_key = cfg.key("zones/current");
    for _ in 0..5 {
        let got = members
            .run("reading zones/current", |mut c| {
                let k = head_key.clone();
                async move { c.get(k, None).await }
            })
            .await?;
        let (current, compare) = match got.kvs().first() {
            Some(kv) => {
                let head: ZoneSetHead = serde_json::from_slice(kv.value()).map_err(|e| {
                    err(
                        "reading zones/current",
                        etcd_client::Error::InvalidArgs(e.to_string()),
                    )
                })?;
                (
                    head.generation,
                    Compare::mod_revision(head_key.clone(), CompareOp::Equal, kv.mod_revision()),
                )
            }
            None => (
                0,
                Compare::create_revision(head_key.clone(), CompareOp::Equal, 0),
            ),
        };
        let next = current + 1;
        let head = ZoneSetHead {
            generation: next,
            files: files.iter().map(|(n, _)| n.clone()).collect(),
            by: by.to_owned(),
            at: crate::health::unix_now(),
        };
        let mut ops: Vec<TxnOp> = files
            .iter()
            .map(|(name, bytes)| {
                TxnOp::put(format!("{}{name}", set_key(cfg, next)), bytes.clone(), None)
            })
            .collect();
        ops.push(TxnOp::put(
            head_key.clone(),
            serde_json::to_vec(&head).unwrap_or_default(),
            None,
        ));
        if current > 0 {
            // Everything older than the set being replaced.
            ops.push(TxnOp::delete(
                cfg.key("zones/sets/"),
                Some(DeleteOptions::new().with_range(set_key(cfg, current))),
            ));
        }
        let txn = Txn::new().when([compare]).and_then(ops);
        // Not retried on another member: a transaction whose answer was lost may have
        // been applied; the pusher reads the head again and sees.
        let mut pick = members.pick();
        let done = pick.client.txn(txn).await.map_err(|e| {
            members.failed(pick.index);
            err("storing the zone set", e)
        })?;
        if done.succeeded() {
            return Ok(next);
        }
        // Someone pushed in between: read again.
    }
    Err(err(
        "storing the zone set",
        etcd_client::Error::InvalidArgs("other pushes kept winning; try again".into()),
    ))
}

/// Follows `zones/current`: fetches each new set, writes it, reloads from it.
pub(crate) async fn follow(
    members: Members,
    cfg: Arc<ClusterConfig>,
    state_dir: PathBuf,
    serving: Arc<AtomicU64>,
    mut head: watch::Receiver<Option<Entries>>,
    reloader: Arc<Reloader>,
    stop: CancellationToken,
) {
    // A set that did not load here is not tried again until another is pushed; one that
    // could not be fetched is tried again every 2 s.
    let mut refused: Option<u64> = None;
    let mut retry = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = head.changed() => if r.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(2)), if retry => {}
        }
        let Some(entries) = head.borrow_and_update().clone() else {
            continue;
        };
        let Some(bytes) = entries.get("") else {
            continue;
        };
        let head: ZoneSetHead = match serde_json::from_slice(bytes) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("fleet: ignoring zones/current: {e}");
                continue;
            }
        };
        if head.generation == serving.load(Ordering::Relaxed) || refused == Some(head.generation) {
            retry = false;
            continue;
        }
        let previous = match fetch(&members, &cfg, &state_dir, &head).await {
            Ok(previous) => previous,
            Err(e) => {
                if !retry {
                    tracing::error!(
                        "fleet: cannot take zone set {}: {e}; still serving what was loaded, \
                         trying again every 2 s",
                        head.generation
                    );
                }
                retry = true;
                continue;
            }
        };
        retry = false;
        match reloader.reload().await {
            Ok(generation) => {
                serving.store(head.generation, Ordering::Relaxed);
                tracing::info!(
                    "fleet: serving zone set {} pushed by {} (generation {generation})",
                    head.generation,
                    head.by
                );
            }
            Err(d) => {
                // Serve on with the previous set, also after a restart.
                let dir = pushed_dir(&state_dir);
                let back = tokio::task::spawn_blocking(move || point_current(&dir, previous))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|r| r);
                if let Err(e) = back {
                    tracing::error!("fleet: cannot point back to the previous zone set: {e}");
                }
                refused = Some(head.generation);
                tracing::error!(
                    "fleet: zone set {} does not load here: {}; still serving the previous one",
                    head.generation,
                    d.summary()
                );
            }
        }
    }
}

/// Fetches set `head` into `state_dir/pushed/<generation>/` and points `current` at it;
/// returns the generation `current` pointed at before (0: none).
async fn fetch(
    members: &Members,
    cfg: &ClusterConfig,
    state_dir: &Path,
    head: &ZoneSetHead,
) -> Result<u64, String> {
    let prefix = set_key(cfg, head.generation);
    let got = members
        .run("reading the set", |mut c| {
            let p = prefix.clone();
            async move { c.get(p, Some(GetOptions::new().with_prefix())).await }
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for kv in got.kvs() {
        let name = std::str::from_utf8(kv.key())
            .ok()
            .and_then(|k| k.strip_prefix(&prefix))
            .unwrap_or_default();
        // Names come from `push`, which takes plain file names; anything else is not ours.
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("unexpected key in the set: {name:?}"));
        }
        files.push((name.to_owned(), kv.value().to_vec()));
    }
    for want in &head.files {
        if !files.iter().any(|(n, _)| n == want) {
            return Err(format!(
                "{want} is missing from the set (pushed over since?)"
            ));
        }
    }
    let dir = pushed_dir(state_dir);
    let generation = head.generation;
    tokio::task::spawn_blocking(move || write_set(&dir, generation, &files))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("writing it under {}: {e}", state_dir.display()))
}

/// Points `current` at set `generation` (0: removes it, so `zones_dir` serves again).
fn point_current(dir: &Path, generation: u64) -> std::io::Result<()> {
    let link = dir.join("current");
    if generation == 0 {
        return match std::fs::remove_file(&link) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = dir.join("current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(generation.to_string(), &tmp)?;
    std::fs::rename(&tmp, &link)
}

/// Writes the set's files, then swaps `current` to them with one rename; keeps only the
/// set before it besides, and returns that one's generation (0: none).
fn write_set(dir: &Path, generation: u64, files: &[(String, Vec<u8>)]) -> std::io::Result<u64> {
    let target = dir.join(generation.to_string());
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::create_dir_all(&target)?;
    for (name, bytes) in files {
        std::fs::write(target.join(name), bytes)?;
    }
    let previous = serving_generation(dir.parent().unwrap_or(dir));
    point_current(dir, generation)?;
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(g) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        if g != generation && g != previous {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(previous)
}
