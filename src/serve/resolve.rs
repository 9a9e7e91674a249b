//! The answer to one question, decided over a [`Snapshot`]: no I/O, no locks, no logging.
//!
//! RFC 1034 §4.3.2 in the order it is written: find the zone, then the node (exact, wildcard,
//! or the delegation above it), then the record set, following CNAMEs inside the zone.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use smallvec::SmallVec;

use std::sync::atomic::Ordering;

use crate::compile::{
    AllDownAnswer, Candidate, CompiledNode, CompiledRrset, CompiledZone, Found, GslbNode, Snapshot,
};
use crate::health::Admin;
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
        Self::error(ResponseCode::Refused)
    }

    /// An error reply with no records (FORMERR, NOTIMP, BADVERS, REFUSED).
    pub fn error(rcode: ResponseCode) -> Self {
        Self::new(rcode, false)
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
        if let Some(parent) = snap.find_parent_zone(key) {
            zone = parent;
        }
    }
    let mut ans = Answer::new(ResponseCode::NoError, true);

    // The name being looked up: the question, then each CNAME target in turn.
    let mut cur_name: &Name = qname;
    let mut cur_key: Option<NameKey> = None;
    // Targets followed so far: a wildcard CNAME can lead back to itself under a new name.
    let mut followed: SmallVec<[&'s [u8]; MAX_CHAIN]> = SmallVec::new();
    for hop in 0..=MAX_CHAIN {
        let k = cur_key.as_ref().unwrap_or(key);
        let name = cur_name;
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

        // What to answer here, or the CNAME to follow.
        let cname = match &node.gslb {
            Some(gslb) if matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY) => {
                match gslb_answer(&mut ans, zone, gslb, Family::of(qtype), client, &owner) {
                    Some(fallback) => fallback,
                    None => return ans,
                }
            }
            _ => {
                if let Some(records) = records_for(zone, node, qtype) {
                    ans.answer.extend(records.iter().map(owner));
                    if let Some(rs) = node.rrset(qtype) {
                        ans.additional.extend(rs.additional.iter().map(Rec::Shared));
                    }
                    return ans;
                }
                match node.rrset(RecordType::CNAME) {
                    Some(cname) if qtype != RecordType::CNAME => cname,
                    _ => {
                        ans.negative(zone, ResponseCode::NoError);
                        return ans;
                    }
                }
            }
        };
        ans.answer.extend(cname.records.iter().map(owner));
        let (Some(target_wire), Some(RData::CNAME(target_name))) = (
            cname.cname_target.as_deref(),
            cname.records.first().map(|r| &r.data),
        ) else {
            return ans;
        };
        if followed.contains(&target_wire) {
            return ans;
        }
        followed.push(target_wire);
        let Some(target) = NameKey::from_wire(target_wire) else {
            return ans;
        };
        // Follow only inside this zone; a resolver follows the rest.
        match snap.find_zone(&target) {
            Some(z) if std::ptr::eq(z, zone) => {}
            _ => return ans,
        }
        cur_name = &target_name.0;
        cur_key = Some(target);
    }
    ans
}

/// An address family, as asked for by a query type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A records.
    V4,
    /// AAAA records.
    V6,
}

impl Family {
    /// AAAA asks for IPv6; A and ANY for IPv4 (RFC 8482: one RRset for ANY).
    pub fn of(qtype: RecordType) -> Self {
        if qtype == RecordType::AAAA {
            Family::V6
        } else {
            Family::V4
        }
    }

    /// Index for per-family tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A and AAAA at a GSLB name: the client's list, health, then the all-down policy.
/// Returns the fallback CNAME when the policy answers with one, for the caller to follow.
fn gslb_answer<'s>(
    ans: &mut Answer<'s>,
    zone: &'s CompiledZone,
    gslb: &'s GslbNode,
    family: Family,
    client: IpAddr,
    owner: &dyn Fn(&'s Record) -> Rec<'s>,
) -> Option<&'s CompiledRrset> {
    let decision = gslb.table.lookup(client);
    ans.scope = Some(if gslb.table.is_uniform() {
        0
    } else {
        decision.scope
    });
    let mut pick = pick(gslb, decision.list, family);
    if !pick.had_family {
        // NODATA. When no candidate of the name has the family, that holds for every
        // client (scope 0); otherwise it is this client's list that lacks it.
        if gslb
            .candidates
            .iter()
            .all(|c| c.family(family).records.is_empty())
        {
            ans.scope = Some(0);
        }
        ans.negative(zone, ResponseCode::NoError);
        return None;
    }
    if pick.chosen.is_empty() {
        // Counted here; logged by the health side when the name's state changes
        // (see [`all_down`]), so the query path never logs.
        gslb.all_down_total.fetch_add(1, Ordering::Relaxed);
        match &gslb.all_down {
            AllDownAnswer::FailOpen => pick = fail_open(gslb, decision.list, family),
            AllDownAnswer::ServFail => {
                ans.rcode = ResponseCode::ServFail;
                return None;
            }
            AllDownAnswer::NoData => {
                ans.negative(zone, ResponseCode::NoError);
                return None;
            }
            AllDownAnswer::Records { a, aaaa } => {
                let records = if family == Family::V6 { aaaa } else { a };
                if records.is_empty() {
                    ans.negative(zone, ResponseCode::NoError);
                }
                ans.answer.extend(records.iter().map(owner));
                return None;
            }
            AllDownAnswer::Cname(rrset) => return Some(rrset),
        }
    }
    for &(pos, mask) in &pick.chosen {
        let f = gslb.candidates[pos as usize].family(family);
        // Unhealthy or flapping candidates: the short TTL moves clients sooner.
        let records = if pick.degraded { &f.short } else { &f.records };
        for (i, r) in records.iter().enumerate().take(64) {
            if mask & (1 << i) != 0 {
                ans.answer.push(owner(r));
            }
        }
    }
    None
}

/// The candidates (position, bitmask of addresses) that answer, decided by health.
#[derive(Debug, Default)]
pub struct Pick {
    /// Chosen candidates, best first, each with the addresses that are up.
    pub chosen: SmallVec<[(u8, u64); 4]>,
    /// Some candidate considered was down, partly down or flapping.
    pub degraded: bool,
    /// Some candidate in the list has an address of the family.
    pub had_family: bool,
}

/// Keeps the lowest `n` set bits of `mask`: the first `n` healthy addresses, in file order.
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

/// Which addresses of a candidate are in, by the operators' overrides and the probes.
/// The more specific override wins: an address taken down or drained stays out even when
/// its data center is forced up.
fn healthy_mask(c: &Candidate, family: Family, degraded: &mut bool) -> u64 {
    let f = c.family(family);
    let dc = c.admin.get();
    if matches!(dc, Admin::Down | Admin::Drain) {
        *degraded = true;
        return 0;
    }
    let mut m = 0u64;
    for (i, h) in f.health.iter().enumerate().take(64) {
        // A data center forced up carries its addresses that have no override of their own.
        let up = h.is_up() || (dc == Admin::Up && h.admin.get() == Admin::None);
        if up {
            m |= 1 << i;
        } else {
            *degraded = true;
        }
        *degraded |= dc != Admin::Up && h.is_flapping();
    }
    m
}

/// Walks the client's ordered list, skipping data centers that are down, keeping the
/// addresses that are up (at most `max_addresses` of them), until `max_datacenters` are
/// chosen. At most 64 addresses per data center and family are considered.
pub fn pick(gslb: &GslbNode, list: &[u8], family: Family) -> Pick {
    let mut p = Pick::default();
    for &pos in list {
        let c = &gslb.candidates[pos as usize];
        if c.family(family).records.is_empty() {
            continue;
        }
        p.had_family = true;
        let mask = healthy_mask(c, family, &mut p.degraded);
        if mask == 0 {
            continue;
        }
        p.chosen.push((pos, first_bits(mask, gslb.max_addresses)));
        if p.chosen.len() == gslb.max_datacenters {
            break;
        }
    }
    p
}

/// True when every candidate of the name that has the family is out: the state the
/// health side logs changes of.
pub fn all_down(gslb: &GslbNode, family: Family) -> bool {
    let mut ignored = false;
    let mut any = false;
    for c in gslb.candidates.iter() {
        if c.family(family).records.is_empty() {
            continue;
        }
        any = true;
        if healthy_mask(c, family, &mut ignored) != 0 {
            return false;
        }
    }
    any
}

/// Every candidate down: answer as if the probes said up. Addresses and data centers an
/// operator took out (down or drain) stay out, unless that leaves nothing: fail open never
/// answers empty.
fn fail_open(gslb: &GslbNode, list: &[u8], family: Family) -> Pick {
    let mut p = Pick {
        degraded: true,
        had_family: true,
        ..Pick::default()
    };
    let operator_out = |a: Admin| matches!(a, Admin::Down | Admin::Drain);
    for honour_operators in [true, false] {
        for &pos in list {
            let c = &gslb.candidates[pos as usize];
            let f = c.family(family);
            if f.records.is_empty() || (honour_operators && operator_out(c.admin.get())) {
                continue;
            }
            let mut mask = 0u64;
            for (i, h) in f.health.iter().enumerate().take(64) {
                if !honour_operators || !operator_out(h.admin.get()) {
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
    // Inside the zone, a name with as many labels as the cut is the cut.
    let at_cut = key.labels() == cut.name.num_labels() as usize;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::HealthSources;
    use crate::diag::Diagnostics;
    use crate::geo::db::GeoDb;
    use crate::health::Registry;
    use crate::overrides::{OverrideKey, Overrides};
    use std::str::FromStr;
    use std::sync::Arc;

    const ZONE: &str = r#"
origin = "example.com"
[soa]
primary = "ns1"
contact = "hostmaster"
serial = 1
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
[names.sorry]
a = "192.0.2.99"
[datacenters.a]
addresses = ["192.0.2.10", "192.0.2.11"]
location = [0.0, 0.0]
[names.cdn.gslb]
datacenters = ["a"]
max_addresses = 1
all_down = { cname = "sorry" }
"#;

    fn snapshot(overrides: &Arc<Overrides>) -> Snapshot {
        let mut diags = Diagnostics::new();
        let zone = crate::zone::validate_zone(std::path::Path::new("z.toml"), ZONE, &mut diags)
            .unwrap_or_else(|| panic!("{}", diags.render()));
        let geo = GeoDb::empty(Vec::new());
        let base = geo.base_partition().unwrap();
        let health = HealthSources {
            registry: Registry::new(),
            overrides: overrides.clone(),
        };
        Snapshot::compile(&[zone], Arc::new(geo), &base, &health, 1)
    }

    fn answer(snap: &Snapshot) -> Vec<String> {
        let name = Name::from_str("cdn.example.com.").unwrap();
        let key = NameKey::new(&name).unwrap();
        let a = resolve(
            snap,
            &name,
            &key,
            RecordType::A,
            "192.0.2.1".parse().unwrap(),
        );
        a.answer.iter().map(|r| r.get().to_string()).collect()
    }

    #[test]
    fn max_addresses_takes_the_first_healthy_ones() {
        let overrides = Overrides::load(None).unwrap();
        let snap = snapshot(&overrides);
        assert_eq!(answer(&snap), ["cdn.example.com. 30 IN A 192.0.2.10"]);
        let first = OverrideKey::Address {
            address: "192.0.2.10".parse().unwrap(),
        };
        overrides.set(&first, Admin::Down).unwrap();
        // The second address stands in; the TTL is the short one while degraded.
        assert_eq!(answer(&snap), ["cdn.example.com. 10 IN A 192.0.2.11"]);
    }

    #[test]
    fn an_all_down_cname_inside_the_zone_is_followed() {
        let overrides = Overrides::load(None).unwrap();
        let snap = snapshot(&overrides);
        let dc = OverrideKey::Datacenter {
            zone: "example.com.".into(),
            datacenter: "a".into(),
        };
        overrides.set(&dc, Admin::Down).unwrap();
        assert_eq!(
            answer(&snap),
            [
                "cdn.example.com. 10 IN CNAME sorry.example.com.",
                "sorry.example.com. 3600 IN A 192.0.2.99"
            ]
        );
        let gslb = snap.zones()[0].gslb_nodes().next().unwrap();
        assert_eq!(gslb.all_down_total.load(Ordering::Relaxed), 1);
    }
}
