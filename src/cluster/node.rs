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
use etcd_client::{Client, PutOptions};
use hickory_proto::rr::RData;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ClusterConfig;
use super::link::Link;
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
    client: Client,
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
        let result = session(&client, &about, &lease, &link, &stop).await;
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
    client: &Client,
    about: &About<'_>,
    lease: &watch::Sender<Option<i64>>,
    link: &Link,
    stop: &CancellationToken,
) -> Result<(), String> {
    let cfg = about.cfg;
    let mut client = client.clone();
    let ttl = i64::try_from(cfg.lease_ttl.as_secs()).unwrap_or(5);
    let beat = cfg.lease_ttl / 3;
    let id = client
        .lease_grant(ttl, None)
        .await
        .map_err(|e| format!("lease grant: {e}"))?
        .id();
    let mut info = about.now();
    put_info(&mut client, cfg, &info, id).await?;
    let (mut keeper, mut responses) = client
        .lease_keep_alive(id)
        .await
        .map_err(|e| format!("lease keep-alive: {e}"))?;
    lease.send_replace(Some(id));
    link.joined();
    let mut tick = tokio::time::interval(beat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                // Gone at once for the others, rather than after the TTL.
                let _ = tokio::time::timeout(Duration::from_secs(1), client.lease_revoke(id)).await;
                return Ok(());
            }
            _ = tick.tick() => {}
        }
        let kept = tokio::time::timeout(beat.max(Duration::from_millis(500)), async {
            keeper.keep_alive().await?;
            responses.message().await
        })
        .await;
        match kept {
            Err(_) => return Err("lease keep-alive: no answer in time".into()),
            Ok(Err(e)) => return Err(format!("lease keep-alive: {e}")),
            Ok(Ok(None)) => return Err("lease keep-alive: the stream ended".into()),
            Ok(Ok(Some(r))) if r.ttl() <= 0 => return Err("the lease expired".into()),
            Ok(Ok(Some(_))) => link.joined(),
        }
        let now = about.now();
        if now != info {
            put_info(&mut client, cfg, &now, id).await?;
            info = now;
        }
    }
}

async fn put_info(
    client: &mut Client,
    cfg: &ClusterConfig,
    info: &NodeInfo,
    lease: i64,
) -> Result<(), String> {
    let value = serde_json::to_vec(info).map_err(|e| e.to_string())?;
    client
        .put(
            cfg.key(&format!("nodes/{}", cfg.node)),
            value,
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .map_err(|e| format!("writing nodes/{}: {e}", cfg.node))?;
    Ok(())
}
