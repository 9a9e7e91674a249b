//! DNS over real sockets: what needs the `meridian` process (UDP datagrams, TCP framing,
//! pipelining, timeouts and connection limits, survival of garbage).
//!
//! The DNS behaviour itself (RFC 1034/2308/4592/6604/6891/7871) is in the scenario files,
//! run in-process by `scenarios`. These tests serve `tests/fixtures/good/example.net.toml`.

use std::io::Write;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::*;

const EXAMPLE_NET: &str = include_str!("../fixtures/good/example.net.toml");

fn server() -> Server {
    Server::start(&[("example.net", EXAMPLE_NET)], "")
}

fn server_with(extra_config: &str) -> Server {
    Server::start(&[("example.net", EXAMPLE_NET)], extra_config)
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

#[test]
fn random_garbage_is_answered_and_never_stops_the_server() {
    // `respond` answers every message of 12 bytes or more whose QR bit is clear (FORMERR
    // when it does not parse), so no reply at all is a failure.
    let s = malformed_server();
    for packet in garbage_queries(40) {
        let reply = s
            .udp_raw_then_probe(&packet)
            .unwrap_or_else(|| panic!("no reply to {packet:02x?}\nlog:\n{}", s.log()));
        assert!(reply.len() >= 12, "{reply:02x?}");
        assert_eq!(reply[..2], packet[..2], "reply id");
        assert_eq!(reply[2] & 0x80, 0x80, "QR");
        assert_eq!(reply[3] & 0x80, 0, "RA clear: {reply:02x?}");
    }
    s.assert_alive("example.net.");
}

#[test]
fn short_packets_and_responses_get_no_datagram() {
    // The scenario rows check that `respond` drops these; this checks nothing is sent.
    let s = malformed_server();
    for len in [0, 1, 2, 5, 11] {
        let packet = vec![0x01; len];
        assert_eq!(s.udp_raw_then_probe(&packet), None, "{len}-byte packet");
    }
    // QR=1: answering could make two servers bounce packets forever.
    let mut packet = encode(&query("www.example.net.", RecordType::A));
    packet[2] |= 0x80;
    assert_eq!(s.udp_raw_then_probe(&packet), None);
    // Also through the plain helper, which waits out the timeout.
    assert_eq!(s.udp_raw(&packet), None);
}

/// Bursts from several clients at once (the UDP threads take them in batches, each thread
/// on its own socket of the port): every query gets its own answer, none is lost or
/// crossed.
#[test]
fn a_burst_from_many_clients_is_answered_query_by_query() {
    let s = Server::example();
    let clients: Vec<_> = (1..=4)
        .map(|i| udp_socket_from(&format!("127.0.{i}.9")))
        .collect();
    const EACH: u16 = 100;
    for (c, sock) in clients.iter().enumerate() {
        for k in 0..EACH {
            let mut q = query("www.example.com.", RecordType::A);
            q.metadata.id = (c as u16) * 1000 + k;
            sock.send_to(&encode(&q), s.addr).expect("send");
        }
    }
    for (c, sock) in clients.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        let mut buf = [0u8; 1500];
        while seen.len() < usize::from(EACH) {
            let (n, from) = sock
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("client {c}: {} of {EACH} answered: {e}", seen.len()));
            assert_eq!(from, s.addr);
            let r = parse(&buf[..n]);
            assert_eq!(answer_ips(&r).len(), 2, "{r}");
            let id = r.metadata.id;
            assert!(
                id / 1000 == c as u16 && seen.insert(id),
                "client {c} got id {id}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Header flags of declined opcodes (ISC genreport `opcodeflg`)

#[test]
fn an_unknown_opcode_with_every_flag_set_echoes_no_flag() {
    let s = server();
    let question = raw_question("example.net.", RecordType::SOA, 1);
    // QR clear, OPCODE 15, AA TC RD; RA, Z, AD, CD: every flag a query can carry.
    let q = raw_packet(0x0f0f, 0x7ff0, [1, 0, 0, 0], &question);
    let r = s.udp_bytes(&q);
    assert_eq!(
        (r[2], r[3]),
        (0x80 | 0x78, 4),
        "QR and OPCODE 15; NOTIMP, with AA, TC, RD, RA, Z, AD and CD clear: {r:02x?}"
    );
    // A standard query keeps CD (RFC 6840 §5.9), and is answered: QR AA RD, CD, NOERROR.
    let q = raw_packet(0x0e0e, 0x07f0, [1, 0, 0, 0], &question);
    let r = s.udp_bytes(&q);
    assert_eq!((r[2], r[3]), (0x80 | 0x04 | 0x01, 0x10), "{r:02x?}");
}
