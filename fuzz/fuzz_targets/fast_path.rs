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

#[path = "shared.rs"]
mod shared;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use libfuzzer_sys::fuzz_target;
use meridian::name_key::NameKey;
use meridian::serve::{Outcome, Responder, Transport, fast};

struct Fixture {
    fast: Responder,
    general: Responder,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        meridian::metrics::set_enabled(false);
        let (_, snap) = shared::fixture_zones();
        let snapshot = Arc::new(ArcSwap::from_pointee(snap));
        Fixture {
            fast: Responder::new(snapshot.clone(), 1232),
            general: Responder::new(snapshot, 1232).without_fast_path(),
        }
    })
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
    if fast::read(query, 1232, &mut NameKey::empty()).is_none() {
        return;
    }
    let f = fixture();
    let src = shared::source(data[0], data[1]);
    let t = if data[2] & 1 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let fast = answer(&f.fast, query, src, t);
    let general = answer(&f.general, query, src, t);
    assert_eq!(fast, general, "query {query:02x?} from {src} over {t:?}");
});
