//! The compiler's lookup structure, read directly: delegation cuts, wildcards, empty
//! non-terminals, additional-section addresses and the negative SOA TTL. Zones come from
//! text through the validator ([`super::test_zone`]); no GeoIP data, no health checks.

use std::str::FromStr;

use super::test_zone::{snapshot, zones};
use super::*;

fn health() -> HealthSources {
    HealthSources::new(None).unwrap()
}

fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

fn key(text: &str) -> NameKey {
    NameKey::new(&name(text)).unwrap()
}

/// The only zone of `snap`.
fn only_zone(snap: &Snapshot) -> &CompiledZone {
    assert_eq!(snap.zones().len(), 1);
    &snap.zones()[0]
}

/// What [`CompiledZone::find`] gives for `qname`, as text: `node N`, `wildcard N`,
/// `delegated N` (N is the node's name) or `nxdomain`.
fn found(zone: &CompiledZone, qname: &str) -> String {
    match zone.find(&key(qname)) {
        Found::Node(id) => format!("node {}", zone.node(id).name),
        Found::Wildcard(id) => format!("wildcard {}", zone.node(id).name),
        Found::Delegated(id) => format!("delegated {}", zone.node(id).name),
        Found::NxDomain => "nxdomain".into(),
    }
}

/// The compiled node named `owner` (which must exist, possibly as an empty non-terminal).
fn node<'z>(zone: &'z CompiledZone, owner: &str) -> &'z CompiledNode {
    zone.node(id_of(zone, owner))
}

fn id_of(zone: &CompiledZone, owner: &str) -> NodeId {
    zone.index
        .get(&key_of(&name(owner)), &zone.nodes)
        .unwrap_or_else(|| panic!("{owner} is a node"))
}

fn text(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.to_string()).collect()
}

/// The records of `node`'s `rtype` set, as text.
fn entries(node: &CompiledNode, rtype: RecordType) -> Vec<String> {
    let rrset = node.rrset(rtype).unwrap();
    rrset
        .entries(&node.name)
        .map(|r| r.record().to_string())
        .collect()
}

/// The additional section compiled beside `owner`'s `rtype` set.
fn additional(zone: &CompiledZone, owner: &str, rtype: RecordType) -> Vec<String> {
    let rrset = node(zone, owner)
        .rrset(rtype)
        .unwrap_or_else(|| panic!("{owner} has no {rtype}"));
    text(&rrset.additional)
}

const DELEGATION: &str = r#"
[names.www]
a = "192.0.2.10"
[names.sub]
ns = ["ns1.sub", "ns.example.org."]
[names."ns1.sub"]
a = "192.0.2.201"
aaaa = "2001:db8::201"
[names."deep.ent"]
ns = "ns.example.org."
"#;

#[test]
fn a_cut_hides_itself_and_every_name_below_it() {
    let snap = snapshot(DELEGATION, &health());
    let zone = only_zone(&snap);
    assert_eq!(
        found(zone, "sub.example.com."),
        "delegated sub.example.com."
    );
    // Glue exists as a node, but a query for it is still a referral.
    assert_eq!(
        found(zone, "ns1.sub.example.com."),
        "delegated sub.example.com."
    );
    // Names below the cut that the zone does not hold: a referral, not NXDOMAIN.
    assert_eq!(
        found(zone, "a.b.sub.example.com."),
        "delegated sub.example.com."
    );
    assert_eq!(
        found(zone, "X.Sub.Example.COM."),
        "delegated sub.example.com."
    );
    // Beside the cut nothing changes.
    assert_eq!(found(zone, "www.example.com."), "node www.example.com.");
    assert_eq!(found(zone, "nope.example.com."), "nxdomain");
}

#[test]
fn each_node_knows_the_cut_above_it_and_the_apex_is_never_one() {
    let snap = snapshot(DELEGATION, &health());
    let zone = only_zone(&snap);
    let sub = id_of(zone, "sub.example.com.");
    assert_eq!(node(zone, "sub.example.com.").cut, Some(sub));
    assert_eq!(node(zone, "ns1.sub.example.com.").cut, Some(sub));
    // The apex has NS too, but it is the zone, not a delegation.
    assert_eq!(node(zone, "example.com.").cut, None);
    assert_eq!(node(zone, "www.example.com.").cut, None);
    // A cut two labels down: the empty non-terminal above it is served here, with no cut.
    let deep = id_of(zone, "deep.ent.example.com.");
    assert_eq!(node(zone, "ent.example.com.").cut, None);
    assert_eq!(found(zone, "ent.example.com."), "node ent.example.com.");
    assert_eq!(
        found(zone, "x.deep.ent.example.com."),
        "delegated deep.ent.example.com."
    );
    assert_eq!(node(zone, "deep.ent.example.com.").cut, Some(deep));
}

#[test]
fn the_cut_carries_its_in_zone_glue_for_the_referral() {
    let snap = snapshot(DELEGATION, &health());
    let zone = only_zone(&snap);
    // Glue for the in-zone name server, both families; the out-of-zone one adds nothing.
    assert_eq!(
        additional(zone, "sub.example.com.", RecordType::NS),
        [
            "ns1.sub.example.com. 3600 IN A 192.0.2.201",
            "ns1.sub.example.com. 3600 IN AAAA 2001:db8::201",
        ]
    );
    assert!(additional(zone, "deep.ent.example.com.", RecordType::NS).is_empty());
    assert_eq!(
        entries(node(zone, "sub.example.com."), RecordType::NS),
        [
            "sub.example.com. 3600 IN NS ns1.sub.example.com.",
            "sub.example.com. 3600 IN NS ns.example.org.",
        ]
    );
}

/// A parent and the child it delegates, both served: DS for the child's apex is answered
/// from the parent side of the cut (RFC 4035 §3.1.4.1), so the snapshot must find it.
#[test]
fn the_parent_side_of_a_cut_is_found_when_both_zones_are_served() {
    const PARENT: &str = r#"
origin = "example.com"
[soa]
primary = "ns1"
contact = "hostmaster"
serial = 1
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
[names.sub]
ns = "ns1.sub"
[names."ns1.sub"]
a = "192.0.2.201"
"#;
    const CHILD: &str = r#"
origin = "sub.example.com"
[soa]
primary = "ns1"
contact = "hostmaster"
serial = 1
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.201"
[names.www]
a = "192.0.2.202"
"#;
    let snap = zones(&[PARENT, CHILD], &health());
    let origin = |z: Option<&CompiledZone>| z.map(|z| z.origin.to_string());
    let child_apex = key("sub.example.com.");
    assert_eq!(
        origin(snap.find_zone(&child_apex)).as_deref(),
        Some("sub.example.com.")
    );
    assert_eq!(
        origin(snap.find_parent_zone(&child_apex)).as_deref(),
        Some("example.com.")
    );
    // In the parent the child's apex is the cut.
    let parent = snap.find_parent_zone(&child_apex).unwrap();
    assert_eq!(
        found(parent, "sub.example.com."),
        "delegated sub.example.com."
    );
    // Names inside the child are the child's; "parent" means strictly above the name.
    let www = key("www.sub.example.com.");
    assert_eq!(
        origin(snap.find_zone(&www)).as_deref(),
        Some("sub.example.com.")
    );
    assert_eq!(
        origin(snap.find_parent_zone(&www)).as_deref(),
        Some("sub.example.com.")
    );
    // Nothing above the topmost zone, nothing outside both.
    assert_eq!(origin(snap.find_parent_zone(&key("example.com."))), None);
    assert_eq!(origin(snap.find_zone(&key("example.org."))), None);
}

#[test]
fn a_wildcard_covers_missing_names_but_not_names_with_a_closer_encloser() {
    let body = r#"
[names."*.apps"]
a = "192.0.2.80"
[names."status.apps"]
a = "192.0.2.81"
"#;
    let snap = snapshot(body, &health());
    let zone = only_zone(&snap);
    assert_eq!(
        found(zone, "x.apps.example.com."),
        "wildcard *.apps.example.com."
    );
    // Several labels below the closest encloser: still the wildcard (RFC 4592 §3.3.1).
    assert_eq!(
        found(zone, "a.b.apps.example.com."),
        "wildcard *.apps.example.com."
    );
    // An existing name is answered as itself.
    assert_eq!(
        found(zone, "status.apps.example.com."),
        "node status.apps.example.com."
    );
    assert_eq!(
        found(zone, "*.apps.example.com."),
        "node *.apps.example.com."
    );
    // Below an existing name, the closest encloser is that name, which has no wildcard.
    assert_eq!(found(zone, "x.status.apps.example.com."), "nxdomain");
    // No wildcard at the apex.
    assert_eq!(found(zone, "x.example.com."), "nxdomain");
}

/// The zone of RFC 4592 §2.2.1 (as far as the zone format allows) and its query list.
#[test]
fn rfc4592_examples_empty_non_terminals_stop_the_wildcard() {
    let body = r#"
[names."*"]
txt = "this is a wildcard"
mx = "10 host1"
[names.host1]
a = "192.0.2.1"
[names."_ssh._tcp.host1"]
srv = "10 60 22 host1"
[names."_ssh._tcp.host2"]
srv = "10 60 22 host1"
[names.subdel]
ns = "ns.example.org."
"#;
    let snap = snapshot(body, &health());
    let zone = only_zone(&snap);
    // Synthesised from *.example.com.
    assert_eq!(found(zone, "host3.example.com."), "wildcard *.example.com.");
    assert_eq!(
        found(zone, "foo.bar.example.com."),
        "wildcard *.example.com."
    );
    // Not synthesised: the name exists, or a closer encloser exists without a wildcard.
    assert_eq!(found(zone, "host1.example.com."), "node host1.example.com.");
    assert_eq!(found(zone, "_telnet._tcp.host1.example.com."), "nxdomain");
    assert_eq!(
        found(zone, "host.subdel.example.com."),
        "delegated subdel.example.com."
    );
    assert_eq!(found(zone, "ghost.*.example.com."), "nxdomain");
    // host2 and _tcp.host2 exist only as empty non-terminals: they are answered as
    // themselves (NODATA), not from the wildcard, and they end the search below them.
    assert_eq!(found(zone, "host2.example.com."), "node host2.example.com.");
    assert!(node(zone, "host2.example.com.").rrsets.is_empty());
    assert_eq!(
        found(zone, "_tcp.host2.example.com."),
        "node _tcp.host2.example.com."
    );
    assert_eq!(found(zone, "x.host2.example.com."), "nxdomain");
}

#[test]
fn a_wildcard_whose_parent_is_an_empty_non_terminal() {
    let body = r#"
[names."*.a.b"]
a = "192.0.2.7"
"#;
    let snap = snapshot(body, &health());
    let zone = only_zone(&snap);
    assert_eq!(
        found(zone, "x.a.b.example.com."),
        "wildcard *.a.b.example.com."
    );
    assert_eq!(
        found(zone, "y.x.a.b.example.com."),
        "wildcard *.a.b.example.com."
    );
    // The wildcard's parent and grandparent exist, empty.
    assert_eq!(found(zone, "a.b.example.com."), "node a.b.example.com.");
    assert_eq!(found(zone, "b.example.com."), "node b.example.com.");
    // Beside them: the closest encloser is b, which has no wildcard of its own.
    assert_eq!(found(zone, "x.b.example.com."), "nxdomain");
}

#[test]
fn empty_non_terminals_are_nodes_without_data() {
    let body = r#"
[names."a.b.c"]
a = "192.0.2.99"
"#;
    let snap = snapshot(body, &health());
    let zone = only_zone(&snap);
    // @ and ns1 from the preamble, a.b.c, and exactly the two names between it and the apex.
    assert_eq!(zone.node_count(), 5);
    for ent in ["b.c.example.com.", "c.example.com."] {
        assert_eq!(found(zone, ent), format!("node {ent}"));
        let n = node(zone, ent);
        assert!(n.rrsets.is_empty(), "{ent}: {:?}", n.rrsets);
        assert!(n.rrset(RecordType::A).is_none());
        assert!(n.gslb.is_none() && n.cut.is_none());
    }
    assert_eq!(
        entries(node(zone, "a.b.c.example.com."), RecordType::A),
        ["a.b.c.example.com. 3600 IN A 192.0.2.99"]
    );
    // A sibling of an empty non-terminal does not exist.
    assert_eq!(found(zone, "x.c.example.com."), "nxdomain");
    assert_eq!(found(zone, "x.a.b.c.example.com."), "nxdomain");
}

#[test]
fn ns_mx_and_srv_sets_carry_the_addresses_of_their_in_zone_targets() {
    let body = r#"
[names.mail]
ttl = "5m"
a = "192.0.2.25"
aaaa = "2001:db8::25"
[names.inbox]
mx = ["10 mail", "20 mail", "30 mx.example.org."]
[names."_sip._tcp"]
srv = ["10 60 5060 mail", "20 0 5060 ns1", "30 0 5060 sip.example.org."]
[names."*.apps"]
a = "192.0.2.80"
[names.wildmx]
mx = "10 x.apps"
[names.alias]
cname = "mail"
"#;
    let snap = snapshot(body, &health());
    let zone = only_zone(&snap);
    // The apex NS of the preamble.
    assert_eq!(
        additional(zone, "example.com.", RecordType::NS),
        ["ns1.example.com. 3600 IN A 192.0.2.53"]
    );
    // Each target's addresses once, at the target's own TTL, A before AAAA.
    let mail = [
        "mail.example.com. 300 IN A 192.0.2.25",
        "mail.example.com. 300 IN AAAA 2001:db8::25",
    ];
    assert_eq!(additional(zone, "inbox.example.com.", RecordType::MX), mail);
    // In target order; out-of-zone targets add nothing.
    assert_eq!(
        additional(zone, "_sip._tcp.example.com.", RecordType::SRV),
        [mail[0], mail[1], "ns1.example.com. 3600 IN A 192.0.2.53"]
    );
    // Only names that exist: a target the wildcard would synthesise gets no addresses.
    assert!(additional(zone, "wildmx.example.com.", RecordType::MX).is_empty());
    // Other types have no additional section; a CNAME knows its target's key instead.
    assert!(additional(zone, "mail.example.com.", RecordType::A).is_empty());
    assert!(additional(zone, "alias.example.com.", RecordType::CNAME).is_empty());
    let alias = node(zone, "alias.example.com.")
        .rrset(RecordType::CNAME)
        .unwrap();
    assert_eq!(
        alias.cname_target.as_deref(),
        Some(&*key_of(&name("mail.example.com.")))
    );
    let mail_a = node(zone, "mail.example.com.")
        .rrset(RecordType::A)
        .unwrap();
    assert_eq!(mail_a.cname_target, None);
}

/// A zone with the given top-level lines and `[soa]` lines.
fn soa_zone(top: &str, soa: &str) -> String {
    format!(
        r#"
origin = "example.com"
{top}
[soa]
primary = "ns1"
contact = "hostmaster"
serial = 1
{soa}
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
"#
    )
}

/// (SOA TTL, negative SOA TTL, MINIMUM field of the negative SOA).
fn soa_ttls(top: &str, soa: &str) -> (u32, u32, u32) {
    let snap = zones(&[&soa_zone(top, soa)], &health());
    let zone = only_zone(&snap);
    assert_eq!(zone.soa.len(), 1);
    assert_eq!(zone.negative_soa.len(), 1);
    let negative = &zone.negative_soa[0];
    assert_eq!(negative.name, zone.origin);
    let RData::SOA(data) = &negative.data else {
        panic!("{negative}");
    };
    assert_eq!(
        negative.data, zone.soa[0].data,
        "same SOA data at both TTLs"
    );
    (zone.soa[0].ttl, negative.ttl, data.minimum)
}

#[test]
fn the_negative_soa_ttl_is_the_smaller_of_the_soa_ttl_and_minimum() {
    // Defaults: TTL 1 h, negative 5 min.
    assert_eq!(soa_ttls("", ""), (3600, 300, 300));
    // MINIMUM below the SOA TTL: MINIMUM.
    assert_eq!(
        soa_ttls(r#"ttl = "10m""#, r#"negative_ttl = "2m""#),
        (600, 120, 120)
    );
    // MINIMUM above the SOA TTL: the SOA TTL (RFC 2308 §5); the field stays as written.
    assert_eq!(
        soa_ttls(r#"ttl = "1m""#, r#"negative_ttl = "1h""#),
        (60, 60, 3600)
    );
}
