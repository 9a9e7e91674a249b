//! The query log: lines parsed and counted after known traffic, the sample rate honoured,
//! and a blocked writer costing dropped (and counted) lines, never answers.
//!
//! The zone: `cdn` goes to the nearest of `ams` and `nyc` (the test GeoIP database puts
//! 127.0.1.0/24 in Amsterdam and 127.0.2.0/24 in New York); `www` is a static name.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::harness::*;
use crate::metrics::{sample, scrape};
use crate::weights::{wait_api, zone_with};

fn zone() -> String {
    zone_with(
        "[datacenters.ams]\naddresses = [\"192.0.2.10\"]\nlocation = [52.37, 4.90]\n\
         [datacenters.nyc]\naddresses = [\"192.0.2.20\"]\nlocation = [40.71, -74.01]\n\
         [names.www]\na = \"192.0.2.80\"\n\
         [names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\"]\npolicy = \"nearest\"\n",
    )
}

fn start(query_log: &str) -> Server {
    let db = repo_dir().join("geoip").join("test-city.mmdb");
    let config = format!(
        "udp_threads = 1\n[geoip]\ndatabases = [{:?}]\n[query_log]\n{query_log}\n",
        db.display().to_string()
    );
    Server::start(&[("example.com", &zone())], &config)
}

/// Stops the server with SIGTERM (the log is flushed on the way out) and reads its lines.
fn stop_and_read(mut s: Server, file: &Path) -> Vec<Value> {
    s.signal("TERM");
    let (status, _) = s.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", s.log());
    let text = std::fs::read_to_string(file).expect("the query log exists");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn count(lines: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    lines.iter().filter(|l| pred(l)).count()
}

#[test]
fn every_query_is_logged_with_what_chose_its_answer() {
    let s = start("file = \"queries.jsonl\"");
    let file = s.dir().join("queries.jsonl");
    for _ in 0..5 {
        let r = s.udp_from("127.0.1.5", &query("cdn.example.com.", RecordType::A));
        assert_eq!(
            answer_ips(&r),
            ["192.0.2.10".parse::<std::net::IpAddr>().unwrap()]
        );
    }
    for _ in 0..3 {
        let q = with_ecs(query("CDN.example.com.", RecordType::A), "127.0.2.0", 24);
        let r = s.udp(&q);
        assert_eq!(
            answer_ips(&r),
            ["192.0.2.20".parse::<std::net::IpAddr>().unwrap()]
        );
    }
    for _ in 0..2 {
        s.tcp(&query("www.example.com.", RecordType::A));
    }
    s.udp(&query("nope.example.com.", RecordType::AAAA));
    s.udp(&query("example.org.", RecordType::A));
    // A question cut short: FORMERR, no name to log.
    let cut = raw_packet(0x4242, 0x0100, [1, 0, 0, 0], b"\x03www");
    s.udp_raw(&cut).expect("a FORMERR reply");

    let lines = stop_and_read(s, &file);
    assert_eq!(lines.len(), 13, "{lines:#?}");
    for l in &lines {
        assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
        assert!(l["latency_us"].as_f64().is_some_and(|us| us >= 0.0), "{l}");
        assert!(l["client_port"].as_u64().is_some_and(|p| p > 0), "{l}");
    }
    let ams = count(&lines, |l| {
        l["name"] == "cdn.example.com."
            && l["client"] == "127.0.1.5"
            && l["transport"] == "udp"
            && l["type"] == "A"
            && l["rcode"] == "NOERROR"
            && l["zone"] == "example.com."
            && l["gslb"] == "cdn.example.com."
            && l["datacenter"] == "ams"
            && l["rank"] == 0
            && l["how"] == "ranked"
            && l.get("ecs").is_none()
    });
    assert_eq!(ams, 5, "{lines:#?}");
    let nyc = count(&lines, |l| {
        l["name"] == "CDN.example.com."
            && l["ecs"] == "127.0.2.0/24"
            && l["scope"].as_u64().is_some_and(|s| s <= 24)
            && l["datacenter"] == "nyc"
            && l["rank"] == 0
    });
    assert_eq!(nyc, 3, "{lines:#?}");
    let www = count(&lines, |l| {
        l["name"] == "www.example.com."
            && l["transport"] == "tcp"
            && l["rcode"] == "NOERROR"
            && l.get("gslb").is_none()
            && l.get("how").is_none()
    });
    assert_eq!(www, 2, "{lines:#?}");
    assert_eq!(
        count(&lines, |l| l["rcode"] == "NXDOMAIN"
            && l["type"] == "AAAA"
            && l["zone"] == "example.com."),
        1
    );
    assert_eq!(
        count(&lines, |l| l["rcode"] == "REFUSED"
            && l["name"] == "example.org."
            && l.get("zone").is_none()),
        1
    );
    assert_eq!(
        count(&lines, |l| l["rcode"] == "FORMERR"
            && l.get("type").is_none()),
        1,
        "{lines:#?}"
    );
}

#[test]
fn the_sample_rate_is_honoured() {
    let s = start("file = \"queries.jsonl\"\nsample_rate = 0.25");
    let file = s.dir().join("queries.jsonl");
    for _ in 0..400 {
        s.udp(&query("www.example.com.", RecordType::A));
    }
    // One UDP thread: one in four, exactly.
    assert_eq!(stop_and_read(s, &file).len(), 100);
}

#[test]
fn a_blocked_writer_drops_lines_not_answers_and_counts_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("queries.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    // Nobody reads the pipe yet: the writer blocks opening it, the queue (8) fills.
    let mut s = start(&format!(
        "file = {:?}\nqueue = 8",
        fifo.display().to_string()
    ));
    wait_api(&s);
    for i in 0..50 {
        let r = s.udp(&query("www.example.com.", RecordType::A));
        assert_eq!(answer_ips(&r).len(), 1, "query {i} unanswered");
    }
    let text = scrape(&s);
    assert_eq!(
        sample(&text, "meridian_query_log_dropped_total", &[]),
        Some(42.0),
        "{text}"
    );

    // A reader at last: the 8 queued lines come out, and EOF once the server has stopped.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let lines = std::fs::File::open(&path)
            .map(|f| BufReader::new(f).lines().map_while(Result::ok).count());
        let _ = tx.send(lines.ok());
    });
    std::thread::sleep(Duration::from_millis(300));
    s.signal("TERM");
    let (status, _) = s.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", s.log());
    let lines = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the reader sees EOF");
    assert_eq!(lines, Some(8), "{}", s.log());
}
