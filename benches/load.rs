//! Loading: open a full-size GeoIP database (2 M IPv4 + 1 M IPv6 networks, like GeoLite2
//! City) and compile the example zones' GSLB names against it, as start-up and every
//! reload do.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn bench(c: &mut Criterion) {
    let db = common::synthetic_db();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("full-size city db + example zones", |b| {
        b.iter(|| common::snapshot(&db))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
