//! Which addresses the databases cannot place: counted as GeoIP misses.
//!
//! The per-policy tables cannot say: a range whose clients are unknown merges with its
//! neighbours when they get the same list (which keeps the ECS scope as wide as it is
//! correct), so "unknown" is lost there. This is a separate, small partition of the
//! databases' own ranges (unknown space is a few hundred merged ranges: private, reserved,
//! unallocated), looked up only for GSLB answers.

use std::net::IpAddr;

use super::db::BasePartition;
use super::partition::Partition;
use super::table::PackedV4;
use crate::family::Family;

/// Ranges past which a family gets a lookup index.
const INDEXED: usize = 4096;

/// Addresses without a location, for both families.
#[derive(Debug)]
pub struct Unlocated {
    v4: Partition<bool>,
    v6: Partition<bool>,
    /// For a database with holes all over, `v4` again as 8-byte pairs behind a /16 index
    /// for the query path: the partition's 16-byte keys would cost more cache misses than
    /// the lookup of the answer itself.
    v4_packed: Option<PackedV4>,
}

impl Unlocated {
    /// The unknown ranges of `base`: location id 0, or a location that has no country,
    /// continent or coordinates.
    pub fn new(base: &BasePartition) -> Self {
        let unknown = |p: &Partition<(u32, u32)>| {
            let mut p = p.derive(|(loc, _)| {
                base.locations
                    .get(*loc as usize)
                    .is_none_or(super::Location::is_unknown)
            });
            // Usually a few hundred ranges (private, reserved, unallocated space), whose
            // plain binary search stays in cache; an index only for a database with holes
            // all over.
            if p.len() > INDEXED && p.family() == Family::V6 {
                p.build_index();
            }
            p
        };
        let v4 = unknown(&base.v4);
        let v4_packed = (v4.len() > INDEXED).then(|| {
            PackedV4::from_ranges(
                v4.iter()
                    .map(|(start, _, unknown)| (start as u32, u32::from(*unknown)))
                    .collect(),
            )
        });
        Self {
            v4,
            v6: unknown(&base.v6),
            v4_packed,
        }
    }

    /// The unknown ranges of one family.
    pub fn partition(&self, family: Family) -> &Partition<bool> {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// Whether the databases know nothing of where `ip` is (IPv4-mapped counts as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => match &self.v4_packed {
                Some(packed) => packed.find(u32::from(a)).2 != 0,
                None => *self.v4.value(self.v4.index_of(u128::from(u32::from(a)))),
            },
            IpAddr::V6(a) => *self.v6.value(self.v6.index_of(u128::from(a))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Code;
    use crate::geo::Location;

    #[test]
    fn a_database_with_holes_all_over_answers_through_the_packed_index() {
        // 3000 located /24s, each followed by a hole: 6001 ranges, past the index bound.
        let located: Vec<(u128, u128, u32)> = (0..3000u128)
            .map(|i| {
                let start = (10 << 24) + i * 512;
                (start, start + 255, 1)
            })
            .collect();
        let known = Location {
            country: Some(Code::parse("FR").unwrap()),
            ..Location::default()
        };
        let base = BasePartition {
            v4: Partition::from_sorted(Family::V4, located).derive(|v| (v.unwrap_or(0), 0)),
            v6: Partition::uniform(Family::V6, (0, 0)),
            locations: vec![Location::default(), known],
        };
        let u = Unlocated::new(&base);
        assert!(u.v4_packed.is_some(), "{} ranges", u.v4.len());
        let v4 = |n: u32| IpAddr::V4(n.into());
        assert!(u.contains(v4(0)), "before the first network");
        for i in [0u32, 1, 1234, 2999] {
            let start = (10 << 24) + i * 512;
            assert!(!u.contains(v4(start)), "first address of network {i}");
            assert!(!u.contains(v4(start + 255)), "last address of network {i}");
            assert!(u.contains(v4(start + 256)), "the hole after network {i}");
            assert!(u.contains(v4(start + 511)), "end of that hole");
        }
        assert!(u.contains(v4(u32::MAX)));
        // IPv4-mapped IPv6 counts as IPv4.
        let mapped = std::net::Ipv4Addr::from((10 << 24) + 5).to_ipv6_mapped();
        assert!(!u.contains(IpAddr::V6(mapped)));
        assert!(u.contains("2001:db8::1".parse().unwrap()));
    }
}
