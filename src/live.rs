//! What the live state says of a GSLB name's candidates: each address's verdict and why,
//! each data center's health, its weight in effect and the answers it got.
//!
//! `GET /metrics`, `GET /v1/status` and `explain` all show these; each is computed here
//! once, so the three cannot disagree. Everything is read from the snapshot's health table
//! (atomics), the probes' detail and the per-thread answer counters: nothing here is on
//! the query path or writes anything it reads.
//!
//! ```text
//! HealthTable words ──admit──▶ Verdict ──▶ address_state (text), datacenter_state
//! load column (keep %) + override ──▶ effective_weight
//! metrics::cells (answers_metric) ──▶ answer_counts
//! ```

use std::time::SystemTime;

use crate::answer::select::{Verdict, admit};
use crate::compile::{Candidate, GslbNode, Snapshot};
use crate::health::{Admin, HealthId, TargetHealth};
use crate::metrics::cells;

/// The verdict on one address of `c`, whose health slot is `slot`: the same decision the
/// query path makes.
pub fn verdict(snap: &Snapshot, c: &Candidate, slot: HealthId) -> Verdict {
    admit(snap.health.word(c.slot), snap.health.word(slot))
}

/// The weight `c` has now: configured, times the share it keeps while shedding; 0 when an
/// operator took it down or drained it. Integer, as `meridian_datacenter_weight` exports it.
pub fn effective_weight(snap: &Snapshot, c: &Candidate) -> u32 {
    match snap.health.word(c.slot).admin() {
        Admin::Down | Admin::Drain => 0,
        _ => {
            let keep = c.load.map_or(100, |id| snap.health.keep(id));
            let w = u64::from(c.weight) * u64::from(keep) / 100;
            u32::try_from(w).unwrap_or(u32::MAX)
        }
    }
}

/// The answers each candidate of `g` got since the server started (position as in
/// `g.candidates`), summed over the query threads' counters. All zero while `[metrics]
/// enabled = false`, because the query path then counts nothing.
pub fn answer_counts(g: &GslbNode) -> Vec<u64> {
    cells::totals(g.candidates.iter().map(|c| c.answers_metric))
}

/// How a data center stands, from the verdicts on its addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteHealth {
    /// Every address is answered.
    Up,
    /// Some addresses are answered, some are not.
    Degraded,
    /// No address is answered (probes, or an operator's override).
    Down,
    /// It has no address of the kind asked about.
    NoAddress,
}

impl SiteHealth {
    /// `up`, `degraded`, `down`, `no address`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::NoAddress => "no address",
        }
    }
}

/// A data center's health and why, from its override and its addresses' verdicts:
/// `(Down, "down: every address is down")`, `(Degraded, "degraded: 1 of 2 addresses up")`,
/// `(Down, "drain (operator override)")`. `none` is the text for no address (explain says
/// which family).
pub fn datacenter_state(admin: Admin, verdicts: &[Verdict], none: &str) -> (SiteHealth, String) {
    let up = verdicts.iter().filter(|v| v.is_in()).count();
    let health = match (up, verdicts.len()) {
        (_, 0) => SiteHealth::NoAddress,
        (0, _) => SiteHealth::Down,
        (u, n) if u == n => SiteHealth::Up,
        _ => SiteHealth::Degraded,
    };
    let why = match admin {
        Admin::None => match health {
            SiteHealth::NoAddress => none.to_owned(),
            SiteHealth::Down => "down: every address is down".to_owned(),
            SiteHealth::Up => "up".to_owned(),
            SiteHealth::Degraded => format!("degraded: {up} of {} addresses up", verdicts.len()),
        },
        a => format!("{a} (operator override)"),
    };
    (health, why)
}

/// `up since 3 s (http GET /health: last probe ok 3 s ago)`, `down (operator override)`,
/// `up: data center forced up (down since 40 s (...))`: the verdict first, then the probe.
pub fn address_state(verdict: Verdict, check: Option<&TargetHealth>) -> String {
    match verdict {
        Verdict::ForcedUp => "up (operator override)".to_owned(),
        Verdict::AddressOut(a) => format!("{a} (operator override)"),
        Verdict::DatacenterForcedUp => {
            format!("up: data center forced up ({})", probe_state(check))
        }
        Verdict::DatacenterOut(a) => format!("out: data center {a} ({})", probe_state(check)),
        // Only the table says down for an address without a check; print what it says.
        Verdict::ProbeDown if check.is_none() => "down (no health check)".to_owned(),
        // In a fleet the table holds the fleet's verdict, which may differ from this node's
        // own probes: say both.
        Verdict::Up | Verdict::ProbeDown
            if check.is_some_and(|t| t.detail().probe_up != matches!(verdict, Verdict::Up)) =>
        {
            let agreed = if matches!(verdict, Verdict::Up) {
                "up"
            } else {
                "down"
            };
            format!(
                "{agreed} by the fleet's verdict; this node's probes: {}",
                probe_state(check)
            )
        }
        Verdict::Up | Verdict::ProbeDown => probe_state(check),
    }
}

/// What the probes say of an address.
pub fn probe_state(target: Option<&TargetHealth>) -> String {
    let Some(target) = target else {
        return "up (no health check)".to_owned();
    };
    let d = target.detail();
    let state = if d.probe_up { "up" } else { "down" };
    let last = match &d.last {
        None => "no result yet".to_owned(),
        Some(o) => match &o.error {
            None => format!("last probe ok {}", ago(o.at)),
            Some(e) => format!("last probe failed {}: {e}", ago(o.at)),
        },
    };
    let flapping = if d.flapping { ", flapping" } else { "" };
    format!(
        "{state} since {} ({}: {last}{flapping})",
        ago(d.since),
        target.check().kind
    )
}

/// `3 s ago`, or `just now` for a time not yet past.
pub fn ago(t: SystemTime) -> String {
    SystemTime::now()
        .duration_since(t)
        .map(|d| format!("{} s ago", d.as_secs()))
        .unwrap_or_else(|_| "just now".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datacenter_state_says_why() {
        use Verdict::*;
        let none = "no A address";
        let cases: [(Admin, &[Verdict], SiteHealth, &str); 6] = [
            (Admin::None, &[Up, Up], SiteHealth::Up, "up"),
            (
                Admin::None,
                &[Up, ProbeDown],
                SiteHealth::Degraded,
                "degraded: 1 of 2 addresses up",
            ),
            (
                Admin::None,
                &[ProbeDown],
                SiteHealth::Down,
                "down: every address is down",
            ),
            (Admin::None, &[], SiteHealth::NoAddress, "no A address"),
            (
                Admin::Drain,
                &[DatacenterOut(Admin::Drain)],
                SiteHealth::Down,
                "drain (operator override)",
            ),
            (
                Admin::Up,
                &[DatacenterForcedUp],
                SiteHealth::Up,
                "up (operator override)",
            ),
        ];
        for (admin, verdicts, health, why) in cases {
            assert_eq!(
                datacenter_state(admin, verdicts, none),
                (health, why.to_owned()),
                "{admin} {verdicts:?}"
            );
        }
    }
}
