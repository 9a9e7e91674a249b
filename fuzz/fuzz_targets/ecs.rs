//! The EDNS Client Subnet option parser (`serve::ecs::parse`), its search in a message
//! (`serve::ecs::find`), and the echo the reply carries (`serve::edns`).
//!
//! The input is one option body: FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS.
//! Invariants checked: no panic; an accepted option has family 1 or 2, a source prefix of
//! at most 32 or 128, exactly the address octets the prefix needs, and no address bit set
//! past the prefix, and the parsed address is those octets; `find` in a query carrying the
//! option gives what `parse` gives, and so does the request path's EDNS reading
//! (`QueryEdns::read`: the subnet, or FORMERR); the reply's echo, written by `ReplyOpt::write`,
//! has the option's family, source prefix and address, the scope given (0 for source 0),
//! and parses back to the same subnet.

#![no_main]

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use libfuzzer_sys::fuzz_target;
use meridian::serve::ecs::{self, ClientSubnet};
use meridian::serve::edns::QueryEdns;

/// A query for cdn.example.com A with one OPT record holding the option `body` as ECS.
fn query_with(body: &[u8]) -> Option<Vec<u8>> {
    let opt_len = u16::try_from(body.len() + 4).ok()?;
    let mut m = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(b"\x03cdn\x07example\x03com\x00\x00\x01\x00\x01");
    // OPT: root owner, TYPE 41, CLASS 1232 (payload), TTL 0, RDLENGTH.
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    m.extend_from_slice(&opt_len.to_be_bytes());
    m.extend_from_slice(&[0, 8]);
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(body);
    Some(m)
}

fn check_accepted(body: &[u8], cs: ClientSubnet) {
    let (family, max, octets): (u16, u8, Vec<u8>) = match cs.addr {
        IpAddr::V4(a) => (1, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (2, 128, a.octets().to_vec()),
    };
    assert_eq!(body[..2], family.to_be_bytes(), "family of {cs:?}");
    assert_eq!(body[2], cs.source);
    assert!(
        cs.source <= max,
        "prefix {} longer than the address",
        cs.source
    );
    let n = usize::from(cs.source).div_ceil(8);
    assert_eq!(body.len(), 4 + n, "address octets for /{}", cs.source);
    assert_eq!(
        &octets[..n],
        &body[4..],
        "the address is the option's octets"
    );
    for (i, b) in octets.iter().enumerate() {
        let covered = usize::from(cs.source).saturating_sub(8 * i).min(8);
        let host_bits = 0xffu8.checked_shr(covered as u32).unwrap_or(0);
        assert_eq!(b & host_bits, 0, "bit set past /{} in {cs:?}", cs.source);
    }
}

/// Writes the reply's OPT for `edns` with `scope` and checks the ECS echo in it.
fn check_echo(edns: &QueryEdns, body: &[u8], cs: ClientSubnet, scope: u8) {
    let opt = edns
        .reply(Some(scope))
        .expect("a query with an OPT gets one");
    let mut out = Vec::new();
    opt.write(ResponseCode::NoError, &mut out);
    assert_eq!(out.len(), opt.wire_len());
    // Root, TYPE, CLASS, TTL, RDLENGTH, then one option: code, length, body.
    let rdata = &out[11..];
    assert_eq!(
        usize::from(u16::from_be_bytes([out[9], out[10]])),
        rdata.len()
    );
    assert_eq!(rdata[..2], [0, 8], "the option is ECS");
    let echo = &rdata[4..];
    assert_eq!(
        usize::from(u16::from_be_bytes([rdata[2], rdata[3]])),
        echo.len()
    );
    assert_eq!(echo[..3], body[..3], "family and source prefix echoed");
    let want_scope = if cs.source == 0 { 0 } else { scope };
    assert_eq!(echo[3], want_scope, "scope");
    assert_eq!(echo[4..], body[4..], "address echoed");
    assert_eq!(ecs::parse(echo), Ok(cs), "the echo parses back");
}

fuzz_target!(|data: &[u8]| {
    // The last byte is the scope an answer would have, the rest the option body.
    let Some((&scope, body)) = data.split_last() else {
        return;
    };
    let parsed = ecs::parse(body);
    if let Ok(cs) = parsed {
        check_accepted(body, cs);
    }
    let Some(query) = query_with(body) else {
        return;
    };
    assert_eq!(ecs::find(&query), Some(parsed), "find agrees with parse");
    // The request path reads the option the same way, where hickory parses the query.
    let src: SocketAddr = "127.0.1.1:5353".parse().expect("an address");
    let Ok(request) = Request::from_bytes(query.clone(), src, Protocol::Udp) else {
        return;
    };
    let edns = QueryEdns::read(&request, &query, 1232);
    match parsed {
        Ok(cs) => {
            assert_eq!((edns.subnet, edns.error), (Some(cs), None));
            check_echo(&edns, body, cs, scope);
        }
        Err(_) => assert_eq!(
            (edns.subnet, edns.error),
            (None, Some(ResponseCode::FormErr))
        ),
    }
});
