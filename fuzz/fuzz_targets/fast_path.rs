//! The wire fast path against the general path: for every input the fast path reads, the
//! two must give the same reply bytes (as `serve::fast`'s differential test asks of the
//! test queries), over the example zone, the test zone example.net and the test GeoIP
//! data, over UDP and TCP.
//!
//! Input: two bytes choose the client's address (as in `respond`), one the transport, the
//! rest is the query. Each path answers on a thread of its own, started for the input, so
//! the per-thread rotation state of weighted names starts alike for both. Counting for
//! `/metrics` is off: it would give each new thread a row of counters.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use libfuzzer_sys::fuzz_target;
use meridian::compile::Snapshot;
use meridian::diag::Diagnostics;
use meridian::geo::db::GeoDb;
use meridian::health::HealthSources;
use meridian::serve::{Outcome, Responder, Transport, fast};

struct Fixture {
    fast: Responder,
    general: Responder,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ sits in the crate root")
        .to_path_buf()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        meridian::metrics::set_enabled(false);
        let root = root();
        let mut diags = Diagnostics::new();
        let mut zones = meridian::zone::load_dir(&root.join("zones"), &mut diags);
        zones.extend(meridian::zone::load_dir(
            &root.join("tests/fixtures/good"),
            &mut diags,
        ));
        assert!(!diags.has_errors(), "{}", diags.render());
        let geo = GeoDb::open(&[root.join("geoip/test-city.mmdb")], None, Vec::new())
            .expect("the test GeoIP data opens");
        let base = geo
            .base_partition()
            .expect("the test GeoIP data partitions");
        let health = HealthSources::new(None).expect("in-memory overrides");
        let snap =
            Snapshot::compile(&zones, Arc::new(geo), &base, &health, 1).expect("the zones compile");
        let shared = Arc::new(ArcSwap::from_pointee(snap));
        Fixture {
            fast: Responder::new(shared.clone(), 1232),
            general: Responder::new(shared, 1232).without_fast_path(),
        }
    })
}

/// The client address, as `respond` chooses it.
fn source(a: u8, b: u8) -> SocketAddr {
    let ip = match a >> 6 {
        0 => IpAddr::V4(Ipv4Addr::new(127, 0, a & 0x07, b)),
        1 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, b)),
        2 => IpAddr::V6(Ipv4Addr::new(127, 0, a & 0x07, b).to_ipv6_mapped()),
        _ => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            u16::from(a),
            u16::from(b),
        )),
    };
    SocketAddr::new(ip, 5353)
}

fn answer(r: &Responder, query: &[u8], src: SocketAddr, t: Transport) -> Option<Vec<u8>> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut out = Vec::new();
            (r.respond(query, src, t, &mut out) == Outcome::Reply).then_some(out)
        })
        .join()
        .expect("no panic")
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let query = &data[3..];
    if fast::read(query, 1232).is_none() {
        return;
    }
    let f = fixture();
    let src = source(data[0], data[1]);
    let t = if data[2] & 1 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let fast = answer(&f.fast, query, src, t);
    let general = answer(&f.general, query, src, t);
    assert_eq!(fast, general, "query {query:02x?} from {src} over {t:?}");
});
