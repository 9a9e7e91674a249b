//! Heap allocations per query, by kind, counted by a global allocator around
//! `Responder::respond` over the example zones and the test GeoIP database.
//!
//! Its own test binary because a global allocator is process-wide; the count is per thread,
//! so the test harness's other threads do not disturb it. Each bound is the number measured
//! today: a change that allocates more on the query path fails here, one that allocates less
//! should lower the bound (the README quotes these figures).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use meridian::serve::{Outcome, Responder, Transport};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed to the system allocator unchanged; the counter is a
// thread-local `Cell` of a `Copy` type, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn responder() -> Responder {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cfg = meridian::config::ServerConfig {
        zones_dir: root.join("zones"),
        ..Default::default()
    };
    cfg.geoip.databases = vec![root.join("geoip/test-city.mmdb")];
    let health = meridian::health::HealthSources::new(None).expect("in-memory overrides");
    let (snap, _) = meridian::load::load_snapshot(&cfg, &health, 1).expect("example zones load");
    Responder::new(Arc::new(ArcSwap::from_pointee(snap)), 1232)
}

/// A query as resolvers send it: RD clear, EDNS with a 1232-byte payload, and ECS when given.
fn query(name: &str, qtype: RecordType, ecs: Option<(&str, u8)>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x4d52;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if let Some((addr, prefix)) = ecs {
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            addr.parse().unwrap(),
            prefix,
            0,
        )));
    }
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// One query kind: label, name, type, ECS (address, prefix), most allocations allowed.
type Kind = (
    &'static str,
    &'static str,
    RecordType,
    Option<(&'static str, u8)>,
    u64,
);

/// The query kinds of the request path and the most allocations each may make.
const KINDS: [Kind; 6] = [
    ("static A", "www.example.com.", RecordType::A, None, 0),
    ("GSLB by source", "cdn.example.com.", RecordType::A, None, 0),
    (
        "GSLB with ECS",
        "cdn.example.com.",
        RecordType::A,
        Some(("198.51.100.0", 24)),
        0,
    ),
    ("NXDOMAIN", "nope.example.com.", RecordType::A, None, 0),
    ("wildcard", "x.apps.example.com.", RecordType::A, None, 1),
    ("referral", "www.dev.example.com.", RecordType::A, None, 0),
];

#[test]
fn allocations_per_query_kind() {
    let r = responder();
    let src: SocketAddr = "203.0.113.77:5353".parse().unwrap();
    let mut out = Vec::with_capacity(4096);
    let mut report = String::new();
    let mut over = Vec::new();
    for (kind, name, qtype, ecs, bound) in KINDS {
        let packet = query(name, qtype, ecs);
        // Warm up: first-use allocations (thread-locals, lazy statics) are not per query.
        for _ in 0..3 {
            assert_eq!(
                r.respond(&packet, src, Transport::Udp, &mut out),
                Outcome::Reply
            );
        }
        let before = allocations();
        const N: u64 = 100;
        for _ in 0..N {
            r.respond(&packet, src, Transport::Udp, &mut out);
        }
        let per_query = (allocations() - before).div_ceil(N);
        let reply = Message::from_vec(&out).unwrap();
        assert!(
            !reply.answers.is_empty() || !reply.authorities.is_empty(),
            "{kind}: an empty reply measures nothing\n{reply}"
        );
        report.push_str(&format!("{kind:<16} {per_query:>3} allocations\n"));
        if per_query > bound {
            over.push(format!("{kind}: {per_query} > {bound}"));
        }
    }
    println!("{report}");
    assert!(
        over.is_empty(),
        "more allocations than before:\n{over:?}\n{report}"
    );
}
