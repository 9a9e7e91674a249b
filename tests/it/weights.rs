//! Weighted spreading over real UDP sockets: data center and address weights with
//! `select = "rotate"` (smooth weighted round-robin per UDP thread) and `"sticky"`
//! (weighted rendezvous hashing of the client network), draining by `weight = 0` and by
//! override, `spread` and `band`, `spill` after a real site failure, the ECS scope of
//! sticky answers, and `meridian check` diagnostics for bad weight settings.
//!
//! Every data center answers with addresses of its own, so an answer names the data
//! center chosen. Shares are counted over consecutive answers on one socket; with
//! `udp_threads = 1` one rotation state serves them all, so the shares are exact per
//! period (asserted within 1 %, and every window of one period holds the weights).
//! Every wait is bounded; every server and check server stops when its test ends.

use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::check_server::{CheckServer, Mode};
use crate::harness::*;

// ---------------------------------------------------------------------------------------
// Zones

/// example.com with SOA, NS, and `body` (data centers, checks, names); `serial` lets a
/// test rewrite the file for a reload.
pub(crate) fn zone_with_serial(body: &str, serial: u32) -> String {
    format!(
        r#"origin = "example.com"
ttl = "1h"
[soa]
primary = "ns1"
contact = "hostmaster@example.com"
serial = {serial}
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

pub(crate) fn zone_with(body: &str) -> String {
    zone_with_serial(body, 1)
}

/// `[datacenters.ID]` with `addresses` (TOML list items), `weight` (none: the default)
/// and a location (latitude, longitude).
pub(crate) fn dc_at(
    id: &str,
    addresses: &str,
    weight: Option<u32>,
    loc: (f64, f64),
    extra: &str,
) -> String {
    let weight = weight.map_or(String::new(), |w| format!("weight = {w}\n"));
    format!(
        "[datacenters.{id}]\naddresses = [{addresses}]\nlocation = [{}, {}]\n{weight}{extra}\n",
        loc.0, loc.1
    )
}

/// `[datacenters.ID]` with one address and a weight, located at 0, 0.
pub(crate) fn dc(id: &str, address: &str, weight: u32) -> String {
    dc_at(id, &format!("\"{address}\""), Some(weight), (0.0, 0.0), "")
}

fn quoted(dcs: &[&str]) -> String {
    let list: Vec<String> = dcs.iter().map(|d| format!("\"{d}\"")).collect();
    list.join(", ")
}

/// A GSLB name over `dcs`, every client's list in that order (map policy, default list
/// only), with `extra` keys (select, spread, spill, ...).
pub(crate) fn gslb_map(name: &str, dcs: &[&str], extra: &str) -> String {
    let list = quoted(dcs);
    format!(
        "[names.{name}.gslb]\ndatacenters = [{list}]\npolicy = \"map\"\nttl = \"30s\"\n\
         {extra}\n[names.{name}.gslb.map]\ndefault = [{list}]\n"
    )
}

/// A GSLB name over `dcs` ordered by distance from the client, with `extra` keys.
fn gslb_nearest(name: &str, dcs: &[&str], extra: &str) -> String {
    format!(
        "[names.{name}.gslb]\ndatacenters = [{}]\npolicy = \"nearest\"\nttl = \"30s\"\n{extra}\n",
        quoted(dcs)
    )
}

/// `[geoip]` with the checked-in test City database.
fn city_geoip() -> String {
    let db = repo_dir().join("geoip").join("test-city.mmdb");
    format!("[geoip]\ndatabases = [{:?}]\n", db.display().to_string())
}

/// One UDP thread: one rotation state answers every query of the test.
pub(crate) const ONE_THREAD: &str = "udp_threads = 1\n";

pub(crate) fn start(body: &str, config: &str) -> Server {
    Server::start(&[("example.com", &zone_with(body))], config)
}

// ---------------------------------------------------------------------------------------
// Asking

/// A client socket on `src` (127/8) that sends many queries.
pub(crate) struct Client<'s> {
    server: &'s Server,
    sock: UdpSocket,
    src: String,
}

impl<'s> Client<'s> {
    pub(crate) fn new(server: &'s Server, src: &str) -> Self {
        Client {
            server,
            sock: udp_socket_from(src),
            src: src.to_owned(),
        }
    }

    pub(crate) fn send(&self, q: &Message) -> Message {
        match self.server.exchange_udp(&self.sock, &encode(q), UDP_TRIES) {
            Some((reply, _)) => parse(&reply),
            None => panic!(
                "no UDP answer to {q} from {}\nlog:\n{}",
                self.src,
                self.server.log()
            ),
        }
    }

    /// The addresses `NAME.example.com. A` answers (sorted), optionally with ECS.
    fn ask(&self, name: &str, ecs: Option<(&str, u8)>) -> Vec<IpAddr> {
        addresses(&self.send(&a_query(name, ecs)))
    }

    /// The one address `NAME` answers (one data center with one address).
    pub(crate) fn one(&self, name: &str, ecs: Option<(&str, u8)>) -> IpAddr {
        let got = self.ask(name, ecs);
        assert_eq!(got.len(), 1, "{name} from {} {ecs:?}: {got:?}", self.src);
        got[0]
    }

    /// `n` consecutive answers of `name`, one address each.
    pub(crate) fn run(&self, name: &str, n: usize) -> Vec<IpAddr> {
        (0..n).map(|_| self.one(name, None)).collect()
    }
}

pub(crate) fn a_query(name: &str, ecs: Option<(&str, u8)>) -> Message {
    let q = query(&format!("{name}.example.com."), RecordType::A);
    match ecs {
        Some((addr, prefix)) => with_ecs(q, addr, prefix),
        None => q,
    }
}

/// The A/AAAA addresses of a NOERROR answer, sorted.
pub(crate) fn addresses(r: &Message) -> Vec<IpAddr> {
    assert_eq!(
        r.metadata.response_code,
        hickory_proto::op::ResponseCode::NoError,
        "{r}"
    );
    answer_ips(r)
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// How often each address occurs in `answers`.
pub(crate) fn counts(answers: &[IpAddr]) -> BTreeMap<IpAddr, usize> {
    let mut m = BTreeMap::new();
    for a in answers {
        *m.entry(*a).or_insert(0) += 1;
    }
    m
}

/// Asserts each address of `want` (address, weight) gets its weight share of `answers`
/// within `tolerance` (a fraction), and nothing else is answered. Prints the shares.
pub(crate) fn assert_shares(what: &str, answers: &[IpAddr], want: &[(&str, u32)], tolerance: f64) {
    let got = counts(answers);
    let n = answers.len() as f64;
    let total: u32 = want.iter().map(|w| w.1).sum();
    let mut line = format!("weights: {what}: {} answers:", answers.len());
    for (a, w) in want {
        let share = got.get(&ip(a)).copied().unwrap_or(0) as f64 / n;
        line.push_str(&format!(
            " {a} {:.2}% (want {:.2}%)",
            share * 100.0,
            f64::from(*w) * 100.0 / f64::from(total)
        ));
    }
    eprintln!("{line}");
    for a in got.keys() {
        assert!(
            want.iter().any(|w| ip(w.0) == *a),
            "{what}: {a} answered {} times, expected only {want:?}\n{line}",
            got[a]
        );
    }
    for (a, w) in want {
        let share = got.get(&ip(a)).copied().unwrap_or(0) as f64 / n;
        let expected = f64::from(*w) / f64::from(total);
        assert!(
            (share - expected).abs() <= tolerance,
            "{what}: {a} has {:.2}% of the answers, expected {:.2}% ± {:.1}\n{line}",
            share * 100.0,
            expected * 100.0,
            tolerance * 100.0
        );
    }
}

/// Asserts every window of `period` consecutive answers holds the weights exactly: the
/// rotation interleaves (no bursts) and each period is exact.
fn assert_every_window_exact(what: &str, answers: &[IpAddr], want: &[(&str, u32)]) {
    let period: u32 = want.iter().map(|w| w.1).sum();
    let period = period as usize;
    for (start, w) in answers.windows(period).enumerate() {
        let got = counts(w);
        for (a, weight) in want {
            assert_eq!(
                got.get(&ip(a)).copied().unwrap_or(0),
                *weight as usize,
                "{what}: answers {start}..{} hold {got:?}, expected {want:?}",
                start + period
            );
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub(crate) fn wait_for<T>(
    s: &Server,
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() <= limit,
            "not within {limit:?}: {what}\nlog:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// API

pub(crate) fn wait_api(s: &Server) {
    wait_for(s, START_TIMEOUT, "the API listens", || {
        s.log().contains("listening on api http://").then_some(())
    });
}

/// `PUT /v1/overrides` for data center `target` of example.com with `state`.
pub(crate) fn set_override(s: &Server, target: &str, state: &str) {
    let body = format!(r#"{{"target": "{target}", "zone": "example.com", "state": "{state}"}}"#);
    let (status, text) = s.api(
        reqwest::Method::PUT,
        "/v1/overrides",
        Some(&s.bearer()),
        Some(&body),
        Duration::from_secs(5),
    );
    assert_eq!(status, 200, "override {target} {state}: {text}");
}

// ---------------------------------------------------------------------------------------
// 1. Rotation shares

/// `two`: 3:1 over two data centers (spread 2); `three`: 5:1:1 (spread 3); `addr`: one
/// data center whose addresses weigh 3:2:1, one address per answer; `pair`: addresses
/// 2:1:1, two per answer.
fn rotation_zone() -> String {
    [
        dc("a3", "192.0.2.1", 3),
        dc("b1", "192.0.2.2", 1),
        dc("c5", "192.0.2.3", 5),
        dc("d1", "192.0.2.4", 1),
        dc("e1", "192.0.2.5", 1),
        dc_at(
            "f",
            "{ address = \"192.0.2.61\", weight = 3 }, { address = \"192.0.2.62\", weight = 2 }, \
             \"192.0.2.63\"",
            None,
            (0.0, 0.0),
            "",
        ),
        dc_at(
            "g",
            "{ address = \"192.0.2.71\", weight = 2 }, \"192.0.2.72\", \"192.0.2.73\"",
            None,
            (0.0, 0.0),
            "",
        ),
        gslb_map("two", &["a3", "b1"], "spread = 2"),
        gslb_map("three", &["c5", "d1", "e1"], "spread = 3"),
        gslb_map("addr", &["f"], "max_addresses = 1"),
        gslb_map("pair", &["g"], "max_addresses = 2"),
    ]
    .concat()
}

const TWO: [(&str, u32); 2] = [("192.0.2.1", 3), ("192.0.2.2", 1)];
const THREE: [(&str, u32); 3] = [("192.0.2.3", 5), ("192.0.2.4", 1), ("192.0.2.5", 1)];
const ADDR: [(&str, u32); 3] = [("192.0.2.61", 3), ("192.0.2.62", 2), ("192.0.2.63", 1)];

#[test]
fn rotation_holds_data_center_and_address_weights_on_one_thread() {
    let s = start(&rotation_zone(), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    let t0 = Instant::now();
    for (name, want) in [
        ("two", &TWO[..]),
        ("three", &THREE[..]),
        ("addr", &ADDR[..]),
    ] {
        let answers = c.run(name, 1000);
        assert_shares(name, &answers, want, 0.01);
        assert_every_window_exact(name, &answers, want);
    }
    // 5:1:1 interleaves as nginx does (a a b a c a a), never five in a row.
    let answers = c.run("three", 70);
    let longest = answers
        .chunk_by(|x, y| x == y)
        .map(<[IpAddr]>::len)
        .max()
        .unwrap_or(0);
    assert!(longest <= 4, "a burst of {longest}: {answers:?}");

    // Two distinct addresses per answer, chosen by weight: every address takes part, the
    // heavy one most.
    let mut seen: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for _ in 0..400 {
        let got = c.ask("pair", None);
        assert_eq!(got.len(), 2, "two distinct addresses: {got:?}");
        assert_ne!(got[0], got[1]);
        for a in got {
            *seen.entry(a).or_insert(0) += 1;
        }
    }
    eprintln!("weights: pair (2:1:1, max_addresses 2) over 400 answers: {seen:?}");
    let heavy = seen.get(&ip("192.0.2.71")).copied().unwrap_or(0);
    for light in ["192.0.2.72", "192.0.2.73"] {
        let n = seen.get(&ip(light)).copied().unwrap_or(0);
        assert!(n > 0 && n < heavy, "{light}: {n}, heavy {heavy}: {seen:?}");
    }
    eprintln!("weights: rotation on one thread took {:?}", t0.elapsed());
}

#[test]
fn rotation_over_several_threads_stays_within_two_percent() {
    let s = start(&rotation_zone(), "udp_threads = 4\n");
    for (name, want) in [
        ("two", &TWO[..]),
        ("three", &THREE[..]),
        ("addr", &ADDR[..]),
    ] {
        // Four clients at once, so every UDP thread answers some of them.
        let answers: Vec<IpAddr> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let s = &s;
                    scope
                        .spawn(move || Client::new(s, &format!("127.0.0.{}", 1 + i)).run(name, 250))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("client thread"))
                .collect()
        });
        assert_eq!(answers.len(), 1000);
        assert_shares(&format!("{name} on 4 threads"), &answers, want, 0.02);
    }
}

// ---------------------------------------------------------------------------------------
// 2. Draining: weight 0 and overrides

/// `cdn`: a 3, b 1 share the head (spread 2); c 2 and d 2 take a down head's share
/// (spill 2). `zero`: z (weight 0) first, then a, b (spread 2). `lonely`: z, then b.
fn drain_zone() -> String {
    [
        dc("a", "192.0.2.11", 3),
        dc("b", "192.0.2.12", 1),
        dc("c", "192.0.2.13", 2),
        dc("d", "192.0.2.14", 2),
        dc("z", "192.0.2.20", 0),
        gslb_map("cdn", &["a", "b", "c", "d"], "spread = 2\nspill = 2"),
        gslb_map("zero", &["z", "a", "b"], "spread = 2"),
        gslb_map("lonely", &["z", "b"], ""),
    ]
    .concat()
}

#[test]
fn drained_data_centers_are_not_answered_and_their_share_spills() {
    let s = start(&drain_zone(), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    let (a, b, cc, d) = ("192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14");

    assert_shares("cdn", &c.run("cdn", 400), &[(a, 3), (b, 1)], 0.01);
    // Weight 0: never answered while others are up; the head is the next two.
    assert_shares("zero", &c.run("zero", 400), &[(a, 3), (b, 1)], 0.01);
    assert_shares("lonely", &c.run("lonely", 50), &[(b, 1)], 0.0);

    // Drained by override: a's 75 % goes to c and d by their weights (2:2), b keeps 25 %.
    wait_api(&s);
    set_override(&s, "a", "drain");
    wait_for(&s, Duration::from_secs(5), "a drained", || {
        (c.one("cdn", None) != ip(a)).then_some(())
    });
    assert_shares(
        "cdn, a drained",
        &c.run("cdn", 400),
        &[(b, 2), (cc, 3), (d, 3)],
        0.01,
    );
    assert_shares("zero, a drained", &c.run("zero", 100), &[(b, 1)], 0.0);

    set_override(&s, "a", "clear");
    wait_for(&s, Duration::from_secs(5), "a back", || {
        (c.one("cdn", None) == ip(a)).then_some(())
    });
    assert_shares("cdn, a back", &c.run("cdn", 400), &[(a, 3), (b, 1)], 0.01);

    // Everything else out: the weight-0 data center is answered as the name fails open.
    set_override(&s, "b", "drain");
    wait_for(&s, Duration::from_secs(5), "b drained", || {
        (c.one("lonely", None) == ip("192.0.2.20")).then_some(())
    });
    assert_shares(
        "lonely, b drained",
        &c.run("lonely", 20),
        &[("192.0.2.20", 1)],
        0.0,
    );
}

// ---------------------------------------------------------------------------------------
// 3. Spread and band

/// Data centers in Amsterdam (weight 1), London (3, 357 km from Amsterdam), New York (1)
/// and Singapore (1). `banded`: nearest with band 400 km; `plain`: nearest alone;
/// `narrow`: band 100 km; `spread2`: the nearest two.
fn band_zone() -> String {
    let dcs = ["ams", "lon", "nyc", "sin"];
    [
        dc_at("ams", "\"192.0.2.31\"", Some(1), (52.3676, 4.9041), ""),
        dc_at("lon", "\"192.0.2.32\"", Some(3), (51.5074, -0.1278), ""),
        dc_at("nyc", "\"192.0.2.33\"", Some(1), (40.7128, -74.0060), ""),
        dc_at("sin", "\"192.0.2.34\"", Some(1), (1.2897, 103.8501), ""),
        gslb_nearest("banded", &dcs, "band = \"400km\""),
        gslb_nearest("plain", &dcs, ""),
        gslb_nearest("narrow", &dcs, "band = \"100km\""),
        gslb_nearest("spread2", &dcs, "spread = 2"),
    ]
    .concat()
}

#[test]
fn band_and_spread_choose_which_sites_share_a_clients_traffic() {
    let s = start(&band_zone(), &format!("{ONE_THREAD}{}", city_geoip()));
    let (ams, lon, nyc, sin) = ("192.0.2.31", "192.0.2.32", "192.0.2.33", "192.0.2.34");
    let amsterdam = Client::new(&s, "127.0.1.1");
    let new_york = Client::new(&s, "127.0.2.1");
    let singapore = Client::new(&s, "127.0.3.1");

    // London is within 400 km of Amsterdam's nearest site: both share, 1:3.
    let got = amsterdam.run("banded", 400);
    assert_shares("banded, Amsterdam", &got, &[(ams, 1), (lon, 3)], 0.01);
    // The band is measured from each client's nearest: nothing is near New York or
    // Singapore.
    assert_shares(
        "banded, New York",
        &new_york.run("banded", 50),
        &[(nyc, 1)],
        0.0,
    );
    assert_shares(
        "banded, Singapore",
        &singapore.run("banded", 50),
        &[(sin, 1)],
        0.0,
    );
    // Without the band, or with one too narrow for London, only the nearest.
    assert_shares(
        "plain, Amsterdam",
        &amsterdam.run("plain", 100),
        &[(ams, 1)],
        0.0,
    );
    assert_shares(
        "narrow, Amsterdam",
        &amsterdam.run("narrow", 100),
        &[(ams, 1)],
        0.0,
    );
    // spread = 2: the nearest two, however far: New York shares with London (5570 km,
    // nearer than Amsterdam's 5860 km).
    let got = new_york.run("spread2", 400);
    assert_shares("spread2, New York", &got, &[(nyc, 1), (lon, 3)], 0.01);
    let got = amsterdam.run("spread2", 400);
    assert_shares("spread2, Amsterdam", &got, &[(ams, 1), (lon, 3)], 0.01);
}

// ---------------------------------------------------------------------------------------
// 4. Spill after a real site failure

/// Probes every 500 ms; down after 2 failures, up after 1 success.
const FAST: &str = "interval = \"500ms\"\ntimeout = \"400ms\"\njitter = \"0s\"\nrise = 1\nfall = 2";

/// `[checks.NAME]`: HTTP GET /health on `port`, probed [`FAST`].
fn http_check(name: &str, port: u16) -> String {
    format!("[checks.{name}]\ntype = \"http\"\nport = {port}\npath = \"/health\"\n{FAST}\n")
}

#[test]
fn a_failed_sites_share_spills_over_the_next_healthy_sites_by_weight() {
    let a_check = CheckServer::http("127.0.0.21");
    let mut b_check = CheckServer::http("127.0.0.22");
    let (a, b, c, d) = ("127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24");
    let body = [
        http_check("a", a_check.port()),
        http_check("b", b_check.port()),
        dc_at(
            "a",
            &format!("\"{a}\""),
            Some(1),
            (0.0, 0.0),
            "check = \"a\"",
        ),
        dc_at(
            "b",
            &format!("\"{b}\""),
            Some(1),
            (0.0, 0.0),
            "check = \"b\"",
        ),
        dc_at("c", &format!("\"{c}\""), Some(3), (0.0, 0.0), ""),
        dc_at("d", &format!("\"{d}\""), Some(1), (0.0, 0.0), ""),
        gslb_map("cdn", &["a", "b", "c", "d"], "spill = 2\nmin_ttl = \"5s\""),
    ]
    .concat();
    let s = start(&body, ONE_THREAD);
    let cl = Client::new(&s, "127.0.0.1");
    assert_shares("cdn, all up", &cl.run("cdn", 50), &[(a, 1)], 0.0);

    // a stops answering its probes (the connection is closed on every request): once it
    // is down, its whole share goes to the next two healthy sites, b and c, by 1:3.
    a_check.set_mode(Mode::Close);
    let t0 = Instant::now();
    wait_for(&s, Duration::from_secs(10), "a goes down", || {
        (cl.one("cdn", None) != ip(a)).then_some(())
    });
    eprintln!("weights: a was down after {:?}", t0.elapsed());
    let got = cl.run("cdn", 400);
    assert_shares("cdn, a down", &got, &[(b, 1), (c, 3)], 0.01);

    // b's check server goes away too: the next two healthy after a are c and d, 3:1.
    b_check.close();
    wait_for(&s, Duration::from_secs(10), "b goes down", || {
        let got = cl.run("cdn", 8);
        (got.contains(&ip(d)) && !got.contains(&ip(b))).then_some(())
    });
    let got = cl.run("cdn", 400);
    assert_shares("cdn, a and b down", &got, &[(c, 3), (d, 1)], 0.01);

    // a answers again: it takes all of its clients back.
    a_check.set_mode(Mode::Answer);
    wait_for(&s, Duration::from_secs(10), "a comes back", || {
        (cl.one("cdn", None) == ip(a)).then_some(())
    });
    assert_shares("cdn, a back", &cl.run("cdn", 50), &[(a, 1)], 0.0);
}

// ---------------------------------------------------------------------------------------
// 5. Sticky

/// `n` client networks, each as an ECS /24: 10.X.Y.0.
pub(crate) fn networks(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.0", i / 256, i % 256))
        .collect()
}

/// The address `name` answers each network of `nets` (ECS /24).
fn sticky_map(c: &Client<'_>, name: &str, nets: &[String]) -> Vec<IpAddr> {
    nets.iter()
        .map(|n| c.one(name, Some((n.as_str(), 24))))
        .collect()
}

/// Rewrites the server's zone with `body` and a new `serial`, and waits until the server
/// serves it as `generation`.
pub(crate) fn reload_with(s: &Server, body: &str, serial: u32, generation: u32) {
    let path = s.dir().join("zones").join("example.com.toml");
    std::fs::write(&path, zone_with_serial(body, serial)).expect("rewrite zone");
    let line = format!("reloaded: now serving generation {generation}");
    wait_for(s, Duration::from_secs(15), &line, || {
        s.log().contains(&line).then_some(())
    });
}

/// `sticky`: four sites weighing 1:2:3:4, all at the head, chosen by the client network.
fn sticky_zone(serial_note: &str) -> String {
    [
        dc("s1", "192.0.2.41", 1),
        dc("s2", "192.0.2.42", 2),
        dc("s3", "192.0.2.43", 3),
        dc("s4", "192.0.2.44", 4),
        gslb_map(
            "sticky",
            &["s1", "s2", "s3", "s4"],
            "spread = 4\nselect = \"sticky\"",
        ),
        format!("[names.note]\ntxt = \"{serial_note}\"\n"),
    ]
    .concat()
}

#[test]
fn sticky_networks_keep_their_site_across_queries_reloads_and_restarts() {
    let s = start(
        &sticky_zone("first"),
        &format!("{ONE_THREAD}reload_check = \"1s\"\n"),
    );
    let t0 = Instant::now();
    let nets = networks(2000);
    let before = {
        let c = Client::new(&s, "127.0.0.1");
        let before = sticky_map(&c, "sticky", &nets);
        // 2000 networks spread by weight (a hash, so looser than rotation).
        let want = [
            ("192.0.2.41", 1),
            ("192.0.2.42", 2),
            ("192.0.2.43", 3),
            ("192.0.2.44", 4),
        ];
        assert_shares("sticky over 2000 networks", &before, &want, 0.05);
        // The same network, asked again and again, keeps its site.
        for (n, site) in nets.iter().zip(&before).take(50) {
            for _ in 0..10 {
                assert_eq!(c.one("sticky", Some((n, 24))), *site, "network {n}/24");
            }
        }
        // Without ECS the source address counts, cut to /24: two hosts of one /24 get
        // the same site; the /24s themselves spread.
        let mut sites = BTreeMap::new();
        for third in 7..=30 {
            let one = Client::new(&s, &format!("127.0.{third}.1")).one("sticky", None);
            let other = Client::new(&s, &format!("127.0.{third}.200")).one("sticky", None);
            assert_eq!(one, other, "127.0.{third}.0/24");
            *sites.entry(one).or_insert(0) += 1;
        }
        assert!(sites.len() > 1, "24 source networks, one site: {sites:?}");
        before
    };

    // A reload (the zone file changed) moves nobody.
    reload_with(&s, &sticky_zone("second"), 2, 2);
    let after = sticky_map(&Client::new(&s, "127.0.0.1"), "sticky", &nets);
    let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    assert_eq!(moved, 0, "networks moved by a reload");

    // Nor does a restart.
    let s = s.restart();
    let after = sticky_map(&Client::new(&s, "127.0.0.1"), "sticky", &nets);
    let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    assert_eq!(moved, 0, "networks moved by a restart");
    eprintln!("weights: sticky stability test took {:?}", t0.elapsed());
}

/// `ten`: ten sites of equal weight, all at the head, sticky; `m4` weighs `m4_weight`.
fn ten_zone(m4_weight: u32) -> String {
    let ids: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut body: String = (0..10)
        .map(|i| {
            let w = if i == 4 { m4_weight } else { 1 };
            dc(&ids[i], &format!("192.0.2.{}", 100 + i), w)
        })
        .collect();
    body.push_str(&gslb_map("ten", &refs, "spread = 10\nselect = \"sticky\""));
    body
}

/// Asserts that between `before` and `after` only networks of `removed` moved, all of
/// them did, and no more than 1/10 + 1 % of all; returns how many moved.
fn assert_only_removed_moved(
    what: &str,
    before: &[IpAddr],
    after: &[IpAddr],
    removed: IpAddr,
) -> usize {
    let mut moved = 0;
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if *b == removed {
            assert_ne!(a, b, "{what}: network {i} stayed on the removed site");
        } else if a != b {
            panic!("{what}: network {i} moved from {b} to {a}, not from the removed site");
        }
        moved += usize::from(a != b);
    }
    let bound = before.len() / 10 + before.len() / 100;
    eprintln!(
        "weights: sticky, {what}: {moved} of {} networks moved (bound {bound})",
        before.len()
    );
    assert!(
        moved <= bound,
        "{what}: {moved} networks moved, bound {bound}"
    );
    moved
}

#[test]
fn removing_one_of_ten_sticky_sites_moves_only_its_networks() {
    let s = start(
        &ten_zone(1),
        &format!("{ONE_THREAD}reload_check = \"1s\"\n"),
    );
    let c = Client::new(&s, "127.0.0.1");
    let nets = networks(2000);
    let removed = ip("192.0.2.104");
    let before = sticky_map(&c, "ten", &nets);
    let on_removed = before.iter().filter(|a| **a == removed).count();
    assert!(on_removed > 100, "m4 has {on_removed} of 2000 networks");

    // Taken down by an override.
    wait_api(&s);
    set_override(&s, "m4", "down");
    let probe = nets[before
        .iter()
        .position(|a| *a == removed)
        .expect("a network of m4")]
    .clone();
    wait_for(&s, Duration::from_secs(5), "m4 down", || {
        (c.one("ten", Some((&probe, 24))) != removed).then_some(())
    });
    let overridden = sticky_map(&c, "ten", &nets);
    assert_only_removed_moved("m4 down by override", &before, &overridden, removed);

    // Back: everyone returns.
    set_override(&s, "m4", "clear");
    wait_for(&s, Duration::from_secs(5), "m4 back", || {
        (c.one("ten", Some((&probe, 24))) == removed).then_some(())
    });
    assert_eq!(
        sticky_map(&c, "ten", &nets),
        before,
        "after the override is cleared"
    );

    // Drained by weight 0 in the zone: the same networks move, to the same sites.
    reload_with(&s, &ten_zone(0), 2, 2);
    let drained = sticky_map(&c, "ten", &nets);
    assert_only_removed_moved("m4 weight 0", &before, &drained, removed);
    assert_eq!(
        drained, overridden,
        "weight 0 and the override move networks alike"
    );
}

// ---------------------------------------------------------------------------------------
// 6. ECS scope

/// The ECS scope of a reply (which must carry ECS).
pub(crate) fn scope_of(r: &Message) -> u8 {
    ecs_of(r)
        .unwrap_or_else(|| panic!("no ECS option in the reply\n{r}"))
        .scope_prefix()
}

/// `addr` with the bits past `prefix` cleared (as ECS requires), as text.
fn network(addr: &str, prefix: u8) -> String {
    match ip(addr) {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            std::net::Ipv4Addr::from(u32::from(a) & mask).to_string()
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            std::net::Ipv6Addr::from(u128::from(a) & mask).to_string()
        }
    }
}

/// Four sites; the same lists answered without weights (`plain`), rotating over the
/// nearest two (`rot`), sticky over them with the default prefixes (`sticky`) and with
/// /20 and /40 (`sticky20`), and over a list the same for every client (`rotu`,
/// `stickyu`).
fn scope_zone() -> String {
    let dcs = ["ams", "lon", "nyc", "sin"];
    let two = "spread = 2";
    let sticky = "spread = 2\nselect = \"sticky\"";
    let sticky20 =
        "spread = 2\nselect = \"sticky\"\nsticky_ipv4_prefix = 20\nsticky_ipv6_prefix = 40";
    [
        dc_at("ams", "\"192.0.2.31\"", Some(1), (52.3676, 4.9041), ""),
        dc_at("lon", "\"192.0.2.32\"", Some(3), (51.5074, -0.1278), ""),
        dc_at("nyc", "\"192.0.2.33\"", Some(1), (40.7128, -74.0060), ""),
        dc_at("sin", "\"192.0.2.34\"", Some(1), (1.2897, 103.8501), ""),
        gslb_nearest("plain", &dcs, ""),
        gslb_nearest("rot", &dcs, two),
        gslb_nearest("sticky", &dcs, sticky),
        gslb_nearest("sticky20", &dcs, sticky20),
        gslb_map("rotu", &["ams", "lon"], two),
        gslb_map("stickyu", &["ams", "lon"], sticky),
    ]
    .concat()
}

#[test]
fn sticky_answers_are_scoped_to_the_hashed_prefix_and_rotating_ones_to_the_range() {
    let s = start(&scope_zone(), &city_geoip());
    let c = Client::new(&s, "127.0.0.1");
    let scope = |name: &str, addr: &str, source: u8| {
        let net = network(addr, source);
        let r = c.send(&a_query(name, Some((&net, source))));
        assert!(!addresses(&r).is_empty(), "{name} {addr}/{source}: {r}");
        scope_of(&r)
    };
    let cases: [(&str, u8); 10] = [
        ("127.0.1.0", 16),
        ("127.0.1.0", 20),
        ("127.0.1.0", 24),
        ("127.0.1.77", 32),
        ("127.0.2.0", 24),
        ("127.0.3.0", 22),
        ("10.1.0.0", 16),
        ("2001:db8:1::", 32),
        ("2001:db8:1::", 48),
        ("2001:db8:1::", 64),
    ];
    let mut table = String::new();
    for (addr, source) in cases {
        let v6 = addr.contains(':');
        let range = scope("plain", addr, source);
        let hashed = source.min(if v6 { 56 } else { 24 });
        let hashed20 = source.min(if v6 { 40 } else { 20 });
        let got = [
            ("rot", scope("rot", addr, source), range),
            ("sticky", scope("sticky", addr, source), range.max(hashed)),
            (
                "sticky20",
                scope("sticky20", addr, source),
                range.max(hashed20),
            ),
            ("rotu", scope("rotu", addr, source), 0),
            ("stickyu", scope("stickyu", addr, source), hashed),
        ];
        table.push_str(&format!("  {addr}/{source}: plain {range}"));
        for (name, scope, _) in &got {
            table.push_str(&format!(", {name} {scope}"));
        }
        table.push('\n');
        for (name, scope, want) in got {
            if name.starts_with("sticky") {
                let bound = if name == "sticky20" { hashed20 } else { hashed };
                assert!(
                    scope >= bound,
                    "{name} {addr}/{source}: scope {scope} is wider than the hashed /{bound}"
                );
            }
            assert_eq!(scope, want, "{name} {addr}/{source}: ECS scope\n{table}");
        }
    }
    eprintln!("weights: ECS scopes:\n{table}");
}

// ---------------------------------------------------------------------------------------
// 7. `meridian check` on bad weight settings

/// A zone with ams (weight 2) and nyc (1) and `cdn` over them by distance; `edit` replaces
/// one line of it (`from` → `to`) to break it.
fn check_zone(from: &str, to: &str) -> String {
    let body = [
        dc_at("ams", "\"192.0.2.31\"", Some(2), (52.3676, 4.9041), ""),
        dc_at(
            "nyc",
            "{ address = \"192.0.2.33\", weight = 1 }",
            Some(1),
            (40.7128, -74.0060),
            "",
        ),
        "[names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\"]\npolicy = \"nearest\"\n\
         select = \"rotate\"\nspread = 1\nspill = 1\n\
         [names.api.gslb]\ndatacenters = [\"ams\", \"nyc\"]\npolicy = \"map\"\n\
         select = \"sticky\"\n[names.api.gslb.map]\ndefault = [\"ams\", \"nyc\"]\n"
            .to_owned(),
    ]
    .concat();
    let text = zone_with(&body);
    if from.is_empty() {
        return text;
    }
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in\n{text}");
    text.replacen(from, to, 1)
}

/// Runs `meridian check` on a zone `from` → `to` and asserts the first error is on the line of
/// `to` (its last line), naming `key`, with a fix.
fn assert_check_reports(from: &str, to: &str, key: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
    let text = check_zone(from, to);
    std::fs::write(dir.path().join("zones").join("example.com.toml"), &text).expect("zone");
    std::fs::write(dir.path().join("meridian.toml"), "zones_dir = \"zones\"\n").expect("config");
    let o = run_meridian(dir.path(), &["check", "--config", "meridian.toml"]);
    let err = strip_ansi(&String::from_utf8_lossy(&o.stderr));
    let what = format!("{from:?} -> {to:?}");
    assert_eq!(o.status.code(), Some(2), "{what}: exit status\n{err}");
    let line = 1 + text
        .lines()
        .position(|l| l.contains(to.lines().last().unwrap_or(to)))
        .expect("the edited line");
    let want = format!("error: zones/example.com.toml:{line}:");
    let lines: Vec<&str> = err.lines().collect();
    let first = lines.first().copied().unwrap_or_default();
    assert!(
        first.starts_with(&want),
        "{what}: expected {want}COL: {key}: ...\n{err}"
    );
    let after_position = first[want.len()..].split_once(": ").map(|x| x.1);
    assert!(
        after_position.is_some_and(|rest| rest.starts_with(&format!("{key}: "))),
        "{what}: expected the key {key}\n{err}"
    );
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("  help: ")),
        "{what}: expected a fix on the next line\n{err}"
    );
    // (A data center with a bad weight is left out, so names that list it report it
    // missing too: follow-on errors, after the first.)
    assert!(
        err.contains("check failed: "),
        "{what}: expected the summary\n{err}"
    );
}

#[test]
fn check_accepts_the_base_zone_of_the_diagnostics_test() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
    std::fs::write(
        dir.path().join("zones").join("example.com.toml"),
        check_zone("", ""),
    )
    .expect("zone");
    std::fs::write(dir.path().join("meridian.toml"), "zones_dir = \"zones\"\n").expect("config");
    let o = run_meridian(dir.path(), &["check", "--config", "meridian.toml"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn check_reports_bad_weight_settings_with_file_line_key_and_fix() {
    let cdn = "names.cdn.gslb";
    for (from, to, key) in [
        ("weight = 2\n", "weight = -1\n", "datacenters.ams.weight"),
        (
            "weight = 1 }",
            "weight = -2 }",
            "datacenters.nyc.addresses[0].weight",
        ),
        ("spread = 1", "spread = 0", &format!("{cdn}.spread")),
        ("spill = 1", "spill = 3", &format!("{cdn}.spill")),
        (
            "select = \"rotate\"",
            "select = \"random\"",
            &format!("{cdn}.select"),
        ),
        (
            "select = \"rotate\"",
            "band = \"fast\"",
            &format!("{cdn}.band"),
        ),
        // band with policy map.
        (
            "select = \"sticky\"",
            "band = \"500km\"",
            "names.api.gslb.band",
        ),
        (
            "select = \"sticky\"",
            "select = \"sticky\"\nsticky_ipv4_prefix = 40",
            "names.api.gslb.sticky_ipv4_prefix",
        ),
        (
            "select = \"sticky\"",
            "select = \"sticky\"\nsticky_ipv6_prefix = 129",
            "names.api.gslb.sticky_ipv6_prefix",
        ),
    ] {
        assert_check_reports(from, to, key);
    }
}

// ---------------------------------------------------------------------------------------
// Expected behaviour the implementation does not have yet (see the commit message)

#[test]
fn check_reports_non_integer_weights_with_the_weight_key_and_a_fix() {
    for (from, to, key) in [
        ("weight = 2\n", "weight = 1.5\n", "datacenters.ams.weight"),
        (
            "weight = 1 }",
            "weight = 1.5 }",
            "datacenters.nyc.addresses[0].weight",
        ),
    ] {
        assert_check_reports(from, to, key);
    }
}

#[test]
fn addresses_of_equal_weight_are_answered_equally_often_when_max_addresses_picks_two() {
    let s = start(&rotation_zone(), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    // g: 192.0.2.71 weighs 2, .72 and .73 weigh 1 each; two distinct per answer.
    let mut seen: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let n = 400;
    for _ in 0..n {
        for a in c.ask("pair", None) {
            *seen.entry(a).or_insert(0) += 1;
        }
    }
    let share = |a: &str| seen.get(&ip(a)).copied().unwrap_or(0) as f64 / n as f64;
    let (b, cc) = (share("192.0.2.72"), share("192.0.2.73"));
    eprintln!("weights: pair over {n} answers: {seen:?}");
    assert!(
        (b - cc).abs() <= 0.02,
        "equal weights, unequal shares of the answers: 192.0.2.72 in {:.1}%, 192.0.2.73 in \
         {:.1}% ({seen:?})",
        b * 100.0,
        cc * 100.0
    );
}
