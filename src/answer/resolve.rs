//! The answer to one question, decided over a [`Snapshot`]: no I/O, no locks, no logging.
//!
//! RFC 1034 §4.3.2 in the order it is written: find the zone, then the node (exact, wildcard,
//! or the delegation above it), then the record set, following CNAMEs inside the zone.

use hickory_proto::op::ResponseCode;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use smallvec::SmallVec;

use super::select::{self, Choice};
use super::{Answer, Chosen, Client, Entries, How, Rec};
use crate::compile::{
    AllDownAnswer, CompiledNode, CompiledRrset, CompiledZone, Found, GslbNode, Snapshot,
};
use crate::family::Family;
use crate::metrics::Slot;
use crate::name_key::NameKey;

/// Most CNAMEs followed for one answer; longer chains are answered as far as they go.
pub const MAX_CHAIN: usize = 8;

/// The name asked, case kept. Only a wildcard answer needs it as a [`Name`] (its records
/// carry the asked name as owner), so it is built then and not for every query.
pub trait AskedName {
    /// The name; `None` if it cannot be made (the records keep their own owner).
    fn to_name(&self) -> Option<Name>;
}

impl AskedName for Name {
    fn to_name(&self) -> Option<Name> {
        Some(self.clone())
    }
}

/// Answers `qname`/`qtype` from `snap` for `client` (the ECS address or the packet's
/// source). `key` is `qname`'s lowercase wire key.
pub fn resolve<'s>(
    snap: &'s Snapshot,
    qname: &(impl AskedName + ?Sized),
    key: &NameKey,
    qtype: RecordType,
    client: impl Into<Client>,
) -> Answer<'s> {
    let mut ans = Answer::refused();
    resolve_into(&mut ans, snap, qname, key, qtype, client.into());
    ans
}

/// [`resolve`] into `ans`, which must be a fresh [`Answer::refused`]. The query path keeps
/// its answer on its own stack and fills it here: an answer is some 500 bytes, and
/// returning one by value copies it.
pub fn resolve_into<'s>(
    ans: &mut Answer<'s>,
    snap: &'s Snapshot,
    qname: &(impl AskedName + ?Sized),
    key: &NameKey,
    qtype: RecordType,
    client: Client,
) {
    let Some(mut zone) = snap.find_zone(key) else {
        return;
    };
    // RFC 4035 §3.1.4.1: DS lives in the parent; when we serve the parent too, it answers.
    if qtype == RecordType::DS && key.labels() == zone.apex_labels && key.labels() > 0 {
        if let Some(parent) = snap.find_parent_zone(key) {
            zone = parent;
        }
    }
    ans.rcode = ResponseCode::NoError;
    ans.authoritative = true;
    ans.zone_metric = zone.queries_metric;

    // The name being looked up: the question, then each CNAME target in turn.
    // `None`: the name asked; then each CNAME target.
    let mut cur_name: Option<&Name> = None;
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
                return;
            }
            Found::Delegated(cut) => {
                if hop == 0 {
                    referral_or_ds(ans, zone, zone.node(cut), k, qtype);
                } else if let Some(ns) = zone.node(cut).rrset(RecordType::NS) {
                    // RFC 1034 §4.3.2 step 3b: a chain that leads into a delegation ends
                    // with the referral, so the resolver can continue at the child.
                    ans.authority.extend(ns.entries(&zone.node(cut).name));
                    ans.additional.extend(ns.additional.iter().map(Rec::Shared));
                }
                return;
            }
        };
        let node = zone.node(id);
        // Every answer record added on the first hop is owned by the question's node.
        let at_question = |ans: &mut Answer<'s>| {
            if hop == 0 && !wildcard {
                ans.at_question = ans.answer.len();
            }
        };
        let owner = |r: Rec<'s>| -> Rec<'s> {
            if wildcard {
                let mut r = r.record().into_owned();
                if let Some(owner) = name.cloned().or_else(|| qname.to_name()) {
                    r.name = owner;
                }
                Rec::Owned(Box::new(r))
            } else {
                r
            }
        };
        let shared_owner = |r: &'s Record| owner(Rec::Shared(r));

        // What to answer here, or the CNAME to follow.
        let cname = match &node.gslb {
            Some(gslb) if matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY) => {
                match gslb_answer(
                    ans,
                    snap,
                    zone,
                    gslb,
                    Family::of(qtype),
                    client,
                    &shared_owner,
                ) {
                    Some(fallback) => fallback,
                    None => {
                        at_question(ans);
                        return;
                    }
                }
            }
            _ => {
                if let Some(records) = records_for(zone, node, qtype) {
                    ans.answer.extend(records.map(owner));
                    at_question(ans);
                    if let Some(rs) = node.rrset(qtype) {
                        ans.additional.extend(rs.additional.iter().map(Rec::Shared));
                    }
                    return;
                }
                match node.rrset(RecordType::CNAME) {
                    Some(cname) if qtype != RecordType::CNAME => cname,
                    _ => {
                        ans.negative(zone, ResponseCode::NoError);
                        return;
                    }
                }
            }
        };
        ans.answer.extend(cname.entries(&node.name).map(owner));
        at_question(ans);
        let (Some(target_wire), Some(RData::CNAME(target_name))) = (
            cname.cname_target.as_deref(),
            cname.first_record().map(|r| &r.data),
        ) else {
            return;
        };
        if followed.contains(&target_wire) {
            return;
        }
        followed.push(target_wire);
        let Some(target) = NameKey::from_wire(target_wire) else {
            return;
        };
        // Follow only inside this zone; a resolver follows the rest.
        match snap.find_zone(&target) {
            Some(z) if std::ptr::eq(z, zone) => {}
            _ => return,
        }
        cur_name = Some(&target_name.0);
        cur_key = Some(target);
    }
}

/// A and AAAA at a GSLB name: the client's list, then [`select::choose`], then the
/// all-down policy. Returns the fallback CNAME when the policy answers with one, for the
/// caller to follow.
fn gslb_answer<'s>(
    ans: &mut Answer<'s>,
    snap: &'s Snapshot,
    zone: &'s CompiledZone,
    gslb: &'s GslbNode,
    family: Family,
    client: Client,
    owner: &dyn Fn(&'s Record) -> Rec<'s>,
) -> Option<&'s CompiledRrset> {
    let decision = gslb.table.lookup(client.addr);
    ans.scope = Some(if gslb.table.is_uniform() {
        0
    } else {
        // Only where the location decides: a name that answers everyone alike misses
        // nothing.
        if decision.maybe_unlocated && snap.unlocated.contains(client.addr) {
            ans.tally.push(Slot::GEOIP_MISS);
        }
        decision.scope
    });
    let key = select::client_key(gslb, client);
    let pick = match select::choose(gslb, &snap.health, &decision, family, key) {
        Choice::Addresses(pick) => pick,
        Choice::NoFamily => {
            // NODATA. When no candidate of the name has the family, that holds for every
            // client (scope 0); otherwise it is this client's list that lacks it.
            if !gslb.serves[family.index()] {
                ans.scope = Some(0);
            }
            ans.negative(zone, ResponseCode::NoError);
            return None;
        }
        Choice::AllDown(policy) => {
            // Counted here; logged by the all-down log when the name's state changes
            // (see [`super::all_down`]), so the query path never logs.
            ans.tally.push(gslb.all_down_metric);
            ans.chosen = Some(Chosen {
                datacenter: None,
                rank: None,
                how: How::AllDown,
            });
            return all_down_answer(ans, zone, policy, family, owner);
        }
    };
    let how = if pick.failed_open {
        ans.tally.push(gslb.all_down_metric);
        How::FailOpen
    } else if pick.failed_over {
        ans.tally.push(gslb.failover_metric);
        How::Failover
    } else {
        How::Ranked
    };
    if let Some(&(first, _)) = pick.chosen.first() {
        let metric = gslb.candidates[first as usize].answers_metric;
        ans.tally.push(metric);
        ans.chosen = Some(Chosen {
            datacenter: Some(metric),
            rank: decision
                .list
                .iter()
                .position(|&c| c == first)
                .and_then(|r| u8::try_from(r).ok()),
            how,
        });
    }
    if let (Some(hashed), Some(scope)) = (pick.hashed, ans.scope.as_mut()) {
        // The choice hashed the client's network: it holds for that prefix, no wider.
        let hashed = if client.addr.is_ipv6() && client.addr.to_canonical().is_ipv4() {
            hashed + 96
        } else {
            hashed
        };
        *scope = (*scope).max(hashed);
    }
    for &(pos, mask) in &pick.chosen {
        let f = gslb.candidates[pos as usize].family(family);
        // Unhealthy or flapping candidates: the short TTL moves clients sooner.
        let records = if pick.degraded { &f.short } else { &f.records };
        for (i, r) in records.iter().enumerate().take(select::MAX_ADDRESSES) {
            if mask & (1 << i) != 0 {
                ans.answer.push(owner(r));
            }
        }
    }
    None
}

/// The all-down policy's answer (fail-open is answered by selection).
fn all_down_answer<'s>(
    ans: &mut Answer<'s>,
    zone: &'s CompiledZone,
    policy: &'s AllDownAnswer,
    family: Family,
    owner: &dyn Fn(&'s Record) -> Rec<'s>,
) -> Option<&'s CompiledRrset> {
    match policy {
        AllDownAnswer::ServFail => ans.rcode = ResponseCode::ServFail,
        AllDownAnswer::FailOpen | AllDownAnswer::NoData => {
            ans.negative(zone, ResponseCode::NoError);
        }
        AllDownAnswer::Records { a, aaaa } => {
            let records = if family == Family::V6 { aaaa } else { a };
            if records.is_empty() {
                ans.negative(zone, ResponseCode::NoError);
            }
            ans.answer.extend(records.iter().map(owner));
        }
        AllDownAnswer::Cname(rrset) => return Some(rrset),
    }
    None
}

/// The records of `node` that answer `qtype`, if it has them. ANY gets one set (RFC 8482).
fn records_for<'s>(
    zone: &'s CompiledZone,
    node: &'s CompiledNode,
    qtype: RecordType,
) -> Option<Entries<'s>> {
    // Every node is at or below the apex: the one with as many labels is the apex (a
    // count, where comparing names would fold the case of every label).
    let is_apex = node.name.num_labels() as usize == zone.apex_labels;
    let soa = || Some(Entries::Soa(zone.soa.iter(), &zone.soa_names));
    match qtype {
        RecordType::SOA if is_apex => soa(),
        RecordType::ANY => {
            // RFC 8482 §4.2: answer with one RRset of the node rather than all of them.
            const PREFERENCE: [RecordType; 4] = [
                RecordType::A,
                RecordType::AAAA,
                RecordType::CNAME,
                RecordType::MX,
            ];
            if is_apex {
                return soa();
            }
            PREFERENCE
                .iter()
                .find_map(|t| node.rrset(*t))
                .or_else(|| node.rrsets.first())
                .map(|rs| rs.entries(&node.name))
        }
        _ => node.rrset(qtype).map(|rs| rs.entries(&node.name)),
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
        ans.authority.extend(ns.entries(&cut.name));
        ans.additional.extend(ns.additional.iter().map(Rec::Shared));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Admin, HealthSources, OverrideKey};
    use std::str::FromStr;

    const ZONE: &str = r#"
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

    fn snapshot(health: &HealthSources) -> Snapshot {
        crate::compile::test_zone::snapshot(ZONE, health)
    }

    fn answer(snap: &Snapshot) -> Vec<String> {
        let name = Name::from_str("cdn.example.com.").unwrap();
        let key = NameKey::new(&name).unwrap();
        let a = resolve(
            snap,
            &name,
            &key,
            RecordType::A,
            "192.0.2.1".parse::<std::net::IpAddr>().unwrap(),
        );
        a.answer.iter().map(|r| r.record().to_string()).collect()
    }

    #[test]
    fn max_addresses_rotates_over_the_healthy_ones() {
        let health = HealthSources::new(None).unwrap();
        let overrides = &health.overrides;
        let snap = snapshot(&health);
        // Equal weights: a fresh rotation starts with the first address written, then turns.
        assert_eq!(answer(&snap), ["cdn.example.com. 30 IN A 192.0.2.10"]);
        assert_eq!(answer(&snap), ["cdn.example.com. 30 IN A 192.0.2.11"]);
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
        let health = HealthSources::new(None).unwrap();
        let overrides = &health.overrides;
        let snap = snapshot(&health);
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
        let name = Name::from_str("cdn.example.com.").unwrap();
        let key = NameKey::new(&name).unwrap();
        let client: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let ans = resolve(&snap, &name, &key, RecordType::A, client);
        // Counted as an all-down answer, and as nothing else.
        assert_eq!(ans.tally.iter().collect::<Vec<_>>(), [gslb.all_down_metric]);
        assert_eq!(ans.zone_metric, snap.zones()[0].queries_metric);
    }
}
