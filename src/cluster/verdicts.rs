//! Health agreed by the fleet: publish this node's verdicts, read everyone's, decide by the
//! quorum rule, write the decision into the health table the query path reads.
//!
//! ```text
//! own probes ─▶ health/<target>/<this node>  (under the node's lease)
//! health/<target>/* of live nodes ─▶ Quorum::decide ─▶ HealthTable::set_probe ─▶ answers
//! ```
//!
//! Which node probes what is decided here too (`probers`, by rendezvous hashing over the
//! live nodes), so adding nodes does not add probe load on the sites. A node that is not
//! joined probes everything: its own view must be warm by the time it is isolated.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::PutOptions;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::link::{Link, Standing};
use super::members::Members;
use super::mirror::Entries;
use super::node::NodeInfo;
use super::quorum::{self, Vote};
use super::{ClusterConfig, Decision, Decisions};
use crate::health::{Key, Registry, TargetHealth};

/// A vote as stored: `{"up": true}`.
#[derive(Serialize, Deserialize)]
struct StoredVote {
    up: bool,
}

/// The inputs the verdict loop follows.
pub(crate) struct Inputs {
    pub(crate) nodes: watch::Receiver<Option<Entries>>,
    pub(crate) votes: watch::Receiver<Option<Entries>>,
    pub(crate) lease: watch::Receiver<Option<i64>>,
}

/// Runs until `stop`: on every change of the targets, the nodes, the votes or the lease,
/// and at least twice a second (to notice isolation).
pub(crate) async fn run(
    members: Members,
    cfg: Arc<ClusterConfig>,
    registry: Arc<Registry>,
    mut inputs: Inputs,
    link: Arc<Link>,
    decisions: Arc<Decisions>,
    stop: CancellationToken,
) {
    let mut state = Loop {
        members,
        cfg,
        registry,
        link,
        decisions,
        published: HashMap::new(),
        lease: None,
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = state.registry.changed() => {}
            _ = inputs.nodes.changed() => {}
            _ = inputs.votes.changed() => {}
            _ = inputs.lease.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let nodes = inputs.nodes.borrow().clone();
        let votes = inputs.votes.borrow().clone();
        let lease = *inputs.lease.borrow();
        state.round(nodes.as_deref(), votes.as_deref(), lease).await;
    }
}

struct Loop {
    members: Members,
    cfg: Arc<ClusterConfig>,
    registry: Arc<Registry>,
    link: Arc<Link>,
    decisions: Arc<Decisions>,
    /// Votes this node has stored under the current lease, by target id.
    published: HashMap<String, bool>,
    lease: Option<i64>,
}

impl Loop {
    async fn round(
        &mut self,
        nodes: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
        votes: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
        lease: Option<i64>,
    ) {
        let standing = self.link.tick();
        if lease != self.lease {
            // Keys bound to the old lease went with it.
            self.published.clear();
            self.lease = lease;
        }
        let live = live_nodes(&self.cfg, nodes);
        crate::metrics::events::events().cluster_nodes(live.len());
        let names: Vec<&str> = live.keys().map(String::as_str).collect();
        let targets: Vec<(String, Arc<TargetHealth>)> = self
            .registry
            .targets()
            .into_iter()
            .map(|t| (quorum::target_id(t.check(), t.addr()), t))
            .collect();

        // Who probes what.
        let joined = standing == Standing::Joined;
        let mine: HashSet<&str> = targets
            .iter()
            .filter(|(id, _)| {
                !joined
                    || quorum::probers(id, &names, self.cfg.probers)
                        .contains(&self.cfg.node.as_str())
            })
            .map(|(id, _)| id.as_str())
            .collect();
        let wanted: HashSet<Key> = targets
            .iter()
            .filter(|(id, _)| mine.contains(id.as_str()))
            .map(|(_, t)| (t.check().clone(), t.addr()))
            .collect();
        self.registry.probe_only(|k| wanted.contains(k));
        self.decisions.set_probing(
            targets
                .iter()
                .filter(|(id, _)| mine.contains(id.as_str()))
                .map(|(_, t)| t.label().to_owned())
                .collect(),
        );

        // Cut off: the table keeps the last agreed state, and nothing can be published.
        if standing == Standing::CutOff {
            return;
        }
        // Decide first: a slow etcd write must not hold up what the table says.
        self.decide(standing, &targets, votes, &live);
        if let (true, Some(lease)) = (joined, lease) {
            let voted = voters(votes);
            self.publish(&targets, &mine, &voted, &names, lease).await;
        }
    }

    /// Writes each target's verdict into the health table: the fleet's by the quorum rule
    /// when joined, else (or while nobody has voted) this node's own once settled.
    fn decide(
        &self,
        standing: Standing,
        targets: &[(String, Arc<TargetHealth>)],
        votes: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
        live: &std::collections::BTreeMap<String, String>,
    ) {
        let votes = group_votes(votes, live);
        let table = &self.registry.table();
        let mut decided = self.decisions.lock();
        let mut seen = HashSet::new();
        for (id, t) in targets {
            seen.insert(id.clone());
            let Some(slot) = t.slot() else { continue };
            // Only results since this node (re)started probing the target count.
            let local = t.settled().then(|| t.is_up());
            let theirs = votes.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let fleet = match standing {
                Standing::Joined => self.cfg.quorum.decide(theirs),
                _ => None,
            };
            let (up, from) = match (fleet, local) {
                (Some(up), _) => (up, Decision::fleet(theirs)),
                (None, Some(up)) => (up, Decision::own()),
                // Nobody has a fresh view: the table keeps what it says.
                (None, None) => continue,
            };
            table.set_probe(slot, up, t.is_flapping());
            let before = decided.insert(id.clone(), (up, from.clone()));
            if before.as_ref().is_some_and(|(was, _)| *was != up) {
                let message = format!(
                    "fleet: target {} is now {} ({from})",
                    t.label(),
                    if up { "up" } else { "down" }
                );
                if up {
                    tracing::info!("{message}");
                } else {
                    tracing::warn!("{message}");
                }
            }
        }
        decided.retain(|id, _| seen.contains(id));
    }

    /// Stores this node's verdict on each target it probes, once settled and when changed.
    /// Withdraws its vote on a target it no longer probes once every node now assigned
    /// has voted (or the target is gone), so a hand-over never leaves the target with
    /// fewer votes than probers.
    async fn publish(
        &mut self,
        targets: &[(String, Arc<TargetHealth>)],
        mine: &HashSet<&str>,
        voted: &HashMap<String, HashSet<String>>,
        names: &[&str],
        lease: i64,
    ) {
        for (id, t) in targets {
            if !mine.contains(id.as_str()) || !t.settled() {
                continue;
            }
            let up = t.is_up();
            if self.published.get(id) == Some(&up) {
                continue;
            }
            let key = self.cfg.key(&format!("health/{id}/{}", self.cfg.node));
            let value = serde_json::to_vec(&StoredVote { up }).unwrap_or_default();
            let mut pick = self.members.pick();
            match pick
                .client
                .put(key, value, Some(PutOptions::new().with_lease(lease)))
                .await
            {
                Ok(_) => {
                    self.published.insert(id.clone(), up);
                }
                Err(e) => {
                    self.members.failed(pick.index);
                    self.link
                        .note(&format!("publishing the verdict on {}: {e}", t.label()));
                    return;
                }
            }
        }
        let present: HashSet<&str> = targets.iter().map(|(id, _)| id.as_str()).collect();
        let stale: Vec<String> = self
            .published
            .keys()
            .filter(|id| !mine.contains(id.as_str()))
            .filter(|id| {
                !present.contains(id.as_str())
                    || quorum::probers(id, names, self.cfg.probers)
                        .iter()
                        .all(|n| voted.get(id.as_str()).is_some_and(|v| v.contains(*n)))
            })
            .cloned()
            .collect();
        for id in stale {
            let key = self.cfg.key(&format!("health/{id}/{}", self.cfg.node));
            let mut pick = self.members.pick();
            match pick.client.delete(key, None).await {
                Ok(_) => {
                    self.published.remove(&id);
                }
                Err(e) => {
                    self.members.failed(pick.index);
                    self.link.note(&format!("withdrawing a verdict: {e}"));
                    return;
                }
            }
        }
    }
}

/// The live nodes (name → region): those with an entry under `nodes/`, and this one.
fn live_nodes(
    cfg: &ClusterConfig,
    nodes: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
) -> std::collections::BTreeMap<String, String> {
    let mut live: std::collections::BTreeMap<String, String> = nodes
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| serde_json::from_slice::<NodeInfo>(v).ok())
        .map(|n| (n.node, n.region))
        .collect();
    live.insert(cfg.node.clone(), cfg.region.clone());
    live
}

/// Who has voted on each target (live or not), by target id.
fn voters(
    votes: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for key in votes.into_iter().flatten().map(|(k, _)| k) {
        if let Some((id, node)) = key.rsplit_once('/') {
            out.entry(id.to_owned())
                .or_default()
                .insert(node.to_owned());
        }
    }
    out
}

/// Votes of live nodes by target id. Keys are `<target id>/<node>`.
fn group_votes<'a>(
    votes: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
    live: &'a std::collections::BTreeMap<String, String>,
) -> HashMap<String, Vec<Vote<'a>>> {
    let mut out: HashMap<String, Vec<Vote<'a>>> = HashMap::new();
    for (key, value) in votes.into_iter().flatten() {
        let Some((id, node)) = key.rsplit_once('/') else {
            continue;
        };
        let Some(region) = live.get(node) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<StoredVote>(value) else {
            continue;
        };
        out.entry(id.to_owned()).or_default().push(Vote {
            region: region.as_str(),
            up: v.up,
        });
    }
    out
}
