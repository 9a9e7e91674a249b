//! What to answer: the RFC 1034 walk over the snapshot, then, at a GSLB name, the selection
//! of data centers and addresses by the client's list and health.
//!
//! ```text
//! resolve (zone, node, wildcard, CNAME, referral) ──▶ select (health, fail-open, all-down)
//!     │ reads compile::Snapshot                          │ reads health::HealthTable
//!     ▼                                                  ▼
//!   Answer { rcode, sections of borrowed records, ECS scope }
//! ```
//!
//! Nothing here knows about the wire: [`crate::serve`] turns an [`Answer`] into bytes, and
//! [`crate::explain`] prints the same [`select`] decisions for operators, so the two cannot
//! disagree.

pub mod all_down;
pub mod resolve;
pub mod select;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record};
use smallvec::SmallVec;

use crate::compile::{CompiledZone, SoaNames};
use crate::metrics::{Slot, Tally};

pub use resolve::resolve;

/// A record in a response: borrowed from the snapshot, or made for this answer
/// (a wildcard's records carry the query's name as owner).
#[derive(Debug)]
pub enum Rec<'s> {
    /// A record of the snapshot.
    Shared(&'s Record),
    /// A record built for this answer.
    Owned(Box<Record>),
    /// An A (4 bytes) or AAAA (16 bytes) record of the snapshot, kept as its owner, TTL
    /// and RDATA (see [`crate::compile::RrData::Addresses`]).
    Address(&'s Name, u32, &'s [u8]),
    /// A SOA record of the snapshot, with its names in wire form.
    Soa(&'s Record, &'s SoaNames),
}

impl Rec<'_> {
    /// The record as hickory-proto's type: borrowed, or built from an address record's
    /// bytes (no heap allocation for owner names of up to 32 bytes).
    pub fn record(&self) -> Cow<'_, Record> {
        match self {
            Rec::Shared(r) | Rec::Soa(r, _) => Cow::Borrowed(r),
            Rec::Owned(r) => Cow::Borrowed(r),
            Rec::Address(owner, ttl, rdata) => {
                let data = match <[u8; 4]>::try_from(*rdata) {
                    Ok(v4) => RData::A(A(Ipv4Addr::from(v4))),
                    Err(_) => {
                        let v6 = <[u8; 16]>::try_from(*rdata).unwrap_or_default();
                        RData::AAAA(AAAA(Ipv6Addr::from(v6)))
                    }
                };
                Cow::Owned(Record::from_rdata((*owner).clone(), *ttl, data))
            }
        }
    }
}

/// The records of one RRset as answer entries (see [`crate::compile::CompiledRrset::entries`]).
#[derive(Debug, Clone)]
pub enum Entries<'s> {
    /// Records held whole.
    Records(std::slice::Iter<'s, Record>),
    /// Address records held as bytes: owner, TTL, and the RDATA of each.
    Addresses(&'s Name, u32, std::slice::ChunksExact<'s, u8>),
    /// A zone's SOA record, with its names in wire form.
    Soa(std::slice::Iter<'s, Record>, &'s SoaNames),
}

impl<'s> Iterator for Entries<'s> {
    type Item = Rec<'s>;

    fn next(&mut self) -> Option<Rec<'s>> {
        match self {
            Entries::Records(it) => it.next().map(Rec::Shared),
            Entries::Addresses(owner, ttl, it) => it.next().map(|b| Rec::Address(owner, *ttl, b)),
            Entries::Soa(it, names) => it.next().map(|r| Rec::Soa(r, names)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Entries::Records(it) => it.size_hint(),
            Entries::Addresses(_, _, it) => it.size_hint(),
            Entries::Soa(it, _) => it.size_hint(),
        }
    }
}

/// Who asked, as answers are chosen for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The ECS address, or the packet's source address.
    pub addr: IpAddr,
    /// The ECS source prefix length, when `addr` came from ECS: a sticky name hashes no more
    /// of the address than the client disclosed.
    pub ecs_source: Option<u8>,
}

impl From<IpAddr> for Client {
    fn from(addr: IpAddr) -> Self {
        Self {
            addr,
            ecs_source: None,
        }
    }
}

/// Records of one response section.
pub type Section<'s> = SmallVec<[Rec<'s>; 4]>;

/// What to send back, before EDNS and encoding.
#[derive(Debug)]
pub struct Answer<'s> {
    /// Response code.
    pub rcode: ResponseCode,
    /// AA flag: set for data from our zones, clear for referrals and refusals.
    pub authoritative: bool,
    /// Answer section.
    pub answer: Section<'s>,
    /// Authority section.
    pub authority: Section<'s>,
    /// Additional section (OPT is added when encoding).
    pub additional: Section<'s>,
    /// True for referrals: their glue must not be dropped to fit a small UDP payload.
    pub referral: bool,
    /// For answers that depend on the client's address: the prefix length around it over
    /// which the answer is the same (the ECS scope). `None` when nothing depended on it.
    pub scope: Option<u8>,
    /// The first `meridian_queries_total` cell of the zone that answered
    /// ([`Slot::NO_ZONE`] for none).
    pub zone_metric: Slot,
    /// What a GSLB answer adds to the metrics: counted by the server once the reply is
    /// sent, never by `explain`.
    pub tally: Tally,
    /// For a GSLB answer: which data center came first and why (for the query log).
    pub chosen: Option<Chosen>,
    /// How many of the first answer records are owned by the question's name as the
    /// snapshot holds it (lowercase): a writer may point them at the question (`c0 0c`)
    /// without reading their names. 0 when unknown, and for a wildcard's records, which
    /// carry the name as asked.
    pub at_question: usize,
}

/// How a GSLB answer's first data center was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// The client's list, by rank and weight.
    Ranked,
    /// A data center ahead of it in the client's list was down.
    Failover,
    /// Every candidate was down; the name fails open.
    FailOpen,
    /// Every candidate was down; the all-down policy answered.
    AllDown,
}

impl How {
    /// The name in the log.
    pub fn name(self) -> &'static str {
        match self {
            How::Ranked => "ranked",
            How::Failover => "failover",
            How::FailOpen => "fail_open",
            How::AllDown => "all_down",
        }
    }
}

/// What chose a GSLB answer, as the log shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// The `meridian_answers_total` slot of the data center answered first (its zone, name
    /// and id); `None` when the all-down policy answered.
    pub datacenter: Option<Slot>,
    /// Its position in the client's list (0: the client's first choice).
    pub rank: Option<u8>,
    /// How.
    pub how: How,
}

impl<'s> Answer<'s> {
    pub(crate) fn new(rcode: ResponseCode, authoritative: bool) -> Self {
        Self {
            rcode,
            authoritative,
            answer: SmallVec::new(),
            authority: SmallVec::new(),
            additional: SmallVec::new(),
            referral: false,
            scope: None,
            zone_metric: Slot::NO_ZONE,
            tally: Tally::default(),
            chosen: None,
            at_question: 0,
        }
    }

    /// REFUSED: the name is in none of our zones.
    pub fn refused() -> Self {
        Self::error(ResponseCode::Refused)
    }

    /// An error reply with no records (FORMERR, NOTIMP, BADVERS, REFUSED).
    pub fn error(rcode: ResponseCode) -> Self {
        Self::new(rcode, false)
    }

    /// A negative answer (NXDOMAIN, or NODATA with NOERROR): the zone's SOA at the
    /// negative TTL in the authority section (RFC 2308 §3).
    pub(crate) fn negative(&mut self, zone: &'s CompiledZone, rcode: ResponseCode) {
        self.rcode = rcode;
        self.authority.extend(
            zone.negative_soa
                .iter()
                .map(|r| Rec::Soa(r, &zone.soa_names)),
        );
    }
}
