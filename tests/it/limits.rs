//! Resource limits: TCP connections (the cap, eviction of the longest idle one), queries
//! pipelined by a client that does not read, the largest TCP reply, and queries at the
//! size limits (a 255-byte name, 127 labels, hundreds of EDNS options).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::*;

const EXAMPLE_NET: &str = include_str!("../fixtures/good/example.net.toml");

fn server_with(extra_config: &str) -> Server {
    Server::start(&[("example.net", EXAMPLE_NET)], extra_config)
}

/// One query on an open connection: `Some(reply)` or `None` if the connection failed.
fn exchange(c: &mut TcpStream, q: &Message) -> Option<Message> {
    c.write_all(&frame(&encode(q))).ok()?;
    read_frame(c).ok().flatten().map(|b| parse(&b))
}

/// Writes all of `q`'s frame but its last byte: the connection is mid-message, busy.
fn start_message(c: &mut TcpStream, q: &Message) -> Vec<u8> {
    let f = frame(&encode(q));
    c.write_all(&f[..f.len() - 1]).expect("write");
    f
}

/// Sends the last byte [`start_message`] held back and reads the answer.
fn finish_message(c: &mut TcpStream, f: &[u8]) -> Option<Message> {
    c.write_all(&f[f.len() - 1..]).ok()?;
    read_frame(c).ok().flatten().map(|b| parse(&b))
}

#[test]
fn at_the_tcp_cap_the_longest_idle_connection_is_evicted() {
    let s = server_with("[tcp]\nmax_connections = 3\nmessage_timeout = \"30s\"\n");
    let q = query("www.example.net.", RecordType::A);
    // Two idle connections (c1 idle the longest) and one in the middle of a message.
    let mut c1 = s.tcp_connect();
    assert!(exchange(&mut c1, &q).is_some());
    let mut c2 = s.tcp_connect();
    assert!(exchange(&mut c2, &q).is_some());
    let mut busy = s.tcp_connect();
    let busy_msg = start_message(&mut busy, &q);
    // Let the server read the partial message, so `busy` is busy when the fourth arrives.
    std::thread::sleep(Duration::from_millis(200));

    // The fourth is served; c1 is closed (EOF), c2 and the busy one are kept.
    let mut c4 = s.tcp_connect();
    assert!(exchange(&mut c4, &q).is_some(), "new connection not served");
    assert_eq!(wait_closed(&mut c1, Duration::from_secs(5)), Closed::Yes);
    c2.set_read_timeout(Some(TCP_TIMEOUT)).expect("timeout");
    assert!(exchange(&mut c2, &q).is_some(), "c2 was evicted");
    let r = finish_message(&mut busy, &busy_msg).expect("the busy connection was evicted");
    assert_eq!(r.answers.len(), 2);

    // Now c4 is idle the longest (c2 and busy answered after it): the next one evicts it.
    let mut c5 = s.tcp_connect();
    assert!(exchange(&mut c5, &q).is_some());
    assert_eq!(wait_closed(&mut c4, Duration::from_secs(5)), Closed::Yes);

    // With every connection mid-message nothing is evictable: the new one is closed.
    let c2_msg = start_message(&mut c2, &q);
    let busy_msg = start_message(&mut busy, &q);
    let c5_msg = start_message(&mut c5, &q);
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = s.tcp_connect();
    let _ = refused.write_all(&frame(&encode(&q)));
    assert_eq!(
        wait_closed(&mut refused, Duration::from_secs(5)),
        Closed::Yes
    );
    for (c, m) in [
        (&mut c2, &c2_msg),
        (&mut busy, &busy_msg),
        (&mut c5, &c5_msg),
    ] {
        let r = finish_message(c, m).expect("a busy connection lost its answer");
        assert_eq!(r.answers.len(), 2);
    }
}

#[test]
fn a_client_that_pipelines_without_reading_is_held_by_flow_control_then_closed() {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = server_with("[tcp]\nmessage_timeout = \"1s\"\n");
    // A small receive buffer (set before connecting, so it is not grown by autotuning):
    // the server's answers stop at its own send buffer plus this.
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    sock.set_recv_buffer_size(8192).expect("rcvbuf");
    sock.connect_timeout(&s.addr.into(), TCP_TIMEOUT)
        .expect("connect");
    let mut c: TcpStream = sock.into();
    c.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    // About 1.7 kB per answer: 6000 of them are far more than the socket buffers hold.
    let q = encode(&query("many.example.net.", RecordType::A));
    let sent = (0..6000)
        .take_while(|_| c.write_all(&frame(&q)).is_ok())
        .count();
    // The server blocks on a full send buffer, and gives up after message_timeout.
    std::thread::sleep(Duration::from_secs(3));
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut answered = 0;
    while let Ok(Some(_)) = read_frame(&mut c) {
        answered += 1;
        assert!(answered <= sent, "more answers than queries");
    }
    eprintln!("pipelined {sent} queries without reading; {answered} answered before the close");
    assert!(
        answered < sent,
        "the server kept answering a client that did not read ({answered} of {sent})"
    );
    // Everyone else is served.
    assert_eq!(
        s.tcp(&query("www.example.net.", RecordType::A))
            .answers
            .len(),
        2
    );
}

/// A zone with one RRset too big for any DNS message: 300 TXT strings of 250 bytes.
fn huge_zone() -> String {
    let strings: Vec<String> = (0..300)
        .map(|i| format!("\"{i:03}{}\"", "x".repeat(247)))
        .collect();
    format!(
        "origin = \"big.test\"\nttl = \"1h\"\n[soa]\nprimary = \"ns1\"\ncontact = \"h@big.test\"\n\
         serial = 1\nrefresh = \"1h\"\nretry = \"15m\"\nexpire = \"1w\"\nnegative_ttl = \"5m\"\n\
         [names.\"@\"]\nns = [\"ns1\"]\n[names.ns1]\na = \"192.0.2.53\"\n\
         [names.huge]\ntxt = [{}]\n",
        strings.join(", ")
    )
}

#[test]
fn a_reply_over_64_kib_is_truncated_over_tcp_and_the_connection_kept() {
    let zone = huge_zone();
    let s = Server::start(&[("big.test", &zone)], "");
    let mut c = s.tcp_connect();
    let q = with_edns(query("huge.big.test.", RecordType::TXT), 1232);
    c.write_all(&frame(&encode(&q))).expect("write");
    let bytes = read_frame(&mut c).expect("read").expect("a reply");
    assert!(bytes.len() <= 65_535);
    let r = parse(&bytes);
    assert_eq!(r.metadata.id, q.metadata.id);
    assert!(r.metadata.truncation, "TC not set on a cut TCP reply: {r}");
    assert_eq!(rcode(&r), 0);
    assert!(
        r.answers.is_empty(),
        "{} bytes, {} answers, {} additional",
        bytes.len(),
        r.answers.len(),
        r.additionals.len()
    );
    // The same connection answers the next query.
    let r = exchange(&mut c, &query("ns1.big.test.", RecordType::A)).expect("next answer");
    assert_eq!(r.answers.len(), 1);
}

/// `labels` as a dotted name: the labels, then `suffix`.
fn long_name(labels: &[&str], suffix: &str) -> String {
    let mut n = labels.join(".");
    n.push('.');
    n.push_str(suffix);
    n
}

fn wire_len(name: &str) -> usize {
    name.trim_end_matches('.')
        .split('.')
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + 1
}

#[test]
fn names_at_the_255_byte_and_127_label_limits_are_answered() {
    let s = server_with("");
    // 255 bytes under the wildcard *.apps.example.net: the wildcard's address, owned by it.
    let mut labels = vec!["a"; 117];
    labels.push("aa");
    let name = long_name(&labels, "apps.example.net.");
    assert_eq!(wire_len(&name), 255);
    for r in [
        s.udp(&with_edns(query(&name, RecordType::A), 1232)),
        s.tcp(&query(&name, RecordType::A)),
    ] {
        assert_eq!(rcode(&r), 0, "{r}");
        assert_eq!(r.answers.len(), 1, "{r} {}", encode(&r).len());
        assert_eq!(r.answers[0].name.to_ascii(), name);
        assert_eq!(
            answer_ips(&r),
            vec!["192.0.2.80".parse::<std::net::IpAddr>().unwrap()]
        );
    }
    // 255 bytes, not under the wildcard: NXDOMAIN with the SOA.
    let name = long_name(&["b"; 121], "example.net.");
    assert_eq!(wire_len(&name), 255);
    let r = s.udp(&query(&name, RecordType::A));
    assert_eq!((rcode(&r), r.authorities.len()), (3, 1), "{r}");
    // 127 labels, the most 255 bytes hold: no zone of ours, REFUSED.
    let name = long_name(&vec!["c"; 126], "c.");
    assert_eq!(wire_len(&name), 255);
    let r = s.udp(&query(&name, RecordType::A));
    assert_eq!(rcode(&r), 5, "{r}");
    assert_eq!(r.queries[0].name().num_labels(), 127);
    // One byte more (256) is not a name: FORMERR.
    let mut body = Vec::new();
    for _ in 0..127 {
        body.extend_from_slice(&[1, b'c']);
    }
    body.extend_from_slice(&[1, b'c', 0, 0, 1, 0, 1]);
    let reply = s.udp_bytes(&raw_packet(0x2556, 0, [1, 0, 0, 0], &body));
    assert_eq!(
        reply[3] & 0x0f,
        1,
        "FORMERR for a 257-byte name: {reply:02x?}"
    );
}

/// A query for www.example.net A with an OPT whose options are `options` (code, data).
fn query_with_options(id: u16, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    let mut body = raw_question("www.example.net.", RecordType::A, 1);
    body.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    body.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    body.extend_from_slice(&rdata);
    raw_packet(id, 0, [1, 0, 0, 1], &body)
}

#[test]
fn hundreds_of_edns_options_cost_what_their_bytes_do() {
    let s = server_with("udp_threads = 1\n");
    // 500 empty options, and one option of the same total size (2000 bytes of OPT data).
    let many: Vec<(u16, Vec<u8>)> = (0..500).map(|i| (65001 + i, Vec::new())).collect();
    let one = vec![(65001u16, vec![0u8; 500 * 4 - 4])];
    let sock = udp_socket_from("127.0.0.1");
    let mut best = [Duration::MAX; 2];
    // Alternating, and the minimum of each: scheduling noise only ever adds time.
    for round in 0..200u16 {
        for (k, options) in [&many, &one].into_iter().enumerate() {
            let packet = query_with_options(0x5000 + round * 2 + k as u16, options);
            let t = Instant::now();
            let (reply, tries) = s.exchange_udp(&sock, &packet, 3).expect("an answer");
            let took = t.elapsed();
            if tries == 1 {
                best[k] = best[k].min(took);
            }
            let r = parse(&reply);
            assert_eq!((rcode(&r), r.answers.len()), (0, 2), "{r}");
        }
    }
    eprintln!(
        "best round trip: 500 options {:?}, 1 option of the same size {:?}",
        best[0], best[1]
    );
    assert!(
        best[0] < best[1] * 10,
        "500 options took {:?}, one option of the same size {:?}",
        best[0],
        best[1]
    );
}
