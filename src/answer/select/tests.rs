use super::*;

const ADMINS: [Admin; 4] = [Admin::None, Admin::Up, Admin::Down, Admin::Drain];

#[test]
fn admit_follows_the_override_rules_for_every_combination() {
    for dc in ADMINS {
        for addr in ADMINS {
            for probe_up in [true, false] {
                for flapping in [true, false] {
                    let v = admit(
                        Word::new(true, false, dc),
                        Word::new(probe_up, flapping, addr),
                    );
                    // Written out as the README states the rules, not as the code does.
                    let operator_out = matches!(dc, Admin::Down | Admin::Drain)
                        || matches!(addr, Admin::Down | Admin::Drain);
                    let expected_in =
                        !operator_out && (addr == Admin::Up || dc == Admin::Up || probe_up);
                    assert_eq!(v.is_in(), expected_in, "dc {dc} addr {addr} up {probe_up}");
                    assert_eq!(
                        v.operator_out(),
                        dc.is_out() || addr.is_out(),
                        "dc {dc} addr {addr}"
                    );
                }
            }
        }
    }
}

use crate::compile::{Snapshot, test_zone};
use crate::health::{HealthSources, OverrideKey};
use std::collections::BTreeMap;

/// Four data centers, weights 3, 1, 2, 2, no GeoIP data: every client gets them as
/// written, so the head is `a` and `b`.
fn weighted(extra: &str) -> (HealthSources, Snapshot) {
    weighted_with("", extra)
}

/// [`weighted`] with `dc_extra` after the last data center's table and `extra` in the
/// GSLB table.
fn weighted_with(dc_a_extra: &str, extra: &str) -> (HealthSources, Snapshot) {
    let health = HealthSources::new(None).unwrap();
    let mut body = String::new();
    for (dc, w) in [("a", 3), ("b", 1), ("c", 2), ("d", 2)] {
        let last = match dc {
            "a" => 10,
            "b" => 20,
            "c" => 30,
            _ => 40,
        };
        body += &format!(
            "[datacenters.{dc}]\naddresses = [\"192.0.2.{last}\"]\nlocation = [0.0, 0.0]\nweight = {w}\n"
        );
    }
    body += dc_a_extra;
    body += &format!(
        "[names.cdn.gslb]\ndatacenters = [\"a\", \"b\", \"c\", \"d\"]\nspread = 2\nspill = 2\n{extra}\n"
    );
    let snap = test_zone::snapshot(&body, &health);
    (health, snap)
}

/// Data center of each of `n` answers, counted, for clients `client(i)`.
fn tally(snap: &Snapshot, n: usize, client: impl Fn(usize) -> Client) -> BTreeMap<String, usize> {
    let g = snap.zones()[0].gslb_nodes().next().unwrap();
    let mut out = BTreeMap::new();
    for i in 0..n {
        let c = client(i);
        let d = g.table.lookup(c.addr);
        let Choice::Addresses(p) = choose(g, &snap.health, &d, Family::V4, client_key(g, c)) else {
            panic!("no addresses")
        };
        *out.entry(g.candidates[p.chosen[0].0 as usize].datacenter.clone())
            .or_default() += 1;
    }
    out
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn one_client(_: usize) -> Client {
    Client::from("192.0.2.1".parse::<std::net::IpAddr>().unwrap())
}

#[test]
fn rotation_shares_the_head_by_weight_exactly() {
    let (_h, snap) = weighted("");
    assert_eq!(
        tally(&snap, 400, one_client),
        counts(&[("a", 300), ("b", 100)])
    );
}

#[test]
fn a_down_heads_share_spills_over_the_next_by_weight() {
    let (health, snap) = weighted("");
    let b = OverrideKey::Datacenter {
        zone: "example.com.".into(),
        datacenter: "b".into(),
    };
    health.overrides.set(&b, Admin::Down).unwrap();
    assert_eq!(
        tally(&snap, 800, one_client),
        counts(&[("a", 600), ("c", 100), ("d", 100)])
    );
    let g = snap.zones()[0].gslb_nodes().next().unwrap();
    let d = g.table.lookup(one_client(0).addr);
    let f: Vec<(u8, f64)> = shares(g, &snap.health, &d, Family::V4).fractions().to_vec();
    assert_eq!(f, [(0, 0.75), (1, 0.0), (2, 0.125), (3, 0.125)]);
    // Drained heads spill the same way; a drained spill target takes nothing.
    health.overrides.set(&b, Admin::Drain).unwrap();
    let c = OverrideKey::Datacenter {
        zone: "example.com.".into(),
        datacenter: "c".into(),
    };
    health.overrides.set(&c, Admin::Drain).unwrap();
    assert_eq!(
        tally(&snap, 400, one_client),
        counts(&[("a", 300), ("d", 100)])
    );
}

#[test]
fn weight_zero_is_never_answered_while_others_are_up() {
    let (_h, drained) = {
        let health = HealthSources::new(None).unwrap();
        let body = "[datacenters.a]\naddresses = [\"192.0.2.10\"]\nlocation = [0.0, 0.0]\nweight = 0\n\
                    [datacenters.b]\naddresses = [\"192.0.2.20\"]\nlocation = [0.0, 0.0]\n\
                    [names.cdn.gslb]\ndatacenters = [\"a\", \"b\"]\n";
        let snap = test_zone::snapshot(body, &health);
        (health, snap)
    };
    assert_eq!(tally(&drained, 50, one_client), counts(&[("b", 50)]));
}

#[test]
fn sticky_keeps_a_network_and_spreads_networks_by_weight() {
    let (health, snap) = weighted("select = \"sticky\"");
    let net = |i: usize| Client::from(std::net::IpAddr::V4(((i as u32) << 8).into()));
    let t = tally(&snap, 8000, net);
    // 3:1 within a few percent over 8000 networks.
    let a = t["a"] as f64 / 8000.0;
    assert!((a - 0.75).abs() < 0.03, "{t:?}");
    // Every address of a /24 gets what its network gets; so does the next query.
    let g = snap.zones()[0].gslb_nodes().next().unwrap();
    let first = |c: Client| {
        let d = g.table.lookup(c.addr);
        match choose(g, &snap.health, &d, Family::V4, client_key(g, c)) {
            Choice::Addresses(p) => p.chosen[0].0,
            _ => panic!(),
        }
    };
    for i in 0..200 {
        let base = first(net(i));
        let same_net = Client::from(std::net::IpAddr::V4((((i as u32) << 8) | 77).into()));
        assert_eq!(first(same_net), base);
        assert_eq!(first(net(i)), base);
    }
    // b down: only b's networks move (to c and d), a keeps all of its own.
    let before: Vec<u8> = (0..2000).map(|i| first(net(i))).collect();
    let b = OverrideKey::Datacenter {
        zone: "example.com.".into(),
        datacenter: "b".into(),
    };
    health.overrides.set(&b, Admin::Down).unwrap();
    for (i, was) in before.iter().enumerate() {
        let now = first(net(i));
        if *was == 0 {
            assert_eq!(now, 0, "a network of a moved");
        } else {
            assert!(now == 2 || now == 3, "b's network went to {now}");
        }
    }
}

/// [`weighted`] with a load signal on `a` (never read here: the test sets the share).
fn shedding(extra: &str) -> (HealthSources, Snapshot) {
    weighted_with(
        "[datacenters.a.load]\nurl = \"http://127.0.0.1:9/load\"\nhigh = 0.85\nlow = 0.7\n",
        extra,
    )
}

fn keep_a(snap: &Snapshot, percent: u8) {
    let g = snap.zones()[0].gslb_nodes().next().unwrap();
    snap.health.set_keep(g.candidates[0].load.unwrap(), percent);
}

#[test]
fn an_overloaded_head_sheds_its_kept_share_to_the_spill_targets() {
    let (_h, snap) = shedding("");
    keep_a(&snap, 50);
    // a: 3/4 of answers, half of them shed over c and d (2:2); b keeps its quarter.
    assert_eq!(
        tally(&snap, 1600, one_client),
        counts(&[("a", 600), ("b", 400), ("c", 300), ("d", 300)])
    );
    let g = snap.zones()[0].gslb_nodes().next().unwrap();
    let d = g.table.lookup(one_client(0).addr);
    let f: Vec<(u8, f64)> = shares(g, &snap.health, &d, Family::V4).fractions().to_vec();
    assert_eq!(f, [(0, 0.375), (1, 0.25), (2, 0.1875), (3, 0.1875)]);
    keep_a(&snap, 100);
    assert_eq!(
        tally(&snap, 400, one_client),
        counts(&[("a", 300), ("b", 100)])
    );
}

#[test]
fn the_last_healthy_data_center_is_never_shed() {
    let (health, snap) = shedding("");
    keep_a(&snap, 0);
    for dc in ["b", "c", "d"] {
        let key = OverrideKey::Datacenter {
            zone: "example.com.".into(),
            datacenter: dc.into(),
        };
        health.overrides.set(&key, Admin::Down).unwrap();
    }
    assert_eq!(tally(&snap, 50, one_client), counts(&[("a", 50)]));
}

#[test]
fn sticky_shedding_moves_a_growing_stable_set_of_networks() {
    let (_h, snap) = shedding("select = \"sticky\"");
    let net = |i: usize| Client::from(std::net::IpAddr::V4(((i as u32) << 8).into()));
    let g = snap.zones()[0].gslb_nodes().next().unwrap();
    let on_a = |snap: &Snapshot| -> Vec<bool> {
        (0..4000)
            .map(|i| {
                let c = net(i);
                let d = g.table.lookup(c.addr);
                match choose(g, &snap.health, &d, Family::V4, client_key(g, c)) {
                    Choice::Addresses(p) => p.chosen[0].0 == 0,
                    _ => panic!(),
                }
            })
            .collect()
    };
    let full = on_a(&snap);
    keep_a(&snap, 75);
    let three_quarters = on_a(&snap);
    keep_a(&snap, 50);
    let half = on_a(&snap);
    // Shedding only moves networks away from a, and a network shed at 75% stays shed at 50%.
    for i in 0..full.len() {
        assert!(full[i] || !three_quarters[i], "network {i} came to a");
        assert!(
            three_quarters[i] || !half[i],
            "network {i} came back at 50%"
        );
    }
    let count = |v: &[bool]| v.iter().filter(|x| **x).count() as f64;
    let ratio = count(&half) / count(&full);
    assert!((ratio - 0.5).abs() < 0.05, "kept {ratio}");
}

#[test]
fn first_bits_keeps_the_lowest() {
    assert_eq!(first_bits(0b1011_0110, 2), 0b0000_0110);
    assert_eq!(first_bits(0b1011_0110, 64), 0b1011_0110);
    assert_eq!(first_bits(0, 3), 0);
    assert_eq!(first_bits(u64::MAX, usize::MAX), u64::MAX);
}
