//! Validated zones: every name is absolute and inside its zone, every value parsed, every
//! rule of [`super::validate`] holds. No serde here; this is what the compiler consumes.

use std::path::PathBuf;

use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;

use crate::geo::{Code, Coord};
use crate::health::Check;

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

/// Largest weight of a data center or an address. Shares are computed as products of two
/// weights in 64 bits, which this bound keeps far from overflow.
pub const MAX_WEIGHT: u32 = 1_000_000;

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
    /// Data centers, in file order; GSLB policies refer to them by index.
    pub datacenters: Vec<Datacenter>,
    /// Networks sent to given data centers by every GSLB name of the zone, before any policy.
    pub network_overrides: Vec<(IpNet, Vec<DcIdx>)>,
}

/// Index of a data center in [`Zone::datacenters`]; GSLB lists are lists of these.
///
/// Why not `usize`: the compiler turns these lists into candidate positions (`u8`), and
/// the two must not be mixed up; indexing a data center slice takes this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DcIdx(usize);

impl DcIdx {
    /// The index of the `i`th data center (file order).
    pub(crate) fn new(i: usize) -> Self {
        Self(i)
    }
}

impl std::ops::Index<DcIdx> for [Datacenter] {
    type Output = Datacenter;

    fn index(&self, i: DcIdx) -> &Datacenter {
        &self[i.0]
    }
}

/// Most addresses of one family in a [`Datacenter`]: selection keeps the ones it answers
/// as the bits of a `u64` mask ([`crate::answer::select`]). The validator enforces it.
pub const MAX_ADDRESSES: usize = 64;

/// A site that serves traffic: its addresses and where it is.
#[derive(Debug, Clone)]
pub struct Datacenter {
    /// The id operators use (`ams`).
    pub id: String,
    /// Addresses, IPv4 and IPv6 mixed, in file order; at most [`MAX_ADDRESSES`] of each family.
    pub addresses: Vec<DcAddress>,
    /// Where it is; from `location`, else the centroid of `country`.
    pub location: Option<Coord>,
    /// ISO 3166-1 country.
    pub country: Option<Code>,
    /// Continent code.
    pub continent: Option<Code>,
    /// Relative capacity among the data centers sharing a client; 0 drains it.
    pub weight: u32,
    /// Where the site reports its load, for shedding.
    pub load: Option<crate::health::LoadSignal>,
}

/// One address of a data center.
#[derive(Debug, Clone)]
pub struct DcAddress {
    /// The address answered.
    pub ip: IpAddr,
    /// Relative weight within the data center (default 1); used by weighted spreading.
    pub weight: u32,
    /// The health check probing this address, if any.
    pub check: Option<Check>,
}

/// Most candidate data centers of one [`Gslb`] name: a candidate's position in a client's
/// list is a `u8` ([`crate::geo::decision`]), counted from 0. The validator enforces it.
pub const MAX_CANDIDATES: usize = u8::MAX as usize;

/// How a GSLB name answers.
#[derive(Debug, Clone)]
pub struct Gslb {
    /// Candidate data centers (indices into [`Zone::datacenters`]), in the order written;
    /// at most [`MAX_CANDIDATES`].
    pub candidates: Vec<DcIdx>,
    /// How candidates are ordered for a client.
    pub policy: Policy,
    /// Data centers per answer.
    pub max_datacenters: usize,
    /// Addresses per data center and family; `None` for all.
    pub max_addresses: Option<usize>,
    /// TTL of the answers.
    pub ttl: Ttl,
    /// TTL while candidates are degraded or flapping, so clients move sooner.
    pub min_ttl: Ttl,
    /// What to answer when every candidate is down.
    pub all_down: AllDown,
    /// How one data center is chosen among those sharing a client.
    pub select: Select,
    /// Data centers at the head of a client's list that share its traffic by weight.
    pub spread: usize,
    /// Candidates within this many km of the nearest share like the head of the list.
    pub band_km: Option<f64>,
    /// Healthy candidates after the shared head that take a down data center's share.
    pub spill: usize,
}

/// How a GSLB name chooses among the data centers that share a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Smooth weighted round-robin per query: shares hold over any run of answers.
    Rotate,
    /// Rendezvous hashing of the client network: a network keeps its data center, and a
    /// change moves only the networks it must.
    Sticky {
        /// Prefix length hashed for IPv4 clients.
        v4_prefix: u8,
        /// Prefix length hashed for IPv6 clients.
        v6_prefix: u8,
    },
}

/// The answer of a GSLB name whose candidates are all down. Operators disagree on what is
/// right (gdnsd and Route 53 fail open, others answer empty or with a backup), so it is
/// chosen per name.
#[derive(Debug, Clone, PartialEq)]
pub enum AllDown {
    /// Answer as if every candidate were up: health checks can be wrong, an answer rarely hurts.
    FailOpen,
    /// SERVFAIL: resolvers try another server or report failure.
    ServFail,
    /// NOERROR with no addresses.
    NoData,
    /// Fixed addresses (for example a static "sorry" site).
    Addresses(Vec<IpAddr>),
    /// A CNAME to another name.
    Cname(Name),
}

impl AllDown {
    /// The policy as the zone file names it (`addresses` and `cname` for the tables).
    pub fn name(&self) -> &'static str {
        match self {
            AllDown::FailOpen => "fail_open",
            AllDown::ServFail => "servfail",
            AllDown::NoData => "nodata",
            AllDown::Addresses(_) => "addresses",
            AllDown::Cname(_) => "cname",
        }
    }
}

/// The ordering rule of a GSLB name.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Nearest first, by great-circle distance from the client.
    Nearest,
    /// Rules from client geography to lists.
    Map(GeoMap),
}

/// Client geography → ordered data-center lists (indices into [`Zone::datacenters`]).
/// The most specific matching rule wins: network, then AS number, subdivision, country,
/// continent, and finally the default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoMap {
    /// CIDR rules (longest prefix wins).
    pub network: Vec<(IpNet, Vec<DcIdx>)>,
    /// AS number rules.
    pub asn: Vec<(u32, Vec<DcIdx>)>,
    /// ISO 3166-2 subdivision rules, as `CC-SUB` uppercase.
    pub subdivision: Vec<(String, Vec<DcIdx>)>,
    /// Country rules.
    pub country: Vec<(Code, Vec<DcIdx>)>,
    /// Continent rules.
    pub continent: Vec<(Code, Vec<DcIdx>)>,
    /// For clients no rule covers.
    pub default: Fallback,
}

/// What a map answers when no rule matches.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Fallback {
    /// The candidates, ordered by distance from the client (or as written if its location is unknown).
    #[default]
    Nearest,
    /// A fixed list.
    List(Vec<DcIdx>),
}

/// An owner name and its record sets.
#[derive(Debug)]
pub struct Node {
    /// Absolute owner name (may start with a `*` label: a wildcard).
    pub name: Name,
    /// Record sets, at most one per type.
    pub rrsets: Vec<RrSet>,
    /// Set for GSLB names: A/AAAA come from data centers.
    pub gslb: Option<Gslb>,
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
