//! Geo routing over real sockets: the source address of a real UDP or TCP client, malformed
//! ECS on a TCP connection, GeoIP databases replaced while serving or missing at start, and
//! `meridian explain`. The geo answers themselves (every policy, database layout and ECS
//! scope) are scenario rows, run in-process by `scenarios` (tests/fixtures/scenarios/geo-*).
//!
//! What the databases say (geoip/README.md): 127.0.1.0/24, 192.0.2.0/25 and
//! 2001:db8:1::/48 are Amsterdam; 127.0.2.0/24, 198.51.100.0/25, 2001:db8:2::/48 New York;
//! 127.0.3.0/24, 203.0.113.0/25, 2001:db8:3::/48 Singapore; 127.0.4.0/24, 192.0.2.128/25,
//! 2001:db8:4::/48 São Paulo; 127.0.5.0/24, 198.51.100.128/25, 2001:db8:5::/48 Sydney;
//! 127.0.6.0/24 Johannesburg; 81.2.69.0/24 London; 216.160.83.0/24 Milton (WA);
//! 175.16.199.0/24 Changchun; 200.160.2.0/24 São Paulo. Nothing else is known, in
//! particular 127.0.0.1, 10/8, 203.0.113.128/25 and the rest of 2001:db8::/32.
//!
//! The tests serve the shipped `zones/example.com.toml` (its `cdn` name: nearest over ams,
//! nyc, sin).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::geoip_fixtures::{self, BUILD_EPOCH};
use crate::harness::*;

// ---------------------------------------------------------------------------------------
// Fixtures

/// The shipped example zone, exactly as checked in.
const SHIPPED_ZONE: &str = include_str!("../../zones/example.com.toml");

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

/// `q` with ECS `subnet` ("a.b.c.d/len").
fn ecs(q: Message, subnet: &str) -> Message {
    let (addr, len) = subnet.split_once('/').expect("subnet with /len");
    with_ecs(q, addr, len.parse().expect("prefix length"))
}

/// Asserts an authoritative NOERROR reply to `q` whose answer is exactly `expected`, in
/// order, with empty authority and additional sections.
fn assert_answer(q: &Message, r: &Message, expected: &[String], context: &str) {
    assert_head(q, r, Head::aa());
    let want: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_section_ordered(context, &r.answers, &want);
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
// 1. The client's source address, over real sockets

/// (source address, data center) for each client city. São Paulo's nearest is nyc (7686 km,
/// ams 9805 km); Sydney's is sin (6300 km).
const CDN_CLIENTS: [(&str, &str); 5] = [
    ("127.0.1.5", "ams"),
    ("127.0.2.5", "nyc"),
    ("127.0.3.5", "sin"),
    ("127.0.4.5", "nyc"),
    ("127.0.5.5", "sin"),
];

#[test]
fn cdn_by_the_source_address_of_real_udp_and_tcp_clients() {
    // The UDP and TCP listeners hand the peer's address to the responder: the scenario
    // rows (`from=`) cannot show that.
    let s = shipped(&city());
    for (src, dc) in CDN_CLIENTS {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let q = query("cdn.example.com.", rtype);
            for (via, r) in [("udp", s.udp_from(src, &q)), ("tcp", s.tcp_from(src, &q))] {
                assert_answer(&q, &r, &[cdn(dc, rtype)], &format!("{src} {rtype} {via}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Malformed ECS options on a TCP connection

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
fn malformed_ecs_over_tcp_is_formerr_and_the_connection_keeps_serving() {
    let s = shipped(&city());
    let mut c = s.tcp_connect_from("127.0.5.5");
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
// 3. Databases replaced on disk while serving

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
        let Some((reply, sends)) = s.exchange_udp(&sock, &encode(&q), 2) else {
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
    let q = ecs(query("cdn.example.com.", RecordType::A), "192.0.2.128/25");
    assert_answer(&q, &s.udp(&q), std::slice::from_ref(&nyc), "192.0.2.128/25");
    let q = ecs(query("cdn.example.com.", RecordType::AAAA), "127.0.4.0/24");
    let r = s.udp(&q);
    assert_answer(&q, &r, &[cdn("sin", RecordType::AAAA)], "127.0.4.0/24");
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
// 4. Missing or unreadable databases at start

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
// 5. `meridian explain`

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
        let q = ecs(query(&format!("{name}."), rt), subnet);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
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
