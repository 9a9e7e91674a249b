//! Overload shedding over real UDP sockets, driven by a real local HTTP load endpoint whose
//! reported load the test changes while the server runs.
//!
//! The zone: `cdn` over a (weight 1, with `[datacenters.a.load]` read from the endpoint),
//! then b (1) and c (3); spread 1, spill 2, so every client's head is a and a's shed share
//! goes to b and c by 1:3. One UDP thread: one rotation state answers every query, so the
//! share a keeps is exact in every window of answers while its kept share holds.
//!
//! A sticky name over the same sites sheds by the hash of the client network: whole
//! networks move, the ones moved stay moved as the kept share falls further.
//!
//! Shares are sampled in windows of [`WINDOW`] consecutive answers while the load loop
//! steps every [`INTERVAL_MS`]; every wait is bounded, every server stops with its test.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::check_server::{CheckServer, Mode, closed_port};
use crate::harness::*;
use crate::weights::{
    Client, ONE_THREAD, a_query, addresses, assert_shares, counts, dc, dc_at, gslb_map, ip,
    networks, reload_with, scope_of, set_override, start, wait_api, wait_for, zone_with,
};

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
const C: &str = "192.0.2.3";

/// The load loop's interval in the process tests.
const INTERVAL_MS: u64 = 200;
/// Consecutive answers a share is measured over while the load steps.
const WINDOW: usize = 20;
/// The longest any state change may take to show.
const LIMIT: Duration = Duration::from_secs(10);

/// `cdn` over a (with a load signal read from `url`, stepping by `step`, `extra` keys in
/// the load table), b (1) and c (3).
fn shed_zone(url: &str, step: f64, extra: &str) -> String {
    let load = format!(
        "[datacenters.a.load]\nurl = \"{url}\"\n{extra}high = 0.85\nlow = 0.70\n\
         interval = \"{INTERVAL_MS}ms\"\ntimeout = \"150ms\"\nstep = {step}\n"
    );
    [
        dc_at("a", &format!("\"{A}\""), Some(1), (0.0, 0.0), &load),
        dc("b", B, 1),
        dc("c", C, 3),
        gslb_map("cdn", &["a", "b", "c"], "spread = 1\nspill = 2"),
    ]
    .concat()
}

/// A load endpoint on 127.0.0.1 reporting `body`, and its URL.
fn endpoint(body: &str) -> (CheckServer, String) {
    let load = CheckServer::http("127.0.0.1");
    load.set_body(body);
    let url = format!("http://127.0.0.1:{}/load", load.port());
    (load, url)
}

// ---------------------------------------------------------------------------------------
// Measuring

/// a's share of `n` consecutive answers of `cdn`; nothing but a, b and c is answered.
fn a_share(c: &Client<'_>, n: usize) -> f64 {
    let got = c.run("cdn", n);
    for x in counts(&got).keys() {
        assert!(
            [A, B, C].iter().any(|d| ip(d) == *x),
            "{x} answered: {got:?}"
        );
    }
    got.iter().filter(|x| **x == ip(A)).count() as f64 / n as f64
}

/// a's share in windows of [`WINDOW`] answers, every 10 ms from `t0` until `done` holds of
/// one (at most [`LIMIT`]): the time of each window's end since `t0`, and the share.
fn trace_until(
    s: &Server,
    c: &Client<'_>,
    t0: Instant,
    what: &str,
    done: impl Fn(f64) -> bool,
) -> Vec<(Duration, f64)> {
    let mut points = Vec::new();
    loop {
        let share = a_share(c, WINDOW);
        points.push((t0.elapsed(), share));
        if done(share) {
            eprintln!("shedding: {what}: {}", summary(&points));
            return points;
        }
        assert!(
            t0.elapsed() <= LIMIT,
            "{what}: not within {LIMIT:?}: {}\nlog:\n{}",
            summary(&points),
            s.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `100%@0ms 75%@212ms ...`: each run of equal shares once, with the time it was first seen.
fn summary(points: &[(Duration, f64)]) -> String {
    let mut out = Vec::new();
    let mut last = None;
    for &(t, share) in points {
        if last != Some(share) {
            out.push(format!("{:.0}%@{}ms", share * 100.0, t.as_millis()));
            last = Some(share);
        }
    }
    format!("{} windows of {WINDOW}: {}", points.len(), out.join(" "))
}

/// Asserts the trace moves one way (`down`: never up), within one answer of a window
/// that straddles a step or rotation's catch-up, and passes through a share strictly
/// between 0 and 100 %.
fn assert_gradual(what: &str, points: &[(Duration, f64)], down: bool) {
    let slack = 1.0 / WINDOW as f64 + 1e-9;
    let mut best = points[0].1;
    for &(t, share) in points {
        let back = if down { share - best } else { best - share };
        assert!(
            back <= slack,
            "{what}: a's share went back to {:.0}% at {}ms after {:.0}%: {}",
            share * 100.0,
            t.as_millis(),
            best * 100.0,
            summary(points)
        );
        best = if down {
            best.min(share)
        } else {
            best.max(share)
        };
    }
    assert!(
        points.iter().any(|p| p.1 > 0.0 && p.1 < 1.0),
        "{what}: no share between 0 and 100 % was seen: {}",
        summary(points)
    );
}

/// Answers `cdn` in windows of [`WINDOW`] for `hold`: in each, a has `keep` % of the
/// answers (within one answer), and each answer comes within `prompt`. Returns the
/// slowest answer.
fn assert_holds(c: &Client<'_>, what: &str, keep: u8, hold: Duration) -> Duration {
    let t0 = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut windows = 0;
    while t0.elapsed() < hold {
        let mut got = Vec::with_capacity(WINDOW);
        for _ in 0..WINDOW {
            let t = Instant::now();
            got.push(c.one("cdn", None));
            slowest = slowest.max(t.elapsed());
        }
        let a = got.iter().filter(|x| **x == ip(A)).count();
        let want = usize::from(keep) * WINDOW / 100;
        assert!(
            a.abs_diff(want) <= 1,
            "{what}: a answered {a} of {WINDOW} at {}ms, expected {want} (keeps {keep}%): {:?}",
            t0.elapsed().as_millis(),
            counts(&got)
        );
        windows += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "shedding: {what}: a kept {keep}% over {windows} windows of {WINDOW} in {hold:?}; \
         slowest answer {slowest:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "{what}: an answer took {slowest:?}"
    );
    slowest
}

// ---------------------------------------------------------------------------------------
// Explain

/// `GET /v1/explain` for `cdn.example.com` A from 127.0.0.1.
fn explain(s: &Server) -> String {
    let (status, body) = s.api(
        reqwest::Method::GET,
        "/v1/explain?name=cdn.example.com&type=A&client=127.0.0.1",
        Some(&s.bearer()),
        None,
        Duration::from_secs(5),
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// The `load:` line of explain (a's: the only data center with a signal).
fn load_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("load:"))
        .unwrap_or_else(|| panic!("no load: line in\n{text}"))
        .to_owned()
}

/// a's `share` line of explain.
fn share_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("share") && l.split_whitespace().nth(1) == Some("a"))
        .unwrap_or_else(|| panic!("no share line of a in\n{text}"))
        .to_owned()
}

/// The percent of its weight a keeps by its `load:` line.
fn keep_of(line: &str) -> u8 {
    if line.contains("not shedding") {
        return 100;
    }
    let (_, rest) = line
        .split_once("keeps ")
        .unwrap_or_else(|| panic!("no kept share in {line:?}"));
    rest.split('%')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no kept share in {line:?}"))
}

/// Polls explain every 20 ms until a's `load:` line satisfies `f`; returns the line.
fn wait_load(s: &Server, what: &str, f: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    wait_for(s, LIMIT, what, || {
        last = load_line(&explain(s));
        f(&last).then(|| last.clone())
    })
}

// ---------------------------------------------------------------------------------------
// 1. The share falls above high, step by step, and comes back below low

#[test]
fn a_site_sheds_its_share_step_by_step_above_high_and_takes_it_back_below_low() {
    let (load, url) = endpoint("0.5");
    let s = start(&shed_zone(&url, 0.25, ""), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    let line = wait_load(&s, "a read of 0.5", |l| l.contains("0.5 < low 0.7"));
    assert!(line.contains("not shedding"), "{line}");
    assert_shares("load 0.5", &c.run("cdn", 200), &[(A, 1)], 0.0);

    // Above high: a's kept share steps down by a quarter per read until nothing is kept,
    // and what it sheds goes to b and c by 1:3.
    load.set_body("0.95");
    let t0 = Instant::now();
    let down = trace_until(&s, &c, t0, "load 0.95", |share| share == 0.0);
    let took = down.last().expect("a window").0;
    assert_gradual("load 0.95", &down, true);
    // Four reads above high, a read every interval: not one jump.
    assert!(
        took >= Duration::from_millis(2 * INTERVAL_MS),
        "a shed everything {took:?} after the load rose: {}",
        summary(&down)
    );
    assert_shares("load 0.95", &c.run("cdn", 400), &[(B, 1), (C, 3)], 0.01);
    let text = explain(&s);
    let line = load_line(&text);
    assert!(line.contains("0.95 > high 0.85"), "{text}");
    assert!(line.contains("shedding, keeps 0% of its weight"), "{text}");
    assert!(
        share_line(&text).contains("weight 1 (effective 0.00)"),
        "{text}"
    );
    eprintln!("shedding: explain while shedding:\n{text}");

    // Below low: it takes its share back the same way.
    load.set_body("0.5");
    let t0 = Instant::now();
    let up = trace_until(&s, &c, t0, "load 0.5 again", |share| share == 1.0);
    let took = up.last().expect("a window").0;
    assert_gradual("load 0.5 again", &up, false);
    assert!(
        took >= Duration::from_millis(2 * INTERVAL_MS),
        "a took everything back {took:?} after the load fell: {}",
        summary(&up)
    );
    assert_shares("load 0.5 again", &c.run("cdn", 200), &[(A, 1)], 0.0);
    let text = explain(&s);
    assert!(load_line(&text).contains("not shedding"), "{text}");
    assert!(!share_line(&text).contains("effective"), "{text}");
}

// ---------------------------------------------------------------------------------------
// 2. Between low and high the share holds

#[test]
fn between_low_and_high_the_shed_share_holds() {
    let (load, url) = endpoint("0.95");
    let s = start(&shed_zone(&url, 0.25, ""), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    // Shedding has begun: stop the rise there.
    wait_load(&s, "a starts shedding", |l| keep_of(l) < 100);
    load.set_body("0.8");
    let line = wait_load(&s, "a read of 0.8", |l| l.contains("0.8 between low 0.7"));
    let keep = keep_of(&line);
    assert!(keep < 100, "{line}");
    let hold = Duration::from_millis(5 * INTERVAL_MS);
    assert_holds(&c, "load 0.8", keep, hold);
    let text = explain(&s);
    assert_eq!(keep_of(&load_line(&text)), keep);
    let effective = format!("weight 1 (effective {:.2})", f64::from(keep) / 100.0);
    assert!(share_line(&text).contains(&effective), "{text}");

    // The thresholds themselves are between: neither sheds more nor takes back.
    for body in ["0.85", "0.7"] {
        load.set_body(body);
        let want = format!("{body} between low");
        let line = wait_load(&s, &format!("a read of {body}"), |l| l.contains(&want));
        assert_eq!(keep_of(&line), keep, "{line}");
        assert_holds(&c, &format!("load {body}"), keep, hold);
        assert_eq!(keep_of(&load_line(&explain(&s))), keep);
    }

    load.set_body("0.5");
    trace_until(&s, &c, Instant::now(), "load 0.5", |share| share == 1.0);
}

// ---------------------------------------------------------------------------------------
// 3. The last healthy site is never shed

#[test]
fn the_last_healthy_site_answers_every_query_however_loaded() {
    let (_load, url) = endpoint("0.99");
    let s = start(&shed_zone(&url, 0.25, ""), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    trace_until(&s, &c, Instant::now(), "load 0.99", |share| share == 0.0);
    assert_shares("load 0.99", &c.run("cdn", 400), &[(B, 1), (C, 3)], 0.01);

    // b down: a's shed share all goes to c.
    set_override(&s, "b", "down");
    wait_for(&s, LIMIT, "b out", || {
        (!c.run("cdn", 8).contains(&ip(B))).then_some(())
    });
    assert_shares("load 0.99, b down", &c.run("cdn", 200), &[(C, 1)], 0.0);

    // c down too: a is the last healthy site and answers everything, still overloaded.
    set_override(&s, "c", "down");
    wait_for(&s, LIMIT, "c out", || {
        (c.run("cdn", 8).iter().all(|x| *x == ip(A))).then_some(())
    });
    assert_shares(
        "load 0.99, b and c down",
        &c.run("cdn", 400),
        &[(A, 1)],
        0.0,
    );
    let text = explain(&s);
    assert!(
        load_line(&text).contains("keeps 0% of its weight"),
        "{text}"
    );
    eprintln!("shedding: explain with a the last healthy site:\n{text}");

    // Back up: a sheds everything again.
    set_override(&s, "b", "clear");
    set_override(&s, "c", "clear");
    wait_for(&s, LIMIT, "b and c back", || {
        (!c.run("cdn", 8).contains(&ip(A))).then_some(())
    });
    assert_shares(
        "load 0.99, all up",
        &c.run("cdn", 400),
        &[(B, 1), (C, 3)],
        0.01,
    );
}

// ---------------------------------------------------------------------------------------
// 3b. Sticky names shed whole client networks, and keep the ones they shed

/// Each network of `nets` (ECS /24) asks `sticky`: the address answered and the reply's
/// ECS scope.
fn sticky_map(c: &Client<'_>, nets: &[String]) -> Vec<(IpAddr, u8)> {
    nets.iter()
        .map(|n| {
            let r = c.send(&a_query("sticky", Some((n.as_str(), 24))));
            let got = addresses(&r);
            assert_eq!(got.len(), 1, "sticky from {n}/24: {r}");
            (got[0], scope_of(&r))
        })
        .collect()
}

/// Holds a's kept share below `below` by raising the load until it is, then reporting
/// 0.8 (between the thresholds); returns the share it holds.
fn shed_to_below(s: &Server, load: &CheckServer, below: u8) -> u8 {
    load.set_body("0.95");
    wait_load(s, &format!("a keeps under {below}%"), |l| {
        keep_of(l) < below
    });
    load.set_body("0.8");
    let line = wait_load(s, "a read of 0.8", |l| l.contains("0.8 between low 0.7"));
    keep_of(&line)
}

/// The networks of `map` not answered by a, and where they went.
fn shed_networks(nets: &[String], map: &[(IpAddr, u8)]) -> BTreeMap<String, IpAddr> {
    nets.iter()
        .zip(map)
        .filter(|(_, (x, _))| *x != ip(A))
        .map(|(n, (x, _))| (n.clone(), *x))
        .collect()
}

/// Asserts `shed` networks of `n` are the share a sheds when it keeps `keep` %, within 5 %.
fn assert_shed_share(what: &str, shed: usize, n: usize, keep: u8) {
    let got = shed as f64 / n as f64;
    let want = 1.0 - f64::from(keep) / 100.0;
    eprintln!(
        "shedding: {what}: {shed} of {n} networks shed ({:.1}%, a keeps {keep}%)",
        got * 100.0
    );
    assert!(
        (got - want).abs() <= 0.05,
        "{what}: {shed} of {n} networks shed ({:.1}%), expected {:.0}% ± 5",
        got * 100.0,
        want * 100.0
    );
}

#[test]
fn sticky_names_shed_whole_client_networks_and_keep_the_ones_they_shed() {
    let (load, url) = endpoint("0.5");
    let zone = [
        shed_zone(&url, 0.25, ""),
        gslb_map(
            "sticky",
            &["a", "b", "c"],
            "spread = 1\nspill = 2\nselect = \"sticky\"",
        ),
    ]
    .concat();
    let s = start(&zone, ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    wait_load(&s, "a read of 0.5", |l| l.contains("0.5 < low 0.7"));
    let nets = networks(1000);
    let map = sticky_map(&c, &nets);
    assert!(map.iter().all(|(x, _)| *x == ip(A)), "{map:?}");

    // Shedding part way: a share of the networks goes to b and c, the same ones on every
    // query, and each reply is scoped to the hashed /24: the answer depends on it.
    let k1 = shed_to_below(&s, &load, 100);
    let map1 = sticky_map(&c, &nets);
    assert_eq!(
        sticky_map(&c, &nets),
        map1,
        "the same networks shed on every query"
    );
    for (n, (_, scope)) in nets.iter().zip(&map1) {
        assert_eq!(*scope, 24, "{n}/24 while a sheds by hash");
    }
    let shed1 = shed_networks(&nets, &map1);
    assert_shed_share("sticky, first level", shed1.len(), nets.len(), k1);
    // A rotating name sheds by rotation: its answers stay scoped to the range (the map's
    // default list, the same for every client).
    let r = c.send(&a_query("cdn", Some(("10.0.7.0", 24))));
    assert_eq!(scope_of(&r), 0, "a rotating answer while a sheds: {r}");

    // Shedding further: the networks shed before stay shed, on the same sites, and more
    // join them.
    let k2 = shed_to_below(&s, &load, k1);
    let map2 = sticky_map(&c, &nets);
    let shed2 = shed_networks(&nets, &map2);
    assert_shed_share("sticky, second level", shed2.len(), nets.len(), k2);
    for (n, site) in &shed1 {
        assert_eq!(
            shed2.get(n),
            Some(site),
            "{n}/24 was shed to {site} at {k1}%; at {k2}%: {:?}",
            shed2.get(n)
        );
    }
    let to_b = shed2.values().filter(|x| **x == ip(B)).count();
    let to_c = shed2.values().filter(|x| **x == ip(C)).count();
    eprintln!("shedding: sticky: shed networks to b {to_b}, to c {to_c} (weights 1:3)");
    let b_share = to_b as f64 / shed2.len() as f64;
    assert!(
        (b_share - 0.25).abs() <= 0.07,
        "the shed networks go to b and c by 1:3: b {to_b}, c {to_c}"
    );

    // Below low: every network comes back to a.
    load.set_body("0.5");
    wait_for(&s, LIMIT, "every network back on a", || {
        sticky_map(&c, &nets)
            .iter()
            .all(|(x, _)| *x == ip(A))
            .then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// 3c. Reloads

#[test]
fn a_reload_keeps_the_shed_share_and_a_removed_signal_gives_the_whole_weight_back() {
    let (load, url) = endpoint("0.5");
    let config = format!("{ONE_THREAD}reload_check = \"1s\"\n");
    let s = start(&shed_zone(&url, 0.25, ""), &config);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    let keep = shed_to_below(&s, &load, 100);
    let hold = Duration::from_millis(3 * INTERVAL_MS);
    assert_holds(&c, "before the reload", keep, hold);

    // The same signal: its loop and kept share go on.
    reload_with(&s, &shed_zone(&url, 0.25, ""), 2, 2);
    assert_eq!(keep_of(&load_line(&explain(&s))), keep);
    assert_holds(&c, "reloaded, the same signal", keep, hold);

    // A changed signal (a wider band, 0.8 still between): its loop restarts and the share
    // stays.
    let wider = shed_zone(&url, 0.25, "").replace("high = 0.85", "high = 0.9");
    reload_with(&s, &wider, 3, 3);
    let line = wait_load(&s, "a read with the new high", |l| {
        l.contains("0.8 between low 0.7 and high 0.9")
    });
    assert_eq!(keep_of(&line), keep, "{line}");
    assert_holds(&c, "reloaded, a changed signal", keep, hold);

    // No signal any more: a keeps its whole weight at once.
    let plain = shed_zone(&url, 0.25, "");
    let cut = plain.find("[datacenters.a.load]").expect("load table");
    let end = cut + plain[cut..].find("\n\n").expect("end of the load table");
    let plain = format!("{}{}", &plain[..cut], &plain[end..]);
    reload_with(&s, &plain, 4, 4);
    let text = explain(&s);
    assert!(!text.contains("load:"), "{text}");
    assert_holds(&c, "reloaded without the signal", 100, hold);
}

// ---------------------------------------------------------------------------------------
// 4. A failed read leaves the share, says why, and never stalls answers

#[test]
fn failed_load_reads_leave_the_share_and_say_why_while_answers_keep_flowing() {
    let (mut load, url) = endpoint("0.95");
    // A tenth per read: the share is caught part way.
    let s = start(&shed_zone(&url, 0.1, ""), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    wait_load(&s, "a starts shedding", |l| keep_of(l) < 100);

    // Garbage: the read fails; the share is where the last good read left it.
    load.set_body("not a number");
    let reason = "the body \"not a number\" is not a number";
    let line = wait_load(&s, "the garbage is reported", |l| l.contains(reason));
    let keep = keep_of(&line);
    assert!(keep > 0 && keep < 100, "{line}");
    assert!(
        line.contains("0.95 > high 0.85"),
        "the last good read: {line}"
    );
    assert!(line.contains("(weight left as it was)"), "{line}");
    eprintln!("shedding: garbage: {line}");
    let hold = Duration::from_millis(4 * INTERVAL_MS);
    let mut slowest = assert_holds(&c, "garbage", keep, hold);

    // A 500 with a low number in the body: the status fails the read, the body is not used.
    load.set_status(500);
    load.set_body("0.1");
    let line = wait_load(&s, "the 500 is reported", |l| {
        l.contains(&format!("GET {url}: status 500"))
    });
    assert_eq!(keep_of(&line), keep, "{line}");
    eprintln!("shedding: status 500: {line}");
    slowest = slowest.max(assert_holds(&c, "status 500", keep, hold));

    // It hangs: each read times out.
    load.set_mode(Mode::Slow);
    let line = wait_load(&s, "the time-out is reported", |l| {
        l.contains("no answer within 150ms")
    });
    assert_eq!(keep_of(&line), keep, "{line}");
    eprintln!("shedding: hangs: {line}");
    slowest = slowest.max(assert_holds(&c, "hangs", keep, hold));

    // Nothing listens any more.
    load.close();
    // Refused, as a rule; but the closed port is free for any other test to bind while the
    // suite runs, so any failed read of this URL counts.
    let line = wait_load(&s, "the failed read is reported", |l| {
        l.contains("last read failed") && l.contains(url.as_str())
    });
    assert_eq!(keep_of(&line), keep, "{line}");
    eprintln!("shedding: unreachable: {line}");
    slowest = slowest.max(assert_holds(&c, "unreachable", keep, hold));
    eprintln!("shedding: slowest answer while load reads failed: {slowest:?}");
    assert_eq!(keep_of(&load_line(&explain(&s))), keep);
}

#[test]
fn an_endpoint_unreachable_from_the_start_leaves_the_whole_weight_and_says_why() {
    let url = format!("http://127.0.0.1:{}/load", closed_port("127.0.0.1"));
    let s = start(&shed_zone(&url, 0.25, ""), ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    let line = wait_load(&s, "the refusal is reported", |l| {
        l.contains(&format!("GET {url}: ")) && l.to_lowercase().contains("refused")
    });
    assert!(line.contains("no reading yet"), "{line}");
    assert!(line.contains("not shedding"), "{line}");
    assert_holds(
        &c,
        "unreachable from the start",
        100,
        Duration::from_millis(3 * INTERVAL_MS),
    );
}

// ---------------------------------------------------------------------------------------
// 5. A Prometheus series

/// Prometheus text where `busy{core="all"}` is `all` and every other series `other`.
fn prometheus(all: &str, other: &str) -> String {
    format!(
        "# HELP busy Share of time busy.\n# TYPE busy gauge\n\
         busy{{core=\"0\"}} {other}\nbusy{{core=\"all\"}} {all} 1700000000000\n\
         busy{{core=\"1\"}} {other}\nbusy {other}\nbusy_total{{core=\"all\"}} {other}\n\
         # HELP up Up.\nup 1\n"
    )
}

#[test]
fn a_prometheus_series_drives_shedding_like_a_plain_number() {
    let (load, url) = endpoint(&prometheus("0.5", "0.99"));
    let zone = shed_zone(&url, 0.25, "metric = \"busy{core=\\\"all\\\"}\"\n");
    let s = start(&zone, ONE_THREAD);
    let c = Client::new(&s, "127.0.0.1");
    wait_api(&s);
    // The other series are high: only busy{core="all"} counts.
    let line = wait_load(&s, "a read of 0.5", |l| l.contains("0.5 < low 0.7"));
    assert!(line.contains("not shedding"), "{line}");
    assert_holds(
        &c,
        "series 0.5",
        100,
        Duration::from_millis(3 * INTERVAL_MS),
    );

    load.set_body(&prometheus("0.95", "0.1"));
    let t0 = Instant::now();
    let down = trace_until(&s, &c, t0, "series 0.95", |share| share == 0.0);
    assert_gradual("series 0.95", &down, true);
    assert_shares("series 0.95", &c.run("cdn", 400), &[(B, 1), (C, 3)], 0.01);
    assert!(load_line(&explain(&s)).contains("0.95 > high 0.85"));

    load.set_body(&prometheus("0.5", "0.99"));
    let up = trace_until(&s, &c, Instant::now(), "series 0.5", |share| share == 1.0);
    assert_gradual("series 0.5", &up, false);

    // Without the series the read fails and says which series it wanted.
    load.set_body("# nothing here\nbusy{core=\"0\"} 0.99\n");
    let line = wait_load(&s, "the missing series is reported", |l| {
        l.contains("no series busy{core=\"all\"} in the body")
    });
    assert!(line.contains("not shedding"), "{line}");
    assert_holds(
        &c,
        "series missing",
        100,
        Duration::from_millis(3 * INTERVAL_MS),
    );
}

// ---------------------------------------------------------------------------------------
// 6. `meridian check` on bad load settings

/// A zone whose a has a load signal; `from` → `to` breaks one line of it.
fn check_zone(from: &str, to: &str) -> String {
    let load = "[datacenters.a.load]\nurl = \"http://10.0.0.5:9100/load\"\nhigh = 0.85\n\
                low = 0.70\ninterval = \"5s\"\ntimeout = \"2s\"\nstep = 0.25\n";
    let body = [
        dc_at("a", &format!("\"{A}\""), Some(1), (0.0, 0.0), load),
        dc("b", B, 1),
        gslb_map("cdn", &["a", "b"], ""),
    ]
    .concat();
    let text = zone_with(&body);
    if from.is_empty() {
        return text;
    }
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in\n{text}");
    text.replacen(from, to, 1)
}

/// `meridian check` on `zone`: exit status and stderr.
fn check(zone: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
    std::fs::write(dir.path().join("zones").join("example.com.toml"), zone).expect("zone");
    std::fs::write(dir.path().join("meridian.toml"), "zones_dir = \"zones\"\n").expect("config");
    let o = run_meridian(dir.path(), &["check", "--config", "meridian.toml"]);
    (
        o.status.code(),
        strip_ansi(&String::from_utf8_lossy(&o.stderr)),
    )
}

#[test]
fn check_accepts_a_load_signal_and_a_prometheus_series() {
    for (from, to) in [
        ("", ""),
        (
            "step = 0.25\n",
            "step = 1\nmetric = \"busy{core=\\\"all\\\"}\"\n",
        ),
    ] {
        let (code, err) = check(&check_zone(from, to));
        assert_eq!(code, Some(0), "{to:?}\n{err}");
    }
}

#[test]
fn check_reports_bad_load_settings_with_file_line_key_and_fix() {
    let key = |field: &str| format!("datacenters.a.load.{field}");
    for (from, to, field) in [
        ("low = 0.70", "low = 0.90", "low"),
        ("low = 0.70", "low = 0.85", "low"),
        (
            "url = \"http://10.0.0.5:9100/load\"",
            "url = \"ftp://x\"",
            "url",
        ),
        (
            "url = \"http://10.0.0.5:9100/load\"",
            "url = \"not a url\"",
            "url",
        ),
        (
            "step = 0.25\n",
            "step = 0.25\nmetric = \"1busy\"\n",
            "metric",
        ),
        (
            "step = 0.25\n",
            "step = 0.25\nmetric = \"busy{core=\\\"all\\\"\"\n",
            "metric",
        ),
        ("step = 0.25", "step = 0", "step"),
        ("step = 0.25", "step = 1.5", "step"),
        ("timeout = \"2s\"", "timeout = \"5s\"", "timeout"),
        ("timeout = \"2s\"", "timeout = \"6s\"", "timeout"),
        ("interval = \"5s\"", "interval = \"10ms\"", "interval"),
    ] {
        let text = check_zone(from, to);
        let (code, err) = check(&text);
        let what = format!("{from:?} -> {to:?}");
        assert_eq!(code, Some(2), "{what}: exit status\n{err}");
        let last = to.lines().last().unwrap_or(to);
        let line = 1 + text
            .lines()
            .position(|l| l.contains(last))
            .expect("the edited line");
        let want = format!("error: zones/example.com.toml:{line}:");
        let lines: Vec<&str> = err.lines().collect();
        let first = lines.first().copied().unwrap_or_default();
        assert!(
            first.starts_with(&want),
            "{what}: expected {want}COL: {}: ...\n{err}",
            key(field)
        );
        let rest = first[want.len()..].split_once(": ").map(|x| x.1);
        assert!(
            rest.is_some_and(|r| r.starts_with(&format!("{}: ", key(field)))),
            "{what}: expected the key {}\n{err}",
            key(field)
        );
        assert!(
            lines.get(1).is_some_and(|l| l.starts_with("  help: ")),
            "{what}: expected a fix on the next line\n{err}"
        );
        eprintln!("shedding: check {what}: {first} / {}", lines[1].trim());
    }
}
