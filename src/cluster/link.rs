//! This node's standing in the fleet: joined, cut off from etcd, or isolated.
//!
//! ```text
//! connecting ──lease kept──▶ joined ──keep-alive fails──▶ cut off ──isolated_after──▶ isolated
//!     │                        ▲                              │                          │
//!     └──────isolated_after────┼──────────────────────────────┼──────────────────────────┤
//!                              └────────lease kept again──────┴──────────────────────────┘
//! ```
//!
//! The lease's keep-alive is the one test of being in the fleet: etcd answers it only
//! through a member that has a quorum, so a node that can reach no etcd member and one that
//! reaches only a minority are both cut off. Cut off, the node keeps the last agreed
//! health; isolated, it goes by its own probes. Every transition is logged once and counted.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// Where the node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Started, not yet in touch with etcd.
    Connecting,
    /// In touch: publishing its verdicts and following the fleet's.
    Joined,
    /// Not in touch for less than `isolated_after`: serving the last agreed state.
    CutOff,
    /// Not in touch for longer: serving by its own probes.
    Isolated,
}

impl Standing {
    /// As in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Joined => "joined",
            Self::CutOff => "cut_off",
            Self::Isolated => "isolated",
        }
    }

    /// Every standing, for metrics that show each.
    pub const ALL: [Self; 4] = [Self::Connecting, Self::Joined, Self::CutOff, Self::Isolated];
}

/// The standing and what led to it; shared by the session, the watches and the verdicts.
#[derive(Debug)]
pub(crate) struct Link {
    isolated_after: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    standing: Standing,
    since: Instant,
    since_wall: SystemTime,
    last_error: Option<String>,
}

/// A copy of the standing for status pages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Where the node stands.
    pub standing: Standing,
    /// Since when, Unix seconds.
    pub since: u64,
    /// The last problem talking to etcd, if any since the node last joined.
    pub last_error: Option<String>,
}

impl Link {
    pub(crate) fn new(isolated_after: Duration) -> Self {
        crate::metrics::events::events().cluster_standing(Standing::Connecting);
        Self {
            isolated_after,
            inner: Mutex::new(Inner {
                standing: Standing::Connecting,
                since: Instant::now(),
                since_wall: SystemTime::now(),
                last_error: None,
            }),
        }
    }

    /// The lease was granted or kept alive.
    pub(crate) fn joined(&self) {
        let mut inner = self.lock();
        match inner.standing {
            Standing::Joined => return,
            Standing::Connecting => tracing::info!("fleet: joined"),
            Standing::CutOff | Standing::Isolated => tracing::info!(
                "fleet: joined again after {:.1} s {}; following the fleet's health again",
                inner.since.elapsed().as_secs_f64(),
                if inner.standing == Standing::Isolated {
                    "isolated"
                } else {
                    "cut off"
                }
            ),
        }
        inner.last_error = None;
        set(&mut inner, Standing::Joined);
    }

    /// Talking to etcd failed; `what` says how.
    pub(crate) fn failed(&self, what: &str) {
        let mut inner = self.lock();
        let first = inner.last_error.is_none();
        inner.last_error = Some(what.to_owned());
        if inner.standing == Standing::Joined {
            tracing::warn!(
                "fleet: cut off from etcd ({what}); serving the last agreed health, by own \
                 probes after {:?}",
                self.isolated_after
            );
            set(&mut inner, Standing::CutOff);
        } else if first {
            tracing::warn!("fleet: cannot reach etcd: {what}");
        }
    }

    /// A problem that does not change the standing by itself (a watch restarted).
    pub(crate) fn note(&self, what: &str) {
        tracing::debug!("fleet: {what}");
        self.lock().last_error = Some(what.to_owned());
    }

    /// Moves to isolated once cut off (or connecting) for `isolated_after`; returns the
    /// standing.
    pub(crate) fn tick(&self) -> Standing {
        let mut inner = self.lock();
        if matches!(inner.standing, Standing::CutOff | Standing::Connecting)
            && inner.since.elapsed() >= self.isolated_after
        {
            tracing::warn!(
                "fleet: isolated: no etcd quorum for {:?}; answering by this node's own probes",
                self.isolated_after
            );
            set(&mut inner, Standing::Isolated);
        }
        inner.standing
    }

    /// The standing now.
    pub(crate) fn standing(&self) -> Standing {
        self.lock().standing
    }

    pub(crate) fn status(&self) -> LinkStatus {
        let inner = self.lock();
        LinkStatus {
            standing: inner.standing,
            since: inner
                .since_wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            last_error: inner.last_error.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn set(inner: &mut Inner, standing: Standing) {
    inner.standing = standing;
    inner.since = Instant::now();
    inner.since_wall = SystemTime::now();
    crate::metrics::events::events().cluster_standing(standing);
}
