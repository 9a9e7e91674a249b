//! The compiled table of one GSLB policy: any address → its ordered candidate list and
//! the ECS scope of that decision.
//!
//! Built at load by [`super::decision::build_table`]; read on the query path with one
//! binary search per lookup and no allocation.

use std::net::IpAddr;

use super::partition::Partition;
use crate::family::Family;

/// Index of an interned candidate list within its table.
///
/// Why not `usize`: tables hold millions of ranges; four bytes each keeps them in cache.
pub type ListId = u32;

/// A decision: the ordered candidates (positions in the GSLB name's candidate list) and
/// the widest prefix around the client over which that same list holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision<'t> {
    /// Candidate positions, best first.
    pub list: &'t [u8],
    /// How many candidates at the head of `list` are equally near (the `band`); at least 1.
    pub near: u8,
    /// ECS scope prefix length.
    pub scope: u8,
    /// Whether the range the client is in holds addresses no database places: only then
    /// can the client be one (see [`super::unlocated::Unlocated`]).
    pub maybe_unlocated: bool,
}

/// Address → candidate list, for both families.
///
/// Laid out for the query path, where a lookup of a random client in a table of millions
/// of ranges costs a few cache misses and little else: IPv4 ranges as (start, value) pairs
/// of 4 bytes each, so that the search ends on the line holding the value too, behind an
/// index by the top 16 bits of the address.
#[derive(Debug)]
pub struct GeoTable {
    v4: PackedV4,
    v6: Partition<ListId>,
    lists: Vec<Ranked>,
}

/// Set in a stored list id when its range holds an address no database places.
const UNPLACED: ListId = 1 << 31;

/// One interned list: the candidate order and how many at its head are equally near.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// Candidate positions, best first.
    pub order: Box<[u8]>,
    /// Candidates at the head of `order` within the band of the nearest; at least 1.
    pub near: u8,
}

/// An IPv4 partition as (first address, value) pairs, with an index by the top 16 bits:
/// `jump[b]` is the first range starting at or after block `b`.
#[derive(Debug)]
pub(super) struct PackedV4 {
    jump: Box<[u32]>,
    ranges: Box<[(u32, u32)]>,
}

impl PackedV4 {
    fn new(p: &Partition<ListId>, unplaced: &[bool]) -> Self {
        Self::from_ranges(
            p.iter()
                .zip(unplaced)
                .map(|((start, _, id), u)| (start as u32, if *u { id | UNPLACED } else { *id }))
                .collect(),
        )
    }

    /// From (first address, value) pairs in order, the first at 0.
    pub(super) fn from_ranges(ranges: Box<[(u32, u32)]>) -> Self {
        debug_assert_eq!(ranges.first().map(|r| r.0), Some(0));
        let mut jump = Vec::with_capacity((1 << 16) + 1);
        let mut i = 0usize;
        for b in 0..1u32 << 16 {
            while i < ranges.len() && ranges[i].0 < b << 16 {
                i += 1;
            }
            jump.push(i as u32);
        }
        jump.push(ranges.len() as u32);
        Self {
            jump: jump.into_boxed_slice(),
            ranges,
        }
    }

    /// (first, last, value) of the range holding `key`.
    #[inline]
    pub(super) fn find(&self, key: u32) -> (u32, u32, u32) {
        let b = (key >> 16) as usize;
        let (lo, hi) = (self.jump[b] as usize, self.jump[b + 1] as usize);
        // The first range starts at 0, so some range at or before `lo` holds the key.
        let i = lo + self.ranges[lo..hi].partition_point(|r| r.0 <= key) - 1;
        let (start, id) = self.ranges[i];
        let end = match self.ranges.get(i + 1) {
            Some(next) => next.0 - 1,
            None => u32::MAX,
        };
        (start, end, id)
    }
}

impl GeoTable {
    /// From each family's partition into list ids, with whether each range holds an
    /// address no database places, and the lists the ids stand for.
    pub(super) fn new(
        (v4, unplaced4): (Partition<ListId>, Vec<bool>),
        (v6, unplaced6): (Partition<ListId>, Vec<bool>),
        lists: Vec<Ranked>,
    ) -> Self {
        debug_assert!(lists.len() < UNPLACED as usize);
        let mut v6 = v6.with_flags(&unplaced6, UNPLACED);
        v6.build_index();
        Self {
            v4: PackedV4::new(&v4, &unplaced4),
            v6,
            lists,
        }
    }

    /// The decision for `ip` (IPv4-mapped IPv6 addresses count as IPv4).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Decision<'_> {
        let (scope, id) = match ip.to_canonical() {
            IpAddr::V4(a) => {
                let key = u32::from(a);
                let (start, end, id) = self.v4.find(key);
                let scope = widest_prefix(Family::V4, key.into(), start.into(), end.into());
                // Asked as ::ffff:a.b.c.d: the scope is in IPv6 terms, below the mapped /96.
                (if ip.is_ipv6() { scope + 96 } else { scope }, id)
            }
            IpAddr::V6(a) => {
                let key = u128::from(a);
                let i = self.v6.index_of(key);
                let (start, end) = self.v6.bounds(i);
                (
                    widest_prefix(Family::V6, key, start, end),
                    *self.v6.value(i),
                )
            }
        };
        let ranked = &self.lists[(id & !UNPLACED) as usize];
        Decision {
            list: &ranked.order,
            near: ranked.near,
            scope,
            maybe_unlocated: id & UNPLACED != 0,
        }
    }

    /// True when every address gets the same list: the answer does not depend on the client.
    pub fn is_uniform(&self) -> bool {
        let v4 = match &*self.v4.ranges {
            [(_, id)] => id & !UNPLACED,
            _ => return false,
        };
        self.v6.len() == 1 && *self.v6.value(0) & !UNPLACED == v4
    }
}

/// The shortest prefix length `p` such that the aligned block of `key` with length `p`
/// lies within `[start, end]`: the widest network around `key` inside the range.
///
/// `start <= key <= end`. The block of `h` host bits starts at or after `start` exactly when
/// `key` and `start - 1` differ at some bit at or above `h`, and ends at or before `end`
/// exactly when `key` and `end + 1` do: so the most host bits are the lower of the two
/// highest differing bits, found with one `leading_zeros` each rather than a search.
pub fn widest_prefix(family: Family, key: u128, start: u128, end: u128) -> u8 {
    debug_assert!(start <= key && key <= end && end <= family.max());
    let bits = family.bits() as u32;
    let highest_differing = |other: u128| 127 - (key ^ other).leading_zeros();
    let mut host = bits;
    if start > 0 {
        host = host.min(highest_differing(start - 1));
    }
    if end < family.max() {
        host = host.min(highest_differing(end + 1));
    }
    (bits - host) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128
    }

    #[test]
    fn widest_prefix_inside_a_range() {
        // The whole space is one range: scope 0.
        assert_eq!(
            widest_prefix(Family::V4, v4("192.0.2.1"), 0, u32::MAX as u128),
            0
        );
        // An exact /24.
        assert_eq!(
            widest_prefix(
                Family::V4,
                v4("192.0.2.77"),
                v4("192.0.2.0"),
                v4("192.0.2.255")
            ),
            24
        );
        // A range that is not one prefix: 192.0.2.0 - 192.0.3.127 → the client's side decides.
        let (s, e) = (v4("192.0.2.0"), v4("192.0.3.127"));
        assert_eq!(widest_prefix(Family::V4, v4("192.0.2.9"), s, e), 24);
        assert_eq!(widest_prefix(Family::V4, v4("192.0.3.9"), s, e), 25);
        // A single address.
        assert_eq!(
            widest_prefix(Family::V4, v4("10.0.0.1"), v4("10.0.0.1"), v4("10.0.0.1")),
            32
        );
        // IPv6.
        let s6 = 0x2001_0db8_0001_0000_0000_0000_0000_0000u128;
        let e6 = s6 | ((1u128 << 80) - 1);
        assert_eq!(widest_prefix(Family::V6, s6 + 5, s6, e6), 48);
        assert_eq!(widest_prefix(Family::V6, 7, 0, u128::MAX), 0);
        assert_eq!(
            widest_prefix(Family::V6, u128::MAX, u128::MAX, u128::MAX),
            128
        );
    }

    /// The definition, tried length by length.
    fn widest_prefix_by_search(family: Family, key: u128, start: u128, end: u128) -> u8 {
        let bits = family.bits() as u32;
        (0..=bits)
            .find(|&len| {
                let host = bits - len;
                let mask = if host >= 128 { 0 } else { !0u128 << host } & family.max();
                let first = key & mask;
                let last = first | (!mask & family.max());
                first >= start && last <= end
            })
            .expect("the /bits block of the key fits") as u8
    }

    #[test]
    fn widest_prefix_agrees_with_the_definition() {
        let mut x: u128 = 0x9E37_79B9_7F4A_7C15_0123_4567_89AB_CDEF;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for family in [Family::V4, Family::V6] {
            for _ in 0..20_000 {
                let mut v = [next(), next(), next()].map(|n| n & family.max());
                // Narrow ranges as well as wide ones: share a random number of top bits.
                let shared = (next() % u128::from(family.bits())) as u32;
                if shared > 0 {
                    let top = !0u128 << (family.bits() as u32 - shared) & family.max();
                    v = v.map(|n| (v[0] & top) | (n & !top));
                }
                v.sort_unstable();
                let [start, key, end] = v;
                assert_eq!(
                    widest_prefix(family, key, start, end),
                    widest_prefix_by_search(family, key, start, end),
                    "{family:?} key {key:#x} in [{start:#x}, {end:#x}]"
                );
            }
        }
    }
}
