//! `GET /v1/status`, the status page `GET /`, and which API requests need the token.
//!
//! The zone: `a` (127.0.0.41, Amsterdam, weight 3) and `b` (127.0.0.42, New York, weight 1)
//! with HTTP checks against check servers the test runs; `c` (127.0.0.43, Singapore,
//! weight 2) without a check. `one` sends every client to a, `two` to b while it is up,
//! `three` to c. A site goes down because the test stops its check server, not by override.
//!
//! The page test runs a real headless Chromium against the server and reads the data
//! center rows from the DOM it dumps; it fails when `chromium` is not installed (CI installs
//! it, see `.ci/run`). Every process a test starts is stopped when the test ends, on failure
//! too: servers and check servers by their own drop, Chromium with its helper processes
//! by [`ProcessGroup`]'s.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::Method;
use serde_json::Value;

use crate::check_server::CheckServer;
use crate::harness::*;
use crate::weights::{dc_at, gslb_map, set_override, wait_api, wait_for, zone_with};

/// Probes every 300 ms; down after one failure, up after one success.
const FAST: &str = "interval = \"300ms\"\ntimeout = \"250ms\"\njitter = \"0s\"\nrise = 1\nfall = 1";

/// Longest wait for a probe to notice a stopped check server.
const DOWN_WITHIN: Duration = Duration::from_secs(10);

fn check(name: &str, port: u16) -> String {
    format!("[checks.{name}]\ntype = \"http\"\nport = {port}\npath = \"/health\"\n{FAST}\n")
}

/// The zone of the module docs, with a's and b's checks on `a_port` and `b_port`.
fn zone(a_port: u16, b_port: u16) -> String {
    let body = [
        check("ca", a_port),
        check("cb", b_port),
        dc_at(
            "a",
            "\"127.0.0.41\"",
            Some(3),
            (52.37, 4.90),
            "check = \"ca\"",
        ),
        dc_at(
            "b",
            "\"127.0.0.42\"",
            Some(1),
            (40.71, -74.01),
            "check = \"cb\"",
        ),
        dc_at("c", "\"127.0.0.43\"", Some(2), (1.35, 103.82), ""),
        gslb_map("one", &["a", "b"], ""),
        gslb_map("two", &["b", "a"], ""),
        gslb_map("three", &["c", "a"], ""),
    ]
    .concat();
    zone_with(&body)
}

fn start(a: &CheckServer, b: &CheckServer, config: &str) -> Server {
    let s = Server::start(&[("example.com", &zone(a.port(), b.port()))], config);
    wait_api(&s);
    s
}

/// One API request within 5 s; status and body.
fn api(s: &Server, method: Method, path: &str, auth: Option<&str>) -> (u16, String) {
    s.api(method, path, auth, None, Duration::from_secs(5))
}

/// `GET /v1/status` without a token, parsed.
fn status(s: &Server) -> Value {
    let (code, body) = api(s, Method::GET, "/v1/status", None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The entry of data center `dc` under GSLB name `name` (`one`) of example.com.
fn dc_of<'v>(st: &'v Value, name: &str, dc: &str) -> &'v Value {
    let fqdn = format!("{name}.example.com.");
    st["zones"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|z| z["zone"] == "example.com.")
        .flat_map(|z| z["names"].as_array().into_iter().flatten())
        .filter(|n| n["name"] == fqdn.as_str())
        .flat_map(|n| n["datacenters"].as_array().into_iter().flatten())
        .find(|d| d["id"] == dc)
        .unwrap_or_else(|| panic!("no data center {dc} under {fqdn} in\n{st:#}"))
}

/// Waits (at most [`DOWN_WITHIN`]) until `/v1/status` says `dc` of `name` has `health`.
fn wait_health(s: &Server, name: &str, dc: &str, health: &str) -> Value {
    wait_for(s, DOWN_WITHIN, &format!("{dc} of {name} {health}"), || {
        let st = status(s);
        (dc_of(&st, name, dc)["health"] == health).then_some(st)
    })
}

fn ask_a(s: &Server, name: &str) -> Vec<std::net::IpAddr> {
    answer_ips(&s.udp(&query(&format!("{name}.example.com."), RecordType::A)))
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().expect("an address")
}

// ---------------------------------------------------------------------------------------
// (a) The JSON after known traffic

#[test]
fn status_shows_sites_health_with_reasons_weights_and_answer_counts() {
    let a = CheckServer::http("127.0.0.41");
    let mut b = CheckServer::http("127.0.0.42");
    let s = start(&a, &b, "");
    for _ in 0..5 {
        assert_eq!(ask_a(&s, "one"), [ip("127.0.0.41")]);
    }
    for _ in 0..3 {
        assert_eq!(ask_a(&s, "two"), [ip("127.0.0.42")]);
    }
    set_override(&s, "c", "drain");

    let st = status(&s);
    assert_eq!(st["generation"], 1);
    let names: Vec<&str> = st["zones"][0]["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        ["one.example.com.", "three.example.com.", "two.example.com."]
    );

    let one_a = dc_of(&st, "one", "a");
    assert_eq!(
        (&one_a["lat"], &one_a["lon"]),
        (&Value::from(52.37), &Value::from(4.90))
    );
    assert_eq!(
        (&one_a["health"], &one_a["reason"]),
        (&"up".into(), &"up".into())
    );
    assert_eq!(one_a["override"], Value::Null);
    assert_eq!(
        (&one_a["weight"], &one_a["effective_weight"]),
        (&3.into(), &3.into())
    );
    assert_eq!(
        (&one_a["answers"], &one_a["share"]),
        (&5.into(), &1.0.into())
    );
    let addr = &one_a["addresses"][0];
    assert_eq!(addr["address"], "127.0.0.41");
    assert_eq!(addr["health"], "up");
    assert_eq!(addr["probe"]["check"], "http GET /health");
    assert_eq!(addr["probe"]["up"], true);
    assert_eq!(addr["probe"]["last_error"], Value::Null);
    let reason = addr["reason"].as_str().expect("reason");
    assert!(reason.contains("last probe ok"), "{reason}");

    let one_b = dc_of(&st, "one", "b");
    assert_eq!(
        (&one_b["answers"], &one_b["share"]),
        (&0.into(), &0.0.into())
    );
    assert_eq!(
        (&one_b["weight"], &one_b["effective_weight"]),
        (&1.into(), &1.into())
    );
    let two_b = dc_of(&st, "two", "b");
    assert_eq!(
        (&two_b["answers"], &two_b["share"]),
        (&3.into(), &1.0.into())
    );
    assert_eq!(st["zones"][0]["names"][2]["answers"], 3);

    // Drained by override: down, says why, no weight in effect.
    let c = dc_of(&st, "three", "c");
    assert_eq!(
        (&c["health"], &c["reason"], &c["override"]),
        (
            &"down".into(),
            &"drain (operator override)".into(),
            &"drain".into()
        )
    );
    assert_eq!(
        (&c["weight"], &c["effective_weight"]),
        (&2.into(), &0.into())
    );
    assert_eq!(c["addresses"][0]["probe"], Value::Null, "c has no check");
    // When it was set (the API request said nothing of who or why).
    let note = c["override_note"].as_str().unwrap_or_default();
    assert!(
        note.starts_with("at 20") && note.ends_with(" UTC"),
        "{note}"
    );
    assert_eq!(one_b["override_note"], Value::Null);

    // b's check server stops: b goes down, with the probe's error as the reason.
    b.close();
    let st = wait_health(&s, "two", "b", "down");
    let two_b = dc_of(&st, "two", "b");
    assert_eq!(two_b["reason"], "down: every address is down");
    assert_eq!(two_b["override"], Value::Null);
    let addr = &two_b["addresses"][0];
    assert_eq!(addr["health"], "down");
    let error = addr["probe"]["last_error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "no probe error in {addr:#}");
    let reason = addr["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("down since") && reason.contains("last probe failed"),
        "{reason}"
    );
    assert!(reason.contains(error), "{reason} / {error}");
    // The weight stays: health, not the operator, took it out.
    assert_eq!(two_b["effective_weight"], 1);

    // `two` now fails over to a; the counts follow.
    for _ in 0..2 {
        assert_eq!(ask_a(&s, "two"), [ip("127.0.0.41")]);
    }
    let st = status(&s);
    let (two_a, two_b) = (dc_of(&st, "two", "a"), dc_of(&st, "two", "b"));
    assert_eq!(
        (&two_b["answers"], &two_b["share"]),
        (&3.into(), &0.6.into())
    );
    assert_eq!(
        (&two_a["answers"], &two_a["share"]),
        (&2.into(), &0.4.into())
    );
    assert_eq!(dc_of(&st, "one", "a")["answers"], 5);
}

// ---------------------------------------------------------------------------------------
// (b) Which requests need the token

#[test]
fn reads_answer_without_a_token_and_changes_need_it() {
    let a = CheckServer::http("127.0.0.41");
    let b = CheckServer::http("127.0.0.42");
    let s = start(&a, &b, "");
    let bearer = s.bearer();
    let explain = "/v1/explain?name=one.example.com&type=A&client=127.0.0.1";
    for path in [
        "/",
        "/v1/status",
        "/metrics",
        "/healthz",
        "/readyz",
        explain,
    ] {
        let (code, body) = api(&s, Method::GET, path, None);
        assert_eq!(code, 200, "GET {path} without a token: {body}");
    }
    let (_, page) = api(&s, Method::GET, "/", None);
    assert!(
        page.starts_with("<!doctype html>") && page.contains("fetch(\"v1/status\""),
        "{page}"
    );

    // Changes and the override list: 401 without the token or with a wrong one, and
    // nothing changes.
    let down = r#"{"target": "a", "zone": "example.com", "state": "down"}"#;
    for auth in [None, Some("Bearer wrong-token-wrong-token")] {
        let put = s.api(
            Method::PUT,
            "/v1/overrides",
            auth,
            Some(down),
            Duration::from_secs(5),
        );
        assert_eq!(put.0, 401, "PUT overrides with {auth:?}: {}", put.1);
        // The token is checked before the body.
        let bad = s.api(
            Method::PUT,
            "/v1/overrides",
            auth,
            Some("{not json"),
            Duration::from_secs(5),
        );
        assert_eq!(bad.0, 401, "PUT bad JSON with {auth:?}: {}", bad.1);
        assert_eq!(api(&s, Method::GET, "/v1/overrides", auth).0, 401);
        assert_eq!(api(&s, Method::POST, "/v1/reload", auth).0, 401);
    }
    assert_eq!(
        api(&s, Method::GET, "/v1/overrides", Some(&bearer)),
        (200, "[]".to_owned())
    );
    let st = status(&s);
    assert_eq!(dc_of(&st, "one", "a")["override"], Value::Null);
    assert_eq!(st["generation"], 1, "no reload happened");
    assert_eq!(ask_a(&s, "one"), [ip("127.0.0.41")]);

    for path in ["/v1/nope", "/v1/status/extra", "/index.html"] {
        assert_eq!(api(&s, Method::GET, path, None).0, 404, "GET {path}");
    }

    // Malformed explain parameters: 400 with the reason.
    for (query, reason) in [
        ("name=one.example.com&type=A", "missing field `client`"),
        (
            "name=one.example.com&type=A&client=nope",
            "\"nope\" is not an address or address/prefix",
        ),
        (
            "name=one.example.com&type=BOGUS&client=127.0.0.1",
            "\"BOGUS\" is not a record type",
        ),
    ] {
        let (code, body) = api(&s, Method::GET, &format!("/v1/explain?{query}"), None);
        assert_eq!(code, 400, "{query}: {body}");
        assert!(body.contains(reason), "{query}: {body}");
    }
}

#[test]
fn read_requires_token_guards_page_status_metrics_and_explain() {
    let a = CheckServer::http("127.0.0.41");
    let b = CheckServer::http("127.0.0.42");
    let s = start(
        &a,
        &b,
        "[api]\nlisten = \"127.0.0.1:0\"\nread_requires_token = true\n",
    );
    let bearer = s.bearer();
    let explain = "/v1/explain?name=one.example.com&type=A&client=127.0.0.1";
    for path in ["/", "/v1/status", "/metrics", explain] {
        let (code, body) = api(&s, Method::GET, path, None);
        assert_eq!(code, 401, "GET {path} without a token: {body}");
        let (code, _) = api(
            &s,
            Method::GET,
            path,
            Some("Bearer wrong-token-wrong-token"),
        );
        assert_eq!(code, 401, "GET {path} with a wrong token");
        let (code, body) = api(&s, Method::GET, path, Some(&bearer));
        assert_eq!(code, 200, "GET {path} with the token: {body}");
    }
    // Bad parameters without the token: still 401, not the parameter error.
    let (code, _) = api(&s, Method::GET, "/v1/explain?name=x", None);
    assert_eq!(code, 401);
    // Load balancers' endpoints stay open.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(api(&s, Method::GET, path, None).0, 200, "GET {path}");
    }
}

// ---------------------------------------------------------------------------------------
// (c) The page in a real browser

/// Longest one Chromium run may take.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// A child in its own process group (Chromium: the browser and the helper processes it
/// starts). Dropping it kills the whole group and reaps the child, so a failed or hung
/// test leaves nothing running.
struct ProcessGroup {
    child: Child,
}

impl ProcessGroup {
    /// Starts `cmd` as the leader of a new process group.
    fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        let child = cmd.process_group(0).spawn()?;
        Ok(Self { child })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // The leader is not reaped before this, so the group id is still its own: the kill
        // cannot reach anyone else's processes. (`kill -KILL -PGID`: the form both dash's
        // and bash's built-in `kill` accept.)
        let group = format!("kill -KILL -{} 2>/dev/null", self.child.id());
        let _ = Command::new("sh")
            .args(["-c", &group])
            .stdin(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes of group `pgid` still running (zombies do not count), from `/proc`.
fn running_in_group(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
        let state = fields.next()?;
        let pgrp: u32 = fields.nth(1)?.parse().ok()?;
        (pgrp == pgid && state != "Z").then_some(pid)
    })
    .collect()
}

#[test]
fn a_dropped_process_group_leaves_nothing_running() {
    let group = ProcessGroup::spawn(
        Command::new("sh")
            .args(["-c", "sleep 300 & sleep 300 & wait"])
            .stdin(Stdio::null()),
    )
    .expect("spawn sh");
    let pgid = group.child.id();
    let started = std::time::Instant::now();
    while running_in_group(pgid).len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "sh and its two sleeps never ran: {:?}",
            running_in_group(pgid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(group);
    let started = std::time::Instant::now();
    while !running_in_group(pgid).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running after the drop: {:?}",
            running_in_group(pgid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Loads `url` in headless Chromium (5 s of virtual time for the page's scripts and
/// fetches) with a fresh profile and returns the DOM it dumps. Fails the test when
/// Chromium is missing, exits without a DOM, or takes longer than [`CHROMIUM_TIMEOUT`].
pub(crate) fn dump_dom(url: &str) -> String {
    let profile_dir = tempfile::tempdir().expect("chromium profile dir");
    let profile = profile_dir.path();
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--virtual-time-budget=5000",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(url)
    .env("HOME", profile)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut browser = ProcessGroup::spawn(&mut cmd).unwrap_or_else(|e| {
        panic!(
            "cannot run chromium: {e}; this test needs it: \
             apt-get install -y --no-install-recommends chromium (CI installs it)"
        )
    });
    let mut out = browser.child.stdout.take().expect("stdout");
    let mut err = browser.child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    });
    // Stdout closes when Chromium has written the DOM and exits.
    let dom = rx.recv_timeout(CHROMIUM_TIMEOUT);
    // Stops whatever is left (on time or not); stderr then closes too.
    drop(browser);
    let stderr = err_t.join().unwrap_or_default();
    let dom = match dom {
        Ok(d) => String::from_utf8_lossy(&d).into_owned(),
        Err(_) => panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}\nstderr:\n{stderr}"),
    };
    assert!(
        dom.contains("</html>"),
        "chromium dumped no page\nstdout:\n{dom}\nstderr:\n{stderr}"
    );
    dom
}

/// A data center row of the page: its GSLB name, id, `data-health` and the text of its
/// health cell.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    name: String,
    dc: String,
    health: String,
    shown: String,
}

/// The value of attribute `name` in the start tag `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_owned())
}

/// Every `<tr>` with `data-dc` in the dumped DOM.
fn rows(dom: &str) -> Vec<Row> {
    dom.match_indices("<tr ")
        .filter_map(|(at, _)| {
            let rest = &dom[at..];
            let tag = &rest[..rest.find('>')?];
            let dc = attr(tag, "data-dc")?;
            let cell = rest.find("<td class=\"health\">")? + "<td class=\"health\">".len();
            let shown = rest[cell..cell + rest[cell..].find('<')?].to_owned();
            Some(Row {
                name: attr(tag, "data-name")?,
                dc,
                health: attr(tag, "data-health")?,
                shown,
            })
        })
        .collect()
}

fn row(name: &str, dc: &str, health: &str) -> Row {
    Row {
        name: format!("{name}.example.com."),
        dc: dc.to_owned(),
        health: health.to_owned(),
        shown: health.to_owned(),
    }
}

#[test]
fn the_page_in_headless_chromium_shows_each_site_and_a_stopped_one_as_down() {
    let a = CheckServer::http("127.0.0.41");
    let mut b = CheckServer::http("127.0.0.42");
    let s = start(&a, &b, "");
    let url = format!("http://{}/", s.api_addr());
    for _ in 0..4 {
        ask_a(&s, "two");
    }

    let dom = dump_dom(&url);
    let got = rows(&dom);
    for (name, dcs) in [
        ("one", ["a", "b"]),
        ("two", ["b", "a"]),
        ("three", ["c", "a"]),
    ] {
        for dc in dcs {
            assert!(
                got.contains(&row(name, dc, "up")),
                "{dc} of {name} up: rows {got:#?}"
            );
        }
    }
    assert!(dom.contains("Zone example.com."), "{dom}");
    // A single node: no fleet section.
    assert!(
        dom.contains("<section id=\"fleet\" class=\"fleet\" hidden"),
        "{dom}"
    );
    // Where traffic went: two's 4 answers all went to b.
    assert!(dom.contains("100.0%"), "{dom}");

    b.close();
    wait_health(&s, "two", "b", "down");
    let dom = dump_dom(&url);
    let got = rows(&dom);
    for name in ["one", "two"] {
        assert!(
            got.contains(&row(name, "b", "down")),
            "b of {name} down: rows {got:#?}"
        );
        assert!(got.contains(&row(name, "a", "up")), "rows {got:#?}");
    }
    assert!(dom.contains("down: every address is down"), "{dom}");
    assert!(dom.contains("last probe failed"), "{dom}");
}
