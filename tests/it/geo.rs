//! Geo routing of a running server: GSLB answers over real UDP and TCP sockets, decided by
//! the client's source address (client sockets bound to 127.0.x.y) or its EDNS Client
//! Subnet, against the checked-in test databases in `geoip/`.
//!
//! What the databases say (geoip/README.md): 127.0.1.0/24, 192.0.2.0/25 and
//! 2001:db8:1::/48 are Amsterdam; 127.0.2.0/24, 198.51.100.0/25, 2001:db8:2::/48 New York;
//! 127.0.3.0/24, 203.0.113.0/25, 2001:db8:3::/48 Singapore; 127.0.4.0/24, 192.0.2.128/25,
//! 2001:db8:4::/48 São Paulo; 127.0.5.0/24, 198.51.100.128/25, 2001:db8:5::/48 Sydney;
//! 127.0.6.0/24 Johannesburg; 81.2.69.0/24 London; 216.160.83.0/24 Milton (WA);
//! 175.16.199.0/24 Changchun; 200.160.2.0/24 São Paulo. Nothing else is known, in
//! particular 127.0.0.1, 10/8, 203.0.113.128/25 and the rest of 2001:db8::/32.
//!
//! Most tests serve either the shipped `zones/example.com.toml` (its `cdn` name: nearest
//! over ams, nyc, sin) or a fixture zone `example.org` built here from five data centers
//! at real coordinates (ams, nyc, sin, syd, gru).

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::ClientSubnet;

use crate::geoip_fixtures::{self, BUILD_EPOCH, NETWORKS, Place};
use crate::harness::*;

// ---------------------------------------------------------------------------------------
// Fixtures

/// The shipped example zone, exactly as checked in.
const SHIPPED_ZONE: &str = include_str!("../../zones/example.com.toml");

/// The five data centers of the fixture zone: id, IPv4, IPv6, latitude, longitude.
const DCS: [(&str, &str, &str, f64, f64); 5] = [
    ("ams", "192.0.2.1", "2001:db8:a::1", 52.3676, 4.9041),
    ("nyc", "192.0.2.2", "2001:db8:b::1", 40.7128, -74.0060),
    ("sin", "192.0.2.3", "2001:db8:c::1", 1.3521, 103.8198),
    ("syd", "192.0.2.4", "2001:db8:d::1", -33.8688, 151.2093),
    ("gru", "192.0.2.5", "2001:db8:e::1", -23.5505, -46.6333),
];

/// The SOA of example.org. as sent in negative answers: TTL min(3600, 300) = 300.
const ORG_NEG_SOA: &str =
    "example.org. 300 IN SOA ns1.example.org. hostmaster.example.org. 1 3600 900 604800 300";

/// The fixture zone `example.org`: SOA, apex NS, the five [`DCS`], then `rest` (names,
/// `[network_overrides]`, more data centers).
fn org_zone(rest: &str) -> String {
    let mut z = String::from(
        r#"origin = "example.org"
ttl = "1h"
[soa]
primary = "ns1"
contact = "hostmaster@example.org"
serial = 1
refresh = "1h"
retry = "15m"
expire = "1w"
negative_ttl = "5m"
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
"#,
    );
    for (id, v4, v6, lat, lon) in DCS {
        z.push_str(&format!(
            "[datacenters.{id}]\naddresses = [\"{v4}\", \"{v6}\"]\nlocation = [{lat}, {lon}]\n"
        ));
    }
    z.push_str(rest);
    z
}

/// A checked-in test database.
fn geoip_file(name: &str) -> PathBuf {
    repo_dir().join("geoip").join(name)
}

/// `p` as a TOML string.
fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A `[geoip]` section with these location databases and optional ASN database.
fn geoip_section(databases: &[&Path], asn: Option<&Path>) -> String {
    let dbs: Vec<String> = databases.iter().map(|p| toml_path(p)).collect();
    let mut s = format!("[geoip]\ndatabases = [{}]\n", dbs.join(", "));
    if let Some(a) = asn {
        s.push_str(&format!("asn = {}\n", toml_path(a)));
    }
    s
}

/// `[geoip]` with the test City database.
fn city() -> String {
    geoip_section(&[&geoip_file("test-city.mmdb")], None)
}

/// The shipped zone with `config` appended to the server config.
fn shipped(config: &str) -> Server {
    Server::start(&[("example.com", SHIPPED_ZONE)], config)
}

/// The fixture zone (with `rest`) and `config`.
fn org(rest: &str, config: &str) -> Server {
    Server::start(&[("example.org", &org_zone(rest))], config)
}

/// The answer record `cdn.example.com` gets for data center `dc` of the shipped zone.
fn cdn(dc: &str, rtype: RecordType) -> String {
    let addr = match (dc, rtype) {
        ("ams", RecordType::A) => "192.0.2.10",
        ("nyc", RecordType::A) => "198.51.100.10",
        ("sin", RecordType::A) => "203.0.113.10",
        ("ams", RecordType::AAAA) => "2001:db8:a::10",
        ("nyc", RecordType::AAAA) => "2001:db8:b::10",
        ("sin", RecordType::AAAA) => "2001:db8:c::10",
        other => panic!("no cdn address for {other:?}"),
    };
    format!("cdn.example.com. 30 IN {rtype} {addr}")
}

/// The answer records of `name` in the fixture zone for data centers `dcs`, in order.
fn org_answer(name: &str, dcs: &[&str], rtype: RecordType) -> Vec<String> {
    dcs.iter()
        .map(|dc| {
            let (_, v4, v6, _, _) = DCS
                .iter()
                .find(|d| d.0 == *dc)
                .unwrap_or_else(|| panic!("no data center {dc}"));
            let addr = if rtype == RecordType::AAAA { v6 } else { v4 };
            format!("{name}.example.org. 30 IN {rtype} {addr}")
        })
        .collect()
}

/// Great-circle distance in km (haversine, mean Earth radius 6371 km), computed here
/// independently of the server.
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dla = la2 - la1;
    let dlo = (b.1 - a.1).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// The fixture data centers ordered by distance from `place`, with the distances.
fn by_distance(place: &Place) -> Vec<(&'static str, f64)> {
    let mut v: Vec<(&'static str, f64)> = DCS
        .iter()
        .map(|&(id, _, _, lat, lon)| {
            (
                id,
                haversine_km((place.latitude, place.longitude), (lat, lon)),
            )
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v
}

// ---------------------------------------------------------------------------------------
// Clients with a chosen source address

/// A UDP socket bound to `src` (any 127/8 address works on Linux).
fn udp_socket_from(src: &str) -> UdpSocket {
    let ip: IpAddr = src.parse().expect("source address");
    assert!(ip.is_loopback(), "test clients stay on 127/8: {ip}");
    let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
        .unwrap_or_else(|e| panic!("bind UDP client to {ip}: {e}"));
    sock.set_read_timeout(Some(UDP_TIMEOUT)).expect("timeout");
    sock
}

/// Sends `packet` from `sock` to `server` up to `tries` times; the reply with the packet's
/// id and how many sends it took, or `None`.
fn exchange_udp(
    sock: &UdpSocket,
    server: SocketAddr,
    packet: &[u8],
    tries: usize,
) -> Option<(Vec<u8>, usize)> {
    let mut buf = vec![0u8; 65_535];
    for attempt in 1..=tries {
        sock.send_to(packet, server).expect("udp send");
        // Stray datagrams (late replies to earlier queries) are skipped, a bounded number.
        for _ in 0..16 {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == server && n >= 2 && buf[..2] == packet[..2] => {
                    return Some((buf[..n].to_vec(), attempt));
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    None
}

/// `q` over UDP from source address `src`.
fn udp_from(s: &Server, src: &str, q: &Message) -> Message {
    let sock = udp_socket_from(src);
    match exchange_udp(&sock, s.addr, &encode(q), UDP_TRIES) {
        Some((reply, _)) => parse(&reply),
        None => panic!(
            "no UDP answer from {src} after {UDP_TRIES} tries\nlog:\n{}",
            s.log()
        ),
    }
}

/// A TCP connection from source address `src`.
fn tcp_connect_from(s: &Server, src: &str) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let ip: IpAddr = src.parse().expect("source address");
    assert!(ip.is_loopback(), "test clients stay on 127/8: {ip}");
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("tcp socket");
    sock.bind(&SocketAddr::new(ip, 0).into())
        .unwrap_or_else(|e| panic!("bind TCP client to {ip}: {e}"));
    sock.connect_timeout(&s.addr.into(), TCP_TIMEOUT)
        .expect("tcp connect");
    let stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(TCP_TIMEOUT)).expect("timeout");
    stream
        .set_write_timeout(Some(TCP_TIMEOUT))
        .expect("timeout");
    stream
}

/// `q` over a new TCP connection from source address `src`.
fn tcp_from(s: &Server, src: &str, q: &Message) -> Message {
    let mut c = tcp_connect_from(s, src);
    c.write_all(&frame(&encode(q))).expect("tcp write");
    match read_frame(&mut c) {
        Ok(Some(m)) => parse(&m),
        other => panic!("no TCP answer from {src}: {other:?}\nlog:\n{}", s.log()),
    }
}

/// `q` with ECS `subnet` ("a.b.c.d/len").
fn ecs(q: Message, subnet: &str) -> Message {
    let (addr, len) = subnet.split_once('/').expect("subnet with /len");
    with_ecs(q, addr, len.parse().expect("prefix length"))
}

/// How a test client reaches the server.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// UDP from this source address, no ECS.
    UdpFrom(&'static str),
    /// TCP from this source address, no ECS.
    TcpFrom(&'static str),
    /// UDP from 127.0.0.1 (unknown to every database) with this ECS subnet.
    UdpEcs(&'static str),
    /// TCP from 127.0.0.1 with this ECS subnet.
    TcpEcs(&'static str),
}

/// Asks `name`/`rtype` via `via`; asserts an authoritative NOERROR reply to it.
fn ask(s: &Server, via: Via, name: &str, rtype: RecordType) -> Message {
    let r = match via {
        Via::UdpFrom(src) => udp_from(s, src, &query(name, rtype)),
        Via::TcpFrom(src) => tcp_from(s, src, &query(name, rtype)),
        Via::UdpEcs(net) => s.udp(&ecs(query(name, rtype), net)),
        Via::TcpEcs(net) => s.tcp(&ecs(query(name, rtype), net)),
    };
    assert_eq!(
        rcode(&r),
        0,
        "{name} {rtype} via {via:?}: rcode\n{r}\nlog:\n{}",
        s.log()
    );
    assert!(r.metadata.authoritative, "{name} via {via:?}: AA\n{r}");
    assert_eq!(r.queries.len(), 1, "{r}");
    r
}

/// Asks and asserts the answer section is exactly `expected`, in order, with empty
/// authority and additional sections.
fn assert_answer(s: &Server, via: Via, name: &str, rtype: RecordType, expected: &[String]) {
    let r = ask(s, via, name, rtype);
    let want: Vec<&str> = expected.iter().map(String::as_str).collect();
    let context = format!("answer to {name} {rtype} via {via:?}");
    assert_section_ordered(&context, &r.answers, &want);
    assert_section("authority", &r.authorities, &[]);
    assert_section("additional", &r.additionals, &[]);
}

/// The ECS scope of a reply (which must carry ECS).
fn scope_of(r: &Message) -> u8 {
    ecs_of(r)
        .unwrap_or_else(|| panic!("no ECS option in the reply\n{r}"))
        .scope_prefix()
}

// ---------------------------------------------------------------------------------------
// 1. The shipped zone's `cdn` from every mapped range

/// (source address, ECS subnet, IPv6 ECS subnet, data center) for each client city.
/// São Paulo's nearest is nyc (7686 km, ams 9805 km); Sydney's is sin (6300 km).
const CDN_CLIENTS: [(&str, &str, &str, &str); 5] = [
    ("127.0.1.5", "192.0.2.0/25", "2001:db8:1::/48", "ams"),
    ("127.0.2.5", "198.51.100.0/25", "2001:db8:2::/48", "nyc"),
    ("127.0.3.5", "203.0.113.0/25", "2001:db8:3::/48", "sin"),
    ("127.0.4.5", "192.0.2.128/25", "2001:db8:4::/48", "nyc"),
    ("127.0.5.5", "198.51.100.128/25", "2001:db8:5::/48", "sin"),
];

#[test]
fn cdn_by_source_address_from_each_mapped_range() {
    let s = shipped(&city());
    for (src, _, _, dc) in CDN_CLIENTS {
        for rtype in [RecordType::A, RecordType::AAAA] {
            for via in [Via::UdpFrom(src), Via::TcpFrom(src)] {
                assert_answer(&s, via, "cdn.example.com.", rtype, &[cdn(dc, rtype)]);
            }
        }
    }
}

#[test]
fn cdn_by_ipv4_ecs_for_each_mapped_subnet() {
    let s = shipped(&city());
    for (_, subnet, _, dc) in CDN_CLIENTS {
        for rtype in [RecordType::A, RecordType::AAAA] {
            for via in [Via::UdpEcs(subnet), Via::TcpEcs(subnet)] {
                assert_answer(&s, via, "cdn.example.com.", rtype, &[cdn(dc, rtype)]);
            }
        }
    }
}

#[test]
fn cdn_by_ipv6_ecs_for_each_mapped_subnet() {
    let s = shipped(&city());
    for (_, _, subnet, dc) in CDN_CLIENTS {
        for rtype in [RecordType::A, RecordType::AAAA] {
            for via in [Via::UdpEcs(subnet), Via::TcpEcs(subnet)] {
                assert_answer(&s, via, "cdn.example.com.", rtype, &[cdn(dc, rtype)]);
            }
        }
    }
}

#[test]
fn ecs_decides_over_the_source_address() {
    // A client in Amsterdam's range asking for a Sydney subnet gets Sydney's answer.
    let s = shipped(&city());
    let q = ecs(
        query("cdn.example.com.", RecordType::A),
        "198.51.100.128/25",
    );
    let r = udp_from(&s, "127.0.1.5", &q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered("answer", &r.answers, &[&cdn("sin", RecordType::A)]);
}

#[test]
fn cdn_for_the_other_fixture_places() {
    // Johannesburg: sin 8659 km, ams 9022 km. London: ams. Milton (WA): nyc.
    // Changchun: sin. 200.160.2.0/24 (São Paulo): nyc.
    let s = shipped(&city());
    let cases = [
        (Via::UdpFrom("127.0.6.5"), "sin"),
        (Via::UdpEcs("81.2.69.0/24"), "ams"),
        (Via::UdpEcs("216.160.83.0/24"), "nyc"),
        (Via::UdpEcs("175.16.199.0/24"), "sin"),
        (Via::UdpEcs("200.160.2.0/24"), "nyc"),
    ];
    for (via, dc) in cases {
        for rtype in [RecordType::A, RecordType::AAAA] {
            assert_answer(&s, via, "cdn.example.com.", rtype, &[cdn(dc, rtype)]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. `nearest` ordering against great-circle distances

const NEAREST_NAMES: &str = r#"
[names.near.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
policy = "nearest"
max_datacenters = 3
[names.all.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
max_datacenters = 5
"#;

#[test]
fn nearest_orders_the_answer_by_great_circle_distance() {
    let s = org(NEAREST_NAMES, &city());
    let mut checked = 0;
    for &(network, place) in NETWORKS {
        let ranked = by_distance(place);
        // The distances differ by hundreds of km, so no reasonable formula orders them
        // differently: the test checks the ranking, not rounding.
        for w in ranked.windows(2) {
            assert!(w[1].1 - w[0].1 > 300.0, "{network}: near tie {ranked:?}");
        }
        let order: Vec<&str> = ranked.iter().map(|(id, _)| *id).collect();
        let mut vias = vec![Via::UdpEcs(network), Via::TcpEcs(network)];
        // The loopback ranges are also asked from a source address inside them.
        if let Some(rest) = network.strip_prefix("127.0.") {
            let src: &'static str = match rest {
                "1.0/24" => "127.0.1.5",
                "2.0/24" => "127.0.2.5",
                "3.0/24" => "127.0.3.5",
                "4.0/24" => "127.0.4.5",
                "5.0/24" => "127.0.5.5",
                "6.0/24" => "127.0.6.5",
                other => panic!("unexpected loopback network {other}"),
            };
            vias.push(Via::UdpFrom(src));
        }
        for via in vias {
            for rtype in [RecordType::A, RecordType::AAAA] {
                let want = org_answer("near", &order[..3], rtype);
                assert_answer(&s, via, "near.example.org.", rtype, &want);
                let want = org_answer("all", &order, rtype);
                assert_answer(&s, via, "all.example.org.", rtype, &want);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * (2 * NETWORKS.len() + 6));
}

#[test]
fn nearest_orders_known_city_pairs() {
    // The same property spelled out for the five cities, with the distances (km) that
    // decide it, so a failure reads without recomputing anything.
    let s = org(NEAREST_NAMES, &city());
    let cases: [(&'static str, [&str; 5]); 5] = [
        // ams 0, nyc 5863, gru 9805, sin 10492, syd 16643
        ("127.0.1.5", ["ams", "nyc", "gru", "sin", "syd"]),
        // nyc 0, ams 5863, gru 7686, sin 15332, syd 15989
        ("127.0.2.5", ["nyc", "ams", "gru", "sin", "syd"]),
        // sin 8, syd 6299, ams 10499, nyc 15340, gru 15985
        ("127.0.3.5", ["sin", "syd", "ams", "nyc", "gru"]),
        // gru 0, nyc 7686, ams 9805, syd 13357, sin 15987
        ("127.0.4.5", ["gru", "nyc", "ams", "syd", "sin"]),
        // syd 0, sin 6306, gru 13357, nyc 15989, ams 16643
        ("127.0.5.5", ["syd", "sin", "gru", "nyc", "ams"]),
    ];
    for (src, order) in cases {
        let want = org_answer("all", &order, RecordType::A);
        assert_answer(
            &s,
            Via::UdpFrom(src),
            "all.example.org.",
            RecordType::A,
            &want,
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. ECS scope

#[test]
fn ecs_scope_is_the_widest_prefix_with_the_same_ipv4_ordering() {
    // `cdn` orders [ams, nyc, sin] by distance. The lists per database network:
    //   Amsterdam, London           → ams nyc sin   (the written order, also what unknown
    //                                                clients get: neighbours merge)
    //   New York, Milton, São Paulo → nyc ams sin
    //   Singapore, Changchun, Jo'burg → sin ams nyc
    //   Sydney                      → sin nyc ams
    // The scope is the shortest prefix around the client whose addresses all fall in
    // one run of equal lists.
    let s = shipped(&city());
    let cases: [(&str, &str, u8); 19] = [
        // Exact /24s between neighbours with other lists.
        ("127.0.2.0/24", "nyc", 24),
        ("127.0.3.0/24", "sin", 24),
        ("127.0.4.0/24", "nyc", 24),
        ("127.0.5.0/24", "sin", 24),
        ("127.0.6.0/24", "sin", 24),
        // A host inside a /24: the scope is wider than the source.
        ("127.0.4.77/32", "nyc", 24),
        // Amsterdam's list is the unknown list: 0.0.0.0 – 127.0.1.255 is one run (London's
        // 81.2.69.0/24 has the same list too), so 127.0.0.0/23 is the widest prefix.
        ("127.0.1.0/24", "ams", 23),
        // London inside that run: 64.0.0.0/3 fits in 0.0.0.0 – 127.0.1.255, /2 does not.
        ("81.2.69.0/24", "ams", 3),
        // 10.0.0.0 in the same run: 0.0.0.0/2 fits, 0.0.0.0/1 would reach 127.0.2.0.
        ("10.0.0.0/8", "ams", 2),
        // /25 halves with different lists.
        ("192.0.2.0/25", "ams", 25),
        ("192.0.2.128/25", "nyc", 25),
        ("198.51.100.0/25", "nyc", 25),
        ("198.51.100.128/25", "sin", 25),
        ("203.0.113.0/25", "sin", 25),
        // A /24 source whose halves differ: decided by its first address, with the
        // narrower scope telling the resolver to ask per /25 (RFC 7871 §7.2.1).
        ("192.0.2.0/24", "ams", 25),
        ("198.51.100.0/24", "nyc", 25),
        // Unknown 192.0.1.0/24 merges with the unknown range below and with Amsterdam's
        // 192.0.2.0/25 above (same list): 192.0.0.0/23 fits, /22 would take in São Paulo's
        // 192.0.2.128/25.
        ("192.0.1.0/24", "ams", 23),
        // Unknown 203.0.113.128/25: the run starts right after Singapore's /25.
        ("203.0.113.128/25", "ams", 25),
        // Milton's /24 between unknown neighbours.
        ("216.160.83.0/24", "nyc", 24),
    ];
    for (subnet, dc, scope) in cases {
        for via in [Via::UdpEcs(subnet), Via::TcpEcs(subnet)] {
            let r = ask(&s, via, "cdn.example.com.", RecordType::A);
            assert_section_ordered(
                &format!("answer for {subnet}"),
                &r.answers,
                &[&cdn(dc, RecordType::A)],
            );
            assert_eq!(scope_of(&r), scope, "scope for {subnet} via {via:?}\n{r}");
        }
    }
}

#[test]
fn ecs_scope_for_ipv6_subnets() {
    // The five /48s sit side by side in 2001:db8::/45. Amsterdam's list is the unknown
    // list, so 2001:db8::/48 (unknown) and 2001:db8:1::/48 merge: /47. The unknown run
    // after Sydney starts at 2001:db8:6:: and goes past 2001:db8:ffff:ffff::, so
    // 2001:db8:6::/47 fits (not /46, which starts at 2001:db8:4::), and 2001:db8:ffff::
    // gets 2001:db8:8000::/33.
    let s = shipped(&city());
    let cases = [
        ("2001:db8:1::/48", "ams", 47),
        ("2001:db8:2::/48", "nyc", 48),
        ("2001:db8:3::/48", "sin", 48),
        ("2001:db8:4::/48", "nyc", 48),
        ("2001:db8:5::/48", "sin", 48),
        ("2001:db8:4:ab00::/56", "nyc", 48),
        ("2001:db8::/32", "ams", 47),
        ("2001:db8:6::/48", "ams", 47),
        ("2001:db8:ffff::/48", "ams", 33),
    ];
    for (subnet, dc, scope) in cases {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let r = ask(&s, Via::UdpEcs(subnet), "cdn.example.com.", rtype);
            assert_section_ordered(
                &format!("answer for {subnet}"),
                &r.answers,
                &[&cdn(dc, rtype)],
            );
            assert_eq!(scope_of(&r), scope, "scope for {subnet} {rtype}\n{r}");
        }
    }
}

#[test]
fn ecs_scope_is_zero_when_the_answer_does_not_depend_on_the_client() {
    let names = r#"
[names.one.gslb]
datacenters = ["ams"]
[names.near.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
[names.near]
txt = "not geo"
[names.www]
a = "192.0.2.80"
"#;
    let s = org(names, &city());
    for subnet in [
        "192.0.2.128/25",
        "127.0.4.0/24",
        "2001:db8:5::/48",
        "10.0.0.0/8",
    ] {
        // A static name.
        let r = ask(&s, Via::UdpEcs(subnet), "www.example.org.", RecordType::A);
        assert_section(
            "answer",
            &r.answers,
            &["www.example.org. 3600 IN A 192.0.2.80"],
        );
        assert_eq!(scope_of(&r), 0, "static name, {subnet}\n{r}");
        // A GSLB name with a single candidate: every client gets the same list.
        let r = ask(&s, Via::UdpEcs(subnet), "one.example.org.", RecordType::A);
        assert_section_ordered(
            "answer",
            &r.answers,
            &["one.example.org. 30 IN A 192.0.2.1"],
        );
        assert_eq!(scope_of(&r), 0, "single candidate, {subnet}\n{r}");
        // A non-address type at a GSLB name.
        let r = ask(
            &s,
            Via::UdpEcs(subnet),
            "near.example.org.",
            RecordType::TXT,
        );
        assert_eq!(r.answers.len(), 1, "{r}");
        assert_eq!(scope_of(&r), 0, "TXT at a GSLB name, {subnet}\n{r}");
        // NXDOMAIN.
        let q = ecs(query("nope.example.org.", RecordType::A), subnet);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa().rcode(ResponseCode::NXDomain));
        assert_eq!(scope_of(&r), 0, "NXDOMAIN, {subnet}\n{r}");
    }
}

#[test]
fn ecs_source_prefix_zero_lets_the_resolver_address_decide_with_scope_zero() {
    // RFC 7871 §7.1.2: SOURCE PREFIX-LENGTH 0 means "use the resolver's own address".
    let s = shipped(&city());
    let cases = [
        ("127.0.1.5", "0.0.0.0", "ams"),
        ("127.0.4.5", "0.0.0.0", "nyc"),
        ("127.0.5.5", "0.0.0.0", "sin"),
        ("127.0.4.5", "::", "nyc"),
        ("127.0.3.5", "::", "sin"),
    ];
    for (src, addr, dc) in cases {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let q = with_ecs(query("cdn.example.com.", rtype), addr, 0);
            for r in [udp_from(&s, src, &q), tcp_from(&s, src, &q)] {
                assert_head(&q, &r, Head::aa());
                assert_section_ordered("answer", &r.answers, &[&cdn(dc, rtype)]);
                assert_eq!(
                    ecs_of(&r),
                    Some(ClientSubnet::new(addr.parse().unwrap(), 0, 0)),
                    "from {src} with {addr}/0\n{r}"
                );
            }
        }
    }
}

#[test]
fn ecs_echo_keeps_family_source_prefix_and_address_on_the_wire() {
    // The reply's OPT is its last record and ECS its only option, so the reply ends with
    // the option: code 8, length, FAMILY, SOURCE, SCOPE, then exactly the address bytes
    // the source prefix needs, as the query sent them.
    let s = shipped(&city());
    let cases: [(&str, u8, u8, &[u8]); 6] = [
        // 192.0.2.128/25 → São Paulo, exact /25.
        ("192.0.2.128", 25, 25, &[0, 1, 25, 25, 192, 0, 2, 128]),
        // 198.51.100.0/24 → decided by New York's lower /25.
        ("198.51.100.0", 24, 25, &[0, 1, 24, 25, 198, 51, 100]),
        // 127.0.4.0/22 → São Paulo's /24.
        ("127.0.4.0", 22, 24, &[0, 1, 22, 24, 127, 0, 4]),
        // 10.0.0.0/7 → the unknown run 0.0.0.0 – 127.0.1.255: 0.0.0.0/2.
        ("10.0.0.0", 7, 2, &[0, 1, 7, 2, 10]),
        // 2001:db8:4::/48 → São Paulo's /48.
        (
            "2001:db8:4::",
            48,
            48,
            &[0, 2, 48, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 4],
        ),
        // 2001:db8:5:80::/57 → Sydney's /48; 8 address bytes.
        (
            "2001:db8:5:80::",
            57,
            48,
            &[0, 2, 57, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 0x80],
        ),
    ];
    for (addr, source, scope, body) in cases {
        let q = with_ecs(query("cdn.example.com.", RecordType::A), addr, source);
        let reply = s.udp_bytes(&encode(&q));
        let mut option = vec![0u8, 8];
        option.extend_from_slice(&(body.len() as u16).to_be_bytes());
        option.extend_from_slice(body);
        assert!(
            reply.ends_with(&option),
            "{addr}/{source}: reply should end with ECS {option:02x?}\n{reply:02x?}\n{}",
            parse(&reply)
        );
        let r = parse(&reply);
        assert_eq!(
            ecs_of(&r),
            Some(ClientSubnet::new(addr.parse().unwrap(), source, scope))
        );
    }
}

#[test]
fn ecs_scope_of_an_ipv4_mapped_ipv6_subnet_is_in_ipv6_terms() {
    // FAMILY 2, ::ffff:192.0.2.128/121: the server looks the address up as IPv4
    // (192.0.2.128 → São Paulo → nyc), which is right, but the scope must be counted in
    // the option's family: the São Paulo range is 192.0.2.128/25, i.e.
    // ::ffff:192.0.2.128/121. Scope 25 in family 2 claims the answer for ::/25, every
    // IPv4-mapped (and IPv4-compatible) client included.
    let s = shipped(&city());
    let q = with_ecs(
        query("cdn.example.com.", RecordType::A),
        "::ffff:192.0.2.128",
        121,
    );
    let r = s.udp(&q);
    assert_head(&q, &r, Head::aa());
    assert_section_ordered("answer", &r.answers, &[&cdn("nyc", RecordType::A)]);
    assert_eq!(
        ecs_of(&r),
        Some(ClientSubnet::new(
            "::ffff:192.0.2.128".parse().unwrap(),
            121,
            121
        )),
        "{r}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Malformed ECS options on the wire

/// A query for cdn.example.com A with an OPT record holding one option 8 with `data`.
fn packet_with_ecs(id: u16, data: &[u8]) -> Vec<u8> {
    let mut body = raw_question("cdn.example.com.", RecordType::A, 1);
    // OPT: root owner, type 41, payload 1232, extended rcode/version/flags 0.
    body.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    body.extend_from_slice(&((4 + data.len()) as u16).to_be_bytes());
    body.extend_from_slice(&[0, 8]);
    body.extend_from_slice(&(data.len() as u16).to_be_bytes());
    body.extend_from_slice(data);
    raw_packet(id, 0x0100, [1, 0, 0, 1], &body)
}

/// Asserts `reply` is a FORMERR response to `packet` with no records in the answer,
/// authority or additional section beyond OPT.
fn assert_formerr(packet: &[u8], reply: &[u8], what: &str) {
    assert!(reply.len() >= 12, "{what}: short reply {reply:02x?}");
    assert_eq!(reply[..2], packet[..2], "{what}: id");
    assert_eq!(reply[2] & 0x80, 0x80, "{what}: QR");
    assert_eq!(reply[2] & 0x01, 0x01, "{what}: RD copied");
    assert_eq!(reply[3] & 0x0f, 1, "{what}: FORMERR expected: {reply:02x?}");
    assert_eq!(reply[2] & 0x04, 0, "{what}: AA must be clear");
    assert_eq!(reply[6..10], [0, 0, 0, 0], "{what}: no answer/authority");
}

/// Malformed ECS option bodies (RFC 7871 §6), each described.
const BAD_ECS: [(&str, &[u8]); 10] = [
    ("unknown family 3", &[0, 3, 24, 0, 192, 0, 2]),
    ("family 0", &[0, 0, 0, 0]),
    ("IPv4 prefix 33", &[0, 1, 33, 0, 192, 0, 2, 0, 0]),
    (
        "IPv6 prefix 129",
        &[
            0, 2, 129, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    ),
    (
        "address longer than /24 needs",
        &[0, 1, 24, 0, 192, 0, 2, 0],
    ),
    ("address bytes with source prefix 0", &[0, 1, 0, 0, 0]),
    ("address shorter than /24 needs", &[0, 1, 24, 0, 192, 0]),
    ("bits set past /25", &[0, 1, 25, 0, 192, 0, 2, 0xc0]),
    ("bits set past /20", &[0, 1, 20, 0, 127, 0, 0x4f]),
    (
        "IPv6 bits set past /47",
        &[0, 2, 47, 0, 0x20, 1, 0x0d, 0xb8, 0, 1],
    ),
];

#[test]
fn malformed_ecs_at_a_gslb_name_is_formerr_and_the_server_keeps_answering() {
    let s = shipped(&city());
    for (what, data) in BAD_ECS {
        // UDP, from a mapped source, so "keeps answering" also means "keeps geo-routing".
        let sock = udp_socket_from("127.0.4.5");
        let packet = packet_with_ecs(next_id(), data);
        let (reply, _) = exchange_udp(&sock, s.addr, &packet, UDP_TRIES)
            .unwrap_or_else(|| panic!("{what}: no reply\nlog:\n{}", s.log()));
        assert_formerr(&packet, &reply, what);
        assert_answer(
            &s,
            Via::UdpFrom("127.0.4.5"),
            "cdn.example.com.",
            RecordType::A,
            &[cdn("nyc", RecordType::A)],
        );
    }
}

#[test]
fn malformed_ecs_over_tcp_is_formerr_and_the_connection_keeps_serving() {
    let s = shipped(&city());
    let mut c = tcp_connect_from(&s, "127.0.5.5");
    for (what, data) in BAD_ECS {
        let packet = packet_with_ecs(next_id(), data);
        c.write_all(&frame(&packet)).expect("tcp write");
        let reply = match read_frame(&mut c) {
            Ok(Some(m)) => m,
            other => panic!("{what}: no TCP reply: {other:?}\nlog:\n{}", s.log()),
        };
        assert_formerr(&packet, &reply, what);
        // The same connection answers a good query next.
        let q = query("cdn.example.com.", RecordType::AAAA);
        c.write_all(&frame(&encode(&q))).expect("tcp write");
        let r = match read_frame(&mut c) {
            Ok(Some(m)) => parse(&m),
            other => panic!("{what}: no TCP answer after FORMERR: {other:?}"),
        };
        assert_head(&q, &r, Head::aa());
        assert_section_ordered("answer", &r.answers, &[&cdn("sin", RecordType::AAAA)]);
    }
}

// ---------------------------------------------------------------------------------------
// 5. Unknown clients

const DEFAULT_NAMES: &str = r#"
[names.written.gslb]
datacenters = ["sin", "gru", "nyc", "ams", "syd"]
policy = "nearest"
max_datacenters = 5
[names.mapdef.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
policy = "map"
max_datacenters = 5
[names.mapdef.gslb.map]
default = ["syd", "gru"]
country.NL = ["ams"]
[names.mapnodef.gslb]
datacenters = ["syd", "ams", "gru"]
policy = "map"
max_datacenters = 3
[names.mapnodef.gslb.map]
country.NL = ["ams"]
[names.mapnear.gslb]
datacenters = ["gru", "syd", "ams"]
policy = "map"
max_datacenters = 3
[names.mapnear.gslb.map]
default = "nearest"
country.NL = ["ams"]
"#;

#[test]
fn unknown_clients_get_the_policy_default() {
    let s = org(DEFAULT_NAMES, &city());
    let unknown = [
        Via::UdpEcs("127.0.0.1/32"),
        Via::UdpFrom("127.0.0.1"),
        Via::TcpFrom("127.0.0.1"),
        Via::UdpFrom("127.0.9.9"),
        Via::UdpEcs("10.0.0.0/8"),
        Via::TcpEcs("10.0.0.0/8"),
        Via::UdpEcs("172.16.0.0/12"),
        Via::UdpEcs("203.0.113.128/25"),
        Via::UdpEcs("2001:db8:ffff::/48"),
        Via::UdpEcs("2001:db8::/48"),
    ];
    let expected: [(&str, &[&str]); 4] = [
        // nearest: the candidates in the order written.
        ("written", &["sin", "gru", "nyc", "ams", "syd"]),
        // map with a default list: that list.
        ("mapdef", &["syd", "gru"]),
        // map without a default: the candidates as written.
        ("mapnodef", &["syd", "ams", "gru"]),
        // map with default "nearest": nearest of an unknown place is the written order.
        ("mapnear", &["gru", "syd", "ams"]),
    ];
    for via in unknown {
        for (name, dcs) in expected {
            for rtype in [RecordType::A, RecordType::AAAA] {
                let want = org_answer(name, dcs, rtype);
                assert_answer(&s, via, &format!("{name}.example.org."), rtype, &want);
            }
        }
    }
    // And a known client is not unknown: Amsterdam gets the NL rule or its own nearest.
    let ams = Via::UdpFrom("127.0.1.5");
    let a = RecordType::A;
    assert_answer(
        &s,
        ams,
        "written.example.org.",
        a,
        &org_answer("written", &["ams", "nyc", "gru", "sin", "syd"], a),
    );
    assert_answer(
        &s,
        ams,
        "mapdef.example.org.",
        a,
        &org_answer("mapdef", &["ams"], a),
    );
    // Singapore matches no rule of mapnear: nearest of gru, syd, ams.
    assert_answer(
        &s,
        Via::UdpFrom("127.0.3.5"),
        "mapnear.example.org.",
        a,
        &org_answer("mapnear", &["syd", "ams", "gru"], a),
    );
}

#[test]
fn without_a_geoip_section_every_client_is_unknown() {
    // README: a config file without [geoip] uses no database.
    let s = org(DEFAULT_NAMES, "");
    for via in [
        Via::UdpFrom("127.0.1.5"),
        Via::UdpFrom("127.0.4.5"),
        Via::UdpEcs("198.51.100.128/25"),
    ] {
        let r = ask(&s, via, "written.example.org.", RecordType::A);
        let want = org_answer(
            "written",
            &["sin", "gru", "nyc", "ams", "syd"],
            RecordType::A,
        );
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_section_ordered("answer", &r.answers, &want);
    }
    // Every address gets the same list: the answer does not depend on the client.
    let r = ask(
        &s,
        Via::UdpEcs("198.51.100.128/25"),
        "written.example.org.",
        RecordType::A,
    );
    assert_eq!(scope_of(&r), 0, "{r}");
}

// ---------------------------------------------------------------------------------------
// 6. Map precedence, network overrides, location overrides

const MAP_NAMES: &str = r#"
[names.m.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
policy = "map"
max_datacenters = 2
[names.m.gslb.map]
default = ["gru", "syd"]
network."198.51.100.0/24" = ["gru", "ams"]
network."198.51.100.128/26" = ["ams", "gru"]
asn.AS64496 = ["syd", "sin"]
asn.AS64504 = ["gru", "sin"]
asn.AS64510 = ["sin", "gru"]
subdivision."BR-SP" = ["ams", "nyc"]
subdivision."US-NY" = ["sin", "syd"]
country.US = ["ams", "sin"]
country.NL = ["nyc", "gru"]
country.BR = ["syd", "gru"]
continent.EU = ["sin", "nyc"]
continent.OC = ["nyc", "ams"]
continent.NA = ["syd", "ams"]
"#;

#[test]
fn map_the_most_specific_rule_wins() {
    let asn_db = geoip_file("test-asn.mmdb");
    let config = geoip_section(&[&geoip_file("test-city.mmdb")], Some(&asn_db));
    let s = org(MAP_NAMES, &config);
    // (client, what the databases say about it, the rule that must win, list)
    let cases: [(Via, &str, &[&str]); 16] = [
        // New York, US-NY, AS64510: network /24 beats AS, subdivision, country, continent.
        (
            Via::UdpEcs("198.51.100.0/25"),
            "network /24",
            &["gru", "ams"],
        ),
        // Sydney, AS64510: the longest network rule.
        (
            Via::UdpEcs("198.51.100.128/26"),
            "network /26",
            &["ams", "gru"],
        ),
        (
            Via::UdpEcs("198.51.100.192/26"),
            "network /24",
            &["gru", "ams"],
        ),
        // Amsterdam (NL-NH, NL, EU), AS64496: AS beats country and continent.
        (Via::UdpEcs("192.0.2.0/25"), "AS64496", &["syd", "sin"]),
        // São Paulo (BR-SP, BR, SA), AS64496: AS beats subdivision.
        (Via::UdpEcs("192.0.2.128/25"), "AS64496", &["syd", "sin"]),
        // São Paulo, AS64504.
        (Via::UdpFrom("127.0.4.5"), "AS64504", &["gru", "sin"]),
        // São Paulo, AS64515 (no rule): subdivision beats country BR.
        (Via::UdpEcs("200.160.2.0/24"), "BR-SP", &["ams", "nyc"]),
        // New York, AS64502: subdivision beats country US and continent NA.
        (Via::UdpFrom("127.0.2.5"), "US-NY", &["sin", "syd"]),
        (Via::TcpFrom("127.0.2.5"), "US-NY", &["sin", "syd"]),
        // Milton, US-WA: country beats continent NA.
        (
            Via::UdpEcs("216.160.83.0/24"),
            "country US",
            &["ams", "sin"],
        ),
        // Amsterdam, AS64501, NL-NH (no rule): country beats continent EU.
        (Via::UdpFrom("127.0.1.5"), "country NL", &["nyc", "gru"]),
        // London, GB (no rule): continent EU.
        (Via::UdpEcs("81.2.69.0/24"), "continent EU", &["sin", "nyc"]),
        // Sydney, AU-NSW, AU (no rule): continent OC.
        (Via::UdpFrom("127.0.5.5"), "continent OC", &["nyc", "ams"]),
        // Singapore (AS, no rule), Johannesburg (AF), unknown: default.
        (Via::UdpFrom("127.0.3.5"), "default", &["gru", "syd"]),
        (Via::UdpFrom("127.0.6.5"), "default", &["gru", "syd"]),
        (Via::UdpFrom("127.0.0.1"), "default", &["gru", "syd"]),
    ];
    for (via, rule, dcs) in cases {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let r = ask(&s, via, "m.example.org.", rtype);
            let want = org_answer("m", dcs, rtype);
            let want: Vec<&str> = want.iter().map(String::as_str).collect();
            assert_section_ordered(&format!("{via:?}: {rule} should win"), &r.answers, &want);
        }
    }
}

#[test]
fn asn_rules_need_an_as_number_source() {
    // The same map with only the City database: no AS numbers, so São Paulo from
    // 127.0.4.5 falls through to its subdivision rule and Amsterdam's 192.0.2.0/25 to
    // its country rule.
    let s = org(MAP_NAMES, &city());
    let cases: [(Via, &[&str]); 3] = [
        (Via::UdpFrom("127.0.4.5"), &["ams", "nyc"]),
        (Via::UdpEcs("192.0.2.0/25"), &["nyc", "gru"]),
        (Via::UdpEcs("192.0.2.128/25"), &["ams", "nyc"]),
    ];
    for (via, dcs) in cases {
        let want = org_answer("m", dcs, RecordType::A);
        assert_answer(&s, via, "m.example.org.", RecordType::A, &want);
    }
}

#[test]
fn zone_network_overrides_apply_to_every_gslb_name() {
    let names = r#"
[network_overrides]
"10.0.0.0/8" = ["gru"]
"127.0.3.0/24" = ["syd", "ams"]
[names.near.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
max_datacenters = 2
[names.m.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
policy = "map"
max_datacenters = 2
[names.m.gslb.map]
default = "nearest"
network."127.0.3.128/25" = ["nyc"]
country.SG = ["sin", "ams"]
"#;
    let s = org(names, &city());
    let a = RecordType::A;
    let cases: [(&str, Via, &[&str], u8); 10] = [
        // Singapore by source: the zone override, not nearest (sin, syd).
        ("near", Via::UdpFrom("127.0.3.5"), &["syd", "ams"], 24),
        ("near", Via::UdpEcs("127.0.3.128/25"), &["syd", "ams"], 24),
        // Only one of the override's data centers: one in the answer.
        ("near", Via::UdpEcs("10.9.0.0/16"), &["gru"], 8),
        // Outside the overrides: nearest as usual.
        ("near", Via::UdpFrom("127.0.4.5"), &["gru", "nyc"], 24),
        ("near", Via::UdpEcs("203.0.113.0/25"), &["sin", "syd"], 25),
        // The map: the zone override beats its country rule for SG ...
        ("m", Via::UdpFrom("127.0.3.5"), &["syd", "ams"], 25),
        // ... the name's own longer network rule beats the zone's /24 ...
        ("m", Via::UdpEcs("127.0.3.128/25"), &["nyc"], 25),
        ("m", Via::UdpEcs("10.0.0.0/8"), &["gru"], 8),
        // ... and elsewhere the map's own rules apply.
        ("m", Via::UdpEcs("203.0.113.0/25"), &["sin", "ams"], 25),
        ("m", Via::UdpFrom("127.0.1.5"), &["ams", "nyc"], 24),
    ];
    for (name, via, dcs, scope) in cases {
        let r = ask(&s, via, &format!("{name}.example.org."), a);
        let want = org_answer(name, dcs, a);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_section_ordered(&format!("{name} via {via:?}"), &r.answers, &want);
        if matches!(via, Via::UdpEcs(_)) {
            assert_eq!(scope_of(&r), scope, "{name} via {via:?}\n{r}");
        }
    }
}

#[test]
fn geoip_location_overrides_come_before_the_database() {
    // 10.1.0.0/16 placed in Sydney; 127.0.1.0/24 (Amsterdam in the database) moved to
    // São Paulo; 10.3.0.0/16 given only a country (BR: its centroid, continent SA).
    let config = format!(
        r#"{}
[[geoip.override]]
network = "10.1.0.0/16"
location = [-33.8688, 151.2093]
country = "AU"
[[geoip.override]]
network = "127.0.1.0/24"
location = [-23.5505, -46.6333]
[[geoip.override]]
network = "10.3.0.0/16"
country = "BR"
"#,
        city()
    );
    let s = shipped(&config);
    let a = RecordType::A;
    // cdn: nearest over ams, nyc, sin.
    let cases: [(Via, &str, Option<u8>); 7] = [
        (Via::UdpEcs("10.1.0.0/16"), "sin", Some(16)),
        (Via::UdpEcs("10.1.2.0/24"), "sin", Some(16)),
        (Via::TcpEcs("10.1.2.0/24"), "sin", Some(16)),
        // Not overridden and unknown: the written order.
        (Via::UdpEcs("10.2.0.0/16"), "ams", None),
        // The override beats the database.
        (Via::UdpFrom("127.0.1.5"), "nyc", None),
        (Via::UdpEcs("127.0.1.0/24"), "nyc", Some(24)),
        (Via::UdpEcs("10.3.0.0/16"), "nyc", Some(16)),
    ];
    for (via, dc, scope) in cases {
        let r = ask(&s, via, "cdn.example.com.", a);
        assert_section_ordered(&format!("{via:?}"), &r.answers, &[&cdn(dc, a)]);
        if let Some(scope) = scope {
            assert_eq!(scope_of(&r), scope, "{via:?}\n{r}");
        }
    }
    // api: map with continent.SA = [nyc, ams], continent.OC = [sin, nyc]: the override's
    // country gives the continent.
    let api = |dcs: &[&str]| -> Vec<String> {
        dcs.iter()
            .map(|dc| cdn(dc, a).replace("cdn.example.com. 30", "api.example.com. 30"))
            .collect()
    };
    assert_answer(
        &s,
        Via::UdpEcs("10.3.0.0/16"),
        "api.example.com.",
        a,
        &api(&["nyc", "ams"]),
    );
    assert_answer(
        &s,
        Via::UdpEcs("10.1.0.0/16"),
        "api.example.com.",
        a,
        &api(&["sin", "nyc"]),
    );
}

// ---------------------------------------------------------------------------------------
// 7. Other database layouts

#[test]
fn country_only_database_uses_country_centroids() {
    // test-country.mmdb has countries, no coordinates: BR's centroid is nearest nyc,
    // AU's sin, NL's ams, US's nyc, SG's sin.
    let s = shipped(&geoip_section(&[&geoip_file("test-country.mmdb")], None));
    let cases = [
        (Via::UdpFrom("127.0.4.5"), "nyc"),
        (Via::UdpFrom("127.0.5.5"), "sin"),
        (Via::UdpFrom("127.0.1.5"), "ams"),
        (Via::UdpFrom("127.0.2.5"), "nyc"),
        (Via::UdpFrom("127.0.3.5"), "sin"),
        (Via::TcpFrom("127.0.4.5"), "nyc"),
        (Via::UdpEcs("192.0.2.128/25"), "nyc"),
        (Via::UdpEcs("198.51.100.128/25"), "sin"),
        (Via::UdpEcs("2001:db8:4::/48"), "nyc"),
        (Via::UdpEcs("2001:db8:5::/48"), "sin"),
        (Via::UdpEcs("10.0.0.0/8"), "ams"),
    ];
    for (via, dc) in cases {
        for rtype in [RecordType::A, RecordType::AAAA] {
            assert_answer(&s, via, "cdn.example.com.", rtype, &[cdn(dc, rtype)]);
        }
    }
    // The São Paulo /24 is still its own range.
    let r = ask(
        &s,
        Via::UdpEcs("127.0.4.0/24"),
        "cdn.example.com.",
        RecordType::A,
    );
    assert_eq!(scope_of(&r), 24, "{r}");
}

#[test]
fn ip_location_db_pair_serves_both_families() {
    let v4 = geoip_file("test-flat-v4.mmdb");
    let v6 = geoip_file("test-flat-v6.mmdb");
    let s = shipped(&geoip_section(&[&v4, &v6], None));
    for (src, subnet4, subnet6, dc) in CDN_CLIENTS {
        for via in [
            Via::UdpFrom(src),
            Via::UdpEcs(subnet4),
            Via::UdpEcs(subnet6),
        ] {
            for rtype in [RecordType::A, RecordType::AAAA] {
                assert_answer(&s, via, "cdn.example.com.", rtype, &[cdn(dc, rtype)]);
            }
        }
    }
    let r = ask(
        &s,
        Via::UdpEcs("2001:db8:4::/48"),
        "cdn.example.com.",
        RecordType::A,
    );
    assert_eq!(scope_of(&r), 48, "{r}");
    drop(s);

    // With only the IPv4 file, IPv6 clients are unknown (the written order: ams) while
    // IPv4 clients are still placed.
    let s = shipped(&geoip_section(&[&v4], None));
    assert_answer(
        &s,
        Via::UdpEcs("2001:db8:5::/48"),
        "cdn.example.com.",
        RecordType::A,
        &[cdn("ams", RecordType::A)],
    );
    assert_answer(
        &s,
        Via::UdpFrom("127.0.5.5"),
        "cdn.example.com.",
        RecordType::A,
        &[cdn("sin", RecordType::A)],
    );
}

#[test]
fn ipinfo_lite_gives_countries_and_as_numbers() {
    let ipinfo = geoip_file("test-ipinfo-lite.mmdb");
    // No coordinates: nearest by country centroid, as with the Country database.
    let s = shipped(&geoip_section(&[&ipinfo], None));
    for (src, subnet4, subnet6, dc) in CDN_CLIENTS {
        for via in [
            Via::UdpFrom(src),
            Via::UdpEcs(subnet4),
            Via::UdpEcs(subnet6),
        ] {
            assert_answer(
                &s,
                via,
                "cdn.example.com.",
                RecordType::A,
                &[cdn(dc, RecordType::A)],
            );
        }
    }
    drop(s);

    // AS numbers come from the same file: asn rules work without an `asn` database.
    let names = r#"
[names.m.gslb]
datacenters = ["ams", "nyc", "sin", "syd", "gru"]
policy = "map"
[names.m.gslb.map]
default = "nearest"
asn.AS64504 = ["gru"]
asn.65536 = ["syd"]
"#;
    let s = org(names, &geoip_section(&[&ipinfo], None));
    let a = RecordType::A;
    let cases: [(Via, &str); 5] = [
        // São Paulo's access network, AS64504.
        (Via::UdpFrom("127.0.4.5"), "gru"),
        // 2001:db8::/32 is AS65536 wherever the client is.
        (Via::UdpEcs("2001:db8:1::/48"), "syd"),
        (Via::UdpEcs("2001:db8:2::/48"), "syd"),
        // No rule: nearest by country centroid (NL → ams, US → nyc).
        (Via::UdpFrom("127.0.1.5"), "ams"),
        (Via::UdpFrom("127.0.2.5"), "nyc"),
    ];
    for (via, dc) in cases {
        assert_answer(&s, via, "m.example.org.", a, &org_answer("m", &[dc], a));
    }
}

// ---------------------------------------------------------------------------------------
// 8. Address families and other types at GSLB names

const FAMILY_NAMES: &str = r#"
[datacenters.ams4]
addresses = ["192.0.2.21"]
location = [52.3676, 4.9041]
[datacenters.nyc6]
addresses = ["2001:db8:f::22"]
location = [40.7128, -74.0060]
[datacenters.sin46]
addresses = ["192.0.2.23", "2001:db8:f::23"]
location = [1.3521, 103.8198]
[datacenters.syd4]
addresses = ["192.0.2.24"]
location = [-33.8688, 151.2093]
[names.fam]
txt = "ordinary text at a GSLB name"
[names.fam.gslb]
datacenters = ["ams4", "nyc6", "sin46"]
[names.fam2.gslb]
datacenters = ["ams4", "nyc6", "sin46"]
max_datacenters = 2
[names.only4.gslb]
datacenters = ["ams4", "syd4"]
"#;

fn fam(name: &str, rtype: RecordType, addrs: &[&str]) -> Vec<String> {
    addrs
        .iter()
        .map(|a| format!("{name}.example.org. 30 IN {rtype} {a}"))
        .collect()
}

#[test]
fn datacenters_without_the_asked_family_are_skipped() {
    let s = org(FAMILY_NAMES, &city());
    let (a, aaaa) = (RecordType::A, RecordType::AAAA);
    // Orders: Amsterdam ams4 nyc6 sin46; New York nyc6 ams4 sin46; Singapore sin46 ams4
    // nyc6; Sydney sin46 nyc6 ams4.
    let cases: [(&str, &str, RecordType, &[&str]); 14] = [
        ("127.0.1.5", "fam", a, &["192.0.2.21"]),
        ("127.0.1.5", "fam", aaaa, &["2001:db8:f::22"]),
        ("127.0.2.5", "fam", a, &["192.0.2.21"]),
        ("127.0.2.5", "fam", aaaa, &["2001:db8:f::22"]),
        ("127.0.3.5", "fam", a, &["192.0.2.23"]),
        ("127.0.3.5", "fam", aaaa, &["2001:db8:f::23"]),
        // Two data centers per answer: the first two that have the family, in order.
        ("127.0.1.5", "fam2", a, &["192.0.2.21", "192.0.2.23"]),
        (
            "127.0.1.5",
            "fam2",
            aaaa,
            &["2001:db8:f::22", "2001:db8:f::23"],
        ),
        ("127.0.2.5", "fam2", a, &["192.0.2.21", "192.0.2.23"]),
        (
            "127.0.2.5",
            "fam2",
            aaaa,
            &["2001:db8:f::22", "2001:db8:f::23"],
        ),
        ("127.0.5.5", "fam2", a, &["192.0.2.23", "192.0.2.21"]),
        (
            "127.0.5.5",
            "fam2",
            aaaa,
            &["2001:db8:f::23", "2001:db8:f::22"],
        ),
        // Unknown: the written order.
        ("127.0.0.1", "fam2", a, &["192.0.2.21", "192.0.2.23"]),
        (
            "127.0.0.1",
            "fam2",
            aaaa,
            &["2001:db8:f::22", "2001:db8:f::23"],
        ),
    ];
    for (src, name, rtype, addrs) in cases {
        assert_answer(
            &s,
            Via::UdpFrom(src),
            &format!("{name}.example.org."),
            rtype,
            &fam(name, rtype, addrs),
        );
    }
}

#[test]
fn no_candidate_with_the_family_is_nodata_with_soa() {
    let s = org(FAMILY_NAMES, &city());
    for via in [
        Via::UdpFrom("127.0.1.5"),
        Via::UdpFrom("127.0.5.5"),
        Via::TcpFrom("127.0.0.1"),
        Via::UdpEcs("2001:db8:5::/48"),
    ] {
        let r = ask(&s, via, "only4.example.org.", RecordType::AAAA);
        assert_sections(&r, &[], &[ORG_NEG_SOA], &[]);
    }
    // The A answer of the same name works.
    assert_answer(
        &s,
        Via::UdpFrom("127.0.5.5"),
        "only4.example.org.",
        RecordType::A,
        &fam("only4", RecordType::A, &["192.0.2.24"]),
    );
}

#[test]
fn nodata_at_a_gslb_name_has_scope_zero() {
    let s = org(FAMILY_NAMES, &city());
    for subnet in ["127.0.4.0/24", "198.51.100.128/25", "2001:db8:5::/48"] {
        let r = ask(
            &s,
            Via::UdpEcs(subnet),
            "only4.example.org.",
            RecordType::AAAA,
        );
        assert_sections(&r, &[], &[ORG_NEG_SOA], &[]);
        assert_eq!(scope_of(&r), 0, "{subnet}\n{r}");
    }
}

#[test]
fn other_types_at_a_gslb_name_are_ordinary_records() {
    let s = org(FAMILY_NAMES, &city());
    for via in [
        Via::UdpFrom("127.0.1.5"),
        Via::UdpFrom("127.0.5.5"),
        Via::TcpFrom("127.0.2.5"),
        Via::UdpEcs("192.0.2.128/25"),
    ] {
        let r = ask(&s, via, "fam.example.org.", RecordType::TXT);
        assert_sections(
            &r,
            &["fam.example.org. 3600 IN TXT ordinary text at a GSLB name"],
            &[],
            &[],
        );
        // A type the name does not have: NODATA.
        let r = ask(&s, via, "fam.example.org.", RecordType::MX);
        assert_sections(&r, &[], &[ORG_NEG_SOA], &[]);
        let r = ask(&s, via, "only4.example.org.", RecordType::TXT);
        assert_sections(&r, &[], &[ORG_NEG_SOA], &[]);
    }
}

// ---------------------------------------------------------------------------------------
// 9. Databases replaced on disk while serving

/// test-city.mmdb with 127.0.4.0/24 moved from São Paulo to Sydney (cdn: nyc → sin).
fn city_with_127_0_4_in_sydney() -> Vec<u8> {
    let mut w = geoip_fixtures::test_city();
    w.insert(
        "127.0.4.0/24".parse().expect("network"),
        &geoip_fixtures::city_record(&geoip_fixtures::SYDNEY),
    );
    w.to_bytes(BUILD_EPOCH)
}

/// What the query loop saw.
#[derive(Debug, Default)]
struct Run {
    queries: usize,
    retried: usize,
    /// Distinct answers in the order first seen, with the query index and time.
    changes: Vec<(String, usize, Instant)>,
}

/// Sends `cdn.example.com A` from 127.0.4.5 in a loop (1 ms apart) until `done(run)` or
/// `limit` passes; every query must be answered with at most one retry (2 s each).
fn query_loop(s: &Server, limit: Duration, mut done: impl FnMut(&Run) -> bool) -> Run {
    let sock = udp_socket_from("127.0.4.5");
    let deadline = Instant::now() + limit;
    let mut run = Run::default();
    while Instant::now() < deadline && run.queries < 50_000 && !done(&run) {
        let q = query("cdn.example.com.", RecordType::A);
        let Some((reply, sends)) = exchange_udp(&sock, s.addr, &encode(&q), 2) else {
            panic!(
                "query {} lost (no answer to 2 sends)\nlog:\n{}",
                run.queries,
                s.log()
            );
        };
        let r = parse(&reply);
        assert_head(&q, &r, Head::aa());
        assert_eq!(r.answers.len(), 1, "{r}");
        let got = show(&r.answers[0]);
        if run.changes.last().map(|c| &c.0) != Some(&got) {
            run.changes.push((got, run.queries, Instant::now()));
        }
        run.retried += sends - 1;
        run.queries += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    run
}

/// Renames `from` over `to` after `delay`, on another thread; returns when it happened.
fn rename_later(from: PathBuf, to: PathBuf, delay: Duration) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        std::fs::rename(&from, &to).expect("rename database");
        Instant::now()
    })
}

/// A server for `cdn` with a copy of test-city.mmdb at `db`, checking files every second.
fn reloading_server(db: &Path) -> Server {
    std::fs::copy(geoip_file("test-city.mmdb"), db).expect("copy database");
    let config = format!("reload_check = \"1s\"\n{}", geoip_section(&[db], None));
    shipped(&config)
}

#[test]
fn database_replaced_while_queries_run_switches_without_losing_any() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("city.mmdb");
    let s = reloading_server(&db);
    let new = dir.path().join("city.mmdb.new");
    std::fs::write(&new, city_with_127_0_4_in_sydney()).expect("write new database");

    let (nyc, sin) = (cdn("nyc", RecordType::A), cdn("sin", RecordType::A));
    let renamed = rename_later(new, db.clone(), Duration::from_millis(500));
    // Run until 300 queries after the switch, or 20 s.
    let run = query_loop(&s, Duration::from_secs(20), |r| {
        r.changes.len() >= 2 && r.queries >= r.changes[1].1 + 300
    });
    let renamed_at = renamed.join().expect("rename thread");
    let seen: Vec<&str> = run.changes.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        seen,
        [nyc.as_str(), sin.as_str()],
        "answers must go from the old data to the new one, once, and never back \
         ({} queries)\nlog:\n{}",
        run.queries,
        s.log()
    );
    let switch = run.changes[1].2.saturating_duration_since(renamed_at);
    assert!(
        switch < Duration::from_secs(10),
        "new data served {switch:?} after the rename (reload_check 1s)"
    );
    assert!(
        run.retried <= run.queries / 100,
        "{} of {} queries needed a retry",
        run.retried,
        run.queries
    );
    assert!(
        s.log().contains("reloaded: now serving generation 2"),
        "{}",
        s.log()
    );

    // The rest of the new database is as before.
    assert_answer(
        &s,
        Via::UdpEcs("192.0.2.128/25"),
        "cdn.example.com.",
        RecordType::A,
        std::slice::from_ref(&nyc),
    );
    let r = ask(
        &s,
        Via::UdpEcs("127.0.4.0/24"),
        "cdn.example.com.",
        RecordType::AAAA,
    );
    assert_section_ordered("answer", &r.answers, &[&cdn("sin", RecordType::AAAA)]);
    // Sydney's list (sin nyc ams) now runs from 127.0.4.0 to 127.0.5.255: /23.
    assert_eq!(scope_of(&r), 23, "{r}");
}

#[test]
fn corrupt_database_replacement_is_rejected_and_the_old_data_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("city.mmdb");
    let s = reloading_server(&db);
    let nyc = cdn("nyc", RecordType::A);
    let good = std::fs::read(geoip_file("test-city.mmdb")).expect("read database");

    // A file with MaxMind DB metadata but its search tree cut short, and one that is
    // not a database at all.
    let marker = b"\xab\xcd\xefMaxMind.com";
    let meta = good
        .windows(marker.len())
        .rposition(|w| w == marker)
        .expect("metadata marker");
    let mut truncated = good[..64].to_vec();
    truncated.extend_from_slice(&good[meta..]);
    let garbage = b"this is not a MaxMind DB\n".repeat(100);

    let mut rejections = 0;
    for (what, bytes) in [("truncated", truncated), ("garbage", garbage)] {
        let tmp = dir.path().join(format!("{what}.mmdb"));
        std::fs::write(&tmp, &bytes).expect("write corrupt database");
        let renamed = rename_later(tmp, db.clone(), Duration::from_millis(300));
        let log_before = s.log().matches("reload rejected").count();
        let mut after_rejection: Option<usize> = None;
        let run = query_loop(&s, Duration::from_secs(20), |r| {
            if after_rejection.is_none() && s.log().matches("reload rejected").count() > log_before
            {
                after_rejection = Some(r.queries);
            }
            after_rejection.is_some_and(|n| r.queries >= n + 200)
        });
        renamed.join().expect("rename thread");
        let seen: Vec<&str> = run.changes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            seen,
            [nyc.as_str()],
            "{what}: the old data must keep serving\nlog:\n{}",
            s.log()
        );
        assert!(
            after_rejection.is_some(),
            "{what}: no `reload rejected` within 20 s\nlog:\n{}",
            s.log()
        );
        rejections += 1;
        let log = s.log();
        assert!(
            log.contains(&db.display().to_string()),
            "{what}: the log should name {}\n{log}",
            db.display()
        );
        assert!(log.contains("still serving generation 1"), "{what}:\n{log}");
    }
    assert_eq!(rejections, 2);

    // A good database afterwards is picked up: the watcher survived the rejections.
    let new = dir.path().join("good.mmdb");
    std::fs::write(&new, city_with_127_0_4_in_sydney()).expect("write database");
    let renamed = rename_later(new, db.clone(), Duration::from_millis(100));
    let run = query_loop(&s, Duration::from_secs(20), |r| r.changes.len() >= 2);
    renamed.join().expect("rename thread");
    let seen: Vec<&str> = run.changes.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        seen,
        [nyc.as_str(), cdn("sin", RecordType::A).as_str()],
        "log:\n{}",
        s.log()
    );
}

#[test]
fn database_overwritten_in_place_does_not_crash_the_server() {
    // README: databases are read into memory, so even a file overwritten in place (not
    // renamed) cannot crash the server; the bad content is rejected at reload.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("city.mmdb");
    let s = reloading_server(&db);
    let nyc = cdn("nyc", RecordType::A);
    let log_before = s.log().matches("reload rejected").count();
    // Give the watcher time to take its first look at the files (see
    // `database_replaced_during_start_up_is_picked_up`).
    std::thread::sleep(Duration::from_millis(1500));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .expect("open database");
        f.write_all(&[0xffu8; 4096]).expect("overwrite");
    }
    let mut rejected_at: Option<usize> = None;
    let run = query_loop(&s, Duration::from_secs(20), |r| {
        if rejected_at.is_none() && s.log().matches("reload rejected").count() > log_before {
            rejected_at = Some(r.queries);
        }
        rejected_at.is_some_and(|n| r.queries >= n + 100)
    });
    let seen: Vec<&str> = run.changes.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(seen, [nyc.as_str()], "log:\n{}", s.log());
    assert!(rejected_at.is_some(), "log:\n{}", s.log());
}

#[test]
fn database_replaced_during_start_up_is_picked_up() {
    // A database large enough that loading it takes a while, replaced (renamed over, as
    // geoipupdate does) while the server is still compiling it: the server read the old
    // file, so it must notice the new one once it runs.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("city.mmdb");
    let built = Instant::now();
    // The synthetic database keeps the fixture networks: 127.0.4.0/24 is São Paulo.
    let big = geoip_fixtures::synthetic_city(100_000, 20_000, 7).to_bytes(BUILD_EPOCH);
    eprintln!("built {} bytes in {:?}", big.len(), built.elapsed());
    std::fs::write(&db, &big).expect("write database");
    let new = dir.path().join("city.mmdb.new");
    std::fs::write(&new, city_with_127_0_4_in_sydney()).expect("write new database");

    let config = format!("reload_check = \"1s\"\n{}", geoip_section(&[&db], None));
    let started = Instant::now();
    let renamed = rename_later(new, db.clone(), Duration::from_millis(200));
    let s = shipped(&config);
    let listening = Instant::now();
    let renamed_at = renamed.join().expect("rename thread");
    eprintln!("listening after {:?}", listening - started);
    // Whether the rename lands before or after the watcher's first look, the server must
    // end up serving the new file.
    eprintln!(
        "renamed {} the server was listening",
        if renamed_at < listening {
            "before"
        } else {
            "after"
        }
    );
    let run = query_loop(&s, Duration::from_secs(15), |r| {
        r.changes
            .last()
            .is_some_and(|c| c.0 == cdn("sin", RecordType::A))
    });
    let seen: Vec<&str> = run.changes.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        seen.last().copied(),
        Some(cdn("sin", RecordType::A).as_str()),
        "the database renamed in during start-up was never loaded ({seen:?})\nlog:\n{}",
        s.log()
    );
}

// ---------------------------------------------------------------------------------------
// 10. Missing or unreadable databases at start

/// A config in `dir` serving the shipped zones on an ephemeral port with `geoip`.
fn write_config(dir: &Path, geoip: &str) -> PathBuf {
    let config = dir.join("meridian.toml");
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\nzones_dir = {}\n{geoip}",
        toml_path(&repo_dir().join("zones"))
    );
    std::fs::write(&config, text).expect("write config");
    config
}

fn text(o: &Output) -> String {
    strip_ansi(&format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    ))
}

#[test]
fn missing_or_unreadable_database_stops_the_server_with_status_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.mmdb");
    let a_directory = dir.path().join("a-directory.mmdb");
    std::fs::create_dir(&a_directory).expect("mkdir");
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"not a database\n").expect("write");
    let city_db = geoip_file("test-city.mmdb");
    let missing_asn = dir.path().join("missing-asn.mmdb");

    let cases: [(&str, String, &Path); 4] = [
        ("missing", geoip_section(&[&missing], None), &missing),
        (
            "a directory",
            geoip_section(&[&a_directory], None),
            &a_directory,
        ),
        ("not a database", geoip_section(&[&garbage], None), &garbage),
        (
            "missing ASN database",
            geoip_section(&[&city_db], Some(&missing_asn)),
            &missing_asn,
        ),
    ];
    for (what, geoip, file) in cases {
        let config = write_config(dir.path(), &geoip);
        let config_arg = config.display().to_string();
        let file = file.display().to_string();
        for args in [
            vec!["--config", config_arg.as_str()],
            vec!["serve", "--config", config_arg.as_str()],
            vec!["check", "--config", config_arg.as_str()],
            vec![
                "explain",
                "cdn.example.com",
                "--client",
                "127.0.4.1",
                "--config",
                config_arg.as_str(),
            ],
        ] {
            let o = run_meridian(dir.path(), &args);
            let out = text(&o);
            assert_eq!(o.status.code(), Some(2), "{what}: {args:?}\n{out}");
            assert!(
                out.contains(&file),
                "{what}: {args:?} should name {file}\n{out}"
            );
            assert!(
                !out.contains("listening on"),
                "{what}: {args:?} must not serve\n{out}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 11. `meridian explain`

/// Runs `meridian explain ARGS --offline` in the crate root: from the files, never asking
/// a server that may be running on the default API address.
fn explain(args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.push("--offline");
    let o = run_meridian(&repo_dir(), &args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "explain {args:?}\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn explain_for_a_sao_paulo_client_shows_ranking_answer_and_scope() {
    // No --config: the defaults serve ./zones with ./geoip/test-city.mmdb.
    let out = explain(&["explain", "cdn.example.com", "--client", "127.0.4.1"]);
    for line in [
        "query      cdn.example.com. A",
        "client     127.0.4.1 (source address)",
        "geoip      127.0.4.0/24 in geoip/test-city.mmdb",
        "           São Paulo (BR-SP), BR, SA at -23.5505, -46.6333",
        "policy     nearest over ams, nyc, sin",
        "decision   nearest to -23.5505, -46.6333",
        "answer     No Error (aa)",
        "           cdn.example.com. 30 IN A 198.51.100.10",
        "ecs scope  /24: all of 127.0.4.0/24 gets this same ordering",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing line {line:?} in:\n{out}"
        );
    }
    // The ranking: rank, data center, distance (km, great-circle from the client); the
    // health columns after it are not this test's business.
    for line in [
        "  1. nyc           7686 km",
        "  2. ams           9805 km",
        "  3. sin          15987 km",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "missing ranking line {line:?} in:\n{out}"
        );
    }
    // The ranking is in this order, after the decision and before the answer.
    let pos = |needle: &str| out.find(needle).unwrap_or(usize::MAX);
    assert!(pos("decision") < pos("  1. nyc"));
    assert!(pos("  1. nyc") < pos("  2. ams"));
    assert!(pos("  2. ams") < pos("  3. sin"));
    assert!(pos("  3. sin") < pos("answer"));
    assert!(pos("answer") < pos("ecs scope  /24"));
}

#[test]
fn readme_explain_example_is_what_explain_prints() {
    // README runs explain against a server started with the defaults (no health checks);
    // from the files (--offline) the text is the same, minus the live server's note.
    let readme = std::fs::read_to_string(repo_dir().join("README.md")).expect("README.md");
    let start = readme
        .find("`explain` prints the decision step by step:")
        .expect("the explain example in README.md");
    let block = &readme[start..];
    let body_start = block.find("```text\n").expect("text block") + "```text\n".len();
    let body_len = block[body_start..].find("```").expect("end of block");
    let expected = &block[body_start..body_start + body_len];
    let out = explain(&["explain", "cdn.example.com", "--client", "127.0.4.1"]);
    assert_text_eq("README's explain example", expected, &out);
}

#[test]
fn explain_agrees_with_the_server() {
    // For clients given as subnets, explain's answer lines and ECS scope are what the
    // server sends for that ECS subnet.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &city());
    let config_arg = config.display().to_string();
    let s = shipped(&city());
    let cases = [
        ("cdn.example.com", "A", "192.0.2.128/25"),
        ("cdn.example.com", "AAAA", "2001:db8:5::/48"),
        ("cdn.example.com", "A", "10.0.0.0/8"),
        ("cdn.example.com", "A", "127.0.1.0/24"),
        ("api.example.com", "A", "198.51.100.128/25"),
        ("api.example.com", "AAAA", "192.0.2.0/25"),
        ("www.example.com", "A", "192.0.2.128/25"),
    ];
    for (name, rtype, subnet) in cases {
        let out = explain(&[
            "explain",
            name,
            rtype,
            "--client",
            subnet,
            "--config",
            &config_arg,
        ]);
        assert!(
            out.contains(&format!("client     {subnet} (EDNS Client Subnet)")),
            "{out}"
        );
        let records: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("answer     "))
            .skip(1)
            .take_while(|l| l.starts_with("           "))
            .map(str::trim)
            .collect();
        let scope: u8 = out
            .lines()
            .find_map(|l| l.strip_prefix("ecs scope  /"))
            .and_then(|l| l.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no ecs scope line in:\n{out}"));

        let rt: RecordType = rtype.parse().expect("type");
        let r = ask(&s, Via::UdpEcs(subnet), &format!("{name}."), rt);
        let served: Vec<String> = r.answers.iter().map(show).collect();
        assert_eq!(records, served, "{name} {rtype} {subnet}\n{out}");
        assert_eq!(scope, scope_of(&r), "{name} {rtype} {subnet}\n{out}");
    }
}

#[test]
fn explain_an_unknown_client_and_an_override() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}[[geoip.override]]\nnetwork = \"10.1.0.0/16\"\nlocation = [-33.8688, 151.2093]\ncountry = \"AU\"\n",
            city()
        ),
    );
    let config_arg = config.display().to_string();
    let out = explain(&[
        "explain",
        "cdn.example.com",
        "--client",
        "127.0.0.1",
        "--config",
        &config_arg,
    ]);
    for line in [
        "geoip      not in any database: location unknown",
        "decision   client location unknown: candidates in the order written",
        "           cdn.example.com. 30 IN A 192.0.2.10",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
    let out = explain(&[
        "explain",
        "cdn.example.com",
        "--client",
        "10.1.2.3",
        "--config",
        &config_arg,
    ]);
    for line in [
        "geoip      10.1.0.0/16 from a [[geoip.override]] in the config",
        "           cdn.example.com. 30 IN A 203.0.113.10",
        "ecs scope  /16: all of 10.1.0.0/16 gets this same ordering",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
}
