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
}

/// Address → candidate list, for both families.
#[derive(Debug)]
pub struct GeoTable {
    pub(super) v4: Partition<ListId>,
    pub(super) v6: Partition<ListId>,
    pub(super) lists: Vec<Ranked>,
}

/// One interned list: the candidate order and how many at its head are equally near.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// Candidate positions, best first.
    pub order: Box<[u8]>,
    /// Candidates at the head of `order` within the band of the nearest; at least 1.
    pub near: u8,
}

impl GeoTable {
    /// The decision for `ip` (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn lookup(&self, ip: IpAddr) -> Decision<'_> {
        let (part, key) = match ip.to_canonical() {
            IpAddr::V4(a) => (&self.v4, u32::from(a) as u128),
            IpAddr::V6(a) => (&self.v6, u128::from(a)),
        };
        let i = part.index_of(key);
        let (start, end) = part.bounds(i);
        let list_id = *part.value(i);
        let mut scope = widest_prefix(part.family(), key, start, end);
        if ip.is_ipv6() && part.family() == Family::V4 {
            // Asked as ::ffff:a.b.c.d: the scope is in IPv6 terms, below the mapped /96.
            scope += 96;
        }
        let ranked = &self.lists[list_id as usize];
        Decision {
            list: &ranked.order,
            near: ranked.near,
            scope,
        }
    }

    /// True when every address gets the same list: the answer does not depend on the client.
    pub fn is_uniform(&self) -> bool {
        self.v4.len() == 1 && self.v6.len() == 1 && self.v4.value(0) == self.v6.value(0)
    }
}

/// The shortest prefix length `p` such that the aligned block of `key` with length `p`
/// lies within `[start, end]`: the widest network around `key` inside the range.
pub fn widest_prefix(family: Family, key: u128, start: u128, end: u128) -> u8 {
    let bits = family.bits() as u32;
    let fits = |len: u32| {
        let host = bits - len;
        let mask = if host >= 128 { 0 } else { !0u128 << host } & family.max();
        let first = key & mask;
        let last = first | (!mask & family.max());
        first >= start && last <= end
    };
    // Longer prefixes are smaller blocks, so "fits" is monotonic in the length.
    let (mut lo, mut hi) = (0u32, bits);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) { hi = mid } else { lo = mid + 1 }
    }
    lo as u8
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
    }
}
