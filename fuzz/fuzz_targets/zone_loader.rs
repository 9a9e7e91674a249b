//! Arbitrary text into the zone loader (`zone::validate_zone`: TOML parse, spec, validation)
//! and, when it validates, into the compiler (`Snapshot::compile`, over the test GeoIP data).
//!
//! Invariants checked: no panic; the zone is returned exactly when no error was reported;
//! every diagnostic names the file and has a position (line and column within the text) or
//! a key path, so an operator can find what it is about.

#![no_main]

#[path = "shared.rs"]
mod shared;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use meridian::compile::Snapshot;
use meridian::diag::Diagnostics;
use meridian::geo::db::{BasePartition, GeoDb};
use meridian::health::HealthSources;

const FILE: &str = "zones/fuzz.example.toml";

fn geo() -> &'static (Arc<GeoDb>, BasePartition) {
    static GEO: OnceLock<(Arc<GeoDb>, BasePartition)> = OnceLock::new();
    GEO.get_or_init(shared::test_geo)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(FILE);
    let mut diags = Diagnostics::new();
    let zone = meridian::zone::validate_zone(path, text, &mut diags);
    shared::check_diagnostics(path, text, &diags, zone.is_some());
    if let Some(zone) = zone {
        let (db, base) = geo();
        let health = HealthSources::new(None).expect("in-memory overrides");
        // A zone that validates compiles, unless a table is full (an error, not a panic).
        let _ = Snapshot::compile(&[zone], db.clone(), base, &health, 1);
    }
});
