//! Metrics: what the query path counts, and the metrics recorded beside it.
//!
//! ```text
//! compile ── slots::slot(Series) ──▶ Slot ids stored in the snapshot (zone, name, data center)
//! serve   ── cells::with(add)    ──▶ this thread's row of cells (no shared line written)
//! events  ── prometheus Registry ◀── probes, reloads, TCP connections (beside the path)
//! api::metrics (GET /metrics) sums the rows, reads health and weights, renders the text
//! ```
//!
//! The names are fixed, because dashboards and alerts are written against them:
//!
//! | name | labels | what |
//! |---|---|---|
//! | `meridian_queries_total` | zone, qtype, rcode, transport | every reply, by the zone that answered (`-` for none) |
//! | `meridian_answers_total` | zone, name, datacenter | GSLB answers by the data center answered first |
//! | `meridian_ecs_queries_total` | with_ecs | queries with and without a usable ECS option |
//! | `meridian_geoip_misses_total` | | GSLB lookups whose client address has no location |
//! | `meridian_truncated_total` | transport | replies cut to fit, TC set |
//! | `meridian_rrl_dropped_total` | | UDP replies rate limiting dropped |
//! | `meridian_rrl_slipped_total` | | UDP replies rate limiting sent as an empty TC=1 reply instead |
//! | `meridian_failover_answers_total` | zone, name | GSLB answers that skipped a down data center the client would otherwise get |
//! | `meridian_all_down_answers_total` | zone, name, policy | GSLB answers given by the all-down policy |
//! | `meridian_health_up` | zone, datacenter, address | 1 when the address is answered (probe and override), else 0 |
//! | `meridian_datacenter_weight` | zone, datacenter | the weight in effect: configured, after shedding, 0 when drained or down by override |
//! | `meridian_probe_duration_seconds` | check | histogram of probe times |
//! | `meridian_probe_failures_total` | check, reason | failed probes by why |
//! | `meridian_reloads_total` | result | reloads, `ok` or `error` |
//! | `meridian_config_generation` | | the generation serving |
//! | `meridian_config_last_reload_success_timestamp_seconds` | | when it was loaded |
//! | `meridian_tcp_connections` | | TCP connections open |
//! | `meridian_build_info` | version | 1 |
//!
//! Labels are bounded by the configuration: never a client address or a name asked.

pub mod cells;
pub mod events;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// A counter's index in every thread's row of cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot(pub(crate) u32);

impl Slot {
    /// Queries with an ECS option the answer was chosen by.
    pub const ECS_WITH: Slot = Slot(0);
    /// Queries without one.
    pub const ECS_WITHOUT: Slot = Slot(1);
    /// GSLB lookups of an address without a location.
    pub const GEOIP_MISS: Slot = Slot(2);
    /// Truncated replies over UDP.
    pub const TRUNCATED_UDP: Slot = Slot(3);
    /// Truncated replies over TCP (a reply over 64 KiB).
    pub const TRUNCATED_TCP: Slot = Slot(4);
    /// UDP replies response rate limiting dropped.
    pub const RRL_DROPPED: Slot = Slot(5);
    /// UDP replies response rate limiting sent as an empty TC=1 reply instead.
    pub const RRL_SLIPPED: Slot = Slot(6);
    /// The query cells of replies no zone gave (`zone="-"`).
    pub const NO_ZONE: Slot = Slot(8);
    /// The first slot handed out by [`slot`].
    const FIRST_FREE: u32 = 8 + QUERY_CELLS;

    /// One of the fixed slots above, which no [`Series`] names.
    pub fn is_fixed(self) -> bool {
        self.0 < Self::FIRST_FREE
    }

    /// The cell of one query kind in the query range starting at `self` (a zone's slot).
    #[inline]
    pub fn query(self, qtype: RecordType, rcode: u16, transport: Transport) -> Slot {
        let cell =
            (qtype_index(qtype) * RCODES.len() + rcode_index(rcode)) * 2 + transport as usize;
        Slot(self.0 + cell as u32)
    }
}

/// Which transport a reply went over, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `udp`
    Udp = 0,
    /// `tcp`
    Tcp = 1,
}

/// Query types counted by name; the rest are `other`.
pub const QTYPES: [&str; 16] = [
    "A", "AAAA", "ANY", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NS", "PTR", "SOA", "SRV",
    "SVCB", "TXT", "other",
];
/// Response codes counted by name; the rest are `other`.
pub const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];
/// Transport labels, by [`Transport`].
pub const TRANSPORTS: [&str; 2] = ["udp", "tcp"];
/// Cells in one zone's query range.
pub const QUERY_CELLS: u32 = (QTYPES.len() * RCODES.len() * TRANSPORTS.len()) as u32;

fn qtype_index(t: RecordType) -> usize {
    match t {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::ANY => 2,
        RecordType::CAA => 3,
        RecordType::CNAME => 4,
        RecordType::DNSKEY => 5,
        RecordType::DS => 6,
        RecordType::HTTPS => 7,
        RecordType::MX => 8,
        RecordType::NS => 9,
        RecordType::PTR => 10,
        RecordType::SOA => 11,
        RecordType::SRV => 12,
        RecordType::SVCB => 13,
        RecordType::TXT => 14,
        _ => 15,
    }
}

/// The index of a (possibly extended, 12-bit) response code in [`RCODES`].
fn rcode_index(rcode: u16) -> usize {
    match rcode {
        0..=5 => rcode as usize,
        16 => 6,
        _ => 7,
    }
}

/// The labels of cell `cell` (0 ≤ cell < [`QUERY_CELLS`]) of a query range.
pub fn query_labels(cell: u32) -> (&'static str, &'static str, &'static str) {
    let cell = cell as usize;
    let transport = TRANSPORTS[cell % 2];
    let rest = cell / 2;
    (
        QTYPES[rest / RCODES.len()],
        RCODES[rest % RCODES.len()],
        transport,
    )
}

/// The response code of `rcode` as the query cells count it (hickory's value, extended
/// codes included).
pub fn rcode_value(rcode: ResponseCode) -> u16 {
    u16::from(rcode)
}

/// A series whose cells are handed out at compile time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Series {
    /// `meridian_queries_total` of a zone: a range of [`QUERY_CELLS`].
    Queries {
        /// The zone's origin, with the final dot.
        zone: Box<str>,
    },
    /// `meridian_answers_total`.
    Answers {
        /// Zone origin.
        zone: Box<str>,
        /// The GSLB name.
        name: Box<str>,
        /// The data center id.
        datacenter: Box<str>,
    },
    /// `meridian_failover_answers_total`.
    Failover {
        /// Zone origin.
        zone: Box<str>,
        /// The GSLB name.
        name: Box<str>,
    },
    /// `meridian_all_down_answers_total`.
    AllDown {
        /// Zone origin.
        zone: Box<str>,
        /// The GSLB name.
        name: Box<str>,
        /// The policy's name as the zone file writes it.
        policy: &'static str,
    },
}

impl Series {
    fn cells(&self) -> u32 {
        match self {
            Series::Queries { .. } => QUERY_CELLS,
            _ => 1,
        }
    }
}

struct Interner {
    by_series: HashMap<Series, Slot>,
    list: Vec<(Series, Slot)>,
    next: u32,
}

static SLOTS: Mutex<Option<Interner>> = Mutex::new(None);

/// The slot of `series`: the same one every time it is asked for in this process, so
/// counts carry across reloads. Slots are never freed; a series a reload drops keeps its
/// count and is still exported.
pub fn slot(series: Series) -> Slot {
    let mut guard = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
    let interner = guard.get_or_insert_with(|| Interner {
        by_series: HashMap::new(),
        list: Vec::new(),
        next: Slot::FIRST_FREE,
    });
    if let Some(&s) = interner.by_series.get(&series) {
        return s;
    }
    let s = Slot(interner.next);
    interner.next = interner.next.saturating_add(series.cells());
    interner.list.push((series.clone(), s));
    interner.by_series.insert(series, s);
    s
}

/// Every series handed out so far, in the order they were first asked for.
pub fn series() -> Vec<(Series, Slot)> {
    SLOTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|i| i.list.clone())
        .unwrap_or_default()
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns counting on the query path on or off (the `metrics` setting).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether the query path counts.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The counts one GSLB answer adds beside its zone's query cell: the data center answered,
/// and whether it failed over, answered by the all-down policy, or missed the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    slots: [Option<Slot>; 3],
}

impl Tally {
    /// Adds `slot` (at most three per answer: more are dropped).
    #[inline]
    pub fn push(&mut self, slot: Slot) {
        if let Some(free) = self.slots.iter_mut().find(|s| s.is_none()) {
            *free = Some(slot);
        }
    }

    /// The slots pushed.
    pub fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_cells_round_trip_to_their_labels() {
        let z = Slot(1000);
        for (t, name) in [
            (RecordType::A, "A"),
            (RecordType::TXT, "TXT"),
            (RecordType::NULL, "other"),
        ] {
            for (rc, rname) in [
                (0, "NOERROR"),
                (3, "NXDOMAIN"),
                (16, "BADVERS"),
                (9, "other"),
            ] {
                for (tr, trname) in [(Transport::Udp, "udp"), (Transport::Tcp, "tcp")] {
                    let cell = z.query(t, rc, tr).0 - z.0;
                    assert!(cell < QUERY_CELLS);
                    assert_eq!(query_labels(cell), (name, rname, trname));
                }
            }
        }
    }

    #[test]
    fn a_series_keeps_its_slot_and_ranges_do_not_overlap() {
        let q = || Series::Queries {
            zone: "slots-test.example.".into(),
        };
        let a = slot(q());
        let b = slot(Series::Failover {
            zone: "slots-test.example.".into(),
            name: "www".into(),
        });
        assert_eq!(slot(q()), a);
        assert!(b.0 >= a.0 + QUERY_CELLS || b.0 < a.0);
        assert!(a.0 >= Slot::FIRST_FREE);
        assert!(series().iter().any(|(s, at)| *s == q() && *at == a));
    }
}
