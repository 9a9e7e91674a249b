//! The selection step at a GSLB name: which of the client's candidates, and which of
//! their addresses, go into the answer.
//!
//! One function, [`admit`], decides whether an address may be answered, from its word and
//! its data center's word in the [`HealthTable`]; [`choose`] walks the client's list with
//! it, fails open or falls back to the all-down policy, and `explain` prints the same
//! verdicts. Weighted spreading plugs in as one more step over the admitted candidates.
//!
//! At most [`MAX_ADDRESSES`] addresses per data center and family are considered: the set
//! chosen is a `u64` bit mask.

use smallvec::SmallVec;

use crate::compile::{AllDownAnswer, Candidate, GslbNode};
use crate::family::Family;
use crate::health::{Admin, HealthTable, Word};

pub use crate::zone::model::MAX_ADDRESSES;

// One bit per address in the `u64` masks below.
const _: () = assert!(MAX_ADDRESSES <= u64::BITS as usize);

/// Whether an address is in answers, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In: the probes say up (always, without a check).
    Up,
    /// In: an operator forced the address up.
    ForcedUp,
    /// In: an operator forced its data center up, and the address has no override.
    DatacenterForcedUp,
    /// Out: the probes say down.
    ProbeDown,
    /// Out: an operator took the address down or drained it.
    AddressOut(Admin),
    /// Out: an operator took its data center down or drained it.
    DatacenterOut(Admin),
}

impl Verdict {
    /// The address may be answered.
    pub fn is_in(self) -> bool {
        matches!(self, Self::Up | Self::ForcedUp | Self::DatacenterForcedUp)
    }

    /// An operator took it out: failing open keeps it out while anything else is left.
    pub fn operator_out(self) -> bool {
        matches!(self, Self::AddressOut(_) | Self::DatacenterOut(_))
    }
}

/// Decides one address from its data center's word and its own. The more specific
/// override wins: an address taken down or drained stays out even when its data center is
/// forced up; a data center taken out takes all its addresses with it.
#[inline]
pub fn admit(datacenter: Word, address: Word) -> Verdict {
    match (datacenter.admin(), address.admin()) {
        (dc, _) if dc.is_out() => Verdict::DatacenterOut(dc),
        (_, a) if a.is_out() => Verdict::AddressOut(a),
        (_, Admin::Up) => Verdict::ForcedUp,
        (Admin::Up, _) => Verdict::DatacenterForcedUp,
        _ if address.probe_up() => Verdict::Up,
        _ => Verdict::ProbeDown,
    }
}

/// The candidates (position, bit mask of addresses) that answer.
#[derive(Debug, Default)]
pub struct Pick {
    /// Chosen candidates, best first, each with its addresses to answer.
    pub chosen: SmallVec<[(u8, u64); 4]>,
    /// Some candidate considered was down, partly down or flapping: answer at the short TTL.
    pub degraded: bool,
    /// Every candidate was down and the name fails open: these are answered as if up.
    pub failed_open: bool,
}

/// What a GSLB name answers a client of one family.
#[derive(Debug)]
pub enum Choice<'s> {
    /// No candidate in the client's list has an address of the family: NODATA.
    NoFamily,
    /// These addresses.
    Addresses(Pick),
    /// Every candidate is down; the name's all-down policy answers (never fail-open,
    /// which is answered as [`Choice::Addresses`]).
    AllDown(&'s AllDownAnswer),
}

/// Walks the client's ordered `list`, skipping data centers with no address admitted,
/// keeping the admitted addresses (at most `max_addresses`), until `max_datacenters` are
/// chosen. When every candidate of the family is out, fails open or returns the policy.
pub fn choose<'s>(
    gslb: &'s GslbNode,
    health: &HealthTable,
    list: &[u8],
    family: Family,
) -> Choice<'s> {
    let mut p = Pick::default();
    let mut had_family = false;
    for &pos in list {
        let c = &gslb.candidates[pos as usize];
        if c.family(family).records.is_empty() {
            continue;
        }
        had_family = true;
        let mask = admitted(c, health, family, &mut p.degraded);
        if mask == 0 {
            continue;
        }
        p.chosen.push((pos, first_bits(mask, gslb.max_addresses)));
        if p.chosen.len() == gslb.max_datacenters {
            break;
        }
    }
    if !had_family {
        Choice::NoFamily
    } else if !p.chosen.is_empty() {
        Choice::Addresses(p)
    } else if matches!(gslb.all_down, AllDownAnswer::FailOpen) {
        Choice::Addresses(fail_open(gslb, health, list, family))
    } else {
        Choice::AllDown(&gslb.all_down)
    }
}

/// True when every candidate of the name that has the family is out: the state the
/// all-down log reports changes of.
pub fn all_down(gslb: &GslbNode, health: &HealthTable, family: Family) -> bool {
    let mut ignored = false;
    let mut any = false;
    for c in gslb.candidates.iter() {
        if c.family(family).records.is_empty() {
            continue;
        }
        any = true;
        if admitted(c, health, family, &mut ignored) != 0 {
            return false;
        }
    }
    any
}

/// The verdict of each address of `c` in `family`, in file order.
pub fn verdicts<'a>(
    c: &'a Candidate,
    health: &'a HealthTable,
    family: Family,
) -> impl Iterator<Item = Verdict> + 'a {
    let dc = health.word(c.slot);
    c.family(family)
        .slots
        .iter()
        .take(MAX_ADDRESSES)
        .map(move |&id| admit(dc, health.word(id)))
}

/// The admitted addresses of `c` as a bit mask; sets `degraded` when one is out, or
/// flapping under a data center not forced up.
fn admitted(c: &Candidate, health: &HealthTable, family: Family, degraded: &mut bool) -> u64 {
    let dc = health.word(c.slot);
    let mut m = 0u64;
    for (i, &id) in c
        .family(family)
        .slots
        .iter()
        .enumerate()
        .take(MAX_ADDRESSES)
    {
        let address = health.word(id);
        if admit(dc, address).is_in() {
            m |= 1 << i;
        } else {
            *degraded = true;
        }
        *degraded |= dc.admin() != Admin::Up && address.flapping();
    }
    m
}

/// Every candidate down: answer as if the probes said up. Addresses and data centers an
/// operator took out stay out, unless that leaves nothing: fail open never answers empty.
fn fail_open(gslb: &GslbNode, health: &HealthTable, list: &[u8], family: Family) -> Pick {
    let mut p = Pick {
        degraded: true,
        failed_open: true,
        ..Pick::default()
    };
    for honour_operators in [true, false] {
        for &pos in list {
            let c = &gslb.candidates[pos as usize];
            let mut mask = 0u64;
            for (i, v) in verdicts(c, health, family).enumerate() {
                if !honour_operators || !v.operator_out() {
                    mask |= 1 << i;
                }
            }
            if mask == 0 {
                continue;
            }
            p.chosen.push((pos, first_bits(mask, gslb.max_addresses)));
            if p.chosen.len() == gslb.max_datacenters {
                return p;
            }
        }
        if !p.chosen.is_empty() {
            return p;
        }
    }
    p
}

/// Keeps the lowest `n` set bits of `mask`: the first `n` admitted addresses, in file order.
fn first_bits(mut mask: u64, n: usize) -> u64 {
    let mut out = 0;
    for _ in 0..n {
        if mask == 0 {
            break;
        }
        let low = mask & mask.wrapping_neg();
        out |= low;
        mask &= !low;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMINS: [Admin; 4] = [Admin::None, Admin::Up, Admin::Down, Admin::Drain];

    #[test]
    fn admit_follows_the_override_rules_for_every_combination() {
        for dc in ADMINS {
            for addr in ADMINS {
                for probe_up in [true, false] {
                    for flapping in [true, false] {
                        let v = admit(
                            Word::new(true, false, dc),
                            Word::new(probe_up, flapping, addr),
                        );
                        // Written out as the README states the rules, not as the code does.
                        let operator_out = matches!(dc, Admin::Down | Admin::Drain)
                            || matches!(addr, Admin::Down | Admin::Drain);
                        let expected_in =
                            !operator_out && (addr == Admin::Up || dc == Admin::Up || probe_up);
                        assert_eq!(v.is_in(), expected_in, "dc {dc} addr {addr} up {probe_up}");
                        assert_eq!(
                            v.operator_out(),
                            dc.is_out() || addr.is_out(),
                            "dc {dc} addr {addr}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn first_bits_keeps_the_lowest() {
        assert_eq!(first_bits(0b1011_0110, 2), 0b0000_0110);
        assert_eq!(first_bits(0b1011_0110, 64), 0b1011_0110);
        assert_eq!(first_bits(0, 3), 0);
        assert_eq!(first_bits(u64::MAX, usize::MAX), u64::MAX);
    }
}
