//! DNS behaviour of a running server, one behaviour per test.
//!
//! Most tests serve `tests/fixtures/good/example.net.toml`, whose comments say which name
//! exists for which test; a few serve the shipped `zones/` or a zone written inline.

use std::io::Write;
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::harness::*;

const EXAMPLE_NET: &str = include_str!("../fixtures/good/example.net.toml");

/// The SOA of example.net. as sent in negative answers: TTL min(3600, 300) = 300.
const NEG_SOA: &str = "example.net. 300 IN SOA ns1.example.net. hostmaster.example.net. \
                       2024010101 3600 900 604800 300";

/// The referral for sub.example.net.: its NS set and its in-zone glue.
const SUB_NS: [&str; 2] = [
    "sub.example.net. 3600 IN NS ns1.sub.example.net.",
    "sub.example.net. 3600 IN NS ns.example.org.",
];
const SUB_GLUE: [&str; 1] = ["ns1.sub.example.net. 3600 IN A 192.0.2.201"];

const WWW_A: [&str; 2] = [
    "www.example.net. 300 IN A 192.0.2.10",
    "www.example.net. 300 IN A 192.0.2.11",
];

fn server() -> Server {
    Server::start(&[("example.net", EXAMPLE_NET)], "")
}

fn server_with(extra_config: &str) -> Server {
    Server::start(&[("example.net", EXAMPLE_NET)], extra_config)
}

// ---------------------------------------------------------------------------------------
// Header flags

#[test]
fn authoritative_answer_has_aa_and_exact_records() {
    let s = server();
    let q = query("www.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &WWW_A, &[], &[]);
    assert!(r.edns.is_none(), "no OPT without EDNS in the query\n{r}");
}

#[test]
fn rd_is_copied_and_ra_is_never_set() {
    let s = server();
    for (name, head) in [
        ("www.example.net.", Head::aa()),
        (
            "nope.example.net.",
            Head::aa().rcode(ResponseCode::NXDomain),
        ),
        ("www.example.com.", Head::plain(ResponseCode::Refused)),
        ("www.sub.example.net.", Head::plain(ResponseCode::NoError)),
    ] {
        let q = with_rd(query(name, RecordType::A));
        let r = s.udp(&q);
        assert_head(&q, &r, head.rd());
        // And without RD, RD stays clear (assert_head checks RA clear in both).
        let q = query(name, RecordType::A);
        let r = s.udp(&q);
        assert!(!r.metadata.recursion_desired, "{r}");
        assert!(!r.metadata.recursion_available, "{r}");
    }
}

// ---------------------------------------------------------------------------------------
// Negative answers

#[test]
fn nxdomain_has_the_soa_with_the_negative_ttl() {
    let s = server();
    let q = query("nope.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_sections(&r, &[], &[NEG_SOA], &[]);
}

#[test]
fn negative_ttl_is_the_soa_ttl_when_that_is_smaller() {
    // RFC 2308 §5: min(SOA TTL, SOA MINIMUM); here the SOA TTL (60) is the smaller.
    let zone = r#"
origin = "short.test"
ttl = 60
[soa]
primary = "ns1"
contact = "hostmaster"
serial = 7
negative_ttl = "1h"
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
"#;
    let s = Server::start(&[("short.test", zone)], "");
    let q = query("nope.short.test.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_sections(
        &r,
        &[],
        &["short.test. 60 IN SOA ns1.short.test. hostmaster.short.test. 7 3600 900 604800 3600"],
        &[],
    );
    // The SOA itself, asked for, keeps its own TTL.
    let q = query("short.test.", RecordType::SOA);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["short.test. 60 IN SOA ns1.short.test. hostmaster.short.test. 7 3600 900 604800 3600"],
        &[],
        &[],
    );
}

#[test]
fn nodata_is_noerror_with_empty_answer_and_soa() {
    let s = server();
    for (name, rtype) in [
        ("www.example.net.", RecordType::MX),
        ("mail.example.net.", RecordType::AAAA),
        ("ns1.example.net.", RecordType::SOA),
        ("example.net.", RecordType::SRV),
    ] {
        let q = query(name, rtype);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        assert_sections(&r, &[], &[NEG_SOA], &[]);
    }
}

#[test]
fn empty_non_terminal_is_nodata_not_nxdomain() {
    let s = server();
    // Only a.b.c exists; b.c and c exist as empty non-terminals (RFC 8020 would make an
    // NXDOMAIN here deny a.b.c too).
    for name in ["b.c.example.net.", "c.example.net.", "B.C.example.net."] {
        for rtype in [RecordType::A, RecordType::TXT] {
            let q = query(name, rtype);
            let r = s.udp(&q);
            assert_head(&q, &r, Head::aa());
            assert_sections(&r, &[], &[NEG_SOA], &[]);
        }
    }
    let q = query("a.b.c.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &["a.b.c.example.net. 3600 IN A 192.0.2.99"], &[], &[]);
    // apps has only children (*.apps, status.apps): it exists, and the wildcard does not
    // cover it.
    let q = query("apps.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &[], &[NEG_SOA], &[]);
    // Below the existing leaf: nothing.
    let q = query("x.a.b.c.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_sections(&r, &[], &[NEG_SOA], &[]);
}

// ---------------------------------------------------------------------------------------
// Wildcards (RFC 4592)

#[test]
fn wildcard_synthesises_records_owned_by_the_query_name() {
    let s = server();
    for name in ["foo.apps.example.net.", "x.y.apps.example.net."] {
        let q = query(name, RecordType::A);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        let rec = format!("{name} 3600 IN A 192.0.2.80");
        assert_sections(&r, &[&rec], &[], &[]);
    }
    // The wildcard's MX, synthesised, still brings its target's address.
    let q = query("foo.apps.example.net.", RecordType::MX);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["foo.apps.example.net. 3600 IN MX 10 mail.example.net."],
        &[],
        &["mail.example.net. 3600 IN A 192.0.2.25"],
    );
}

#[test]
fn wildcard_owner_keeps_the_query_case() {
    // RFC 4592 §3.4.1 / RFC 1034 §4.3.3: the synthesised owner is the QNAME; RFC 4343 §4.1
    // asks servers to preserve its case. dig FoO.Apps.example.net shows foo.apps...
    let s = server();
    let q = query("FoO.Apps.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered(
        "answer",
        &r.answers,
        &["FoO.Apps.example.net. 3600 IN A 192.0.2.80"],
    );
}

#[test]
fn wildcard_does_not_apply_below_an_existing_name() {
    let s = server();
    // The closest encloser of x.status.apps is status.apps, which has no `*` child.
    let q = query("x.status.apps.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_sections(&r, &[], &[NEG_SOA], &[]);
    // status.apps itself is its own data, not the wildcard's.
    let q = query("status.apps.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["status.apps.example.net. 3600 IN A 192.0.2.81"],
        &[],
        &[],
    );
    // And the wildcard's MX does not leak onto it: NODATA.
    let q = query("status.apps.example.net.", RecordType::MX);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &[], &[NEG_SOA], &[]);
}

#[test]
fn wildcard_without_the_type_is_nodata() {
    let s = server();
    let q = query("foo.apps.example.net.", RecordType::AAAA);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &[], &[NEG_SOA], &[]);
}

#[test]
fn wildcard_name_itself_answers_as_an_ordinary_name() {
    let s = server();
    let q = query("*.apps.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &["*.apps.example.net. 3600 IN A 192.0.2.80"], &[], &[]);
}

// ---------------------------------------------------------------------------------------
// CNAME

#[test]
fn cname_is_answered_and_followed_inside_the_zone() {
    let s = server();
    let q = query("alias.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered(
        "answer",
        &r.answers[..1],
        &["alias.example.net. 3600 IN CNAME www.example.net."],
    );
    assert_section("answer (after the CNAME)", &r.answers[1..], &WWW_A);
    assert!(r.authorities.is_empty() && r.additionals.is_empty(), "{r}");
}

#[test]
fn cname_chain_of_several_hops_is_followed_in_order() {
    let s = server();
    let q = query("hop1.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered(
        "answer",
        &r.answers[..3],
        &[
            "hop1.example.net. 3600 IN CNAME hop2.example.net.",
            "hop2.example.net. 3600 IN CNAME hop3.example.net.",
            "hop3.example.net. 3600 IN CNAME www.example.net.",
        ],
    );
    assert_section("answer (after the CNAMEs)", &r.answers[3..], &WWW_A);
    assert!(r.authorities.is_empty() && r.additionals.is_empty(), "{r}");
}

#[test]
fn cname_out_of_the_zone_is_answered_alone() {
    let s = server();
    let q = query("external.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["external.example.net. 3600 IN CNAME www.example.org."],
        &[],
        &[],
    );
}

#[test]
fn cname_to_a_missing_name_is_nxdomain_with_the_cname() {
    // RFC 6604 §2.1: the rcode describes the last name of the chain.
    let s = server();
    let q = query("dangling.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_sections(
        &r,
        &["dangling.example.net. 3600 IN CNAME nothing-here.example.net."],
        &[NEG_SOA],
        &[],
    );
}

#[test]
fn cname_to_a_name_without_the_type_is_nodata_with_the_cname() {
    let s = server();
    let q = query("alias.example.net.", RecordType::MX);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["alias.example.net. 3600 IN CNAME www.example.net."],
        &[NEG_SOA],
        &[],
    );
}

#[test]
fn cname_into_the_wildcard_is_followed() {
    let s = server();
    let q = query("to-wild.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered(
        "answer",
        &r.answers,
        &[
            "to-wild.example.net. 3600 IN CNAME x.apps.example.net.",
            "x.apps.example.net. 3600 IN A 192.0.2.80",
        ],
    );
}

#[test]
fn wildcard_cname_is_synthesised_and_followed() {
    let s = server();
    let q = query("foo.w.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered(
        "answer",
        &r.answers[..1],
        &["foo.w.example.net. 3600 IN CNAME www.example.net."],
    );
    assert_section("answer (after the CNAME)", &r.answers[1..], &WWW_A);
    assert!(r.authorities.is_empty() && r.additionals.is_empty(), "{r}");
}

#[test]
fn cname_into_a_delegation_carries_the_referral() {
    // RFC 1034 §4.3.2: after the CNAME, QNAME is host.sub, and a match that leaves the
    // authoritative data is a referral: NS of the cut in authority, glue in additional.
    let s = server();
    let q = query("to-sub.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["to-sub.example.net. 3600 IN CNAME host.sub.example.net."],
        &SUB_NS,
        &SUB_GLUE,
    );
}

#[test]
fn cname_into_a_delegation_gives_at_least_the_cname() {
    // What the server does today (see the ignored test above): the CNAME alone, NOERROR.
    let s = server();
    let q = query("to-sub.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_eq!(rcode(&r), 0, "{r}");
    assert_section_ordered(
        "answer",
        &r.answers,
        &["to-sub.example.net. 3600 IN CNAME host.sub.example.net."],
    );
}

#[test]
fn query_for_type_cname_gets_the_cname_only() {
    let s = server();
    for (name, target) in [
        ("alias.example.net.", "www.example.net."),
        ("hop1.example.net.", "hop2.example.net."),
    ] {
        let q = query(name, RecordType::CNAME);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        let rec = format!("{name} 3600 IN CNAME {target}");
        assert_sections(&r, &[&rec], &[], &[]);
    }
}

// ---------------------------------------------------------------------------------------
// Delegation

#[test]
fn delegation_point_gets_a_referral() {
    let s = server();
    for rtype in [RecordType::A, RecordType::NS, RecordType::TXT] {
        let q = query("sub.example.net.", rtype);
        let r = s.udp(&q);
        // Not authoritative: the child zone is.
        assert_head(&q, &r, Head::plain(ResponseCode::NoError));
        assert_sections(&r, &[], &SUB_NS, &SUB_GLUE);
    }
}

#[test]
fn names_below_a_delegation_get_the_same_referral() {
    let s = server();
    for name in [
        "www.sub.example.net.",
        "a.b.c.sub.example.net.",
        // The glue's own name: glue is not authoritative data.
        "ns1.sub.example.net.",
        "WWW.SUB.example.net.",
    ] {
        let q = query(name, RecordType::A);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::plain(ResponseCode::NoError));
        assert_sections(&r, &[], &SUB_NS, &SUB_GLUE);
    }
}

#[test]
fn ds_at_the_delegation_point_is_nodata_from_the_parent() {
    // RFC 4035 §3.1.4.1: DS lives on the parent side of the cut.
    let s = server();
    let q = query("sub.example.net.", RecordType::DS);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &[], &[NEG_SOA], &[]);
    // Below the cut, DS is the child's business: a referral.
    let q = query("x.sub.example.net.", RecordType::DS);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::plain(ResponseCode::NoError));
    assert_sections(&r, &[], &SUB_NS, &SUB_GLUE);
}

// ---------------------------------------------------------------------------------------
// Additional section

#[test]
fn ns_answer_carries_addresses_of_in_zone_name_servers() {
    let s = server();
    let q = query("example.net.", RecordType::NS);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &[
            "example.net. 3600 IN NS ns1.example.net.",
            "example.net. 3600 IN NS ns2.example.org.",
        ],
        &[],
        &[
            "ns1.example.net. 3600 IN A 192.0.2.53",
            "ns1.example.net. 3600 IN AAAA 2001:db8::53",
        ],
    );
}

#[test]
fn mx_answer_carries_addresses_of_in_zone_exchanges() {
    let s = server();
    let q = query("example.net.", RecordType::MX);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &[
            "example.net. 3600 IN MX 10 mail.example.net.",
            "example.net. 3600 IN MX 20 mx.example.org.",
        ],
        &[],
        &["mail.example.net. 3600 IN A 192.0.2.25"],
    );
}

#[test]
fn srv_answer_carries_addresses_of_in_zone_targets() {
    let s = server();
    let q = query("_sip._tcp.example.net.", RecordType::SRV);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &[
            "_sip._tcp.example.net. 3600 IN SRV 10 60 5060 www.example.net.",
            "_sip._tcp.example.net. 3600 IN SRV 20 0 5060 sip.example.org.",
        ],
        &[],
        &[
            WWW_A[0],
            WWW_A[1],
            "www.example.net. 300 IN AAAA 2001:db8::10",
        ],
    );
}

#[test]
fn out_of_zone_targets_get_no_additional_records() {
    let s = server();
    let q = query("mxout.example.net.", RecordType::MX);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["mxout.example.net. 3600 IN MX 10 mx.example.org."],
        &[],
        &[],
    );
}

// ---------------------------------------------------------------------------------------
// Refusals and errors

#[test]
fn names_outside_every_zone_are_refused() {
    let s = server();
    for name in [
        "www.example.com.",
        "example.org.",
        "net.",
        ".",
        "xexample.net.",
    ] {
        let q = with_rd(query(name, RecordType::A));
        let r = s.udp(&q);
        assert_head(&q, &r, Head::plain(ResponseCode::Refused).rd());
        assert_sections(&r, &[], &[], &[]);
    }
}

#[test]
fn class_ch_is_refused() {
    let s = server();
    for (name, rtype) in [
        ("version.bind.", RecordType::TXT),
        ("www.example.net.", RecordType::A),
    ] {
        let q = query_class(name, rtype, DNSClass::CH);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::plain(ResponseCode::Refused));
        assert_sections(&r, &[], &[], &[]);
    }
}

#[test]
fn other_opcodes_get_notimp() {
    let s = server();
    for op in [
        OpCode::Status,
        OpCode::Update,
        OpCode::Notify,
        OpCode::Unknown(1),
    ] {
        let mut q = query("example.net.", RecordType::SOA);
        q.metadata.op_code = op;
        let r = s.udp(&q);
        assert_head(&q, &r, Head::plain(ResponseCode::NotImp));
        assert_sections(&r, &[], &[], &[]);
    }
}

#[test]
fn no_question_is_formerr() {
    let s = server();
    let packet = raw_packet(0x4242, 0x0100, [0, 0, 0, 0], &[]);
    let r = parse(&s.udp_bytes(&packet));
    assert_eq!(r.metadata.id, 0x4242);
    assert_eq!(rcode(&r), u16::from(ResponseCode::FormErr), "{r}");
    assert!(r.metadata.recursion_desired, "RD copied\n{r}");
    assert!(
        !r.metadata.authoritative && !r.metadata.recursion_available,
        "{r}"
    );
    assert!(r.queries.is_empty() && r.answers.is_empty(), "{r}");
}

#[test]
fn two_questions_are_formerr() {
    let s = server();
    let mut body = raw_question("www.example.net", RecordType::A, 1);
    body.extend(raw_question("mail.example.net", RecordType::A, 1));
    let packet = raw_packet(0x4343, 0x0000, [2, 0, 0, 0], &body);
    let r = parse(&s.udp_bytes(&packet));
    assert_eq!(r.metadata.id, 0x4343);
    assert_eq!(rcode(&r), u16::from(ResponseCode::FormErr), "{r}");
    assert!(!r.metadata.authoritative, "{r}");
    assert!(r.answers.is_empty() && r.authorities.is_empty(), "{r}");
}

#[test]
fn question_case_is_echoed() {
    let s = server();
    let q = query("WwW.ExAmPlE.NeT.", RecordType::A);
    for r in [s.udp(&q), s.tcp(&q)] {
        assert_head(&q, &r, Head::aa());
        assert_eq!(
            r.queries[0].name().to_string(),
            "WwW.ExAmPlE.NeT.",
            "question name must be echoed byte for byte\n{r}"
        );
        assert_eq!(r.answers.len(), 2, "{r}");
        for a in &r.answers {
            assert!(a.name.eq_ignore_root(&name_of("www.example.net.")), "{r}");
        }
    }
}

#[test]
fn labels_are_compared_as_labels_not_as_text() {
    // The labels ["a.b", "c", "example", "net"] spell `a\.b.c.example.net.`, which is not
    // a.b.c.example.net.: its closest encloser is c (an empty non-terminal), so NXDOMAIN.
    let s = server();
    let mut body = Vec::new();
    for label in ["a.b", "c", "example", "net"] {
        body.push(label.len() as u8);
        body.extend_from_slice(label.as_bytes());
    }
    body.extend_from_slice(&[0, 0, 1, 0, 1]);
    let packet = raw_packet(0x4444, 0x0000, [1, 0, 0, 0], &body);
    let r = parse(&s.udp_bytes(&packet));
    assert_eq!(r.metadata.id, 0x4444);
    assert_eq!(rcode(&r), u16::from(ResponseCode::NXDomain), "{r}");
    assert!(r.metadata.authoritative, "{r}");
    assert_sections(&r, &[], &[NEG_SOA], &[]);
}

#[test]
fn any_gets_one_rrset_not_all_of_them() {
    // RFC 8482 §4.2: answer ANY with one RRset of the name.
    let s = server();
    let q = query("www.example.net.", RecordType::ANY);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &WWW_A, &[], &[]);

    // The apex has NS, MX, A and TXT: still one set.
    let q = query("example.net.", RecordType::ANY);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert!(!r.answers.is_empty(), "{r}");
    let t = r.answers[0].record_type();
    assert!(
        r.answers
            .iter()
            .all(|a| a.record_type() == t && a.name == r.answers[0].name),
        "ANY must be answered with one RRset\n{r}"
    );

    // A name with nothing but an empty non-terminal: NODATA.
    let q = query("b.c.example.net.", RecordType::ANY);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &[], &[NEG_SOA], &[]);
}

#[test]
fn zone_transfers_are_refused() {
    let s = server();
    for rtype in [RecordType::AXFR, RecordType::IXFR] {
        let q = query("example.net.", rtype);
        let r = s.tcp(&q);
        assert_head(&q, &r, Head::plain(ResponseCode::Refused));
        assert_sections(&r, &[], &[], &[]);
    }
}

// ---------------------------------------------------------------------------------------
// EDNS

#[test]
fn edns_opt_is_echoed_with_our_payload_size() {
    let s = server();
    for payload in [512, 1232, 4096, 65_000] {
        let q = with_edns(query("www.example.net.", RecordType::A), payload);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        assert_sections(&r, &WWW_A, &[], &[]);
        let e = r.edns.as_ref().expect("OPT in the reply");
        assert_eq!(e.max_payload(), 1232, "{r}");
        assert_eq!(e.version(), 0, "{r}");
        assert!(!e.flags().dnssec_ok, "DO must stay clear\n{r}");
    }
}

#[test]
fn every_reply_to_an_edns_query_has_an_opt() {
    // RFC 6891 §6.1.1: a query with OPT gets a reply with OPT, whatever the rcode.
    let s = server();
    let mut notimp = query("example.net.", RecordType::SOA);
    notimp.metadata.op_code = OpCode::Status;
    for (q, rc) in [
        (
            query("nope.example.net.", RecordType::A),
            ResponseCode::NXDomain,
        ),
        (
            query("www.example.com.", RecordType::A),
            ResponseCode::Refused,
        ),
        (
            query("sub.example.net.", RecordType::A),
            ResponseCode::NoError,
        ),
        (
            query("www.example.net.", RecordType::OPT),
            ResponseCode::FormErr,
        ),
        (notimp, ResponseCode::NotImp),
    ] {
        let q = with_edns(q, 1232);
        let r = s.udp(&q);
        assert_eq!(rcode(&r), u16::from(rc), "{r}");
        let e = r.edns.as_ref().unwrap_or_else(|| panic!("no OPT in\n{r}"));
        assert_eq!(e.max_payload(), 1232);
        assert_eq!(e.version(), 0);
    }
}

#[test]
fn unknown_edns_options_are_ignored_not_echoed() {
    let s = server();
    let q = with_edns_option(
        query("www.example.net.", RecordType::A),
        EdnsOption::Unknown(65_001, vec![1, 2, 3]),
    );
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &WWW_A, &[], &[]);
    let e = r.edns.as_ref().expect("OPT");
    assert!(e.options().as_ref().is_empty(), "{e:?}");
}

#[test]
fn do_bit_is_copied() {
    let s = server();
    let q = with_do(query("www.example.net.", RecordType::A));
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert!(r.edns.as_ref().expect("OPT").flags().dnssec_ok, "{r}");
    assert_sections(&r, &WWW_A, &[], &[]);
    // Also on a negative answer.
    let q = with_do(query("nope.example.net.", RecordType::A));
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert!(r.edns.as_ref().expect("OPT").flags().dnssec_ok, "{r}");
}

#[test]
fn unknown_edns_version_is_badvers() {
    // RFC 6891 §6.1.3: BADVERS (16) with an OPT of the highest version we do (0).
    let s = server();
    for v in [1, 255] {
        let q = with_edns_version(query("www.example.net.", RecordType::A), v);
        let bytes = s.udp_bytes(&encode(&q));
        let r = parse(&bytes);
        assert_eq!(rcode(&r), 16, "BADVERS expected\n{r}");
        assert_eq!(bytes[3] & 0x0f, 0, "low rcode bits of BADVERS are 0");
        let e = r.edns.as_ref().expect("OPT must carry the high rcode bits");
        assert_eq!(e.version(), 0, "{r}");
        assert_eq!(e.rcode_high(), 1, "{r}");
        assert_eq!(r.metadata.id, q.metadata.id);
        assert!(!r.metadata.authoritative, "{r}");
        assert!(r.answers.is_empty() && r.authorities.is_empty(), "{r}");
        assert!(r.additionals.is_empty(), "{r}");
    }
}

#[test]
fn opt_as_query_type_is_formerr() {
    let s = server();
    let q = query("www.example.net.", RecordType::OPT);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::plain(ResponseCode::FormErr));
}

#[test]
fn two_opt_records_are_formerr() {
    // RFC 6891 §6.1.1: more than one OPT in a query MUST get FORMERR.
    let s = server();
    let mut body = raw_question("www.example.net", RecordType::A, 1);
    for _ in 0..2 {
        // root name, type OPT, class 1232, ttl 0, rdlen 0
        body.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    let packet = raw_packet(0x5151, 0x0000, [1, 0, 0, 2], &body);
    let r = parse(&s.udp_bytes(&packet));
    assert_eq!(r.metadata.id, 0x5151);
    assert_eq!(rcode(&r), u16::from(ResponseCode::FormErr), "{r}");
    assert!(r.answers.is_empty(), "{r}");
}

// ---------------------------------------------------------------------------------------
// Truncation

/// Asserts an empty truncated reply to `q`, no larger than `limit` bytes.
fn assert_truncated(q: &Message, bytes: &[u8], limit: usize) {
    let r = parse(bytes);
    assert_head(q, &r, Head::aa().tc());
    assert!(bytes.len() <= limit, "{} bytes > {limit}", bytes.len());
    assert_sections(&r, &[], &[], &[]);
}

#[test]
fn udp_without_edns_truncates_at_512_bytes() {
    let s = server();
    for name in ["many.example.net.", "longtxt.example.net."] {
        let rtype = if name.starts_with("many") {
            RecordType::A
        } else {
            RecordType::TXT
        };
        let q = query(name, rtype);
        let bytes = s.udp_bytes(&encode(&q));
        assert_truncated(&q, &bytes, 512);
        assert!(parse(&bytes).edns.is_none());
    }
}

#[test]
fn udp_with_edns_truncates_at_the_payload_size() {
    let s = server();
    let q = with_edns(query("many.example.net.", RecordType::A), 1232);
    let bytes = s.udp_bytes(&encode(&q));
    assert_truncated(&q, &bytes, 1232);
    assert_eq!(parse(&bytes).edns.expect("OPT").max_payload(), 1232);

    // The long TXT (about 850 bytes) fits 1232 but not a 600-byte client payload.
    let q = with_edns(query("longtxt.example.net.", RecordType::TXT), 1232);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_eq!(r.answers.len(), 4, "{r}");
    let q = with_edns(query("longtxt.example.net.", RecordType::TXT), 600);
    let bytes = s.udp_bytes(&encode(&q));
    assert_truncated(&q, &bytes, 600);
}

#[test]
fn server_payload_limit_caps_a_larger_client_payload() {
    let s = server_with("max_udp_payload = 1232\n");
    let q = with_edns(query("many.example.net.", RecordType::A), 4096);
    let bytes = s.udp_bytes(&encode(&q));
    assert_truncated(&q, &bytes, 1232);
    assert_eq!(parse(&bytes).edns.expect("OPT").max_payload(), 1232);
}

#[test]
fn a_larger_server_limit_lets_big_answers_through_udp() {
    let s = server_with("max_udp_payload = 4096\n");
    let q = with_edns(query("many.example.net.", RecordType::A), 4096);
    let bytes = s.udp_bytes(&encode(&q));
    let r = parse(&bytes);
    assert_head(&q, &r, Head::aa());
    assert_eq!(r.answers.len(), 100, "{r}");
    assert!(bytes.len() > 1232 && bytes.len() <= 4096, "{}", bytes.len());
    assert_eq!(r.edns.expect("OPT").max_payload(), 4096);
    // The client's own smaller payload still rules.
    let q = with_edns(query("many.example.net.", RecordType::A), 1232);
    let bytes = s.udp_bytes(&encode(&q));
    assert_truncated(&q, &bytes, 1232);
}

#[test]
fn tcp_returns_the_full_answer_that_udp_truncated() {
    let s = server();
    let q = query("many.example.net.", RecordType::A);
    let r = s.tcp(&q);
    assert_head(&q, &r, Head::aa());
    assert_eq!(r.answers.len(), 100, "{r}");
    let want: Vec<String> = (1..=100)
        .map(|i| format!("many.example.net. 3600 IN A 10.0.{}.{}", i / 256, i % 256))
        .collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_sections(&r, &want, &[], &[]);

    let q = query("longtxt.example.net.", RecordType::TXT);
    let r = s.tcp(&q);
    assert_head(&q, &r, Head::aa());
    assert_eq!(r.answers.len(), 4, "{r}");
}

#[test]
fn additional_section_is_dropped_without_tc_when_only_it_does_not_fit() {
    let s = server();
    let q = query("bigmx.example.net.", RecordType::MX);
    let bytes = s.udp_bytes(&encode(&q));
    let r = parse(&bytes);
    assert!(bytes.len() <= 512, "{}", bytes.len());
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["bigmx.example.net. 3600 IN MX 10 bigmail.example.net."],
        &[],
        &[],
    );
    // With room, all 40 addresses come along.
    let q = with_edns(query("bigmx.example.net.", RecordType::MX), 1232);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_eq!(r.answers.len(), 1, "{r}");
    assert_eq!(r.additionals.len(), 40, "{r}");
    assert!(
        r.additionals
            .iter()
            .all(|a| a.record_type() == RecordType::A)
    );
}

// ---------------------------------------------------------------------------------------
// TCP

#[test]
fn tcp_pipelined_queries_are_all_answered_in_order() {
    let s = server();
    let queries = vec![
        query("www.example.net.", RecordType::A),
        query("nope.example.net.", RecordType::A),
        query("many.example.net.", RecordType::A),
        query("www.example.com.", RecordType::A),
        query("sub.example.net.", RecordType::A),
        with_edns(query("alias.example.net.", RecordType::A), 1232),
    ];
    let answers = s.tcp_pipelined(&queries);
    let rcodes: Vec<u16> = answers.iter().map(rcode).collect();
    assert_eq!(rcodes, vec![0, 3, 0, 5, 0, 0]);
    for (q, r) in queries.iter().zip(&answers) {
        assert_eq!(r.metadata.id, q.metadata.id, "answers out of order");
        assert_eq!(r.queries, q.queries);
    }
    assert_eq!(answers[2].answers.len(), 100);
    assert!(!answers[2].metadata.truncation);
}

#[test]
fn tcp_answers_a_client_that_half_closed() {
    let s = server();
    let mut c = s.tcp_connect();
    let q1 = query("www.example.net.", RecordType::A);
    let q2 = query("mail.example.net.", RecordType::A);
    let mut both = frame(&encode(&q1));
    both.extend(frame(&encode(&q2)));
    c.write_all(&both).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    for q in [&q1, &q2] {
        let r = parse(&read_frame(&mut c).expect("read").expect("an answer"));
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(rcode(&r), 0);
    }
    assert_eq!(read_frame(&mut c).expect("clean close"), None);
}

#[test]
fn tcp_idle_connection_is_closed() {
    let s = server_with("[tcp]\nidle_timeout = \"1s\"\n");
    // A connection that was served, then went quiet.
    let mut c = s.tcp_connect();
    c.write_all(&frame(&encode(&query("www.example.net.", RecordType::A))))
        .expect("write");
    let r = read_frame(&mut c).expect("read").expect("an answer");
    assert_eq!(parse(&r).answers.len(), 2);
    assert_eq!(wait_closed(&mut c, Duration::from_secs(10)), Closed::Yes);
    // A connection that never said anything.
    let mut silent = s.tcp_connect();
    assert_eq!(
        wait_closed(&mut silent, Duration::from_secs(10)),
        Closed::Yes
    );
    s.assert_alive("example.net.");
}

/// One query on an open connection: `Some(reply)` or `None` if the connection failed.
fn exchange(c: &mut std::net::TcpStream, q: &Message) -> Option<Message> {
    c.write_all(&frame(&encode(q))).ok()?;
    read_frame(c).ok().flatten().map(|b| parse(&b))
}

#[test]
fn tcp_connections_over_the_limit_are_closed() {
    let s = server_with("[tcp]\nmax_connections = 2\n");
    let q = query("www.example.net.", RecordType::A);
    // Two connections, each proven accepted by an answer, hold both slots.
    let mut c1 = s.tcp_connect();
    let mut c2 = s.tcp_connect();
    assert!(exchange(&mut c1, &q).is_some());
    assert!(exchange(&mut c2, &q).is_some());
    // The third is closed without an answer.
    let mut c3 = s.tcp_connect();
    let _ = c3.write_all(&frame(&encode(&q)));
    assert_eq!(wait_closed(&mut c3, Duration::from_secs(5)), Closed::Yes);
    // The two still work.
    assert!(exchange(&mut c2, &q).is_some());
    // Once one closes its slot frees up (the server notices the close asynchronously).
    drop(c1);
    let mut served = false;
    for _ in 0..50 {
        let mut c = s.tcp_connect();
        if exchange(&mut c, &q).is_some() {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        served,
        "no slot freed after a connection closed\n{}",
        s.log()
    );
}

#[test]
fn slow_tcp_sender_is_disconnected_and_blocks_no_one() {
    let s = server_with("[tcp]\nidle_timeout = \"30s\"\nmessage_timeout = \"1s\"\n");
    let mut slow = s.tcp_connect();
    // A length prefix announcing 40 bytes, and only 5 of them.
    slow.write_all(&[0, 40, 0x12, 0x34, 0, 0, 0])
        .expect("write");
    // Others are served meanwhile, over TCP and UDP.
    let q = query("www.example.net.", RecordType::A);
    assert_eq!(s.tcp(&q).answers.len(), 2);
    assert_eq!(s.udp(&q).answers.len(), 2);
    // The slow one is closed by the message timeout (1 s), well before the idle one (30 s).
    assert_eq!(wait_closed(&mut slow, Duration::from_secs(10)), Closed::Yes);

    // Just a length prefix, then nothing.
    let mut slow = s.tcp_connect();
    slow.write_all(&[0, 40]).expect("write");
    assert_eq!(s.tcp(&q).answers.len(), 2);
    assert_eq!(wait_closed(&mut slow, Duration::from_secs(10)), Closed::Yes);
}

#[test]
fn tcp_connection_survives_malformed_and_response_messages() {
    let s = server();
    let mut c = s.tcp_connect();
    // Garbage with QR clear gets a FORMERR and the connection stays open.
    c.write_all(&frame(&raw_packet(
        0x6161,
        0x0000,
        [1, 0, 0, 0],
        &[0xff; 6],
    )))
    .expect("write");
    let r = read_frame(&mut c).expect("read").expect("FORMERR");
    assert_eq!(&r[..2], &[0x61, 0x61]);
    assert_eq!(r[3] & 0x0f, 1, "FORMERR");
    // A response (QR set) and an empty message get nothing; the next query is answered.
    let mut resp = encode(&query("www.example.net.", RecordType::A));
    resp[2] |= 0x80;
    c.write_all(&frame(&resp)).expect("write");
    c.write_all(&frame(&[])).expect("write");
    let q = query("www.example.net.", RecordType::A);
    let r = exchange(&mut c, &q).expect("answer after the ignored messages");
    assert_eq!(r.metadata.id, q.metadata.id);
    assert_eq!(r.answers.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Malformed UDP packets (a single UDP thread keeps replies in packet order)

fn malformed_server() -> Server {
    server_with("udp_threads = 1\n")
}

/// Asserts `reply` is a header-only FORMERR for id `id`.
fn assert_formerr(reply: Option<Vec<u8>>, id: u16) {
    let reply = reply.expect("a FORMERR reply");
    assert!(reply.len() >= 12, "{reply:02x?}");
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), id, "{reply:02x?}");
    assert_eq!(reply[2] & 0x80, 0x80, "QR set: {reply:02x?}");
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR: {reply:02x?}");
    assert_eq!(reply[3] & 0x80, 0, "RA clear: {reply:02x?}");
}

#[test]
fn random_garbage_never_stops_the_server() {
    let s = malformed_server();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..40 {
        let len = 12 + (round * 7) % 200;
        let mut packet: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        packet[2] &= 0x7f; // a query, so the server may answer
        if let Some(reply) = s.udp_raw_then_probe(&packet) {
            assert!(reply.len() >= 12, "{reply:02x?}");
            assert_eq!(reply[..2], packet[..2], "reply id");
            assert_eq!(reply[2] & 0x80, 0x80, "QR");
        }
    }
    s.assert_alive("example.net.");
}

#[test]
fn packets_shorter_than_a_header_get_no_reply() {
    let s = malformed_server();
    for len in [0, 1, 2, 5, 11] {
        let packet = vec![0x01; len];
        assert_eq!(s.udp_raw_then_probe(&packet), None, "{len}-byte packet");
    }
}

#[test]
fn header_claiming_a_missing_question_is_formerr() {
    let s = malformed_server();
    let packet = raw_packet(0x7171, 0x0100, [1, 0, 0, 0], &[]);
    assert_formerr(s.udp_raw_then_probe(&packet), 0x7171);
    // A question cut short after its name.
    let mut body = raw_question("www.example.net", RecordType::A, 1);
    body.truncate(body.len() - 3);
    let packet = raw_packet(0x7172, 0x0000, [1, 0, 0, 0], &body);
    assert_formerr(s.udp_raw_then_probe(&packet), 0x7172);
}

#[test]
fn responses_get_no_reply() {
    // QR=1: answering could make two servers bounce packets forever.
    let s = malformed_server();
    let mut packet = encode(&query("www.example.net.", RecordType::A));
    packet[2] |= 0x80;
    assert_eq!(s.udp_raw_then_probe(&packet), None);
    // Also through the plain helper, which waits out the timeout.
    assert_eq!(s.udp_raw(&packet), None);
}

#[test]
fn compression_pointer_loops_and_bad_names_are_formerr() {
    let s = malformed_server();
    let tail = [0, 1, 0, 1]; // type A, class IN
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // A pointer to itself (offset 12 is where the name starts).
        ("self pointer", [&[0xc0, 0x0c][..], &tail].concat()),
        // Two pointers pointing at each other.
        (
            "pointer pair",
            [&[1, b'a', 0xc0, 0x0e, 0xc0, 0x0c][..], &tail].concat(),
        ),
        // A pointer past the end of the packet.
        ("pointer past the end", [&[0xc0, 0xff][..], &tail].concat()),
        // Reserved label types 0b01 and 0b10.
        ("label type 01", [&[0x41, b'a', 0][..], &tail].concat()),
        ("label type 10", [&[0x81, b'a', 0][..], &tail].concat()),
        // A name longer than 255 bytes (5 labels of 63).
        ("name too long", {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(63);
                v.extend_from_slice(&[b'x'; 63]);
            }
            v.push(0);
            v.extend_from_slice(&tail);
            v
        }),
    ];
    for (i, (what, body)) in cases.iter().enumerate() {
        let id = 0x7200 + i as u16;
        let packet = raw_packet(id, 0x0000, [1, 0, 0, 0], body);
        let reply = s.udp_raw_then_probe(&packet);
        assert!(reply.is_some(), "{what}: no reply");
        assert_formerr(reply, id);
    }
    s.assert_alive("example.net.");
}

// ---------------------------------------------------------------------------------------
// EDNS Client Subnet (RFC 7871)

#[test]
fn ecs_is_echoed_with_scope_zero_for_static_names() {
    let s = server();
    for (addr, prefix) in [("192.0.2.0", 24), ("198.51.100.128", 25), ("0.0.0.0", 0)] {
        let q = with_ecs(query("www.example.net.", RecordType::A), addr, prefix);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        assert_sections(&r, &WWW_A, &[], &[]);
        assert_eq!(
            ecs_of(&r),
            Some(ClientSubnet::new(addr.parse().unwrap(), prefix, 0)),
            "{r}"
        );
    }
    // Negative answers too.
    let q = with_ecs(query("nope.example.net.", RecordType::A), "192.0.2.0", 24);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_eq!(
        ecs_of(&r),
        Some(ClientSubnet::new("192.0.2.0".parse().unwrap(), 24, 0))
    );
}

#[test]
fn ecs_ipv6_is_echoed() {
    let s = server();
    for (addr, prefix) in [("2001:db8::", 32), ("2001:db8:1:200::", 56)] {
        let q = with_ecs(query("www.example.net.", RecordType::AAAA), addr, prefix);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        assert_sections(&r, &["www.example.net. 300 IN AAAA 2001:db8::10"], &[], &[]);
        assert_eq!(
            ecs_of(&r),
            Some(ClientSubnet::new(addr.parse().unwrap(), prefix, 0)),
            "{r}"
        );
    }
}

#[test]
fn ecs_with_address_bits_past_the_prefix_is_formerr() {
    // RFC 7871 §6. 192.0.3.0/23: the 24th bit is set. (Whole bytes past the prefix are not
    // sent at all, so the stray bit has to be inside the last byte.)
    let s = server();
    for (addr, prefix) in [("192.0.3.0", 23), ("10.0.0.1", 31), ("2001:db8:1::", 47)] {
        let q = with_ecs(query("www.example.net.", RecordType::A), addr, prefix);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::plain(ResponseCode::FormErr));
        assert_sections(&r, &[], &[], &[]);
        assert!(r.edns.is_some(), "OPT expected in an EDNS reply\n{r}");
        assert_eq!(ecs_of(&r), None, "{r}");
    }
}

#[test]
fn ecs_with_too_many_address_octets_is_formerr() {
    // RFC 7871 §6: "too few or too many ADDRESS octets ... SHOULD return FORMERR".
    // family 1, source /24, scope 0, and four address bytes where three belong.
    let s = server();
    let q = with_edns_option(
        query("www.example.net.", RecordType::A),
        EdnsOption::Unknown(8, vec![0, 1, 24, 0, 192, 0, 2, 0]),
    );
    let r = s.udp(&q);
    assert_head(&q, &r, Head::plain(ResponseCode::FormErr));
}

#[test]
fn ecs_with_an_impossible_prefix_is_formerr() {
    // IPv4 /33: the server cannot even read the address (FORMERR, header only).
    let s = server();
    let q = with_edns_option(
        query("www.example.net.", RecordType::A),
        EdnsOption::Unknown(8, vec![0, 1, 33, 0, 192, 0, 2, 0, 0]),
    );
    let bytes = s.udp_bytes(&encode(&q));
    assert_eq!(bytes[3] & 0x0f, 1, "FORMERR: {bytes:02x?}");
    assert_eq!(bytes[..2], encode(&q)[..2]);
    s.assert_alive("example.net.");
}

// ---------------------------------------------------------------------------------------
// Parent and child zones on one server

const CHILD: &str = r#"
origin = "sub.example.net"
ttl = 600
[soa]
primary = "ns1"
contact = "hostmaster"
serial = 5
negative_ttl = 60
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.201"
[names.www]
a = "192.0.2.202"
"#;

const CHILD_NEG_SOA: &str = "sub.example.net. 60 IN SOA ns1.sub.example.net. hostmaster.sub.example.net. 5 3600 900 604800 60";

#[test]
fn the_most_specific_zone_answers() {
    let s = Server::start(
        &[("example.net", EXAMPLE_NET), ("sub.example.net", CHILD)],
        "",
    );
    let q = query("www.sub.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(&r, &["www.sub.example.net. 600 IN A 192.0.2.202"], &[], &[]);
    let q = query("sub.example.net.", RecordType::NS);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["sub.example.net. 600 IN NS ns1.sub.example.net."],
        &[],
        &["ns1.sub.example.net. 600 IN A 192.0.2.201"],
    );
    let q = query("nope.sub.example.net.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_sections(&r, &[], &[CHILD_NEG_SOA], &[]);
    // The parent still answers its own names.
    let q = query("www.example.net.", RecordType::A);
    assert_sections(&s.udp(&q), &WWW_A, &[], &[]);
}

#[test]
fn ds_is_answered_from_the_parent_when_both_zones_are_served() {
    let s = Server::start(
        &[("example.net", EXAMPLE_NET), ("sub.example.net", CHILD)],
        "",
    );
    let q = query("sub.example.net.", RecordType::DS);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    // NODATA from example.net., the zone that would hold the DS.
    assert_sections(&r, &[], &[NEG_SOA], &[]);
}

// ---------------------------------------------------------------------------------------
// The shipped zones/ directory

#[test]
fn shipped_zone_www_has_two_addresses_with_ttl_300() {
    let s = Server::example();
    let q = query("www.example.com.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &[
            "www.example.com. 300 IN A 192.0.2.10",
            "www.example.com. 300 IN A 192.0.2.11",
        ],
        &[],
        &[],
    );
}

#[test]
fn shipped_zone_web_is_a_cname_to_www() {
    let s = Server::example();
    let q = query("web.example.com.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered(
        "answer",
        &r.answers[..1],
        &["web.example.com. 3600 IN CNAME www.example.com."],
    );
    assert_section(
        "answer",
        &r.answers[1..],
        &[
            "www.example.com. 300 IN A 192.0.2.10",
            "www.example.com. 300 IN A 192.0.2.11",
        ],
    );
}

#[test]
fn shipped_zone_wildcard_and_its_exception() {
    let s = Server::example();
    let neg = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. \
               2026112201 3600 900 604800 300";
    let q = query("shop.apps.example.com.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["shop.apps.example.com. 3600 IN A 192.0.2.80"],
        &[],
        &[],
    );
    let q = query("x.status.apps.example.com.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
    assert_sections(&r, &[], &[neg], &[]);
    let q = query("status.apps.example.com.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &["status.apps.example.com. 3600 IN A 192.0.2.81"],
        &[],
        &[],
    );
}

#[test]
fn shipped_zone_apex_ns_mx_and_delegation() {
    let s = Server::example();
    let q = query("example.com.", RecordType::NS);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &[
            "example.com. 3600 IN NS ns1.example.com.",
            "example.com. 3600 IN NS ns2.example.com.",
        ],
        &[],
        &[
            "ns1.example.com. 3600 IN A 192.0.2.53",
            "ns1.example.com. 3600 IN AAAA 2001:db8::53",
            "ns2.example.com. 3600 IN A 198.51.100.53",
        ],
    );
    let q = query("example.com.", RecordType::MX);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_sections(
        &r,
        &[
            "example.com. 3600 IN MX 10 mail.example.com.",
            "example.com. 3600 IN MX 20 mail.backup-provider.net.",
        ],
        &[],
        &["mail.example.com. 3600 IN A 192.0.2.25"],
    );
    let q = query("host.dev.example.com.", RecordType::A);
    let r = s.udp(&q);
    assert_head(&q, &r, Head::plain(ResponseCode::NoError));
    assert_sections(
        &r,
        &[],
        &[
            "dev.example.com. 3600 IN NS ns1.dev.example.com.",
            "dev.example.com. 3600 IN NS ns.other-dns.net.",
        ],
        &["ns1.dev.example.com. 3600 IN A 192.0.2.200"],
    );
}
