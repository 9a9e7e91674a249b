//! Validated zones: every name is absolute and inside its zone, every value parsed, every
//! rule of [`super::validate`] holds. No serde here; this is what the compiler consumes.

use std::path::PathBuf;

use hickory_proto::rr::{Name, RData, RecordType};

/// A record TTL in seconds.
///
/// Why not `Duration`: DNS TTLs are whole seconds, and RFC 2181 §8 caps them at 2^31 − 1;
/// the newtype keeps that bound in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ttl(u32);

impl Ttl {
    /// The largest TTL RFC 2181 §8 allows.
    pub const MAX: u32 = i32::MAX as u32;

    /// A TTL, if `secs` is within RFC 2181's bound.
    pub fn new(secs: u64) -> Option<Self> {
        u32::try_from(secs)
            .ok()
            .filter(|s| *s <= Self::MAX)
            .map(Self)
    }

    /// Seconds.
    pub fn secs(self) -> u32 {
        self.0
    }
}

/// One zone, ready to compile.
#[derive(Debug)]
pub struct Zone {
    /// The apex, absolute.
    pub origin: Name,
    /// The file it was read from, for messages.
    pub file: PathBuf,
    /// The SOA record data.
    pub soa: hickory_proto::rr::rdata::SOA,
    /// TTL of the SOA record itself (the zone's default TTL).
    pub soa_ttl: Ttl,
    /// Every owner name with data, apex included.
    pub nodes: Vec<Node>,
}

/// An owner name and its record sets.
#[derive(Debug)]
pub struct Node {
    /// Absolute owner name (may start with a `*` label: a wildcard).
    pub name: Name,
    /// Record sets, at most one per type.
    pub rrsets: Vec<RrSet>,
}

impl Node {
    /// The record set of `rtype`, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }
}

/// Records of one name and type.
#[derive(Debug)]
pub struct RrSet {
    /// Record type.
    pub rtype: RecordType,
    /// TTL shared by the set (RFC 2181 §5.2 forbids differing TTLs in one set).
    pub ttl: Ttl,
    /// Record data, in file order, duplicates removed.
    pub data: Vec<RData>,
}
