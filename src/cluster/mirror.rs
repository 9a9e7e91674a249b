//! A local copy of every key under one etcd prefix, kept current by a watch.
//!
//! The copy is read whole, then the watch starts at the revision after the read, so no
//! change is missed between the two; when the watch breaks (member down, compaction, a
//! network cut) the copy is read whole again. Readers get the latest copy from a
//! `tokio::sync::watch` channel and never wait on etcd.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::members::Members;

/// Key (below the prefix) → value.
pub(crate) type Entries = Arc<BTreeMap<String, Vec<u8>>>;

/// Keeps `tx` holding the keys under `prefix` (their names without it) until `stop`.
/// Sends only after a whole read: before the first, receivers see no copy at all (`None`).
pub(crate) async fn run(
    members: Members,
    prefix: String,
    tx: watch::Sender<Option<Entries>>,
    link: Arc<Link>,
    stop: CancellationToken,
) {
    loop {
        let pick = members.pick();
        let result = tokio::select! {
            () = stop.cancelled() => return,
            r = follow(pick.client, &prefix, &tx) => r,
        };
        if let Err(e) = result {
            members.failed(pick.index);
            link.note(&format!("watch of {prefix}: {e}"));
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// One read and the watch after it, until the watch ends.
async fn follow(
    mut client: Client,
    prefix: &str,
    tx: &watch::Sender<Option<Entries>>,
) -> Result<(), etcd_client::Error> {
    let got = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = got.header().map_or(0, |h| h.revision());
    let mut map = BTreeMap::new();
    for kv in got.kvs() {
        if let Some(k) = below(prefix, kv.key()) {
            map.insert(k, kv.value().to_vec());
        }
    }
    tx.send_replace(Some(Arc::new(map.clone())));
    let mut stream = client
        .watch(
            prefix,
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        )
        .await?;
    while let Some(resp) = stream.message().await? {
        if resp.canceled() {
            return Err(etcd_client::Error::WatchError(format!(
                "canceled by etcd: {}",
                resp.cancel_reason()
            )));
        }
        if resp.events().is_empty() {
            continue;
        }
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let Some(k) = below(prefix, kv.key()) else {
                continue;
            };
            match ev.event_type() {
                EventType::Put => {
                    map.insert(k, kv.value().to_vec());
                }
                EventType::Delete => {
                    map.remove(&k);
                }
            }
        }
        tx.send_replace(Some(Arc::new(map.clone())));
    }
    Err(etcd_client::Error::WatchError("the watch ended".into()))
}

/// `key` without `prefix`, if it is valid UTF-8 and below it.
fn below(prefix: &str, key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    key.strip_prefix(prefix).map(str::to_owned)
}
