//! This node's lease and its entry under `nodes/`: what makes it a live member.
//!
//! Everything the node writes for the fleet (its entry, its votes) is bound to one lease,
//! so when the node dies or is cut off for longer than the lease's TTL, all of it vanishes
//! together and the others stop counting it. A clean stop revokes the lease at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use etcd_client::{LeaseKeepAliveStream, LeaseKeeper, PutOptions};
use hickory_proto::rr::RData;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ClusterConfig;
use super::link::Link;
use super::members::Members;
use crate::compile::Snapshot;

/// What a node says about itself under `nodes/<node>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its name (`[cluster] node`).
    pub node: String,
    /// Its region.
    pub region: String,
    /// The Meridian version it runs.
    pub version: String,
    /// When it started, Unix seconds.
    pub started: u64,
    /// The generation of zones it serves (its own count of loads).
    pub generation: u64,
    /// The pushed zone set it serves (`meridian push`); 0: its own zone files.
    #[serde(default)]
    pub zone_set: u64,
    /// Each zone it serves and the zone's SOA serial: nodes agree when these match.
    pub zones: BTreeMap<String, u32>,
}

impl NodeInfo {
    fn now(cfg: &ClusterConfig, started: u64, snap: &Snapshot, zone_set: u64) -> Self {
        let zones = snap
            .zones()
            .iter()
            .map(|z| {
                let serial = z
                    .soa
                    .first()
                    .and_then(|r| match &r.data {
                        RData::SOA(soa) => Some(soa.serial),
                        _ => None,
                    })
                    .unwrap_or(0);
                (z.origin.to_string(), serial)
            })
            .collect();
        Self {
            node: cfg.node.clone(),
            region: cfg.region.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started,
            generation: snap.generation,
            zone_set,
            zones,
        }
    }
}

/// Holds the lease and the node's entry until `stop`, then revokes the lease. `lease`
/// carries the lease in force (`None` between two), for everything else bound to it.
pub(crate) async fn run(
    members: Members,
    cfg: Arc<ClusterConfig>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    zone_set: Arc<AtomicU64>,
    lease: watch::Sender<Option<i64>>,
    link: Arc<Link>,
    stop: CancellationToken,
) {
    let started = crate::health::unix_now();
    let about = About {
        cfg: &cfg,
        started,
        snapshot: &snapshot,
        zone_set: &zone_set,
    };
    loop {
        let result = session(&members, &about, &lease, &link, &stop).await;
        lease.send_replace(None);
        match result {
            Ok(()) => return,
            Err(e) => link.failed(&e),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// What the node's entry is made from.
struct About<'a> {
    cfg: &'a ClusterConfig,
    started: u64,
    snapshot: &'a ArcSwap<Snapshot>,
    zone_set: &'a AtomicU64,
}

impl About<'_> {
    fn now(&self) -> NodeInfo {
        NodeInfo::now(
            self.cfg,
            self.started,
            &self.snapshot.load(),
            self.zone_set.load(Ordering::Relaxed),
        )
    }
}

/// One lease, from grant to loss (`Err`) or stop (`Ok`).
async fn session(
    members: &Members,
    about: &About<'_>,
    lease: &watch::Sender<Option<i64>>,
    link: &Link,
    stop: &CancellationToken,
) -> Result<(), String> {
    let cfg = about.cfg;
    let ttl = i64::try_from(cfg.lease_ttl.as_secs()).unwrap_or(5);
    let beat = cfg.lease_ttl / 3;
    let id = members
        .run("lease grant", |mut c| async move {
            c.lease_grant(ttl, None).await
        })
        .await
        .map_err(|e| e.to_string())?
        .id();
    let mut info = about.now();
    put_info(members, cfg, &info, id).await?;
    let mut stream = None;
    keep_once(
        members,
        &mut stream,
        id,
        beat.max(Duration::from_millis(500)),
    )
    .await?;
    lease.send_replace(Some(id));
    link.joined();
    // A failed keep-alive is not a lost fleet: the member behind the stream may have died
    // while others serve, or the members may be electing a new leader (about a second,
    // after which etcd renews every lease in full). Retry on fresh streams to the next
    // members; the node is cut off only when the lease's TTL has run out since it was
    // last kept, which is when etcd drops its keys.
    let mut kept_at = tokio::time::Instant::now();
    let mut wait = beat;
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                // Gone at once for the others, rather than after the TTL.
                let mut c = members.pick().client;
                let _ = tokio::time::timeout(Duration::from_secs(1), c.lease_revoke(id)).await;
                return Ok(());
            }
            () = tokio::time::sleep(wait) => {}
        }
        let answer = beat.max(Duration::from_millis(500));
        let failure = match keep_once(members, &mut stream, id, answer).await {
            Ok(ttl) if ttl > 0 => {
                kept_at = tokio::time::Instant::now();
                wait = beat;
                link.joined();
                None
            }
            Ok(_) => return Err("the lease expired".into()),
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            if kept_at.elapsed() >= cfg.lease_ttl {
                return Err(e);
            }
            link.note(&e);
            wait = Duration::from_millis(200);
            continue;
        }
        let now = about.now();
        if now != info {
            put_info(members, cfg, &now, id).await?;
            info = now;
        }
    }
}

/// A keep-alive stream, and the member it goes to.
struct KeepAlive {
    member: usize,
    keeper: LeaseKeeper,
    responses: LeaseKeepAliveStream,
}

/// One keep-alive on `stream`, opened first (to the member in use) when there is none;
/// the TTL etcd answers. On failure the stream is dropped and the next member is used.
async fn keep_once(
    members: &Members,
    stream: &mut Option<KeepAlive>,
    id: i64,
    within: Duration,
) -> Result<i64, String> {
    let result = tokio::time::timeout(within, async {
        let s = match stream {
            Some(s) => s,
            None => {
                let mut pick = members.pick();
                let (keeper, responses) = pick
                    .client
                    .lease_keep_alive(id)
                    .await
                    .map_err(|e| (pick.index, format!("lease keep-alive: {e}")))?;
                stream.insert(KeepAlive {
                    member: pick.index,
                    keeper,
                    responses,
                })
            }
        };
        let member = s.member;
        s.keeper
            .keep_alive()
            .await
            .map_err(|e| (member, format!("lease keep-alive: {e}")))?;
        match s.responses.message().await {
            Ok(Some(r)) => Ok(r.ttl()),
            Ok(None) => Err((member, "lease keep-alive: the stream ended".to_owned())),
            Err(e) => Err((member, format!("lease keep-alive: {e}"))),
        }
    })
    .await;
    let failed = match result {
        Ok(Ok(ttl)) => return Ok(ttl),
        Ok(Err(f)) => f,
        Err(_) => (
            stream.as_ref().map_or(members.pick().index, |s| s.member),
            "lease keep-alive: no answer in time".to_owned(),
        ),
    };
    *stream = None;
    members.failed(failed.0);
    Err(failed.1)
}

async fn put_info(
    members: &Members,
    cfg: &ClusterConfig,
    info: &NodeInfo,
    lease: i64,
) -> Result<(), String> {
    let value = serde_json::to_vec(info).map_err(|e| e.to_string())?;
    let key = cfg.key(&format!("nodes/{}", cfg.node));
    members
        .run(&format!("writing nodes/{}", cfg.node), |mut c| {
            let (key, value) = (key.clone(), value.clone());
            async move {
                c.put(key, value, Some(PutOptions::new().with_lease(lease)))
                    .await
            }
        })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
