//! The fleet: several nameservers that share overrides and agree on health through etcd.
//!
//! A domain is served by two or more nameservers; each must answer the same. etcd holds
//! what they share, below `[cluster] prefix`:
//!
//! | key | value | bound to |
//! |---|---|---|
//! | `nodes/<node>` | [`NodeInfo`]: region, version, zones and serials served | the node's lease |
//! | `health/<target>/<node>` | that node's verdict on one target | the node's lease |
//! | `overrides/dc/<zone>/<dc>`, `overrides/addr/<ip>` | [`OverrideRecord`] | a lease of its own with `--for` |
//!
//! Each node follows the keys with watches (`mirror`) and keeps everything it needs
//! locally, so the query path never waits on etcd: overrides land in the health table and
//! the state file (the cache a node starts from when etcd is down), and the agreed
//! verdicts land in the same table (`verdicts`). How a node stands with etcd, and what it
//! does when cut off, is in [`link`].
//!
//! Why etcd rather than a protocol of our own: agreement under partitions is the hard part,
//! and etcd's leases, watches and transactions already solve it, with operators who know
//! how to run it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use etcd_client::{GetOptions, PutOptions};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::compile::Snapshot;
use crate::health::{Admin, HealthSources, OverrideDetail, OverrideKey, OverrideMeta};
use link::Link;

pub mod link;
mod members;
mod mirror;
pub mod node;
pub mod quorum;
mod verdicts;
pub mod zoneset;

pub use link::{LinkStatus, Standing};
pub use members::Members;
pub use node::NodeInfo;
pub use quorum::Quorum;

/// The `[cluster]` section, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Client URLs of the etcd members.
    pub etcd: Vec<String>,
    /// This node's name, unique in the fleet.
    pub node: String,
    /// This node's region, for `region_majority`.
    pub region: String,
    /// Keys live below this (no trailing `/`).
    pub prefix: String,
    /// How votes become a verdict.
    pub quorum: Quorum,
    /// Nodes probing each target; 0: all.
    pub probers: usize,
    /// How long a node cut off from etcd keeps the last agreed state before going by its
    /// own probes.
    pub isolated_after: Duration,
    /// The TTL of the node's lease: how long a dead node's entry and votes outlive it.
    pub lease_ttl: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            etcd: Vec::new(),
            node: String::new(),
            region: "default".into(),
            prefix: "/meridian".into(),
            quorum: Quorum::Majority,
            probers: 0,
            isolated_after: Duration::from_secs(30),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

impl ClusterConfig {
    /// The full key of `rest` (`nodes/ns1` → `/meridian/nodes/ns1`).
    pub fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    /// The key of an override.
    fn override_key(&self, key: &OverrideKey) -> String {
        match key {
            OverrideKey::Datacenter { zone, datacenter } => {
                self.key(&format!("overrides/dc/{zone}/{datacenter}"))
            }
            OverrideKey::Address { address } => self.key(&format!("overrides/addr/{address}")),
        }
    }
}

/// An override as stored in etcd.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OverrideRecord {
    /// What it applies to.
    #[serde(flatten)]
    pub key: OverrideKey,
    /// `up`, `down` or `drain`.
    pub state: Admin,
    /// Who, when, why, until when.
    #[serde(flatten)]
    pub meta: OverrideMeta,
}

/// Why a fleet operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// etcd could not be reached or refused the request.
    #[error("etcd ({}): {what}: {source}", endpoints.join(", "))]
    Etcd {
        /// The members tried.
        endpoints: Vec<String>,
        /// What was being done.
        what: String,
        /// Why it failed.
        source: etcd_client::Error,
    },
}

/// How the fleet decided one target, for logs and `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Votes counted; 0 when the node went by its own probes.
    pub votes: usize,
    /// Of which down.
    pub down: usize,
}

impl Decision {
    fn fleet(votes: &[quorum::Vote<'_>]) -> Self {
        Self {
            votes: votes.len(),
            down: votes.iter().filter(|v| !v.up).count(),
        }
    }

    fn own() -> Self {
        Self { votes: 0, down: 0 }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.votes == 0 {
            f.write_str("this node's own probes")
        } else {
            write!(f, "{} of {} votes down", self.down, self.votes)
        }
    }
}

/// The latest decision per target id, and the targets this node probes.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    decided: Mutex<HashMap<String, (bool, Decision)>>,
    probing: Mutex<Vec<String>>,
}

impl Decisions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (bool, Decision)>> {
        self.decided.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_probing(&self, mut labels: Vec<String>) {
        labels.sort();
        *self.probing.lock().unwrap_or_else(PoisonError::into_inner) = labels;
    }

    fn probing(&self) -> Vec<String> {
        self.probing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A node's part in the fleet, started with [`Cluster::start`].
pub struct Cluster {
    cfg: Arc<ClusterConfig>,
    members: Members,
    link: Arc<Link>,
    decisions: Arc<Decisions>,
    nodes: watch::Receiver<Option<mirror::Entries>>,
    overrides: Arc<crate::health::Overrides>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Cluster {
    /// Joins the fleet in the background: the lease and entry, the watches, the verdicts.
    /// From here on the fleet decides the health table's probe bits. Never fails for
    /// etcd being down: the node then serves from its files and cache, and keeps trying.
    pub async fn start(
        cfg: ClusterConfig,
        health: &HealthSources,
        snapshot: Arc<ArcSwap<Snapshot>>,
        reloader: Arc<crate::reload::Reloader>,
        state_dir: &std::path::Path,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, ClusterError> {
        let cfg = Arc::new(cfg);
        let members = Members::connect(&cfg).await?;
        let link = Arc::new(Link::new(cfg.isolated_after));
        health.table().hand_probes_to_fleet();
        tracing::info!(
            "fleet: node {} of region {} joining through etcd {} (prefix {}, quorum {}, probers {})",
            cfg.node,
            cfg.region,
            cfg.etcd.join(", "),
            cfg.prefix,
            cfg.quorum,
            if cfg.probers == 0 {
                "all".to_owned()
            } else {
                cfg.probers.to_string()
            }
        );
        let (lease_tx, lease_rx) = watch::channel(None);
        let mut tasks = Vec::new();
        let mut follow = |what: &str| {
            let (tx, rx) = watch::channel(None);
            tasks.push(tokio::spawn(mirror::run(
                members.clone(),
                cfg.key(what),
                tx,
                link.clone(),
                stop.clone(),
            )));
            rx
        };
        let nodes = follow("nodes/");
        let votes = follow("health/");
        let overrides_rx = follow("overrides/");
        let zone_head = follow("zones/current");
        let zone_set = Arc::new(std::sync::atomic::AtomicU64::new(
            zoneset::serving_generation(state_dir),
        ));
        tasks.push(tokio::spawn(zoneset::follow(
            members.clone(),
            cfg.clone(),
            state_dir.to_path_buf(),
            zone_set.clone(),
            zone_head,
            reloader,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(node::run(
            members.clone(),
            cfg.clone(),
            snapshot,
            zone_set,
            lease_tx,
            link.clone(),
            stop.clone(),
        )));
        let decisions = Arc::new(Decisions::default());
        tasks.push(tokio::spawn(verdicts::run(
            members.clone(),
            cfg.clone(),
            health.registry.clone(),
            verdicts::Inputs {
                nodes: nodes.clone(),
                votes,
                lease: lease_rx,
            },
            link.clone(),
            decisions.clone(),
            stop.clone(),
        )));
        tasks.push(tokio::spawn(follow_overrides(
            overrides_rx,
            health.overrides.clone(),
            stop.clone(),
        )));
        Ok(Arc::new(Self {
            cfg,
            members,
            link,
            decisions,
            nodes,
            overrides: health.overrides.clone(),
            tasks: Mutex::new(tasks),
        }))
    }

    /// Sets (or with [`Admin::None`] clears) an override for the whole fleet, ending by
    /// itself after `ttl` when given. Returns once etcd stored it and this node applied it
    /// from its watch, or after 2 s of waiting for the watch (it applies it when the
    /// watch delivers).
    pub async fn set_override(
        &self,
        key: &OverrideKey,
        admin: Admin,
        mut meta: OverrideMeta,
        ttl: Option<Duration>,
    ) -> Result<(), ClusterError> {
        let etcd_key = self.cfg.override_key(key);
        if admin == Admin::None {
            self.members
                .run("clearing the override", |mut c| {
                    let k = etcd_key.clone();
                    async move { c.delete(k, None).await }
                })
                .await?;
        } else {
            let mut options = PutOptions::new();
            if let Some(ttl) = ttl {
                let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
                let lease = self
                    .members
                    .run("granting the override's lease", |mut c| async move {
                        c.lease_grant(secs, None).await
                    })
                    .await?;
                options = options.with_lease(lease.id());
                meta.expires = Some(crate::health::unix_now() + ttl.as_secs().max(1));
            }
            let record = OverrideRecord {
                key: key.clone(),
                state: admin,
                meta,
            };
            let value = serde_json::to_vec(&record).unwrap_or_default();
            self.members
                .run("storing the override", |mut c| {
                    let (k, v, o) = (etcd_key.clone(), value.clone(), options.clone());
                    async move { c.put(k, v, Some(o)).await }
                })
                .await?;
        }
        for _ in 0..40 {
            if self.overrides.get(key) == admin {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// This node's standing.
    pub fn standing(&self) -> Standing {
        self.link.standing()
    }

    /// The fleet as this node sees it, for the status page and `meridian fleet`.
    pub fn status(&self) -> FleetStatus {
        let nodes: Vec<NodeInfo> = self
            .nodes
            .borrow()
            .iter()
            .flat_map(|m| m.values())
            .filter_map(|v| serde_json::from_slice(v).ok())
            .collect();
        let probing = self.decisions.probing();
        let decisions = self.decisions.lock();
        let mut targets: Vec<(String, bool, String)> = decisions
            .iter()
            .map(|(id, (up, d))| (id.clone(), *up, d.to_string()))
            .collect();
        targets.sort();
        FleetStatus {
            node: self.cfg.node.clone(),
            region: self.cfg.region.clone(),
            quorum: self.cfg.quorum.to_string(),
            link: self.link.status(),
            agree: agree(&nodes),
            nodes,
            probing,
            targets: targets
                .into_iter()
                .map(|(id, up, how)| TargetVerdict { id, up, how })
                .collect(),
        }
    }

    /// How the fleet decided the target `id` ([`quorum::target_id`]), if it did.
    pub fn decision(&self, id: &str) -> Option<(bool, Decision)> {
        self.decisions.lock().get(id).cloned()
    }

    /// Waits for the background tasks after `stop` was cancelled (the lease is revoked).
    pub async fn stopped(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// The fleet as one node sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetStatus {
    /// This node.
    pub node: String,
    /// Its region.
    pub region: String,
    /// The quorum rule.
    pub quorum: String,
    /// Its standing with etcd.
    pub link: LinkStatus,
    /// Whether every live node serves the same zones at the same serials.
    pub agree: bool,
    /// The live nodes.
    pub nodes: Vec<NodeInfo>,
    /// The targets this node probes (`192.0.2.10:443 (https GET /health)`).
    pub probing: Vec<String>,
    /// The fleet's verdict on each target.
    pub targets: Vec<TargetVerdict>,
}

/// The fleet's verdict on one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetVerdict {
    /// The target's id in etcd.
    pub id: String,
    /// Up or down.
    pub up: bool,
    /// From how many votes, or own probes.
    pub how: String,
}

/// Whether every node serves the same zone set, zones and serials.
pub fn agree(nodes: &[NodeInfo]) -> bool {
    nodes
        .windows(2)
        .all(|w| w[0].zones == w[1].zones && w[0].zone_set == w[1].zone_set)
}

/// Applies the fleet's overrides whenever they change.
async fn follow_overrides(
    mut rx: watch::Receiver<Option<mirror::Entries>>,
    overrides: Arc<crate::health::Overrides>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
        let Some(entries) = rx.borrow_and_update().clone() else {
            continue;
        };
        let wanted = entries
            .iter()
            .filter_map(|(k, v)| match serde_json::from_slice::<OverrideRecord>(v) {
                Ok(r) => Some(OverrideDetail {
                    key: r.key,
                    state: r.state,
                    meta: r.meta,
                }),
                Err(e) => {
                    tracing::warn!("fleet: ignoring overrides/{k}: {e}");
                    None
                }
            })
            .collect();
        let overrides = overrides.clone();
        // Writes the state file: off the async workers.
        let _ = tokio::task::spawn_blocking(move || overrides.replace_all(wanted)).await;
    }
}

/// Every live node's entry, read straight from etcd (for `meridian fleet`, which works
/// whether or not a node runs here).
pub async fn read_nodes(cfg: &ClusterConfig) -> Result<Vec<NodeInfo>, ClusterError> {
    let members = Members::connect(cfg).await?;
    let key = cfg.key("nodes/");
    let got = members
        .run("reading nodes/", |mut c| {
            let key = key.clone();
            async move { c.get(key, Some(GetOptions::new().with_prefix())).await }
        })
        .await?;
    Ok(got
        .kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
        .collect())
}
