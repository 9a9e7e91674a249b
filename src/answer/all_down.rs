//! Logs when a GSLB name's candidates are all down, and when one comes back: once per
//! change, from beside the query path (which only counts such answers).
//!
//! The state lives here, keyed by name and family, not in the snapshot: a reload neither
//! repeats the message for a name that stays down nor loses a recovery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio_util::sync::CancellationToken;

use super::select::all_down;
use crate::compile::Snapshot;
use crate::family::Family;

/// How often the names are looked at; probe intervals are seconds, so this is enough.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Which names were all down at the last look, per family.
#[derive(Debug, Default)]
pub struct AllDownLog {
    down: HashMap<(Name, usize), bool>,
}

impl AllDownLog {
    /// Looks at every GSLB name of `snap` and logs each change since the last look.
    pub fn look(&mut self, snap: &Snapshot) {
        let mut now_state = HashMap::with_capacity(self.down.len());
        for zone in snap.zones() {
            for (name, gslb) in zone.gslb_names() {
                for (family, label) in [(Family::V4, "A"), (Family::V6, "AAAA")] {
                    let now = all_down(gslb, &snap.health, family);
                    let key = (name.clone(), family.index());
                    let was = self.down.get(&key).copied().unwrap_or(false);
                    if now && !was {
                        tracing::warn!(
                            "{name} {label}: every candidate data center is down; answering by its all_down policy"
                        );
                    } else if was && !now {
                        tracing::info!("{name} {label}: a candidate data center is up again");
                    }
                    now_state.insert(key, now);
                }
            }
        }
        self.down = now_state;
    }
}

/// Looks at the live snapshot every second until `cancel`.
pub async fn watch(snapshot: Arc<ArcSwap<Snapshot>>, cancel: CancellationToken) {
    let mut log = AllDownLog::default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        log.look(&snapshot.load());
    }
}
