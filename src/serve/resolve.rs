//! The answer to one question, decided over a [`Snapshot`]: no I/O, no locks, no logging.
//!
//! RFC 1034 §4.3.2 in the order it is written: find the zone, then the node (exact, wildcard,
//! or the delegation above it), then the record set, following CNAMEs inside the zone.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use smallvec::SmallVec;

use crate::compile::{CompiledNode, CompiledZone, Found, Snapshot};
use crate::name_key::NameKey;

/// Most CNAMEs followed for one answer; longer chains are answered as far as they go.
const MAX_CHAIN: usize = 8;

/// A record in a response: borrowed from the snapshot, or made for this answer
/// (a wildcard's records carry the query's name as owner).
#[derive(Debug)]
pub enum Rec<'s> {
    /// A record of the snapshot.
    Shared(&'s Record),
    /// A record built for this answer.
    Owned(Box<Record>),
}

impl Rec<'_> {
    /// The record.
    pub fn get(&self) -> &Record {
        match self {
            Rec::Shared(r) => r,
            Rec::Owned(r) => r,
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
}

impl<'s> Answer<'s> {
    fn new(rcode: ResponseCode, authoritative: bool) -> Self {
        Self {
            rcode,
            authoritative,
            answer: SmallVec::new(),
            authority: SmallVec::new(),
            additional: SmallVec::new(),
            referral: false,
            scope: None,
        }
    }

    /// REFUSED: the name is in none of our zones.
    pub fn refused() -> Self {
        Self::new(ResponseCode::Refused, false)
    }

    fn negative(&mut self, zone: &'s CompiledZone, rcode: ResponseCode) {
        self.rcode = rcode;
        self.authority
            .extend(zone.negative_soa.iter().map(Rec::Shared));
    }
}

/// Answers `qname`/`qtype` from `snap` for a client at `client` (the ECS address or the
/// packet's source). `key` is `qname`'s lowercase wire key.
pub fn resolve<'s>(
    snap: &'s Snapshot,
    qname: &Name,
    key: &NameKey,
    qtype: RecordType,
    client: IpAddr,
) -> Answer<'s> {
    let Some(mut zone) = snap.find_zone(key) else {
        return Answer::refused();
    };
    // RFC 4035 §3.1.4.1: DS lives in the parent; when we serve the parent too, it answers.
    if qtype == RecordType::DS && key.labels() == zone.apex_labels && key.labels() > 0 {
        if let Some(parent) = snap.find_zone_below(key) {
            zone = parent;
        }
    }
    let mut ans = Answer::new(ResponseCode::NoError, true);

    // The name being looked up: the question, then each CNAME target in turn.
    let mut cur_name: Option<Name> = None;
    let mut cur_key: Option<NameKey> = None;
    for hop in 0..=MAX_CHAIN {
        let k = cur_key.as_ref().unwrap_or(key);
        let name = cur_name.as_ref().unwrap_or(qname);
        let (id, wildcard) = match zone.find(k) {
            Found::Node(id) => (id, false),
            Found::Wildcard(id) => (id, true),
            Found::NxDomain => {
                // RFC 6604: after a CNAME the rcode describes the last name of the chain.
                ans.negative(zone, ResponseCode::NXDomain);
                return ans;
            }
            Found::Delegated(cut) => {
                if hop == 0 {
                    referral_or_ds(&mut ans, zone, zone.node(cut), k, qtype);
                } else if let Some(ns) = zone.node(cut).rrset(RecordType::NS) {
                    // RFC 1034 §4.3.2 step 3b: a chain that leads into a delegation ends
                    // with the referral, so the resolver can continue at the child.
                    ans.authority.extend(ns.records.iter().map(Rec::Shared));
                    ans.additional.extend(ns.additional.iter().map(Rec::Shared));
                }
                return ans;
            }
        };
        let node = zone.node(id);
        let owner = |r: &'s Record| -> Rec<'s> {
            if wildcard {
                let mut r = r.clone();
                r.name = name.clone();
                Rec::Owned(Box::new(r))
            } else {
                Rec::Shared(r)
            }
        };

        if let Some(gslb) = &node.gslb {
            if matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY) {
                let family = if qtype == RecordType::AAAA {
                    RecordType::AAAA
                } else {
                    RecordType::A
                };
                let decision = gslb.table.lookup(client);
                ans.scope = Some(if gslb.table.is_uniform() {
                    0
                } else {
                    decision.scope
                });
                let mut taken = 0;
                for &pos in decision.list {
                    let records = gslb.candidates[pos as usize].records(family);
                    if records.is_empty() {
                        continue;
                    }
                    ans.answer.extend(records.iter().map(owner));
                    taken += 1;
                    if taken == gslb.max_datacenters {
                        break;
                    }
                }
                if taken == 0 {
                    // No candidate has an address of this family: the name exists, NODATA.
                    ans.negative(zone, ResponseCode::NoError);
                }
                return ans;
            }
        }
        if let Some(records) = records_for(zone, node, qtype) {
            ans.answer.extend(records.iter().map(owner));
            if let Some(rs) = node.rrset(qtype) {
                ans.additional.extend(rs.additional.iter().map(Rec::Shared));
            }
            return ans;
        }
        match node.rrset(RecordType::CNAME) {
            Some(cname) if qtype != RecordType::CNAME => {
                ans.answer.extend(cname.records.iter().map(owner));
                let Some(target) = cname.cname_target.as_deref().and_then(NameKey::from_wire)
                else {
                    return ans;
                };
                // Follow only inside this zone; a resolver follows the rest.
                match snap.find_zone(&target) {
                    Some(z) if std::ptr::eq(z, zone) => {}
                    _ => return ans,
                }
                cur_name = cname.records.first().and_then(|r| match &r.data {
                    hickory_proto::rr::RData::CNAME(c) => Some(c.0.clone()),
                    _ => None,
                });
                cur_key = Some(target);
            }
            _ => {
                ans.negative(zone, ResponseCode::NoError);
                return ans;
            }
        }
    }
    ans
}

/// The records of `node` that answer `qtype`, if it has them. ANY gets one set (RFC 8482).
fn records_for<'s>(
    zone: &'s CompiledZone,
    node: &'s CompiledNode,
    qtype: RecordType,
) -> Option<&'s [Record]> {
    let is_apex = node.name == zone.origin;
    match qtype {
        RecordType::SOA if is_apex => Some(&zone.soa),
        RecordType::ANY => {
            // RFC 8482 §4.2: answer with one RRset of the node rather than all of them.
            const PREFERENCE: [RecordType; 4] = [
                RecordType::A,
                RecordType::AAAA,
                RecordType::CNAME,
                RecordType::MX,
            ];
            if is_apex {
                return Some(&zone.soa);
            }
            PREFERENCE
                .iter()
                .find_map(|t| node.rrset(*t))
                .or_else(|| node.rrsets.first())
                .map(|rs| &*rs.records)
        }
        _ => node.rrset(qtype).map(|rs| &*rs.records),
    }
}

/// A name at or below a delegation: a referral, except DS at the cut itself, which the
/// parent answers (we hold none, so NODATA).
fn referral_or_ds<'s>(
    ans: &mut Answer<'s>,
    zone: &'s CompiledZone,
    cut: &'s CompiledNode,
    key: &NameKey,
    qtype: RecordType,
) {
    let at_cut = crate::name_key::key_of(&cut.name).as_ref() == key.full();
    if qtype == RecordType::DS && at_cut {
        ans.negative(zone, ResponseCode::NoError);
        return;
    }
    ans.authoritative = false;
    ans.referral = true;
    if let Some(ns) = cut.rrset(RecordType::NS) {
        ans.authority.extend(ns.records.iter().map(Rec::Shared));
        ans.additional.extend(ns.additional.iter().map(Rec::Shared));
    }
}
