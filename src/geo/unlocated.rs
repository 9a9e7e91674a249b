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

/// Addresses without a location, for both families.
#[derive(Debug)]
pub struct Unlocated {
    v4: Partition<bool>,
    v6: Partition<bool>,
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
            if p.len() > 4096 {
                p.build_index();
            }
            p
        };
        Self {
            v4: unknown(&base.v4),
            v6: unknown(&base.v6),
        }
    }

    /// The unknown ranges of one family.
    pub fn partition(&self, family: crate::family::Family) -> &Partition<bool> {
        match family {
            crate::family::Family::V4 => &self.v4,
            crate::family::Family::V6 => &self.v6,
        }
    }

    /// Whether the databases know nothing of where `ip` is (IPv4-mapped counts as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (part, key) = match ip.to_canonical() {
            IpAddr::V4(a) => (&self.v4, u128::from(u32::from(a))),
            IpAddr::V6(a) => (&self.v6, u128::from(a)),
        };
        *part.value(part.index_of(key))
    }
}
