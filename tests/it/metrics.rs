//! `GET /metrics` after known traffic: every count is checked against the queries the test
//! sent, the probes it made fail, and the reloads it asked for.
//!
//! The zone: `a` (127.0.0.21) whose check passes and `b` (127.0.0.22) whose check answers
//! 503; `cdn` lists b before a, so every answer fails over to a; `gone` lists only b and
//! answers SERVFAIL when it is down; `geo` is ordered by distance, so a client the test
//! database cannot place is a GeoIP miss; `big` is a TXT set too large for 512 bytes.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::check_server::CheckServer;
use crate::harness::*;
use crate::weights::{wait_api, zone_with};

/// The value of the sample `name{labels}` (labels in any order), if it is exposed.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let mut got: Vec<(String, String)> = if rest.is_empty() {
                Vec::new()
            } else {
                rest.split("\",")
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").expect("label=\"value\"");
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect()
            };
            let mut want: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            got.sort();
            want.sort();
            (got == want).then(|| value.parse().expect("a number"))
        })
}

/// `GET /metrics`, which must answer 200.
pub(crate) fn scrape(s: &Server) -> String {
    let (status, text) = s.api(
        reqwest::Method::GET,
        "/metrics",
        None,
        None,
        Duration::from_secs(5),
    );
    assert_eq!(status, 200, "{text}");
    text
}

/// Scrapes until `ok` holds for the text (at most 10 s), and returns it.
fn scrape_until(s: &Server, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(s);
        if ok(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {what}:\n{text}\nlog:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn body(a_port: u16, b_port: u16) -> String {
    let timing = "interval = \"300ms\"\ntimeout = \"250ms\"\njitter = \"0s\"\nrise = 1\nfall = 1";
    let big: Vec<String> = (0..6)
        .map(|i| format!("\"{}\"", "x".repeat(100 + i)))
        .collect();
    format!(
        "[checks.ca]\ntype = \"http\"\nport = {a_port}\npath = \"/health\"\n{timing}\n\
         [checks.cb]\ntype = \"http\"\nport = {b_port}\npath = \"/health\"\n{timing}\n\
         [datacenters.a]\naddresses = [\"127.0.0.21\"]\nlocation = [52.37, 4.90]\ncheck = \"ca\"\n\
         [datacenters.b]\naddresses = [\"127.0.0.22\"]\nlocation = [40.71, -74.01]\ncheck = \"cb\"\n\
         [names.www]\na = \"192.0.2.80\"\n\
         [names.big]\ntxt = [{}]\n\
         [names.cdn.gslb]\ndatacenters = [\"b\", \"a\"]\npolicy = \"map\"\n\
         [names.cdn.gslb.map]\ndefault = [\"b\", \"a\"]\n\
         [names.gone.gslb]\ndatacenters = [\"b\"]\npolicy = \"map\"\nall_down = \"servfail\"\n\
         [names.gone.gslb.map]\ndefault = [\"b\"]\n\
         [names.geo.gslb]\ndatacenters = [\"a\", \"b\"]\npolicy = \"nearest\"\n",
        big.join(", ")
    )
}

#[test]
fn counts_match_the_traffic_sent() {
    let a = CheckServer::http("127.0.0.21");
    let b = CheckServer::http("127.0.0.22");
    b.set_status(503);
    let db = repo_dir().join("geoip").join("test-city.mmdb");
    let config = format!("[geoip]\ndatabases = [{:?}]\n", db.display().to_string());
    let s = Server::start(
        &[("example.com", &zone_with(&body(a.port(), b.port())))],
        &config,
    );
    wait_api(&s);
    let zone = "example.com.";
    // b's probe fails (rise and fall 1): it is down once the first round is in.
    scrape_until(&s, "b down", |t| {
        sample(
            t,
            "meridian_health_up",
            &[
                ("zone", zone),
                ("datacenter", "b"),
                ("address", "127.0.0.22"),
            ],
        ) == Some(0.0)
    });

    for _ in 0..7 {
        s.udp(&query("www.example.com.", RecordType::A));
    }
    for _ in 0..3 {
        s.tcp(&query("www.example.com.", RecordType::A));
    }
    for _ in 0..4 {
        s.udp(&query("nope.example.com.", RecordType::AAAA));
    }
    for _ in 0..2 {
        s.udp(&query("example.org.", RecordType::MX));
    }
    for _ in 0..5 {
        let r = s.udp(&query("cdn.example.com.", RecordType::A));
        assert_eq!(answer_ips(&r), [ip("127.0.0.21")], "cdn fails over to a");
    }
    for _ in 0..6 {
        let r = s.udp(&query("gone.example.com.", RecordType::A));
        assert_eq!(rcode(&r), 2, "gone is all down: SERVFAIL");
    }
    // 10.0.0.0/8 has no location in the test database; with ECS, both count as ECS queries.
    for _ in 0..3 {
        s.udp(&with_ecs(
            query("geo.example.com.", RecordType::A),
            "10.1.2.0",
            24,
        ));
    }
    let r = s.udp(&query("big.example.com.", RecordType::TXT));
    assert!(r.metadata.truncation, "the TXT set does not fit 512 bytes");

    let t = scrape(&s);
    let q = |qtype: &str, rcode: &str, transport: &str, z: &str| {
        sample(
            &t,
            "meridian_queries_total",
            &[
                ("zone", z),
                ("qtype", qtype),
                ("rcode", rcode),
                ("transport", transport),
            ],
        )
    };
    assert_eq!(q("A", "NOERROR", "udp", zone), Some(7.0 + 5.0 + 3.0), "{t}");
    assert_eq!(q("A", "NOERROR", "tcp", zone), Some(3.0), "{t}");
    assert_eq!(q("AAAA", "NXDOMAIN", "udp", zone), Some(4.0), "{t}");
    assert_eq!(q("MX", "REFUSED", "udp", "-"), Some(2.0), "{t}");
    assert_eq!(q("A", "SERVFAIL", "udp", zone), Some(6.0), "{t}");
    assert_eq!(q("TXT", "NOERROR", "udp", zone), Some(1.0), "{t}");
    let total_queries = 7 + 3 + 4 + 2 + 5 + 6 + 3 + 1;
    assert_eq!(
        sample(&t, "meridian_ecs_queries_total", &[("with_ecs", "true")]),
        Some(3.0)
    );
    assert_eq!(
        sample(&t, "meridian_ecs_queries_total", &[("with_ecs", "false")]),
        Some(f64::from(total_queries - 3))
    );
    assert_eq!(
        sample(&t, "meridian_geoip_misses_total", &[]),
        Some(3.0),
        "{t}"
    );
    assert_eq!(
        sample(&t, "meridian_truncated_total", &[("transport", "udp")]),
        Some(1.0)
    );
    let per_name = |metric: &str, name: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("zone", zone), ("name", name)];
        labels.extend_from_slice(extra);
        sample(&t, metric, &labels)
    };
    assert_eq!(
        per_name(
            "meridian_answers_total",
            "cdn.example.com.",
            &[("datacenter", "a")]
        ),
        Some(5.0)
    );
    assert_eq!(
        per_name(
            "meridian_answers_total",
            "cdn.example.com.",
            &[("datacenter", "b")]
        ),
        Some(0.0)
    );
    assert_eq!(
        per_name("meridian_failover_answers_total", "cdn.example.com.", &[]),
        Some(5.0)
    );
    assert_eq!(
        per_name(
            "meridian_all_down_answers_total",
            "gone.example.com.",
            &[("policy", "servfail")]
        ),
        Some(6.0)
    );
    // The geo answers went to a healthy site: counted as answers, not as fail-overs (a
    // client of unknown location gets the written order, a first).
    assert_eq!(
        per_name(
            "meridian_answers_total",
            "geo.example.com.",
            &[("datacenter", "a")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &t,
            "meridian_health_up",
            &[
                ("zone", zone),
                ("datacenter", "a"),
                ("address", "127.0.0.21")
            ]
        ),
        Some(1.0)
    );
    let b_check = format!("http GET /health port {}", b.port());
    let failures = sample(
        &t,
        "meridian_probe_failures_total",
        &[("check", &b_check), ("reason", "status")],
    );
    assert!(failures.is_some_and(|n| n >= 1.0), "{t}");
    let a_check = format!("http GET /health port {}", a.port());
    assert!(
        sample(
            &t,
            "meridian_probe_failures_total",
            &[("check", &a_check), ("reason", "status")]
        )
        .is_none(),
        "a's probes pass"
    );
    assert!(t.contains(&format!(
        "meridian_probe_duration_seconds_count{{check=\"{a_check}\"}}"
    )));
    assert_eq!(
        sample(
            &t,
            "meridian_datacenter_weight",
            &[("zone", zone), ("datacenter", "a")]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&t, "meridian_config_generation", &[]), Some(1.0));
    assert_eq!(
        sample(&t, "meridian_reloads_total", &[("result", "ok")]),
        Some(0.0)
    );
    assert_eq!(sample(&t, "meridian_tcp_connections", &[]), Some(0.0));
    assert_eq!(
        sample(
            &t,
            "meridian_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    // A reload that works, then one that fails: counted, and the generation is the one
    // serving.
    let reload = || {
        s.api(
            reqwest::Method::POST,
            "/v1/reload",
            Some(&s.bearer()),
            None,
            Duration::from_secs(10),
        )
        .0
    };
    assert_eq!(reload(), 200);
    let zone_file = s.dir().join("zones").join("example.com.toml");
    std::fs::write(&zone_file, "origin = 7\n").expect("break the zone");
    assert_eq!(reload(), 422);
    let t = scrape(&s);
    assert_eq!(
        sample(&t, "meridian_reloads_total", &[("result", "ok")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&t, "meridian_reloads_total", &[("result", "error")]),
        Some(1.0)
    );
    assert_eq!(sample(&t, "meridian_config_generation", &[]), Some(2.0));
    // Counts carry across the reload.
    assert_eq!(
        sample(
            &t,
            "meridian_failover_answers_total",
            &[("zone", zone), ("name", "cdn.example.com.")]
        ),
        Some(5.0)
    );
}

/// Draining a data center by override takes its weight to 0; with `[metrics] enabled =
/// false` the query path counts nothing.
#[test]
fn weights_follow_overrides_and_counting_can_be_off() {
    let body = [
        crate::weights::dc("a", "192.0.2.1", 3),
        crate::weights::dc("b", "192.0.2.2", 1),
        crate::weights::gslb_map("cdn", &["a", "b"], "spread = 2"),
    ]
    .concat();
    let s = crate::weights::start(&body, "[metrics]\nenabled = false\n");
    wait_api(&s);
    let weight = |t: &str, dc: &str| {
        sample(
            t,
            "meridian_datacenter_weight",
            &[("zone", "example.com."), ("datacenter", dc)],
        )
    };
    let t = scrape(&s);
    assert_eq!((weight(&t, "a"), weight(&t, "b")), (Some(3.0), Some(1.0)));
    crate::weights::set_override(&s, "a", "drain");
    for _ in 0..4 {
        s.udp(&query("cdn.example.com.", RecordType::A));
    }
    let t = scrape(&s);
    assert_eq!(weight(&t, "a"), Some(0.0));
    assert_eq!(
        sample(
            &t,
            "meridian_answers_total",
            &[
                ("zone", "example.com."),
                ("name", "cdn.example.com."),
                ("datacenter", "b")
            ]
        ),
        Some(0.0),
        "nothing is counted with metrics off"
    );
    assert!(
        sample(
            &t,
            "meridian_queries_total",
            &[
                ("zone", "example.com."),
                ("qtype", "A"),
                ("rcode", "NOERROR"),
                ("transport", "udp")
            ]
        )
        .is_none()
    );
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().expect("an address")
}
