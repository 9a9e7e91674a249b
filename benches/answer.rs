//! The answer path: one query in, one reply out, over a snapshot compiled against a
//! full-size GeoIP database. Compare the GSLB cases with the static one: the geo decision
//! should cost little next to parsing and encoding.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use meridian::answer::resolve;
use meridian::compile::Found;
use meridian::name_key::NameKey;
use meridian::serve::{Responder, Transport};

mod common;

fn query(name: &str, ecs: Option<IpAddr>) -> Vec<u8> {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if let Some(ip) = ecs {
        let prefix = if ip.is_ipv4() { 24 } else { 56 };
        let net = ipnet::IpNet::new(ip, prefix).unwrap().trunc();
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            net.network(),
            prefix,
            0,
        )));
    }
    m.set_edns(e);
    m.to_vec().unwrap()
}

fn bench(c: &mut Criterion) {
    let db = common::synthetic_db();
    let snap = common::snapshot(&db);
    let clients = common::clients(4096);
    let responder = Responder::new(Arc::new(ArcSwap::new(snap.clone())), 1232);
    let mut out = Vec::with_capacity(4096);

    let www = query("www.example.com.", None);
    let src: SocketAddr = "192.0.2.1:5353".parse().unwrap();
    c.bench_function("respond/static www A", |b| {
        b.iter(|| responder.respond(black_box(&www), src, Transport::Udp, &mut out))
    });

    let nx = query("nx.example.com.", None);
    c.bench_function("respond/static NXDOMAIN", |b| {
        b.iter(|| responder.respond(black_box(&nx), src, Transport::Udp, &mut out))
    });

    let cdn = query("cdn.example.com.", None);
    let mut i = 0;
    c.bench_function("respond/gslb cdn A, 4096 source addresses", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            let src = SocketAddr::new(clients[i], 5353);
            responder.respond(black_box(&cdn), src, Transport::Udp, &mut out)
        })
    });

    let video = query("video.example.com.", None);
    c.bench_function(
        "respond/gslb video A (spread 2, sticky), 4096 source addresses",
        |b| {
            b.iter(|| {
                i = (i + 1) % clients.len();
                let src = SocketAddr::new(clients[i], 5353);
                responder.respond(black_box(&video), src, Transport::Udp, &mut out)
            })
        },
    );

    let with_ecs: Vec<Vec<u8>> = clients
        .iter()
        .map(|ip| query("cdn.example.com.", Some(*ip)))
        .collect();
    c.bench_function("respond/gslb cdn A, 4096 ECS subnets", |b| {
        b.iter(|| {
            i = (i + 1) % with_ecs.len();
            responder.respond(black_box(&with_ecs[i]), src, Transport::Udp, &mut out)
        })
    });

    let name = Name::from_str("cdn.example.com.").unwrap();
    let key = NameKey::new(&name).unwrap();
    c.bench_function("resolve/gslb cdn A (no parse, no encode)", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            black_box(
                resolve(&snap, &name, &key, RecordType::A, clients[i])
                    .answer
                    .len(),
            )
        })
    });

    // The same with weights: spread 2 over the nearest two, sticky by client network.
    let video = Name::from_str("video.example.com.").unwrap();
    let video_key = NameKey::new(&video).unwrap();
    c.bench_function(
        "resolve/gslb video A, spread 2 sticky (no parse, no encode)",
        |b| {
            b.iter(|| {
                i = (i + 1) % clients.len();
                black_box(
                    resolve(&snap, &video, &video_key, RecordType::A, clients[i])
                        .answer
                        .len(),
                )
            })
        },
    );

    let zone = snap.find_zone(&key).unwrap();
    let Found::Node(id) = zone.find(&key) else {
        panic!("cdn.example.com is not a node")
    };
    let table = &zone.node(id).gslb.as_ref().unwrap().table;
    c.bench_function("table/lookup", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            black_box(table.lookup(clients[i]).scope)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
