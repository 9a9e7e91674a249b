//! The address family: IPv4 or IPv6, as asked for by a query type, as the key space of the
//! GeoIP tables, and as the half of a data center's addresses an answer comes from.
//!
//! A leaf: every layer uses it and it uses none of them.

use hickory_proto::rr::RecordType;
use ipnet::IpNet;

/// IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: A records, 32-bit keys.
    V4,
    /// IPv6: AAAA records, 128-bit keys.
    V6,
}

impl Family {
    /// Both, in table order.
    pub const ALL: [Self; 2] = [Self::V4, Self::V6];

    /// AAAA asks for IPv6; A and ANY for IPv4 (RFC 8482: one RRset for ANY).
    pub fn of(qtype: RecordType) -> Self {
        if qtype == RecordType::AAAA {
            Self::V6
        } else {
            Self::V4
        }
    }

    /// The record type of an address of this family.
    pub fn record_type(self) -> RecordType {
        match self {
            Self::V4 => RecordType::A,
            Self::V6 => RecordType::AAAA,
        }
    }

    /// Index for per-family tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Address bits.
    pub fn bits(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }

    /// The largest address, as a key.
    pub fn max(self) -> u128 {
        match self {
            Self::V4 => u32::MAX as u128,
            Self::V6 => u128::MAX,
        }
    }

    /// First and last address of `net`, as keys.
    pub fn range_of(net: &IpNet) -> (u128, u128) {
        match net {
            IpNet::V4(n) => (
                u32::from(n.network()) as u128,
                u32::from(n.broadcast()) as u128,
            ),
            IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
        }
    }
}
