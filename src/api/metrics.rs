//! `GET /metrics`: the Prometheus text format, put together at scrape time.
//!
//! The query path's counters are per-thread cells ([`crate::metrics::cells`]); a scrape sums
//! them here, reads health and weights from the live snapshot, and adds the metrics of
//! events recorded beside the path ([`crate::metrics::events`]). Nothing here is written by
//! a query or waits for one. Names and labels are listed in [`crate::metrics`].

use std::collections::BTreeMap;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, TextEncoder};

use crate::compile::Snapshot;
use crate::live;
use crate::metrics::{self, QUERY_CELLS, Series, Slot, cells, events::events};

/// The whole exposition for the server serving `snap`.
pub fn render(snap: &Snapshot) -> String {
    let mut families = events().registry.gather();
    families.extend(counted());
    families.extend(live(snap));
    // The text encoder refuses a family without series and writes nothing after it: a
    // server without GSLB names has no `meridian_answers_total` series, for one.
    families.retain(|f| !f.get_metric().is_empty());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    // Encoding into a Vec fails only for families it cannot express; ours are plain.
    let _ = TextEncoder::new().encode(&families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

/// The families the query path counts.
fn counted() -> Vec<MetricFamily> {
    use prometheus::core::Collector;
    let queries = counter(
        "meridian_queries_total",
        "Replies sent, by the zone that answered (- for none), query type, response code and transport.",
        &["zone", "qtype", "rcode", "transport"],
    );
    let answers = counter(
        "meridian_answers_total",
        "GSLB answers by the data center answered first.",
        &["zone", "name", "datacenter"],
    );
    let failover = counter(
        "meridian_failover_answers_total",
        "GSLB answers that went past a down data center the client would otherwise get.",
        &["zone", "name"],
    );
    let all_down = counter(
        "meridian_all_down_answers_total",
        "GSLB answers given by the all-down policy, every candidate being down.",
        &["zone", "name", "policy"],
    );
    let ecs = counter(
        "meridian_ecs_queries_total",
        "Queries with and without a valid EDNS Client Subnet option.",
        &["with_ecs"],
    );
    let misses = counter(
        "meridian_geoip_misses_total",
        "GSLB answers for addresses the GeoIP databases cannot place.",
        &[],
    );
    let truncated = counter(
        "meridian_truncated_total",
        "Replies cut to fit, with TC set.",
        &["transport"],
    );

    let rrl_dropped = counter(
        "meridian_rrl_dropped_total",
        "UDP replies response rate limiting dropped.",
        &[],
    );
    let rrl_slipped = counter(
        "meridian_rrl_slipped_total",
        "UDP replies response rate limiting sent as an empty TC=1 reply instead (slip).",
        &[],
    );

    let add = |c: &IntCounterVec, labels: &[&str], n: u64| c.with_label_values(labels).inc_by(n);
    let fixed = cells::totals([
        Slot::ECS_WITH,
        Slot::ECS_WITHOUT,
        Slot::GEOIP_MISS,
        Slot::TRUNCATED_UDP,
        Slot::TRUNCATED_TCP,
        Slot::RRL_DROPPED,
        Slot::RRL_SLIPPED,
    ]);
    add(&ecs, &["true"], fixed[0]);
    add(&ecs, &["false"], fixed[1]);
    add(&misses, &[], fixed[2]);
    add(&truncated, &["udp"], fixed[3]);
    add(&truncated, &["tcp"], fixed[4]);
    add(&rrl_dropped, &[], fixed[5]);
    add(&rrl_slipped, &[], fixed[6]);

    let mut zones = vec![("-".to_owned(), Slot::NO_ZONE)];
    for (series, slot) in metrics::series() {
        match series {
            Series::Queries { zone } => zones.push((zone.into(), slot)),
            Series::Answers {
                zone,
                name,
                datacenter,
            } => add(&answers, &[&zone, &name, &datacenter], cells::total(slot)),
            Series::Failover { zone, name } => {
                add(&failover, &[&zone, &name], cells::total(slot));
            }
            Series::AllDown { zone, name, policy } => {
                add(&all_down, &[&zone, &name, policy], cells::total(slot));
            }
        }
    }
    for (zone, first) in zones {
        let range = (0..QUERY_CELLS).map(|i| Slot(first.0 + i));
        for (cell, n) in cells::totals(range).into_iter().enumerate() {
            if n > 0 {
                let (qtype, rcode, transport) = metrics::query_labels(cell as u32);
                add(&queries, &[&zone, qtype, rcode, transport], n);
            }
        }
    }
    [
        queries,
        answers,
        failover,
        all_down,
        ecs,
        misses,
        truncated,
        rrl_dropped,
        rrl_slipped,
    ]
    .iter()
    .flat_map(Collector::collect)
    .collect()
}

/// The families read from the live snapshot: health and weights as they are now.
fn live(snap: &Snapshot) -> Vec<MetricFamily> {
    use prometheus::core::Collector;
    let up = gauge(
        "meridian_health_up",
        "1 when the address is answered (its probe and the overrides agree), else 0.",
        &["zone", "datacenter", "address"],
    );
    let weight = gauge(
        "meridian_datacenter_weight",
        "Weight in effect: configured, times the share kept while shedding; 0 when drained or down by override.",
        &["zone", "datacenter"],
    );
    // A data center is a candidate of many names: one series each.
    let mut ups = BTreeMap::new();
    let mut weights = BTreeMap::new();
    for zone in snap.zones() {
        let origin = zone.origin.to_string();
        for (_, g) in zone.gslb_names() {
            for c in g.candidates.iter() {
                for f in [&c.a, &c.aaaa] {
                    for (r, &slot) in f.records.iter().zip(f.slots.iter()) {
                        let Some(ip) = r.data.ip_addr() else {
                            continue;
                        };
                        let is_in = live::verdict(snap, c, slot).is_in();
                        ups.insert(
                            (origin.clone(), c.datacenter.clone(), ip.to_string()),
                            i64::from(is_in),
                        );
                    }
                }
                let effective = i64::from(live::effective_weight(snap, c));
                weights.insert((origin.clone(), c.datacenter.clone()), effective);
            }
        }
    }
    for ((zone, dc, addr), v) in ups {
        up.with_label_values(&[&zone, &dc, &addr]).set(v);
    }
    for ((zone, dc), v) in weights {
        weight.with_label_values(&[&zone, &dc]).set(v);
    }
    [up, weight].iter().flat_map(Collector::collect).collect()
}
