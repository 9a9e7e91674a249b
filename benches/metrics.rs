//! What counting for `/metrics` and the query log cost the answer path: the same GSLB query
//! answered with counting off, on, and on with a 1 % query log, in alternating blocks (each
//! block led by another mode), so that drift on a shared machine hits every mode alike. Prints each mode's median time
//! per query over the blocks and its ratio to "off".
//!
//! `cargo bench --bench metrics` (about half a minute).

#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use meridian::config::QueryLogConfig;
use meridian::querylog::QueryLog;
use meridian::serve::{Responder, Transport};

mod common;

const BLOCKS: usize = 60;
const PER_BLOCK: usize = 50_000;

fn main() {
    let db = common::synthetic_db();
    let snap = common::snapshot(&db);
    let clients = common::clients(4096);
    let mut m = Message::query();
    m.add_query(Query::query(
        Name::from_str("cdn.example.com.").unwrap(),
        RecordType::A,
    ));
    m.set_edns(Edns::new());
    let cdn = m.to_vec().unwrap();

    let shared = Arc::new(ArcSwap::new(snap));
    let plain = Responder::new(shared.clone(), 1232);
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        QueryLog::start(&QueryLogConfig {
            file: dir.path().join("queries.jsonl"),
            sample_rate: 0.01,
            queue: 8192,
        })
        .unwrap(),
    );
    let logged = Responder::new(shared, 1232).with_query_log(log.clone());

    let modes: [(&str, bool, &Responder); 3] = [
        ("counting off", false, &plain),
        ("counting on", true, &plain),
        ("counting on + query log 1 %", true, &logged),
    ];
    let mut out = Vec::with_capacity(4096);
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut i = 0;
    for block in 0..=BLOCKS {
        // Each block starts with another mode, so none always follows the same one.
        for k in 0..modes.len() {
            let m = (block + k) % modes.len();
            let (_, counting, responder) = modes[m];
            meridian::metrics::set_enabled(counting);
            let start = Instant::now();
            for _ in 0..PER_BLOCK {
                i = (i + 1) % clients.len();
                let src = SocketAddr::new(clients[i], 5353);
                black_box(responder.respond(black_box(&cdn), src, Transport::Udp, &mut out));
            }
            // Block 0 warms caches and the branch predictors; it is not kept.
            if block > 0 {
                times[m].push(start.elapsed().as_nanos() as f64 / PER_BLOCK as f64);
            }
        }
    }
    log.close(std::time::Duration::from_secs(5));
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&mut times[0].clone());
    println!(
        "respond gslb cdn A, median ns per query over {BLOCKS} alternating blocks of {PER_BLOCK}:"
    );
    for (m, (name, _, _)) in modes.iter().enumerate() {
        let t = median(&mut times[m]);
        println!("  {name:<30} {t:8.1} ns  {:.3}× off", t / base);
    }
}
