//! Operations through the API: `meridian reload` and `POST /v1/reload` against a running
//! `meridian serve`. The file watcher is off and the check slowed to an hour (`watch =
//! false`, `reload_check`), so every reload here is the one the test asked for.

use std::net::IpAddr;
use std::process::Output;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::harness::*;

/// A small zone: apex, ns1 and www.
pub(crate) const ZONE: &str = r#"origin = "example.com"
ttl = "1h"
[soa]
primary = "ns1"
contact = "hostmaster@example.com"
serial = 1
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
[names.www]
a = "192.0.2.1"
"#;

fn start() -> Server {
    Server::start(
        &[("example.com", ZONE)],
        "watch = false\nreload_check = \"1h\"\n",
    )
}

fn zone_file(s: &Server) -> std::path::PathBuf {
    s.dir().join("zones").join("example.com.toml")
}

/// The A addresses answered for `name`.
fn a_of(s: &Server, name: &str) -> Vec<IpAddr> {
    answer_ips(&s.udp(&query(name, RecordType::A)))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// `meridian reload --config <the server's config>` in the server's directory.
fn reload_cli(s: &Server) -> Output {
    let config = s.config_path();
    run_meridian(
        s.dir(),
        &["reload", "--config", config.to_str().expect("utf-8 path")],
    )
}

fn text(bytes: &[u8]) -> String {
    strip_ansi(&String::from_utf8_lossy(bytes))
}

fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: exit status\nstdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// `POST /v1/reload` with an optional `Authorization` value; status and body.
fn post_reload(s: &Server, authorization: Option<&str>) -> (u16, String) {
    s.api(
        reqwest::Method::POST,
        "/v1/reload",
        authorization,
        None,
        Duration::from_secs(10),
    )
}

#[test]
fn reload_serves_an_edited_zone_and_prints_the_new_generation() {
    let s = start();
    assert_eq!(a_of(&s, "new.example.com."), Vec::<IpAddr>::new());
    std::fs::write(
        zone_file(&s),
        format!("{ZONE}[names.new]\na = \"192.0.2.2\"\n"),
    )
    .expect("edit the zone");

    let o = reload_cli(&s);
    assert_exit(&o, 0, "meridian reload");
    assert_eq!(text(&o.stdout), "reloaded: now serving generation 2\n");
    assert_eq!(a_of(&s, "new.example.com."), vec![ip("192.0.2.2")]);
    assert!(s.log().contains("reloaded: now serving generation 2"));
}

#[test]
fn reload_of_a_broken_zone_prints_every_diagnostic_and_keeps_the_old_data() {
    let s = start();
    // ZONE has 12 lines: the bad address is on line 14, the unknown key on line 16.
    std::fs::write(
        zone_file(&s),
        format!("{ZONE}[names.new]\na = \"192.0.2.300\"\n[names.other]\nbogus = 1\n"),
    )
    .expect("break the zone");
    assert_eq!(ZONE.lines().count(), 12);

    let o = reload_cli(&s);
    assert_exit(&o, 2, "meridian reload of a broken zone");
    let err = text(&o.stderr);
    assert_eq!(text(&o.stdout), "", "nothing on stdout");
    assert!(err.contains("example.com.toml:14:"), "{err}");
    assert!(err.contains("example.com.toml:16:"), "{err}");
    assert!(
        err.contains("reload rejected: 2 errors") && err.contains("still serving generation 1"),
        "{err}"
    );
    // The same lines as `meridian check` prints for the same files.
    let config = s.config_path();
    let check = run_meridian(
        s.dir(),
        &["check", "--config", config.to_str().expect("utf-8 path")],
    );
    assert_exit(&check, 2, "meridian check");
    let check_err = text(&check.stderr);
    let diagnostics = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with("check failed") && !l.starts_with("reload rejected"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(diagnostics(&err), diagnostics(&check_err));

    assert_eq!(a_of(&s, "www.example.com."), vec![ip("192.0.2.1")]);
    assert_eq!(a_of(&s, "new.example.com."), Vec::<IpAddr>::new());

    // Fixed: the next reload is generation 2 (the rejected one took no number).
    std::fs::write(
        zone_file(&s),
        format!("{ZONE}[names.new]\na = \"192.0.2.3\"\n"),
    )
    .expect("fix the zone");
    let o = reload_cli(&s);
    assert_exit(&o, 0, "meridian reload after the fix");
    assert_eq!(text(&o.stdout), "reloaded: now serving generation 2\n");
    assert_eq!(a_of(&s, "new.example.com."), vec![ip("192.0.2.3")]);
}

#[test]
fn reload_through_the_api_needs_the_token() {
    let s = start();
    std::fs::write(
        zone_file(&s),
        format!("{ZONE}[names.new]\na = \"192.0.2.2\"\n"),
    )
    .expect("edit the zone");

    assert_eq!(post_reload(&s, None).0, 401);
    assert_eq!(post_reload(&s, Some("Bearer wrong")).0, 401);
    assert_eq!(
        a_of(&s, "new.example.com."),
        Vec::<IpAddr>::new(),
        "nothing reloaded"
    );
    assert!(!s.log().contains("reloaded"), "{}", s.log());

    let token = std::fs::read_to_string(s.dir().join(".meridian").join("api-token"))
        .expect("api-token in the state dir");
    let (status, body) = post_reload(&s, Some(&format!("Bearer {}", token.trim())));
    assert_eq!((status, body.as_str()), (200, r#"{"generation":2}"#));
    assert_eq!(a_of(&s, "new.example.com."), vec![ip("192.0.2.2")]);
}
