//! Rise/fall hysteresis: turns a stream of probe results into an up/down state.
//!
//! Pure and I/O-free so every rule is a table test. One failed probe of a healthy target is
//! noise (a dropped SYN, a GC pause); `fall` failures in a row are an outage. Likewise a dead
//! target that answers once is not back until it answered `rise` times in a row.
//!
//! # First result
//! The first result counts like any other, as in gdnsd and HAProxy's `fully-up` /
//! `fully-down`: a target starting [`InitialState::Up`] needs `fall` failures in a row to go
//! down, one starting [`InitialState::Down`] needs `rise` successes to come up. Why: the
//! initial state is the operator's statement of what to assume, and a single unlucky probe
//! right after a restart or reload must not override it.
//!
//! [`InitialState::FirstResult`] is for operators who would rather trust the first probe:
//! the target counts as up until its first result, which then sets the state at once
//! (HAProxy's `init-state up`); after that `rise`/`fall` apply as usual. Paired with
//! [`super::Registry::first_round`] at startup this serves real health from the first
//! answer without waiting `fall` intervals for a dead target to drop out.

use super::InitialState;

/// The hysteresis state of one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// Current state.
    pub up: bool,
    /// Successes since the last failure.
    pub successes_in_a_row: u32,
    /// Failures since the last success.
    pub failures_in_a_row: u32,
    /// Whether any result was observed yet.
    pub has_result: bool,
    /// The first result sets the state directly ([`InitialState::FirstResult`]).
    pub first_decides: bool,
}

/// A change of state caused by one observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The target was down and is now up.
    Up,
    /// The target was up and is now down.
    Down,
}

impl State {
    /// The state before any probe result.
    pub fn new(initial: InitialState) -> Self {
        Self {
            up: !matches!(initial, InitialState::Down),
            successes_in_a_row: 0,
            failures_in_a_row: 0,
            has_result: false,
            first_decides: matches!(initial, InitialState::FirstResult),
        }
    }

    /// Records one probe result; returns the transition it caused, if any.
    ///
    /// `rise`/`fall` of 0 act as 1 (the validator rejects them; a zero here must not mean
    /// "never change").
    pub fn observe(&mut self, ok: bool, rise: u32, fall: u32) -> Option<Transition> {
        let first = !self.has_result;
        self.has_result = true;
        if ok {
            self.successes_in_a_row = self.successes_in_a_row.saturating_add(1);
            self.failures_in_a_row = 0;
        } else {
            self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
            self.successes_in_a_row = 0;
        }
        let decided_now = first && self.first_decides;
        if !self.up && ok && (decided_now || self.successes_in_a_row >= rise.max(1)) {
            self.up = true;
            Some(Transition::Up)
        } else if self.up && !ok && (decided_now || self.failures_in_a_row >= fall.max(1)) {
            self.up = false;
            Some(Transition::Down)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InitialState::{Down, FirstResult, Up};

    /// Parses `"+"`/`"-"` strings into results.
    fn results(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '+').collect()
    }

    /// Runs a sequence and returns the final state and the index of every transition.
    fn run(
        initial: InitialState,
        seq: &str,
        rise: u32,
        fall: u32,
    ) -> (bool, Vec<(usize, Transition)>) {
        let mut st = State::new(initial);
        let mut changes = Vec::new();
        for (i, ok) in results(seq).into_iter().enumerate() {
            if let Some(t) = st.observe(ok, rise, fall) {
                changes.push((i, t));
            }
        }
        (st.up, changes)
    }

    #[test]
    fn table() {
        use Transition::{Down as D, Up as U};
        // (initial, results, rise, fall, final up, transitions at index)
        type Case = (
            InitialState,
            &'static str,
            u32,
            u32,
            bool,
            &'static [(usize, Transition)],
        );
        let cases: &[Case] = &[
            // Starting up: `fall` failures in a row to go down.
            (Up, "", 2, 3, true, &[]),
            (Up, "-", 2, 3, true, &[]),
            (Up, "--", 2, 3, true, &[]),
            (Up, "---", 2, 3, false, &[(2, D)]),
            (Up, "--+---", 2, 3, false, &[(5, D)]),
            // Starting down: `rise` successes in a row to come up; the first counts.
            (Down, "+", 2, 3, false, &[]),
            (Down, "++", 2, 3, true, &[(1, U)]),
            (Down, "+-++", 2, 3, true, &[(3, U)]),
            // Full cycle.
            (Up, "---++", 2, 3, true, &[(2, D), (4, U)]),
            (Down, "++---+-++", 2, 3, true, &[(1, U), (4, D), (8, U)]),
            // Thresholds of 1 follow every result.
            (Up, "-+-", 1, 1, false, &[(0, D), (1, U), (2, D)]),
            // Zero thresholds act as 1.
            (Down, "+", 0, 0, true, &[(0, U)]),
            (Up, "-", 0, 0, false, &[(0, D)]),
            // Results agreeing with the state change nothing.
            (Up, "+++++", 2, 3, true, &[]),
            (Down, "-----", 2, 3, false, &[]),
            // First result decides at once, then thresholds apply.
            (FirstResult, "", 2, 3, true, &[]),
            (FirstResult, "+", 2, 3, true, &[]),
            (FirstResult, "-", 2, 3, false, &[(0, D)]),
            (FirstResult, "-+", 2, 3, false, &[(0, D)]),
            (FirstResult, "-++", 2, 3, true, &[(0, D), (2, U)]),
            (FirstResult, "+--", 2, 3, true, &[]),
            (FirstResult, "+---", 2, 3, false, &[(3, D)]),
        ];
        for (i, &(initial, seq, rise, fall, up, changes)) in cases.iter().enumerate() {
            let got = run(initial, seq, rise, fall);
            assert_eq!(
                got,
                (up, changes.to_vec()),
                "case {i}: {initial:?} {seq:?} rise={rise} fall={fall}"
            );
        }
    }

    #[test]
    fn flapping_faster_than_thresholds_never_changes_state() {
        for initial in [Up, Down, FirstResult] {
            // The first result of FirstResult may decide; only look after it.
            let mut st = State::new(initial);
            st.observe(true, 2, 2);
            let before = st.up;
            for i in 0..100 {
                assert_eq!(st.observe(i % 2 == 1, 2, 2), None, "{initial:?} at {i}");
            }
            assert_eq!(st.up, before);
        }
        // Two good, one bad, with rise 3: never comes up.
        let (up, changes) = run(Down, &"++-".repeat(30), 3, 2);
        assert!(!up);
        assert!(changes.is_empty());
    }

    #[test]
    fn counters_reset_on_opposite_result() {
        let mut st = State::new(Up);
        st.observe(false, 2, 3);
        st.observe(false, 2, 3);
        assert_eq!((st.successes_in_a_row, st.failures_in_a_row), (0, 2));
        st.observe(true, 2, 3);
        assert_eq!((st.successes_in_a_row, st.failures_in_a_row), (1, 0));
        assert!(st.has_result);
    }

    #[test]
    fn no_result_yet() {
        for (initial, up) in [(Up, true), (Down, false), (FirstResult, true)] {
            let st = State::new(initial);
            assert_eq!((st.up, st.has_result), (up, false));
        }
    }

    #[test]
    fn counters_saturate() {
        let mut st = State::new(Up);
        st.successes_in_a_row = u32::MAX;
        assert_eq!(st.observe(true, 2, 3), None);
        assert_eq!(st.successes_in_a_row, u32::MAX);
    }
}
