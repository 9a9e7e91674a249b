//! The weighted choice alone: smooth weighted round-robin and weighted rendezvous hashing
//! over 2 to 16 data centers, as the selection step calls them once per answer.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use meridian::weigh::{ClientNet, rendezvous, rotate, stable_hash};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("weigh");
    for n in [2u32, 4, 8, 16] {
        let rotor: Vec<(u32, u64)> = (0..n).map(|i| (i, u64::from(1 + i % 3))).collect();
        g.bench_with_input(BenchmarkId::new("rotate", n), &rotor, |b, m| {
            b.iter(|| rotate(black_box(m)))
        });
        let members: Vec<(u64, u64)> = (0..n)
            .map(|i| {
                (
                    stable_hash(format!("dc{i}").as_bytes()),
                    u64::from(1 + i % 3),
                )
            })
            .collect();
        let nets: Vec<ClientNet> = (0..4096u32)
            .map(|i| ClientNet::new(IpAddr::V4((i.wrapping_mul(2_654_435_761)).into()), 24))
            .collect();
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("rendezvous", n), &members, |b, m| {
            b.iter(|| {
                i = (i + 1) % nets.len();
                rendezvous(black_box(nets[i]), m.iter().copied())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
