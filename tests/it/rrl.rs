//! Response rate limiting against a real flood on loopback: sources 127.0.x.y (Linux routes
//! all of 127/8 to lo), so each test network is a distinct /24 to the server.
//!
//! The limiter's arithmetic (a burst of rate × window, then one reply per 1/rate s) is
//! unit-tested in `serve::rrl`; here the flood goes through the real sockets and threads,
//! and what the client sees must match that arithmetic and the server's metrics.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::*;
use crate::metrics::{sample, scrape};

const EXAMPLE_NET: &str = include_str!("../fixtures/good/example.net.toml");

const RATE: u64 = 20;
const WINDOW_MS: u64 = 2000;

/// What came back to a flood.
#[derive(Debug, Default)]
struct Seen {
    answered: u64,
    truncated: u64,
    other: u64,
}

/// Sends `n` queries for www.example.net A from `sock`, evenly over `span`, while another
/// thread collects the replies; returns what came back and the time from the first send
/// to the last.
fn flood(s: &Server, sock: &UdpSocket, n: u64, span: Duration) -> (Seen, Duration) {
    let template = encode(&query("www.example.net.", RecordType::A));
    let receiver = sock.try_clone().expect("clone socket");
    receiver
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .expect("timeout");
    let addr = s.addr;
    std::thread::scope(|scope| {
        let collect = scope.spawn(move || {
            let mut seen = Seen::default();
            let mut buf = vec![0u8; 65_535];
            // Until a second passes with nothing: the flood is over and every reply is in.
            while let Ok((len, from)) = receiver.recv_from(&mut buf) {
                let r = &buf[..len];
                if from != addr || len < 12 {
                    continue;
                }
                let (tc, ancount) = (r[2] & 0x02 != 0, u16::from_be_bytes([r[6], r[7]]));
                match (tc, ancount) {
                    (false, 2) => seen.answered += 1,
                    (true, 0) => seen.truncated += 1,
                    _ => seen.other += 1,
                }
            }
            seen
        });
        let start = Instant::now();
        let mut last = start;
        for i in 0..n {
            let due = start + span.mul_f64(i as f64 / n as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let mut q = template.clone();
            q[..2].copy_from_slice(&(0x7000 + i as u16).to_be_bytes());
            sock.send_to(&q, addr).expect("send");
            last = Instant::now();
        }
        (collect.join().expect("collector"), last - start)
    })
}

fn metric(text: &str, name: &str) -> u64 {
    sample(text, name, &[]).unwrap_or_else(|| panic!("{name} not in the metrics:\n{text}")) as u64
}

#[test]
fn a_flood_gets_the_rate_slips_every_second_drop_and_spares_others() {
    let s = Server::start(
        &[("example.net", EXAMPLE_NET)],
        "[rrl]\nresponses_per_second = 20\nwindow = \"2s\"\nslip = 2\nexempt = [\"127.0.11.0/24\"]\n",
    );
    let flooder = udp_socket_from("127.0.9.1");
    let q = query("www.example.net.", RecordType::A);

    let (seen, other_net, exempt, took) = std::thread::scope(|scope| {
        // Another network asks a few times during the flood: all answered, first try.
        let other = scope.spawn(|| {
            let sock = udp_socket_from("127.0.10.1");
            let mut answered = 0;
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(100));
                if let Some((r, 1)) =
                    s.exchange_udp(&sock, &encode(&query("www.example.net.", RecordType::A)), 1)
                {
                    if r[2] & 0x02 == 0 && parse(&r).answers.len() == 2 {
                        answered += 1;
                    }
                }
            }
            answered
        });
        // An exempt network asks 200 times as fast as it can: never limited.
        let exempt = scope.spawn(|| {
            let sock = udp_socket_from("127.0.11.1");
            let mut answered = 0;
            for _ in 0..200 {
                if let Some((r, 1)) =
                    s.exchange_udp(&sock, &encode(&query("www.example.net.", RecordType::A)), 1)
                {
                    if r[2] & 0x02 == 0 && parse(&r).answers.len() == 2 {
                        answered += 1;
                    }
                }
            }
            answered
        });
        let (seen, took) = flood(&s, &flooder, 600, Duration::from_millis(1500));
        (seen, other.join().unwrap(), exempt.join().unwrap(), took)
    });

    // A burst of rate × window, then one reply per 1/rate s while the flood lasts, as the
    // server's clock saw it: a few ms either way of the client's, more if the server is
    // descheduled on a busy machine, hence ± 3 (4 %; every run so far was exact).
    let expected = (WINDOW_MS + took.as_millis() as u64) * RATE / 1000;
    eprintln!("flood over {took:?}: {seen:?}; expected {expected} answered");
    assert_eq!(seen.other, 0, "{seen:?}");
    assert!(
        seen.answered.abs_diff(expected) <= 3,
        "answered {} of 600, expected {expected} ± 3 ({seen:?})",
        seen.answered
    );
    // Slip 2: every second limited reply comes back as TC=1.
    let limited = 600 - seen.answered;
    assert_eq!(seen.truncated, limited / 2, "{seen:?}");
    assert_eq!((other_net, exempt), (10, 200));

    // The limited network, told to retry over TCP, gets its answer there.
    let r = s.tcp_from("127.0.9.1", &q);
    assert_eq!((rcode(&r), r.answers.len()), (0, 2), "{r}");
    assert!(!r.metadata.truncation);

    // The metrics count what the client saw.
    let text = scrape(&s);
    // A zone without GSLB names has no answer series; the rest is rendered all the same.
    assert!(text.contains("meridian_queries_total{"), "{text}");
    assert_eq!(metric(&text, "meridian_rrl_slipped_total"), seen.truncated);
    assert_eq!(
        metric(&text, "meridian_rrl_dropped_total"),
        limited - seen.truncated
    );
}

#[test]
fn without_an_rrl_section_nothing_is_limited() {
    let s = Server::start(&[("example.net", EXAMPLE_NET)], "");
    let sock = udp_socket_from("127.0.12.1");
    let (seen, _) = flood(&s, &sock, 300, Duration::from_millis(300));
    assert_eq!((seen.answered, seen.truncated, seen.other), (300, 0, 0));
}
