//! The whole request path: bytes in, reply out, through `Responder::respond` over the
//! example zone (zones/), the test zone example.net (tests/fixtures/good/: big answers, CNAME
//! chains) and the test GeoIP data (geoip/test-city.mmdb), over UDP and TCP.
//!
//! The first two input bytes choose the client's address (so GeoIP and the `network` rule
//! of the example's map come into play); the rest is the query. Invariants checked:
//! - `Drop` only for what is shorter than a header or is itself a response (QR=1);
//! - a reply has the query's ID and opcode and QR=1, and parses with hickory-proto, or is the
//!   header-only FORMERR sent for a query hickory cannot parse;
//! - a UDP reply fits the client's size: 512 bytes without EDNS, else the advertised size
//!   clamped to 512..=1232 (the responder's payload size); a TCP reply fits 65535;
//! - a question in the reply is the query's, letter case included;
//! - every A/AAAA record owned by a GSLB name of the example zones is one of that name's
//!   candidate addresses (its data centers' addresses and its `all_down` addresses).

#![no_main]

#[path = "shared.rs"]
mod shared;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, ResponseCode};
use libfuzzer_sys::fuzz_target;
use meridian::serve::{Outcome, Responder, Transport};
use meridian::zone::model::AllDown;

/// The server's UDP payload size in this fixture (the default).
const MAX_UDP_PAYLOAD: u16 = 1232;

struct Fixture {
    responder: Responder,
    /// Lower-case GSLB owner name (with the trailing dot) → its candidate addresses.
    candidates: HashMap<String, HashSet<IpAddr>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (zones, snap) = shared::fixture_zones();
        let responder = Responder::new(Arc::new(ArcSwap::from_pointee(snap)), MAX_UDP_PAYLOAD);

        let mut candidates = HashMap::new();
        for zone in &zones {
            for node in &zone.nodes {
                let Some(gslb) = &node.gslb else { continue };
                let mut set: HashSet<IpAddr> = gslb
                    .candidates
                    .iter()
                    .flat_map(|&dc| {
                        zone.datacenters.as_slice()[dc]
                            .addresses
                            .iter()
                            .map(|a| a.ip)
                    })
                    .collect();
                if let AllDown::Addresses(extra) = &gslb.all_down {
                    set.extend(extra.iter().copied());
                }
                candidates.insert(node.name.to_lowercase().to_string(), set);
            }
        }
        assert!(!candidates.is_empty(), "the example zones have GSLB names");
        Fixture {
            responder,
            candidates,
        }
    })
}

/// The largest UDP reply the query allows, read with hickory-proto independently of the
/// responder. A query hickory cannot read as a message is held to 512 bytes.
fn udp_limit(query: &[u8]) -> usize {
    match Message::from_vec(query) {
        Ok(m) => match &m.edns {
            Some(e) => usize::from(e.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
            None => 512,
        },
        Err(_) => 512,
    }
}

fn check(f: &Fixture, query: &[u8], src: SocketAddr, transport: Transport, out: &mut Vec<u8>) {
    let outcome = f.responder.respond(query, src, transport, out);
    let is_response = query.len() >= 3 && query[2] & 0x80 != 0;
    if outcome == Outcome::Drop {
        assert!(
            query.len() < 12 || is_response,
            "dropped a query: {query:02x?}"
        );
        return;
    }
    assert!(query.len() >= 12 && !is_response, "answered a non-query");
    assert!(out.len() >= 12, "reply shorter than a header: {out:02x?}");
    assert_eq!(out[..2], query[..2], "the reply carries the query's id");
    assert!(out[2] & 0x80 != 0, "QR is set");
    assert_eq!(
        out[2] & 0x78,
        query[2] & 0x78,
        "the reply has the query's opcode"
    );
    let truncated = out[2] & 0x02 != 0;
    match transport {
        Transport::Udp => {
            let limit = udp_limit(query);
            assert!(
                out.len() <= limit,
                "UDP reply of {} bytes over the client's {limit} (TC={truncated})",
                out.len()
            );
        }
        Transport::Tcp => assert!(out.len() <= usize::from(u16::MAX)),
    }
    let reply = match Message::from_vec(out) {
        Ok(m) => m,
        Err(e) => {
            let header_only_formerr =
                out.len() == 12 && out[3] & 0x0f == ResponseCode::FormErr.low();
            assert!(header_only_formerr, "unparseable reply ({e}): {out:02x?}");
            return;
        }
    };
    // A question in the reply is the query's, letter case included (resolvers match it
    // against what they sent, some with random case: draft-vixie-dnsext-dns0x20).
    if !reply.queries.is_empty() {
        let sent = Message::from_vec(query)
            .map(|m| m.queries)
            .unwrap_or_default();
        assert_eq!(reply.queries.len(), sent.len(), "question count");
        for (got, want) in reply.queries.iter().zip(&sent) {
            assert!(
                got.name().eq_case(want.name())
                    && got.query_type() == want.query_type()
                    && got.query_class() == want.query_class(),
                "the reply's question {got} is not the query's {want}"
            );
        }
    }
    for r in &reply.answers {
        let Some(ip) = r.data.ip_addr() else { continue };
        if let Some(set) = f.candidates.get(&r.name.to_lowercase().to_string()) {
            assert!(
                set.contains(&ip),
                "{} answered {ip}, not one of its candidates {set:?}",
                r.name
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    if data.len() < 2 {
        return;
    }
    let src = shared::source(data[0], data[1]);
    let query = &data[2..];
    let mut out = Vec::new();
    check(f, query, src, Transport::Udp, &mut out);
    check(f, query, src, Transport::Tcp, &mut out);
});
