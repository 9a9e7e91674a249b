//! Logs when a GSLB name's candidates are all down, and when one comes back: once per
//! change, from beside the query path (which only counts such answers).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::resolve::{Family, all_down};
use crate::compile::Snapshot;

/// How often the names are looked at; probe intervals are seconds, so this is enough.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Looks at every GSLB name of the live snapshot until `cancel`.
pub async fn watch(snapshot: Arc<ArcSwap<Snapshot>>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        look(&snapshot.load());
    }
}

/// Logs every change since the last look.
pub fn look(snap: &Snapshot) {
    for zone in snap.zones() {
        for (name, gslb) in zone.gslb_names() {
            for (family, label) in [(Family::V4, "A"), (Family::V6, "AAAA")] {
                let now = all_down(gslb, family);
                let was = gslb.all_down_logged[family.index()].swap(now, Ordering::Relaxed);
                if now && !was {
                    tracing::warn!(
                        "{name} {label}: every candidate data center is down; answering by its all_down policy"
                    );
                } else if was && !now {
                    tracing::info!("{name} {label}: a candidate data center is up again");
                }
            }
        }
    }
}
