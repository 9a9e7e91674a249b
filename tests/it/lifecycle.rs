//! The server's life around its data: files changed on disk are picked up by the watcher;
//! SIGTERM and SIGINT stop it gracefully; systemd hears READY=1 and STOPPING=1.
//!
//! The watcher tests set `reload_check = "60s"`: the check by modification time cannot
//! explain a change served within seconds, only the watcher can.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::check_server::{CheckServer, Mode};
use crate::harness::*;

use crate::ops::ZONE;

/// Only the watcher can explain a reload within the tests' waits.
const SLOW_CHECK: &str = "reload_check = \"60s\"\n";

/// The longest a saved file may take to be served (the watcher aims at about a second).
const WATCH_LIMIT: Duration = Duration::from_secs(3);

fn zone_file(s: &Server) -> PathBuf {
    s.dir().join("zones").join("example.com.toml")
}

/// The A addresses answered for `name` (over UDP from 127.0.0.1).
fn a_of(s: &Server, name: &str) -> Vec<IpAddr> {
    answer_ips(&s.udp(&query(name, RecordType::A)))
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter()
        .map(|i| i.parse().expect("an address"))
        .collect()
}

/// Asks for `name` every 50 ms until it answers `want`, for at most [`WATCH_LIMIT`];
/// how long that took. Fails the test with the log otherwise.
fn served_within(s: &Server, name: &str, want: &[&str], what: &str) -> Duration {
    let want = ips(want);
    let start = Instant::now();
    loop {
        let got = a_of(s, name);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= WATCH_LIMIT,
            "{what}: {name} still answers {got:?}, not {want:?}, {WATCH_LIMIT:?} after the change\nlog:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `text` to `path` as editors and `mv` do: a new file renamed over the old one.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).expect("write the new file");
    std::fs::rename(&tmp, path).expect("rename it over the old one");
}

/// Waits until `needle` is in the log, at most `limit`.
fn wait_log(s: &Server, needle: &str, limit: Duration) {
    crate::weights::wait_for(s, limit, &format!("log line {needle:?}"), || {
        s.log().contains(needle).then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// The watcher

#[test]
fn the_watcher_serves_an_edited_zone_a_new_zone_file_and_a_config_change() {
    // `cdn` orders ams before sin for clients of unknown location (no GeoIP database);
    // a location override in the config file moves 127/8 to Singapore.
    let zone = format!(
        "{ZONE}[datacenters.ams]\naddresses = [\"192.0.2.10\"]\nlocation = [52.37, 4.90]\n\
         [datacenters.sin]\naddresses = [\"192.0.2.30\"]\nlocation = [1.35, 103.82]\n\
         [names.cdn.gslb]\ndatacenters = [\"ams\", \"sin\"]\npolicy = \"nearest\"\n"
    );
    let s = Server::start(&[("example.com", &zone)], SLOW_CHECK);
    assert_eq!(a_of(&s, "new.example.com."), Vec::<IpAddr>::new());
    assert_eq!(a_of(&s, "cdn.example.com."), ips(&["192.0.2.10"]));

    // Saved in place, as `echo >>` or an editor writing through does.
    std::fs::write(
        zone_file(&s),
        format!("{zone}[names.new]\na = \"192.0.2.2\"\n"),
    )
    .expect("edit the zone");
    let edited = served_within(&s, "new.example.com.", &["192.0.2.2"], "edited zone");

    // A zone file that was not there before.
    let net = ZONE.replace("example.com", "example.net");
    replace_file(&s.dir().join("zones").join("example.net.toml"), &net);
    let added = served_within(&s, "www.example.net.", &["192.0.2.1"], "new zone file");

    // The config file, replaced by rename.
    let config = std::fs::read_to_string(s.config_path()).expect("read config");
    replace_file(
        &s.config_path(),
        &format!(
            "{config}[[geoip.override]]\nnetwork = \"127.0.0.0/8\"\nlocation = [1.29, 103.85]\n"
        ),
    );
    let configured = served_within(&s, "cdn.example.com.", &["192.0.2.30"], "config change");
    eprintln!("served after: edit {edited:?}, new file {added:?}, config {configured:?}");
    assert!(
        s.log().contains("reloaded: now serving generation 4"),
        "one reload per change\n{}",
        s.log()
    );
    assert!(!s.log().contains("generation 5"), "{}", s.log());
}

#[test]
fn a_broken_edit_is_logged_with_file_and_line_and_the_old_data_keeps_serving() {
    let s = Server::start(&[("example.com", ZONE)], SLOW_CHECK);
    // ZONE has 12 lines: the bad address is on line 14.
    assert_eq!(ZONE.lines().count(), 12);
    std::fs::write(
        zone_file(&s),
        format!("{ZONE}[names.new]\na = \"192.0.2.300\"\n"),
    )
    .expect("break the zone");

    wait_log(&s, "reload rejected: 1 error", WATCH_LIMIT);
    let log = s.log();
    assert!(log.contains("example.com.toml:14:"), "{log}");
    assert!(log.contains("still serving generation 1"), "{log}");
    assert_eq!(a_of(&s, "www.example.com."), ips(&["192.0.2.1"]));
    assert_eq!(a_of(&s, "new.example.com."), Vec::<IpAddr>::new());

    // The watcher goes on after a failure: the fix is served.
    std::fs::write(
        zone_file(&s),
        format!("{ZONE}[names.new]\na = \"192.0.2.3\"\n"),
    )
    .expect("fix the zone");
    served_within(&s, "new.example.com.", &["192.0.2.3"], "fixed zone");
    assert_eq!(
        s.log().matches("reload rejected").count(),
        1,
        "the broken file was read once\n{}",
        s.log()
    );
}

#[test]
fn a_watcher_reload_keeps_the_health_of_unchanged_checks() {
    // ams is probed by a check that fails once (fall = 1) and then never answers, every
    // 60 s: after the first round ams is down, and a fresh state would be `up` (the
    // default initial state) until a probe that never ends.
    let check = CheckServer::http("127.0.9.1");
    check.set_status(503);
    let zone = format!(
        "{ZONE}[checks.web]\ntype = \"http\"\nport = {}\npath = \"/health\"\n\
         interval = \"60s\"\ntimeout = \"5s\"\njitter = \"0s\"\nrise = 1\nfall = 1\n\
         [datacenters.ams]\naddresses = [\"127.0.9.1\"]\nlocation = [0.0, 0.0]\ncheck = \"web\"\n\
         [datacenters.nyc]\naddresses = [\"127.0.9.2\"]\nlocation = [0.0, 0.0]\n\
         [names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\"]\npolicy = \"map\"\n\
         [names.cdn.gslb.map]\ndefault = [\"ams\", \"nyc\"]\n",
        check.port()
    );
    let s = Server::start(&[("example.com", &zone)], SLOW_CHECK);
    assert_eq!(
        a_of(&s, "cdn.example.com."),
        ips(&["127.0.9.2"]),
        "ams is down after the first round\n{}",
        s.log()
    );
    check.set_mode(Mode::Slow);
    let probes = check.hits();

    // An unrelated change.
    std::fs::write(
        zone_file(&s),
        format!("{zone}[names.other]\na = \"192.0.2.7\"\n"),
    )
    .expect("edit the zone");
    served_within(&s, "other.example.com.", &["192.0.2.7"], "unrelated edit");
    assert_eq!(
        a_of(&s, "cdn.example.com."),
        ips(&["127.0.9.2"]),
        "ams is still down right after the reload\n{}",
        s.log()
    );
    assert_eq!(check.hits(), probes, "no new probe explains it");
    assert!(s.log().contains("reloaded: now serving generation 2"));
}

// ---------------------------------------------------------------------------------------
// Shutdown

/// Connecting to `addr` is refused within `limit` (the listener is closed).
fn wait_refused(s: &Server, limit: Duration) {
    crate::weights::wait_for(s, limit, "new TCP connections refused", || {
        match TcpStream::connect_timeout(&s.addr, Duration::from_millis(500)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(()),
            _ => None,
        }
    });
}

#[test]
fn sigterm_answers_a_tcp_query_in_flight_refuses_new_ones_and_exits_0() {
    let mut s = Server::start(&[("example.com", ZONE)], "");
    let q = query("www.example.com.", RecordType::A);
    let bytes = frame(&encode(&q));
    let mut c = s.tcp_connect();
    // The length and one byte of the message: a query started, not finished.
    c.write_all(&bytes[..3]).expect("tcp write");
    std::thread::sleep(Duration::from_millis(200));

    let sent = Instant::now();
    s.signal("TERM");
    wait_log(&s, "shutting down", Duration::from_secs(5));
    wait_refused(&s, Duration::from_secs(2));

    c.write_all(&bytes[3..]).expect("the rest of the query");
    let reply = match read_frame(&mut c) {
        Ok(Some(m)) => parse(&m),
        other => panic!("no answer to the query in flight: {other:?}\n{}", s.log()),
    };
    assert_head(&q, &reply, Head::aa());
    assert_eq!(answer_ips(&reply), ips(&["192.0.2.1"]));
    assert_eq!(
        wait_closed(&mut c, Duration::from_secs(2)),
        Closed::Yes,
        "closed after the answer"
    );

    let (status, _) = s.wait_exit(Duration::from_secs(5));
    eprintln!("exited {:?} after SIGTERM", sent.elapsed());
    assert!(status.success(), "exit status {status}\n{}", s.log());
    wait_log(&s, "stopped", Duration::from_secs(2));
    assert!(s.log().contains("SIGTERM received"), "{}", s.log());
}

#[test]
fn sigint_with_an_idle_connection_open_stops_at_once() {
    let mut s = Server::start(&[("example.com", ZONE)], "");
    let mut idle = s.tcp_connect();
    s.assert_alive("example.com.");

    let sent = Instant::now();
    s.signal("INT");
    let (status, took) = s.wait_exit(Duration::from_secs(4));
    assert!(status.success(), "exit status {status}\n{}", s.log());
    // Well inside the 5 s grace and the 10 s idle timeout: nothing was waited for.
    assert!(took < Duration::from_secs(2), "took {took:?}\n{}", s.log());
    eprintln!("exited {:?} after SIGINT", sent.elapsed());
    assert_eq!(wait_closed(&mut idle, Duration::from_secs(1)), Closed::Yes);
    wait_log(&s, "stopped", Duration::from_secs(2));
    assert!(s.log().contains("SIGINT received"), "{}", s.log());
}

#[test]
fn a_query_never_finished_is_closed_after_the_grace_period() {
    // Without shutdown the started message could take 30 s.
    let mut s = Server::start(
        &[("example.com", ZONE)],
        "[tcp]\nmessage_timeout = \"30s\"\nidle_timeout = \"30s\"\n",
    );
    let mut stalled = s.tcp_connect();
    stalled.write_all(&[0, 40, 0]).expect("tcp write");
    std::thread::sleep(Duration::from_millis(200));

    s.signal("TERM");
    let (status, took) = s.wait_exit(Duration::from_secs(9));
    assert!(status.success(), "exit status {status}\n{}", s.log());
    assert!(
        took >= Duration::from_millis(4500),
        "the grace is 5 s: took {took:?}"
    );
    eprintln!("exited {took:?} after SIGTERM with a stalled query");
    assert_eq!(
        wait_closed(&mut stalled, Duration::from_secs(1)),
        Closed::Yes
    );
    wait_log(
        &s,
        "closing TCP connections still open",
        Duration::from_secs(2),
    );
}

// ---------------------------------------------------------------------------------------
// systemd

/// The next notification on `sock` that contains `state`, within `limit`; every one
/// received meanwhile is appended to `seen`.
fn notification(sock: &UnixDatagram, state: &str, limit: Duration, seen: &mut Vec<String>) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        sock.set_read_timeout(Some(
            limit
                .saturating_sub(start.elapsed())
                .max(Duration::from_millis(1)),
        ))
        .expect("timeout");
        let Ok(n) = sock.recv(&mut buf) else {
            break;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let found = text.lines().any(|l| l == state);
        seen.push(text);
        if found {
            return;
        }
    }
    panic!("no {state} within {limit:?}; received {seen:?}");
}

#[test]
fn systemd_hears_ready_once_dns_answers_and_stopping_at_shutdown() {
    // The first probe round is held for 2 s (the probe never answers): DNS is served only
    // after it, while the sockets are bound before. READY=1 sent too early would be heard
    // while queries still go unanswered.
    let check = CheckServer::http("127.0.9.3");
    check.set_mode(Mode::Slow);
    let zone = format!(
        "{ZONE}[checks.web]\ntype = \"http\"\nport = {}\npath = \"/health\"\n\
         interval = \"30s\"\ntimeout = \"10s\"\n\
         [datacenters.ams]\naddresses = [\"127.0.9.3\"]\nlocation = [0.0, 0.0]\ncheck = \"web\"\n\
         [names.cdn.gslb]\ndatacenters = [\"ams\"]\npolicy = \"map\"\n\
         [names.cdn.gslb.map]\ndefault = [\"ams\"]\n",
        check.port()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
    let listener = sock.try_clone().expect("clone the socket");

    // Hears READY=1, then asks the address it names at once, one try of 1 s.
    let heard = std::thread::spawn(move || {
        let mut seen = Vec::new();
        notification(&listener, "READY=1", Duration::from_secs(20), &mut seen);
        let ready = seen.last().expect("the READY notification").clone();
        let addr: SocketAddr = ready
            .lines()
            .find_map(|l| l.strip_prefix("STATUS=serving DNS on "))
            .unwrap_or_else(|| panic!("no address in {ready:?}"))
            .parse()
            .expect("an address");
        let q = encode(&query("www.example.com.", RecordType::A));
        let c = udp_socket_from("127.0.0.1");
        c.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        c.send_to(&q, addr).expect("udp send");
        let mut buf = [0u8; 1500];
        let answered = c
            .recv_from(&mut buf)
            .is_ok_and(|(n, _)| n >= 12 && buf[..2] == q[..2]);
        (ready, addr, answered)
    });

    let mut s = Server::start_with_env(
        &[("example.com", &zone)],
        "health_startup_timeout = \"2s\"\n",
        &[("NOTIFY_SOCKET", path.as_os_str())],
    );
    let (ready, addr, answered) = heard.join().expect("the notify listener");
    assert_eq!(addr, s.addr, "{ready:?}");
    assert!(
        answered,
        "READY=1 came before DNS answered: {ready:?}\n{}",
        s.log()
    );
    assert!(
        s.log().contains("without a result after 2s"),
        "the first round was held\n{}",
        s.log()
    );

    s.signal("TERM");
    let mut seen = Vec::new();
    notification(&sock, "STOPPING=1", Duration::from_secs(5), &mut seen);
    let (status, _) = s.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}\n{}", s.log());
}
