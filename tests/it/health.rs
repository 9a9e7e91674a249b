//! Health checks of a running server against real check targets the tests start on
//! 127/8: HTTP servers whose answer can be switched at run time (status, body, slow,
//! alternating, closed), plain TCP listeners and an HTTPS server with a self-signed
//! certificate. Data center addresses are the loopback addresses those servers listen on,
//! and each check names its server's port.
//!
//! Most zones route with a `map` policy whose default list makes the order explicit
//! (no `[geoip]`, so every client gets the default); the `explain` test uses the test
//! GeoIP database and `nearest`. Every wait is a bounded poll; no fixed sleep is an
//! assertion.
//!
//! Overrides and the API are exercised through `meridian override` / `overrides` /
//! `explain` against the running server, and through the HTTP API with reqwest.

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::check_server::{CheckServer, Mode, closed_port};
use crate::harness::*;

// ---------------------------------------------------------------------------------------
// Zones

/// The NODATA SOA of the zones below: TTL min(3600, MINIMUM 300).
const NEG_SOA: &str =
    "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 900 604800 300";

/// GSLB names answer with this TTL when healthy ...
const TTL: u32 = 30;
/// ... and with this one while a candidate they passed over is down.
const MIN_TTL: u32 = 5;

/// Probes every 500 ms; down after 2 failures, up after 1 success. Fast, yet one unlucky
/// probe on a busy machine moves nothing.
pub(crate) const FAST: &str =
    "interval = \"500ms\"\ntimeout = \"400ms\"\njitter = \"0s\"\nrise = 1\nfall = 2";

/// example.com with SOA, NS, and `body` (data centers, checks, names).
fn zone_with(body: &str) -> String {
    format!(
        r#"origin = "example.com"
ttl = "1h"
[soa]
primary = "ns1"
contact = "hostmaster@example.com"
serial = 1
refresh = "1h"
retry = "15m"
expire = "1w"
negative_ttl = "5m"
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
{body}
"#
    )
}

/// `[datacenters.ID]` with `addresses` (TOML list items) and, when given, a check.
fn dc(id: &str, addresses: &str, check: Option<&str>) -> String {
    let check = check.map_or(String::new(), |c| format!("check = \"{c}\"\n"));
    format!("[datacenters.{id}]\naddresses = [{addresses}]\nlocation = [0.0, 0.0]\n{check}")
}

/// `[checks.NAME]` of `kind` against `port` with `timing` (and `extra` keys).
pub(crate) fn check(name: &str, kind: &str, port: u16, timing: &str, extra: &str) -> String {
    let path = if kind == "tcp" {
        ""
    } else {
        "path = \"/health\"\n"
    };
    format!("[checks.{name}]\ntype = \"{kind}\"\nport = {port}\n{path}{timing}\n{extra}\n")
}

/// A GSLB name over `dcs`, answered in that order (map policy, default list), TTL 30 s,
/// min_ttl 5 s, with `extra` keys (e.g. `all_down`) and `map_extra` rules.
fn gslb(name: &str, dcs: &[&str], extra: &str, map_extra: &str) -> String {
    let list: Vec<String> = dcs.iter().map(|d| format!("\"{d}\"")).collect();
    let list = list.join(", ");
    format!(
        "[names.{name}.gslb]\ndatacenters = [{list}]\npolicy = \"map\"\nttl = \"{TTL}s\"\n\
         min_ttl = \"{MIN_TTL}s\"\n{extra}\n[names.{name}.gslb.map]\ndefault = [{list}]\n\
         {map_extra}\n"
    )
}

/// `[geoip]` with the checked-in test City database.
fn city_geoip() -> String {
    let db = repo_dir().join("geoip").join("test-city.mmdb");
    format!("[geoip]\ndatabases = [{:?}]\n", db.display().to_string())
}

fn start(zone_body: &str, config: &str) -> Server {
    Server::start(&[("example.com", &zone_with(zone_body))], config)
}

// ---------------------------------------------------------------------------------------
// DNS

/// What a GSLB answer says, in one comparable value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    rcode: ResponseCode,
    /// A/AAAA addresses of the answer, sorted.
    ips: Vec<IpAddr>,
    /// The TTL of the answer records (all equal), `None` for an empty answer.
    ttl: Option<u32>,
}

impl Got {
    fn of(r: &Message) -> Self {
        let ips = answer_ips(r);
        let ttls: Vec<u32> = r.answers.iter().map(|rec| rec.ttl).collect();
        assert!(
            ttls.windows(2).all(|w| w[0] == w[1]),
            "one TTL per answer\n{r}"
        );
        Got {
            rcode: r.metadata.response_code,
            ips,
            ttl: ttls.first().copied(),
        }
    }

    /// NOERROR with exactly `ips` at `ttl`.
    fn ok(ips: &[&str], ttl: u32) -> Self {
        let mut ips: Vec<IpAddr> = ips.iter().map(|i| i.parse().expect("ip")).collect();
        ips.sort();
        Got {
            rcode: ResponseCode::NoError,
            ips,
            ttl: Some(ttl),
        }
    }

    fn is(&self, ips: &[&str]) -> bool {
        let want = Got::ok(ips, 0).ips;
        self.rcode == ResponseCode::NoError && self.ips == want
    }
}

/// How long until `cdn` moves from answering `from` to answering `to`, each with its
/// TTL; the TTL of `from` is checked on every answer until the switch.
fn switch_time(s: &Server, from: (&str, u32), to: (&str, u32), what: &str) -> Duration {
    let (got, took) = wait_for(s, Duration::from_secs(10), what, || {
        let got = ask(s, "cdn");
        if got.is(&[from.0]) {
            assert_eq!(
                got.ttl,
                Some(from.1),
                "before the {what}: TTL of {}",
                from.0
            );
            return None;
        }
        Some(got)
    });
    assert_eq!(got, Got::ok(&[to.0], to.1), "after the {what}");
    took
}

/// Asserts a switch that needs `count` probe results in a row came within
/// [(count − 1), (count + 1)] intervals plus a second of slack.
fn assert_within(took: Duration, interval: Duration, count: u32, what: &str) {
    let low = interval * (count - 1);
    let high = interval * (count + 1) + Duration::from_secs(1);
    assert!(
        took >= low && took <= high,
        "{what} after {took:?}, expected within [{low:?}, {high:?}]"
    );
}

/// `NAME.example.com. A` over UDP from 127.0.0.1 (unknown to GeoIP: the default list).
fn ask(s: &Server, name: &str) -> Got {
    Got::of(&ask_msg(s, name))
}

fn ask_msg(s: &Server, name: &str) -> Message {
    s.udp(&query(&format!("{name}.example.com."), RecordType::A))
}

/// `q` over UDP from source address `src` (any 127/8 address).
fn udp_from(s: &Server, src: &str, q: &Message) -> Message {
    let sock = UdpSocket::bind((src, 0)).unwrap_or_else(|e| panic!("bind {src}: {e}"));
    sock.set_read_timeout(Some(UDP_TIMEOUT)).expect("timeout");
    let packet = encode(q);
    let mut buf = vec![0u8; 65_535];
    for _ in 0..UDP_TRIES {
        sock.send_to(&packet, s.addr).expect("udp send");
        for _ in 0..16 {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == s.addr && buf[..2] == packet[..2] => {
                    return parse(&buf[..n]);
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    panic!("no UDP answer from {src}\nlog:\n{}", s.log());
}

// ---------------------------------------------------------------------------------------
// Waiting

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`; returns the value
/// and how long it took. Fails the test, showing `what` and the server log, otherwise.
fn wait_for<T>(
    s: &Server,
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, start.elapsed());
        }
        if start.elapsed() > limit {
            panic!(
                "not within {limit:?}: {what}\nlog:\n{}",
                strip_ansi(&s.log())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `name` answers exactly `ips` (any TTL); returns that answer.
fn wait_answer(s: &Server, name: &str, ips: &[&str], limit: Duration) -> Got {
    let (got, _) = wait_for(s, limit, &format!("{name} answers {ips:?}"), || {
        let got = ask(s, name);
        got.is(ips).then_some(got)
    });
    got
}

/// Waits until the server's API is up (it starts before DNS, before the first probe round:
/// the address and token files are written before `listening on udp` is logged).
fn wait_api(s: &Server) {
    wait_for(s, START_TIMEOUT, "the API listens", || {
        s.log().contains("listening on api http://").then_some(())
    });
}

/// How often `needle` occurs in the server log.
fn log_count(s: &Server, needle: &str) -> usize {
    s.log_count(needle)
}

/// Waits until `needle` is in the server log. The log reaches the test through a pipe
/// and a reader thread, so a line can arrive after the answer that follows it.
fn wait_log(s: &Server, needle: &str) {
    wait_for(
        s,
        Duration::from_secs(5),
        &format!("log line {needle:?}"),
        || s.log().contains(needle).then_some(()),
    );
}

/// Returns once everything the server logged before this call is in `s.log()`: sets and
/// clears an override of `dc` through the API (each change is logged) and waits for the
/// second line, which the server wrote after everything before. `dc` must not be drained
/// by anyone else meanwhile; while set, its override is `down`.
fn sync_log(s: &Server, dc: &str) {
    let marker = format!("override: data center {dc} of example.com. down -> none");
    let before = log_count(s, &marker);
    for state in ["down", "clear"] {
        let body = format!(r#"{{"target": "{dc}", "zone": null, "state": "{state}"}}"#);
        let (status, text) = put_override(s, &body);
        assert_eq!(status, 200, "{text}");
    }
    wait_for(s, Duration::from_secs(5), "the log marker", || {
        (log_count(s, &marker) > before).then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// Command line and API

/// `meridian SUBCOMMAND --config <the server's config> ARGS...` in the server's directory.
fn cli(s: &Server, subcommand: &str, args: &[&str]) -> Output {
    s.cli(subcommand, args)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    strip_ansi(&String::from_utf8_lossy(&o.stderr))
}

/// Asserts the exit status, showing both streams when it differs.
fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: exit status\nstdout:\n{}\nstderr:\n{}",
        out(o),
        err(o)
    );
}

/// `meridian override ...`, expected to succeed; returns stdout.
fn override_ok(s: &Server, args: &[&str]) -> String {
    let o = cli(s, "override", args);
    assert_exit(&o, 0, &format!("meridian override {args:?}"));
    out(&o)
}

/// `meridian overrides`, expected to succeed; returns stdout without what is said about
/// each override (who, when, why: see [`overrides_with_who_and_why`]).
fn overrides(s: &Server) -> String {
    overrides_with_who_and_why(s)
        .lines()
        .map(|l| match l.split_once(" (by ") {
            Some((head, _)) => format!("{head}\n"),
            None => format!("{l}\n"),
        })
        .collect()
}

/// `meridian overrides` as it prints.
fn overrides_with_who_and_why(s: &Server) -> String {
    let o = cli(s, "overrides", &[]);
    assert_exit(&o, 0, "meridian overrides");
    out(&o)
}

fn state_dir(s: &Server) -> PathBuf {
    s.dir().join(".meridian")
}

/// One API request within 5 s (see [`Server::api`]).
fn api(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    authorization: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    s.api(method, path, authorization, json, Duration::from_secs(5))
}

/// `PUT /v1/overrides` with the JSON `body` and the right token; status and body.
fn put_override(s: &Server, body: &str) -> (u16, String) {
    let bearer = s.bearer();
    api(
        s,
        reqwest::Method::PUT,
        "/v1/overrides",
        Some(&bearer),
        Some(body),
    )
}

/// `GET /v1/explain` for `NAME.example.com` A from 127.0.0.1 with the right token.
fn api_explain(s: &Server, name: &str) -> String {
    let bearer = s.bearer();
    let path = format!("/v1/explain?name={name}.example.com&type=A&client=127.0.0.1");
    let (status, body) = api(s, reqwest::Method::GET, &path, Some(&bearer), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// The explain line of the address `ip` (`       127.0.0.1   down since ...`).
fn address_line<'a>(explain: &'a str, ip: &str) -> &'a str {
    explain
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{ip} ")))
        .unwrap_or_else(|| panic!("no line for {ip} in\n{explain}"))
}

// ---------------------------------------------------------------------------------------
// 1, 2. Fail-over and recovery timing; TTL while degraded

/// Checks every 1 s, down after 3 failures, up after 2 successes, no jitter.
const MEASURED: &str =
    "interval = \"1s\"\ntimeout = \"500ms\"\njitter = \"0s\"\nrise = 2\nfall = 3";

#[test]
fn failover_within_fall_intervals_and_recovery_within_rise_intervals() {
    let ams = CheckServer::http("127.0.0.1");
    let nyc = CheckServer::http("127.0.0.2");
    let s = start(
        &format!(
            "{}{}{}{}{}",
            check("ams", "http", ams.port(), MEASURED, ""),
            check("nyc", "http", nyc.port(), MEASURED, ""),
            dc("ams", "\"127.0.0.1\"", Some("ams")),
            dc("nyc", "\"127.0.0.2\"", Some("nyc")),
            gslb("cdn", &["ams", "nyc"], "", ""),
        ),
        "",
    );
    let (interval, fall, rise) = (Duration::from_secs(1), 3u32, 2u32);
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1"], TTL));

    // ams starts failing: it stays answered (at the normal TTL) until `fall` failures in
    // a row, then nyc is answered at min_ttl.
    ams.set_status(500);
    let t0 = Instant::now();
    let failover = switch_time(&s, ("127.0.0.1", TTL), ("127.0.0.2", MIN_TTL), "fail-over");
    eprintln!(
        "health: fail-over took {:.2} s (interval 1 s, fall 3, jitter 0)",
        failover.as_secs_f64()
    );
    assert_within(failover, interval, fall, "fail-over");
    assert!(t0.elapsed() >= failover);

    // While ams is down, nyc keeps being answered at the short TTL.
    for _ in 0..5 {
        assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.2"], MIN_TTL));
    }

    // ams recovers: back after `rise` successes, at the normal TTL again.
    ams.set_status(200);
    let recovery = switch_time(&s, ("127.0.0.2", MIN_TTL), ("127.0.0.1", TTL), "recovery");
    eprintln!(
        "health: recovery took {:.2} s (interval 1 s, rise 2, jitter 0)",
        recovery.as_secs_f64()
    );
    assert_within(recovery, interval, rise, "recovery");

    // Each change is logged once, with the reason (the up line follows the down line).
    wait_log(&s, "is now up after 2 successes");
    let log = s.log();
    assert_eq!(
        log.matches("is now down after 3 failures: unexpected status 500")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("is now up after 2 successes").count(),
        1,
        "{log}"
    );
}

#[test]
fn answers_carry_min_ttl_while_a_passed_over_candidate_is_down() {
    let ams = CheckServer::http("127.0.0.1");
    let s = start(
        &format!(
            "{}{}{}{}",
            check("ams", "http", ams.port(), FAST, ""),
            dc("ams", "\"127.0.0.1\"", Some("ams")),
            dc("nyc", "\"127.0.0.2\"", None),
            // ECS clients in 10/8 get nyc first.
            gslb(
                "cdn",
                &["ams", "nyc"],
                "",
                "network.\"10.0.0.0/8\" = [\"nyc\", \"ams\"]"
            ),
        ),
        "",
    );
    let from_ten = || {
        Got::of(&s.udp(&with_ecs(
            query("cdn.example.com.", RecordType::A),
            "10.1.2.0",
            24,
        )))
    };
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1"], TTL));
    assert_eq!(from_ten(), Got::ok(&["127.0.0.2"], TTL));

    ams.set_status(500);
    let got = wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(5));
    assert_eq!(got.ttl, Some(MIN_TTL), "ams is down and was passed over");
    // Clients whose first choice is healthy never looked at ams: their answer does not
    // change when ams comes back, so it keeps the normal TTL.
    assert_eq!(from_ten(), Got::ok(&["127.0.0.2"], TTL));

    ams.set_status(200);
    let got = wait_answer(&s, "cdn", &["127.0.0.1"], Duration::from_secs(5));
    assert_eq!(got.ttl, Some(TTL), "every candidate healthy again");
    assert_eq!(from_ten(), Got::ok(&["127.0.0.2"], TTL));
}

// ---------------------------------------------------------------------------------------
// 3. Partly down data centers

#[test]
fn a_data_center_with_one_address_down_answers_with_the_others() {
    let a = CheckServer::http("127.0.0.1");
    let b = CheckServer::http("127.0.0.3");
    let s = start(
        &format!(
            "{}{}{}{}{}",
            check("a", "http", a.port(), FAST, ""),
            check("b", "http", b.port(), FAST, ""),
            // The data center's check covers 127.0.0.1; 127.0.0.3 names its own.
            dc(
                "ams",
                "\"127.0.0.1\", { address = \"127.0.0.3\", check = \"b\" }",
                Some("a")
            ),
            dc("nyc", "\"127.0.0.2\"", None),
            gslb("cdn", &["ams", "nyc"], "", ""),
        ),
        "",
    );
    wait_api(&s);
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1", "127.0.0.3"], TTL));

    b.set_status(503);
    let got = wait_answer(&s, "cdn", &["127.0.0.1"], Duration::from_secs(5));
    assert_eq!(got.ttl, Some(MIN_TTL), "degraded: short TTL");

    b.set_status(200);
    a.set_status(503);
    let got = wait_answer(&s, "cdn", &["127.0.0.3"], Duration::from_secs(5));
    assert_eq!(got.ttl, Some(MIN_TTL), "degraded: short TTL");

    // Both down: the data center is down, the next one answers.
    b.set_status(503);
    wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(5));

    a.set_status(200);
    b.set_status(200);
    let got = wait_answer(
        &s,
        "cdn",
        &["127.0.0.1", "127.0.0.3"],
        Duration::from_secs(5),
    );
    // 127.0.0.3 changed state four times within 20 intervals: flapping, which keeps the
    // answer at the short TTL (and explain says so) until its changes age out.
    assert_eq!(got, Got::ok(&["127.0.0.1", "127.0.0.3"], MIN_TTL));
    let text = api_explain(&s, "cdn");
    assert!(
        address_line(&text, "127.0.0.3").ends_with(", flapping)"),
        "{text}"
    );
    assert!(
        !address_line(&text, "127.0.0.1").contains("flapping"),
        "{text}"
    );
    wait_log(&s, "is flapping: 4 state changes");
}

// ---------------------------------------------------------------------------------------
// 4. Flapping

#[test]
fn flapping_faster_than_the_thresholds_never_changes_the_answer() {
    // rise 2, fall 3: results alternating every probe never make 2 successes or 3
    // failures in a row, so neither a data center that is up nor one that is down moves.
    let timing = "interval = \"300ms\"\ntimeout = \"250ms\"\njitter = \"0s\"\nrise = 2\nfall = 3";
    let ams = CheckServer::http("127.0.0.1");
    let sin = CheckServer::http("127.0.0.3");
    let s = start(
        &format!(
            "{}{}{}{}{}{}{}",
            check("ams", "http", ams.port(), timing, ""),
            check("sin", "http", sin.port(), timing, "initial = \"down\""),
            dc("ams", "\"127.0.0.1\"", Some("ams")),
            dc("nyc", "\"127.0.0.2\"", None),
            dc("sin", "\"127.0.0.3\"", Some("sin")),
            gslb("cdn", &["ams", "nyc"], "", ""),
            gslb("alt", &["sin", "nyc"], "", ""),
        ),
        "",
    );
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1"], TTL));
    assert_eq!(ask(&s, "alt"), Got::ok(&["127.0.0.2"], MIN_TTL));

    ams.set_mode(Mode::Alternate);
    sin.set_mode(Mode::Alternate);
    let (ams0, sin0) = (ams.hits(), sin.hits());
    let probes = 10;
    let (_, took) = wait_for(
        &s,
        Duration::from_secs(10),
        &format!("{probes} alternating probes of each target"),
        || {
            assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1"], TTL), "cdn moved");
            assert_eq!(
                ask(&s, "alt"),
                Got::ok(&["127.0.0.2"], MIN_TTL),
                "alt moved"
            );
            (ams.hits() >= ams0 + probes && sin.hits() >= sin0 + probes).then_some(())
        },
    );
    eprintln!("health: {probes} alternating probes each in {took:?}, answers unchanged");
    let log = s.log();
    assert!(!log.contains("is now down"), "{log}");
    assert!(!log.contains("is now up"), "{log}");
}

// ---------------------------------------------------------------------------------------
// 5. Failure kinds

#[test]
fn every_failure_kind_takes_a_data_center_out_with_its_reason() {
    let status = CheckServer::http("127.0.0.11");
    status.set_status(204);
    let body = CheckServer::http("127.0.0.12");
    body.set_body("all healthy here");
    let mut refused = CheckServer::http("127.0.0.13");
    let slow = CheckServer::http("127.0.0.14");
    let mut tcp = CheckServer::tcp("127.0.0.15");
    let tls = CheckServer::https("127.0.0.16");
    let tls_off = CheckServer::https("127.0.0.17");

    // (data center, server, check type, extra check keys)
    let kinds: [(&str, &CheckServer, &str, &str); 7] = [
        ("status", &status, "http", "expect = [204]"),
        ("body", &body, "http", "body = \"healthy\""),
        ("refused", &refused, "http", ""),
        ("slow", &slow, "http", ""),
        ("tcp", &tcp, "tcp", ""),
        // The certificate is self-signed for localhost: verification fails by default.
        ("tls", &tls, "https", "host = \"localhost\""),
        (
            "tlsoff",
            &tls_off,
            "https",
            "host = \"localhost\"\nverify_tls = false",
        ),
    ];
    let mut body_toml = dc("backup", "\"127.0.0.99\"", None);
    for (id, server, kind, extra) in kinds {
        body_toml.push_str(&check(id, kind, server.port(), FAST, extra));
        body_toml.push_str(&dc(id, &format!("\"{}\"", server.ip()), Some(id)));
        body_toml.push_str(&gslb(id, &[id, "backup"], "", ""));
    }
    let s = start(&body_toml, "");
    wait_api(&s);
    let backup = ["127.0.0.99"];

    // All healthy but the verified TLS check.
    for id in ["status", "body", "refused", "slow", "tcp", "tlsoff"] {
        let ip = s_ip(id);
        assert_eq!(ask(&s, id), Got::ok(&[ip], TTL), "{id} starts up");
    }
    wait_answer(&s, "tls", &backup, Duration::from_secs(5));

    status.set_status(200); // not in expect = [204]
    body.set_body("sick");
    refused.close();
    slow.set_mode(Mode::Slow);
    tcp.close();
    for id in ["status", "body", "refused", "slow", "tcp"] {
        wait_answer(&s, id, &backup, Duration::from_secs(6));
    }
    // verify_tls = false accepts the self-signed certificate throughout.
    assert_eq!(ask(&s, "tlsoff"), Got::ok(&["127.0.0.17"], TTL));

    let reasons = [
        ("status", "unexpected status 200"),
        ("body", "body does not contain \"healthy\""),
        ("refused", "connection refused"),
        ("slow", "timed out after 400ms"),
        ("tcp", "connection refused"),
        ("tls", "TLS error"),
    ];
    for (id, reason) in reasons {
        let text = api_explain(&s, id);
        let line = address_line(&text, s_ip(id));
        assert!(
            line.contains("down since") && line.contains(reason),
            "{id}: expected {reason:?} in {line:?}\n{text}"
        );
        assert!(
            text.contains(&format!("{id}.example.com. {MIN_TTL} IN A 127.0.0.99")),
            "{id}: the backup answers\n{text}"
        );
    }
    let text = api_explain(&s, "tls");
    let line = address_line(&text, "127.0.0.16");
    assert!(line.contains("certificate"), "{line}");
    let text = api_explain(&s, "tlsoff");
    assert!(
        address_line(&text, "127.0.0.17").contains("last probe ok"),
        "{text}"
    );
}

/// The address of the failure-kind data center `id`.
fn s_ip(id: &str) -> &'static str {
    match id {
        "status" => "127.0.0.11",
        "body" => "127.0.0.12",
        "refused" => "127.0.0.13",
        "slow" => "127.0.0.14",
        "tcp" => "127.0.0.15",
        "tls" => "127.0.0.16",
        "tlsoff" => "127.0.0.17",
        other => panic!("no data center {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// 6. Every candidate down

#[test]
fn all_down_policies() {
    let ams = CheckServer::http("127.0.0.1");
    let nyc = CheckServer::http("127.0.0.2");
    ams.set_status(500);
    nyc.set_status(500);
    // fall = 1 with the default initial "up": the first round already takes both down.
    let timing = "interval = \"500ms\"\ntimeout = \"400ms\"\njitter = \"0s\"\nrise = 1\nfall = 1";
    let both = ["ams", "nyc"];
    let s = start(
        &format!(
            "{}{}{}{}{}{}{}{}{}",
            check("ams", "http", ams.port(), timing, ""),
            check("nyc", "http", nyc.port(), timing, ""),
            dc("ams", "\"127.0.0.1\"", Some("ams")),
            dc("nyc", "\"127.0.0.2\"", Some("nyc")),
            gslb("open", &both, "", ""),
            gslb("fail", &both, "all_down = \"servfail\"", ""),
            gslb("empty", &both, "all_down = \"nodata\"", ""),
            gslb(
                "fixed",
                &both,
                "all_down = { addresses = [\"192.0.2.99\"] }",
                ""
            ),
            gslb(
                "sorry",
                &both,
                "all_down = { cname = \"sorry.example.net.\" }",
                ""
            ),
        ),
        "",
    );
    wait_api(&s);
    let names = ["open", "fail", "empty", "fixed", "sorry"];
    for _ in 0..3 {
        // Fail open: as if all were up, the first of the list, at the short TTL.
        assert_eq!(ask(&s, "open"), Got::ok(&["127.0.0.1"], MIN_TTL));

        let r = ask_msg(&s, "fail");
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "{r}");
        assert!(r.answers.is_empty(), "{r}");

        let q = query("empty.example.com.", RecordType::A);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        assert_sections(&r, &[], &[NEG_SOA], &[]);

        assert_eq!(ask(&s, "fixed"), Got::ok(&["192.0.2.99"], MIN_TTL));

        let q = query("sorry.example.com.", RecordType::A);
        let r = s.udp(&q);
        assert_head(&q, &r, Head::aa());
        assert_sections(
            &r,
            &[&format!(
                "sorry.example.com. {MIN_TTL} IN CNAME sorry.example.net."
            )],
            &[],
            &[],
        );
    }
    // Entering the state is logged once per name, not once per query: the health side
    // looks at the names about once a second and logs changes only. (The override behind
    // `sync_log` changes no state: ams is down already.)
    assert_logged_once(&s, &names, &[DOWN], "ams");

    // nyc comes back: every name answers it, and leaving the state is logged once.
    nyc.set_status(200);
    for name in names {
        let got = wait_answer(&s, name, &["127.0.0.2"], Duration::from_secs(5));
        assert_eq!(got.ttl, Some(MIN_TTL), "{name}: ams still down");
        ask(&s, name);
    }
    assert_logged_once(&s, &names, &[UP_AGAIN, DOWN], "ams");
}

/// The all-down log lines, after `NAME.example.com. A: `.
const DOWN: &str = "every candidate data center is down";
const UP_AGAIN: &str = "a candidate data center is up again";

/// Waits until each of `events` is logged for every name of `names`, lets the health side
/// look several more times (every second), then asserts each was logged exactly once.
/// `quiet_dc` is as for [`sync_log`].
fn assert_logged_once(s: &Server, names: &[&str], events: &[&str], quiet_dc: &str) {
    let lines: Vec<String> = names
        .iter()
        .flat_map(|name| {
            events
                .iter()
                .map(move |e| format!("{name}.example.com. A: {e}"))
        })
        .collect();
    for line in &lines {
        wait_log(s, line);
    }
    std::thread::sleep(Duration::from_millis(2500));
    sync_log(s, quiet_dc);
    for line in &lines {
        assert_eq!(log_count(s, line), 1, "{line}\n{}", s.log());
    }
}

// ---------------------------------------------------------------------------------------
// 7. Startup

#[test]
fn the_first_answers_already_reflect_the_first_probe_round() {
    // Probes every 10 s: only the first round (run before the server listens) can have
    // happened when the first query is answered.
    let slow = |initial: &str, rise: u32, fall: u32| {
        format!(
            "interval = \"10s\"\ntimeout = \"2s\"\njitter = \"0s\"\nrise = {rise}\n\
             fall = {fall}\ninitial = \"{initial}\""
        )
    };
    let healthy1 = CheckServer::http("127.0.0.1");
    let healthy2 = CheckServer::http("127.0.0.2");
    let dead3 = closed_port("127.0.0.3");
    let dead4 = closed_port("127.0.0.4");
    let s = start(
        &format!(
            "{}{}{}{}{}{}{}{}{}{}{}{}{}{}",
            // initial "down" needs `rise` successes to come up, and the first result
            // counts as one: with rise = 1 the first round brings it up ...
            check("up1", "http", healthy1.port(), &slow("down", 1, 3), ""),
            // ... with rise = 2 it stays down until the second probe (by design, see
            // src/health/hysteresis.rs), 10 s later.
            check("up2", "http", healthy2.port(), &slow("down", 2, 3), ""),
            // initial "up" with fall = 1: one refused connection takes it down.
            check("dead1", "http", dead3, &slow("up", 2, 1), ""),
            // "first_result": the first result decides, whatever fall says.
            check("dead2", "tcp", dead4, &slow("first_result", 2, 3), ""),
            dc("up1", "\"127.0.0.1\"", Some("up1")),
            dc("up2", "\"127.0.0.2\"", Some("up2")),
            dc("dead1", "\"127.0.0.3\"", Some("dead1")),
            dc("dead2", "\"127.0.0.4\"", Some("dead2")),
            dc("backup", "\"127.0.0.99\"", None),
            gslb("a", &["up1", "backup"], "", ""),
            gslb("b", &["up2", "backup"], "", ""),
            gslb("c", &["dead1", "backup"], "", ""),
            gslb("d", &["dead2", "backup"], "", ""),
            "",
        ),
        "",
    );
    assert_eq!(ask(&s, "a"), Got::ok(&["127.0.0.1"], TTL));
    assert_eq!(ask(&s, "b"), Got::ok(&["127.0.0.99"], MIN_TTL));
    assert_eq!(ask(&s, "c"), Got::ok(&["127.0.0.99"], MIN_TTL));
    assert_eq!(ask(&s, "d"), Got::ok(&["127.0.0.99"], MIN_TTL));
    assert_eq!(
        (healthy1.hits(), healthy2.hits()),
        (1, 1),
        "one round so far"
    );

    let log = s.log();
    let round = log
        .find("health: first round done for 4 target(s)")
        .unwrap_or_else(|| panic!("no first-round line\n{log}"));
    let listening = log.find("listening on udp").expect("listening line");
    assert!(round < listening, "the round runs before listening\n{log}");
}

// ---------------------------------------------------------------------------------------
// 8. Overrides through the command line

/// ams (two addresses) before nyc; no checks.
fn override_zone() -> String {
    format!(
        "{}{}{}",
        dc("ams", "\"127.0.0.1\", \"127.0.0.3\"", None),
        dc("nyc", "\"127.0.0.2\"", None),
        gslb("cdn", &["ams", "nyc"], "", ""),
    )
}

#[test]
fn an_override_given_for_a_while_says_who_and_why_and_ends_by_itself() {
    let s = start(&override_zone(), "");
    wait_api(&s);
    let ams = ["127.0.0.1", "127.0.0.3"];
    let set = Instant::now();
    override_ok(
        &s,
        &["ams", "drain", "--for", "2s", "--reason", "router upgrade"],
    );
    wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(2));
    let listed = overrides_with_who_and_why(&s);
    assert!(
        listed.starts_with("data center ams of example.com.: drain (by ")
            && listed.contains(", expires ")
            && listed.ends_with(": \"router upgrade\")\n"),
        "{listed}"
    );
    let explained = api_explain(&s, "cdn");
    assert!(
        explained.contains("override set by ") && explained.contains("\"router upgrade\""),
        "{explained}"
    );
    wait_answer(&s, "cdn", &ams, Duration::from_secs(6));
    assert!(
        set.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        set.elapsed()
    );
    assert_eq!(overrides(&s), "no overrides\n");
    assert!(
        s.log()
            .contains("override of data center ams of example.com. expired")
    );
    let o = cli(&s, "override", &["ams", "down", "--for", "soon"]);
    assert_exit(&o, 2, "a bad --for");
    assert!(
        err(&o).contains("\"soon\" is not a duration"),
        "{}",
        err(&o)
    );
}

#[test]
fn overrides_through_the_cli_move_answers_at_once() {
    let s = start(&override_zone(), "");
    wait_api(&s);
    let ams = ["127.0.0.1", "127.0.0.3"];
    let nyc = ["127.0.0.2"];
    let limit = Duration::from_secs(2);
    assert_eq!(ask(&s, "cdn"), Got::ok(&ams, TTL));
    assert_eq!(overrides(&s), "no overrides\n");

    assert_eq!(
        override_ok(&s, &["ams", "down"]),
        "data center ams of example.com.: down\n"
    );
    let got = wait_answer(&s, "cdn", &nyc, limit);
    assert_eq!(got.ttl, Some(MIN_TTL));
    assert_eq!(overrides(&s), "data center ams of example.com.: down\n");

    assert_eq!(
        override_ok(&s, &["ams", "drain", "--zone", "example.com"]),
        "data center ams of example.com.: drain\n"
    );
    assert_eq!(ask(&s, "cdn"), Got::ok(&nyc, MIN_TTL));
    assert_eq!(overrides(&s), "data center ams of example.com.: drain\n");

    assert_eq!(
        override_ok(&s, &["ams", "clear"]),
        "data center ams of example.com.: cleared\n"
    );
    let got = wait_answer(&s, "cdn", &ams, limit);
    assert_eq!(got.ttl, Some(TTL));
    assert_eq!(overrides(&s), "no overrides\n");

    // One address of ams: the data center answers with the other.
    assert_eq!(
        override_ok(&s, &["127.0.0.3", "down"]),
        "address 127.0.0.3: down\n"
    );
    let got = wait_answer(&s, "cdn", &["127.0.0.1"], limit);
    assert_eq!(got.ttl, Some(MIN_TTL));
    override_ok(&s, &["ams", "drain"]);
    wait_answer(&s, "cdn", &nyc, limit);
    assert_eq!(
        overrides(&s),
        "data center ams of example.com.: drain\naddress 127.0.0.3: down\n"
    );
    override_ok(&s, &["ams", "clear"]);
    override_ok(&s, &["127.0.0.3", "clear"]);
    wait_answer(&s, "cdn", &ams, limit);
    assert_eq!(overrides(&s), "no overrides\n");

    // Mistakes: exit 2 with a message saying what is wrong, and nothing changes.
    for (args, message) in [
        (
            &["nowhere", "down"][..],
            "no data center \"nowhere\" in any zone",
        ),
        (
            &["192.0.2.77", "down"][..],
            "no data center has the address 192.0.2.77",
        ),
        (
            &["ams", "down", "--zone", "example.org"][..],
            "no data center \"ams\" in zone example.org.",
        ),
        (
            &["ams", "sideways"][..],
            "\"sideways\" is not a state: use up, down, drain or clear",
        ),
    ] {
        let o = cli(&s, "override", args);
        assert_exit(&o, 2, &format!("override {args:?}"));
        assert!(err(&o).contains(message), "{args:?}: {}", err(&o));
    }
    assert_eq!(overrides(&s), "no overrides\n");
    assert_eq!(ask(&s, "cdn"), Got::ok(&ams, TTL));
}

#[test]
fn overrides_persist_across_a_restart_on_the_same_state_dir() {
    let s = start(&override_zone(), "");
    wait_api(&s);
    override_ok(&s, &["ams", "down"]);
    override_ok(&s, &["127.0.0.3", "drain"]);
    wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(2));
    let file = state_dir(&s).join("overrides.json");
    let saved = std::fs::read_to_string(&file).expect("overrides.json");
    assert!(
        saved.contains("\"ams\"") && saved.contains("127.0.0.3"),
        "{saved}"
    );

    // Stopped: the commands fail as runtime errors (exit 1) and say why; the state dir
    // still names the old API address.
    let config = s.config_path();
    let dir = s.stop();
    let o = run_meridian(
        dir.path(),
        &["overrides", "--config", config.to_str().expect("utf-8")],
    );
    assert_exit(&o, 1, "overrides without a server");
    assert!(
        err(&o).contains("cannot reach the server's API"),
        "{}",
        err(&o)
    );

    let s = Server::start_on(dir);
    // The very first answer of the new process honours the saved overrides.
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.2"], MIN_TTL));
    wait_api(&s);
    assert_eq!(
        overrides(&s),
        "data center ams of example.com.: down\naddress 127.0.0.3: drain\n"
    );
    override_ok(&s, &["ams", "clear"]);
    wait_answer(&s, "cdn", &["127.0.0.1"], Duration::from_secs(2));

    // Once more through `restart`.
    let s = s.restart();
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1"], MIN_TTL));
    wait_api(&s);
    assert_eq!(overrides(&s), "address 127.0.0.3: drain\n");
    override_ok(&s, &["127.0.0.3", "clear"]);
    wait_answer(
        &s,
        "cdn",
        &["127.0.0.1", "127.0.0.3"],
        Duration::from_secs(2),
    );
    assert_eq!(overrides(&s), "no overrides\n");
}

#[test]
fn a_data_center_forced_up_is_answered_while_its_check_fails() {
    let ams = CheckServer::http("127.0.0.1");
    let s = start(
        &format!(
            "{}{}{}{}",
            check("ams", "http", ams.port(), FAST, ""),
            dc("ams", "\"127.0.0.1\"", Some("ams")),
            dc("nyc", "\"127.0.0.2\"", None),
            gslb("cdn", &["ams", "nyc"], "", ""),
        ),
        "",
    );
    wait_api(&s);
    ams.set_status(500);
    wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(5));

    override_ok(&s, &["ams", "up"]);
    wait_answer(&s, "cdn", &["127.0.0.1"], Duration::from_secs(2));
    let text = api_explain(&s, "cdn");
    assert!(text.contains("up (operator override)"), "{text}");
    // The probes go on and keep failing meanwhile.
    let hits = ams.hits();
    wait_for(&s, Duration::from_secs(5), "more probes", || {
        (ams.hits() >= hits + 2).then_some(())
    });
    assert!(ask(&s, "cdn").is(&["127.0.0.1"]));

    override_ok(&s, &["ams", "clear"]);
    wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(2));

    // The same for the address alone.
    override_ok(&s, &["127.0.0.1", "up"]);
    wait_answer(&s, "cdn", &["127.0.0.1"], Duration::from_secs(2));
    override_ok(&s, &["127.0.0.1", "clear"]);
    wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(2));
}

#[test]
fn fail_open_skips_a_drained_address_as_it_skips_a_drained_data_center() {
    // Reproduction: ams = 127.0.0.1 (no check), nyc = 127.0.0.2 whose check fails;
    // `meridian override 127.0.0.1 drain`. Every candidate is then down and fail open
    // answers "as if all were up" -- including 127.0.0.1, which the operator drained.
    // `meridian override ams drain` in the same situation skips ams and answers nyc
    // (src/serve/resolve.rs `fail_open` checks the data center's override only).
    let nyc = CheckServer::http("127.0.0.2");
    nyc.set_status(500);
    let timing = "interval = \"500ms\"\ntimeout = \"400ms\"\njitter = \"0s\"\nrise = 1\nfall = 1";
    let s = start(
        &format!(
            "{}{}{}{}",
            check("nyc", "http", nyc.port(), timing, ""),
            dc("ams", "\"127.0.0.1\"", None),
            dc("nyc", "\"127.0.0.2\"", Some("nyc")),
            gslb("cdn", &["ams", "nyc"], "", ""),
        ),
        "",
    );
    wait_api(&s);
    // ams is first and healthy: nyc is never looked at.
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1"], TTL));

    override_ok(&s, &["ams", "drain"]);
    let got = wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(2));
    assert_eq!(
        got.ttl,
        Some(MIN_TTL),
        "data center drained: fail open skips it"
    );
    override_ok(&s, &["ams", "clear"]);
    wait_answer(&s, "cdn", &["127.0.0.1"], Duration::from_secs(2));

    override_ok(&s, &["127.0.0.1", "drain"]);
    // Expected: the same as draining the data center, since ams has no other address.
    let (got, _) = wait_for(
        &s,
        Duration::from_secs(2),
        "fail open leaves the drained address 127.0.0.1 out",
        || {
            let got = ask(&s, "cdn");
            (!got.is(&["127.0.0.1"])).then_some(got)
        },
    );
    assert_eq!(got, Got::ok(&["127.0.0.2"], MIN_TTL));
}

// ---------------------------------------------------------------------------------------
// 9. The HTTP API

#[test]
fn api_rejects_missing_or_wrong_tokens_and_bad_requests() {
    use reqwest::Method;
    let s = start(&override_zone(), "");
    wait_api(&s);
    let token = s.state_file("api-token");
    let bearer = format!("Bearer {token}");
    let down = r#"{"target": "ams", "zone": null, "state": "down"}"#;

    for auth in [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {token}x")),
        Some(format!("Basic {token}")),
        Some(token.clone()),
    ] {
        let what = format!("authorization {auth:?}");
        let (status, _) = api(&s, Method::GET, "/v1/overrides", auth.as_deref(), None);
        assert_eq!(status, 401, "GET overrides, {what}");
        let (status, _) = api(
            &s,
            Method::PUT,
            "/v1/overrides",
            auth.as_deref(),
            Some(down),
        );
        assert_eq!(status, 401, "PUT overrides, {what}");
        // Explain only reads: it answers whatever the header says (see tests/it/status.rs
        // for `read_requires_token`).
        let path = "/v1/explain?name=cdn.example.com&type=A&client=127.0.0.1";
        let (status, _) = api(&s, Method::GET, path, auth.as_deref(), None);
        assert_eq!(status, 200, "GET explain, {what}");
    }
    // Nothing changed through the rejected requests.
    assert_eq!(ask(&s, "cdn"), Got::ok(&["127.0.0.1", "127.0.0.3"], TTL));
    let (status, body) = api(&s, Method::GET, "/v1/overrides", Some(&bearer), None);
    assert_eq!((status, body.as_str()), (200, "[]"));

    let (status, body) = put_override(
        &s,
        r#"{"target": "ams", "zone": null, "state": "sideways"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"sideways\" is not a state"), "{body}");
    let (status, body) = put_override(
        &s,
        r#"{"target": "nowhere", "zone": null, "state": "down"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no data center \"nowhere\""), "{body}");
    let (status, body) = put_override(&s, "{not json");
    assert!((400..500).contains(&status), "{status} {body}");
    let (status, _) = api(&s, Method::GET, "/v1/overrides", Some(&bearer), None);
    assert_eq!(status, 200);

    // The right token works.
    let (status, body) = put_override(&s, down);
    assert_eq!(
        (status, body.as_str()),
        (200, "data center ams of example.com.: down\n")
    );
    let (status, body) = api(&s, Method::GET, "/v1/overrides", Some(&bearer), None);
    assert_eq!(status, 200);
    let mut list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    // When it was set; the request said nothing of who or why.
    let at = list[0]
        .as_object_mut()
        .and_then(|o| o.remove("at"))
        .and_then(|v| v.as_u64());
    assert!(at.is_some_and(|t| t > 1_700_000_000), "{body}");
    assert_eq!(
        list,
        serde_json::json!([{"zone": "example.com.", "datacenter": "ams", "state": "down"}])
    );
    wait_answer(&s, "cdn", &["127.0.0.2"], Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------
// 10. Live explain

#[test]
fn explain_shows_the_down_data_center_with_its_reason_and_the_next_choice() {
    let ams = CheckServer::http("127.0.0.1");
    let nyc = CheckServer::http("127.0.0.2");
    let dcs = r#"
[datacenters.ams]
addresses = ["127.0.0.1"]
location = [52.3676, 4.9041]
check = "ams"
[datacenters.nyc]
addresses = ["127.0.0.2"]
location = [40.7128, -74.0060]
check = "nyc"
[datacenters.sin]
addresses = ["127.0.0.3"]
location = [1.3521, 103.8198]
[names.cdn.gslb]
datacenters = ["ams", "nyc", "sin"]
policy = "nearest"
ttl = "30s"
min_ttl = "5s"
"#;
    let s = start(
        &format!(
            "{}{}{dcs}",
            check("ams", "http", ams.port(), FAST, ""),
            check("nyc", "http", nyc.port(), FAST, ""),
        ),
        &city_geoip(),
    );
    wait_api(&s);
    // 127.0.1.0/24 is Amsterdam in the test database.
    let from_ams = || {
        Got::of(&udp_from(
            &s,
            "127.0.1.1",
            &query("cdn.example.com.", RecordType::A),
        ))
    };
    assert_eq!(from_ams(), Got::ok(&["127.0.0.1"], TTL));

    ams.set_status(500);
    wait_for(&s, Duration::from_secs(5), "Amsterdam moves to nyc", || {
        from_ams().is(&["127.0.0.2"]).then_some(())
    });
    assert_eq!(from_ams(), Got::ok(&["127.0.0.2"], MIN_TTL));

    let o = cli(&s, "explain", &["cdn.example.com", "--client", "127.0.1.1"]);
    assert_exit(&o, 0, "explain");
    let text = out(&o);
    assert!(
        !text.contains("not reachable"),
        "live, not from the files\n{text}"
    );
    assert!(
        text.contains("policy     nearest over ams, nyc, sin"),
        "{text}"
    );
    let rank1 = text
        .lines()
        .find(|l| l.starts_with("  1. "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        rank1.contains("ams") && rank1.ends_with("down: every address is down"),
        "{text}"
    );
    let rank2 = text
        .lines()
        .find(|l| l.starts_with("  2. "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(rank2.contains("nyc") && rank2.ends_with("up"), "{text}");
    let line = address_line(&text, "127.0.0.1");
    assert!(
        line.contains("down since")
            && line.contains("http GET /health")
            && line.contains("unexpected status 500"),
        "{text}"
    );
    assert!(
        address_line(&text, "127.0.0.2").contains("last probe ok"),
        "{text}"
    );
    assert!(
        text.contains("ttl        short (min_ttl)"),
        "the short TTL is explained\n{text}"
    );
    assert!(
        text.contains(&format!(
            "answer     No Error (aa)\n           cdn.example.com. {MIN_TTL} IN A 127.0.0.2\n"
        )),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// 11. Deduplication

#[test]
fn identical_checks_of_two_zones_are_probed_once() {
    let web = CheckServer::http("127.0.0.1");
    let timing = "interval = \"500ms\"\ntimeout = \"400ms\"\njitter = \"0s\"\nrise = 2\nfall = 3";
    // The same address, port and settings under different check names, in two zones and
    // three names.
    let com = zone_with(&format!(
        "{}{}{}{}",
        check("web", "http", web.port(), timing, ""),
        dc("ams", "\"127.0.0.1\"", Some("web")),
        gslb("cdn", &["ams"], "", ""),
        gslb("www", &["ams"], "", ""),
    ));
    let net = zone_with(&format!(
        "{}{}{}",
        check("probe", "http", web.port(), timing, ""),
        dc("edge", "\"127.0.0.1\"", Some("probe")),
        gslb("cdn", &["edge"], "", ""),
    ))
    .replace("example.com", "example.net");
    let s = Server::start(&[("example.com", &com), ("example.net", &net)], "");
    assert!(
        s.log().contains("health: first round done for 1 target(s)"),
        "{}",
        s.log()
    );

    let before = web.hits();
    let t0 = Instant::now();
    let window = Duration::from_secs(3);
    wait_for(&s, window * 2, "the counting window", || {
        (t0.elapsed() >= window).then_some(())
    });
    let hits = web.hits() - before;
    let per_interval = window.as_millis() as f64 / 500.0;
    eprintln!("health: {hits} requests in {window:?} at one per 500 ms");
    assert!(
        (hits as f64) >= per_interval - 2.0 && (hits as f64) <= per_interval + 2.0,
        "{hits} probes in {window:?}: expected about {per_interval} (one target), not twice that"
    );
}
