//! The shared health of one target (check + address).
//!
//! The query path reads the probe state from the target's slot of the [`HealthTable`], which
//! every result updates; the target keeps its own copy for `explain` and the probe loop.
//! Everything only `explain` needs (last result, error text, counters, flap history) sits
//! behind a mutex that the probe loop takes once per result.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::hysteresis::{State, Transition};
use super::table::{HealthId, HealthTable};
use super::{Check, ProbeError, describe};

/// A target is flapping when its state changed more than this many times within the last
/// [`FLAP_WINDOW_INTERVALS`] intervals.
///
/// Why 3: one outage is two changes (down, up); a third is a relapse that may still be one
/// incident; a fourth means it went down and came back twice, which is no longer an outage
/// but an unstable target (tune `rise`/`fall`, or look at it).
pub const FLAP_MAX_CHANGES: usize = 3;

/// The flap window in check intervals. Why 20: with the common rise 2 / fall 3 a full
/// down-up cycle takes at least 5 intervals, so four changes fit only when the target cycles
/// at close to the fastest rate its thresholds allow.
pub const FLAP_WINDOW_INTERVALS: u32 = 20;

/// Most change times kept; far more than a window can matter for.
const MAX_CHANGES_KEPT: usize = 64;

/// One probe result, for `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// When the probe finished.
    pub at: SystemTime,
    /// How long it took.
    pub took: Duration,
    /// Why it failed; `None` for a success.
    pub error: Option<String>,
}

/// Everything known about a target, for `explain` and the admin interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detail {
    /// State from the probes.
    pub probe_up: bool,
    /// Since when the probe state is what it is (creation time until the first change).
    pub since: SystemTime,
    /// Successes since the last failure.
    pub successes_in_a_row: u32,
    /// Failures since the last success.
    pub failures_in_a_row: u32,
    /// The latest result; `None` before the first.
    pub last: Option<Observation>,
    /// The latest failure, kept after later successes.
    pub last_failure: Option<Observation>,
    /// State changes within the last [`FLAP_WINDOW_INTERVALS`] intervals.
    pub changes_in_window: usize,
    /// `changes_in_window` > [`FLAP_MAX_CHANGES`].
    pub flapping: bool,
}

/// Health of one (check, address), shared by every snapshot that uses it.
pub struct TargetHealth {
    check: Check,
    addr: IpAddr,
    label: String,
    up: AtomicBool,
    has_result: AtomicBool,
    /// Results since creation or the last [`Self::forget`].
    fresh: AtomicU32,
    /// Mirror of `Inner::flapping`, recomputed on every result, so the query path can read
    /// it without the lock.
    flapping: AtomicBool,
    inner: Mutex<Inner>,
    /// Where the query path reads this target's state, when it answers from one.
    slot: Option<(Arc<HealthTable>, HealthId)>,
}

struct Inner {
    state: State,
    since: SystemTime,
    last: Option<Observation>,
    last_failure: Option<Observation>,
    /// Times of recent state changes, oldest first.
    changes: VecDeque<Instant>,
    /// Whether the last change left the target flapping (to log only when it starts).
    flapping: bool,
}

impl TargetHealth {
    /// A target in its initial state, with no result. The [`super::Registry`] creates the
    /// probed ones; a standalone one is never probed unless fed with [`Self::record`].
    pub fn new(check: Check, addr: IpAddr) -> Self {
        Self::with_slot(check, addr, None)
    }

    /// A target whose state is also kept in `slot` of a health table, for the query path.
    pub fn in_table(check: Check, addr: IpAddr, table: Arc<HealthTable>, id: HealthId) -> Self {
        Self::with_slot(check, addr, Some((table, id)))
    }

    fn with_slot(check: Check, addr: IpAddr, slot: Option<(Arc<HealthTable>, HealthId)>) -> Self {
        let state = State::new(check.initial);
        if let Some((table, id)) = &slot {
            table.set_probe(*id, state.up, false);
        }
        Self {
            label: describe(&check.kind, addr),
            up: AtomicBool::new(state.up),
            has_result: AtomicBool::new(false),
            fresh: AtomicU32::new(0),
            flapping: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                state,
                since: SystemTime::now(),
                last: None,
                last_failure: None,
                changes: VecDeque::new(),
                flapping: false,
            }),
            check,
            addr,
            slot,
        }
    }

    /// The health table slot the query path reads, if any.
    pub fn slot(&self) -> Option<HealthId> {
        self.slot.as_ref().map(|(_, id)| *id)
    }

    /// The probe state. Lock-free; `Relaxed` because a result that lands a moment later
    /// is as good as one a moment earlier.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether at least one probe result is in.
    pub fn has_result(&self) -> bool {
        self.has_result.load(Ordering::Relaxed)
    }

    /// Whether enough results are in since probing (re)started for the state to rest on
    /// them alone: `max(rise, fall)`. In a fleet a node votes only then, so a node that
    /// takes a target over does not vote with what it saw before.
    pub fn settled(&self) -> bool {
        self.fresh.load(Ordering::Relaxed) >= self.check.rise.max(self.check.fall)
    }

    /// Back to the initial state with no result: for a target this node stops probing (in
    /// a fleet, assigned to others), so that what it saw then is never taken for news.
    /// The health table is left as it is.
    pub fn forget(&self) {
        let mut inner = self.lock();
        inner.state = State::new(self.check.initial);
        inner.since = SystemTime::now();
        self.up.store(inner.state.up, Ordering::Relaxed);
        self.has_result.store(false, Ordering::Relaxed);
        self.fresh.store(0, Ordering::Relaxed);
    }

    /// The check this target runs.
    pub fn check(&self) -> &Check {
        &self.check
    }

    /// The address probed.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// `192.0.2.10:443 (https GET /health)`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Everything known, for `explain`.
    pub fn detail(&self) -> Detail {
        let now = Instant::now();
        let inner = self.lock();
        let changes_in_window = inner.changes_within(now, self.flap_window());
        Detail {
            probe_up: inner.state.up,
            since: inner.since,
            successes_in_a_row: inner.state.successes_in_a_row,
            failures_in_a_row: inner.state.failures_in_a_row,
            last: inner.last.clone(),
            last_failure: inner.last_failure.clone(),
            changes_in_window,
            flapping: changes_in_window > FLAP_MAX_CHANGES,
        }
    }

    /// Whether the state changed more than [`FLAP_MAX_CHANGES`] times within the last
    /// [`FLAP_WINDOW_INTERVALS`] check intervals. Informational: answers follow the
    /// hysteresis state regardless; flapping tells the operator the thresholds or the
    /// target need attention.
    ///
    /// Lock-free (the query path asks): the flag is recomputed whenever a probe result
    /// comes in, which happens every interval.
    #[inline]
    pub fn is_flapping(&self) -> bool {
        self.flapping.load(Ordering::Relaxed)
    }

    /// Records one probe result and logs a state change. Called by the probe loop; tests
    /// use it to drive a standalone target.
    pub fn record(&self, result: Result<(), &ProbeError>, took: Duration) -> Option<Transition> {
        self.record_at(result, took, Instant::now())
    }

    fn record_at(
        &self,
        result: Result<(), &ProbeError>,
        took: Duration,
        now: Instant,
    ) -> Option<Transition> {
        let window = self.flap_window();
        let mut inner = self.lock();
        let observation = Observation {
            at: SystemTime::now(),
            took,
            error: result.err().map(ToString::to_string),
        };
        if observation.error.is_some() {
            inner.last_failure = Some(observation.clone());
        }
        inner.last = Some(observation);
        let transition = inner
            .state
            .observe(result.is_ok(), self.check.rise, self.check.fall);
        self.up.store(inner.state.up, Ordering::Relaxed);
        self.has_result.store(true, Ordering::Relaxed);
        self.fresh.fetch_add(1, Ordering::Relaxed);

        let mut messages: Vec<(tracing::Level, String)> = Vec::new();
        if let Some(t) = transition {
            inner.since = SystemTime::now();
            inner.changes.push_back(now);
            let message = transition_message(&self.label, t, &inner.state, result.err());
            let level = match t {
                Transition::Up => tracing::Level::INFO,
                Transition::Down => tracing::Level::WARN,
            };
            messages.push((level, message));
        }
        while inner.changes.len() > MAX_CHANGES_KEPT
            || inner
                .changes
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) > window)
        {
            inner.changes.pop_front();
        }
        // Recomputed on every result, so flapping also ends once changes age out.
        let changes = inner.changes_within(now, window);
        let flapping = changes > FLAP_MAX_CHANGES;
        if flapping && !inner.flapping {
            messages.push((
                tracing::Level::WARN,
                format!(
                    "target {} is flapping: {changes} state changes within the last \
                     {FLAP_WINDOW_INTERVALS} intervals ({window:?})",
                    self.label
                ),
            ));
        }
        inner.flapping = flapping;
        self.flapping.store(flapping, Ordering::Relaxed);
        if let Some((table, id)) = &self.slot {
            // Under the lock, so two results never store out of order.
            table.set_local_probe(*id, inner.state.up, flapping);
        }
        drop(inner);
        // Log without the lock held: a slow log sink must not hold up anyone reading state.
        for (level, message) in messages {
            if level == tracing::Level::WARN {
                tracing::warn!("{message}");
            } else {
                tracing::info!("{message}");
            }
        }
        transition
    }

    fn flap_window(&self) -> Duration {
        self.check.interval.saturating_mul(FLAP_WINDOW_INTERVALS)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent across a panic in between (plain field stores).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for TargetHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetHealth")
            .field("target", &self.label)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn changes_within(&self, now: Instant, window: Duration) -> usize {
        self.changes
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) <= window)
            .count()
    }
}

/// `target 192.0.2.10:443 (https GET /health) is now down after 3 failures: unexpected status 503`.
fn transition_message(
    label: &str,
    transition: Transition,
    state: &State,
    error: Option<&ProbeError>,
) -> String {
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    match transition {
        Transition::Up => {
            let n = state.successes_in_a_row;
            format!(
                "target {label} is now up after {n} success{}",
                if n == 1 { "" } else { "es" }
            )
        }
        Transition::Down => {
            let n = state.failures_in_a_row;
            let why = error.map(|e| format!(": {e}")).unwrap_or_default();
            format!(
                "target {label} is now down after {n} failure{}{why}",
                plural(n)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{CheckKind, InitialState};

    fn check(rise: u32, fall: u32, initial: InitialState) -> Check {
        Check {
            kind: CheckKind::Tcp { port: 80 },
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise,
            fall,
            jitter: Duration::ZERO,
            initial,
        }
    }

    fn target(rise: u32, fall: u32, initial: InitialState) -> TargetHealth {
        TargetHealth::new(check(rise, fall, initial), "192.0.2.1".parse().unwrap())
    }

    #[test]
    fn a_target_in_a_table_keeps_its_slot_current() {
        let table = HealthTable::new(4);
        let addr = "192.0.2.1".parse().unwrap();
        let check = check(1, 1, InitialState::Down);
        let id = table.address_slot(Some(&check), addr).unwrap();
        let t = TargetHealth::in_table(check, addr, table.clone(), id);
        assert_eq!(t.slot(), Some(id));
        assert!(
            !table.word(id).probe_up(),
            "the initial state is written at once"
        );
        t.record(Ok(()), Duration::ZERO);
        assert!(table.word(id).probe_up() && t.is_up());
        t.record(Err(&ProbeError::Refused), Duration::ZERO);
        assert!(!table.word(id).probe_up() && !t.is_up());
    }

    #[test]
    fn detail_keeps_last_result_and_failure() {
        let t = target(2, 2, InitialState::Up);
        let d = t.detail();
        assert!(d.last.is_none() && !t.has_result() && d.probe_up);
        t.record(Err(&ProbeError::Status(503)), Duration::from_millis(7));
        t.record(Ok(()), Duration::from_millis(3));
        let d = t.detail();
        assert!(t.has_result());
        assert_eq!(d.last.as_ref().unwrap().error, None);
        assert_eq!(d.last.as_ref().unwrap().took, Duration::from_millis(3));
        assert_eq!(
            d.last_failure.unwrap().error.as_deref(),
            Some("unexpected status 503")
        );
        assert_eq!((d.successes_in_a_row, d.failures_in_a_row), (1, 0));
        assert!(d.probe_up && !d.flapping);
    }

    #[test]
    fn since_moves_on_change_only() {
        let t = target(1, 2, InitialState::Up);
        let created = t.detail().since;
        t.record(Err(&ProbeError::Refused), Duration::ZERO);
        assert_eq!(t.detail().since, created);
        std::thread::sleep(Duration::from_millis(2));
        t.record(Err(&ProbeError::Refused), Duration::ZERO);
        assert!(t.detail().since > created);
    }

    #[test]
    fn flapping_needs_more_than_k_changes_within_window() {
        let t = target(1, 1, InitialState::Up);
        let start = Instant::now();
        let window = Duration::from_secs(FLAP_WINDOW_INTERVALS.into());
        // Alternate results every interval: every result is a change.
        let alternate = |i: usize| {
            if i % 2 == 0 {
                Err(&ProbeError::Refused)
            } else {
                Ok(())
            }
        };
        let at = |i: usize| start + Duration::from_secs(i as u64);
        for i in 0..FLAP_MAX_CHANGES {
            assert!(t.record_at(alternate(i), Duration::ZERO, at(i)).is_some());
            assert!(!t.lock().flapping, "flapping after {} changes", i + 1);
        }
        assert_eq!(
            t.lock().changes_within(at(FLAP_MAX_CHANGES), window),
            FLAP_MAX_CHANGES
        );
        let last = at(FLAP_MAX_CHANGES);
        assert!(
            t.record_at(alternate(FLAP_MAX_CHANGES), Duration::ZERO, last)
                .is_some()
        );
        let inner = t.lock();
        assert!(inner.flapping);
        assert_eq!(inner.changes_within(last, window), FLAP_MAX_CHANGES + 1);
        // Once the window has passed over the changes, it is no longer flapping.
        assert_eq!(
            inner.changes_within(last + window + Duration::from_secs(1), window),
            0
        );
    }

    #[test]
    fn slow_changes_are_not_flapping() {
        let t = target(1, 1, InitialState::Up);
        let start = Instant::now();
        // One change every 10 intervals: never more than 3 in 20 intervals.
        for i in 0..10u64 {
            let r = if i % 2 == 0 {
                Err(&ProbeError::Refused)
            } else {
                Ok(())
            };
            t.record_at(r, Duration::ZERO, start + Duration::from_secs(10 * i));
            assert!(!t.lock().flapping, "at change {i}");
        }
        assert!(t.lock().changes.len() <= 3);
    }

    #[test]
    fn messages() {
        let mut st = State::new(InitialState::Up);
        for _ in 0..3 {
            st.observe(false, 2, 3);
        }
        let label = "192.0.2.10:443 (https GET /health)";
        assert_eq!(
            transition_message(label, Transition::Down, &st, Some(&ProbeError::Status(503))),
            "target 192.0.2.10:443 (https GET /health) is now down after 3 failures: unexpected status 503"
        );
        st.observe(true, 1, 3);
        assert_eq!(
            transition_message(label, Transition::Up, &st, None),
            "target 192.0.2.10:443 (https GET /health) is now up after 1 success"
        );
    }
}
