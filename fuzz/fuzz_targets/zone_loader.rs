//! Arbitrary text into the zone loader (`zone::validate_zone`: TOML parse, spec, validation)
//! and, when it validates, into the compiler (`Snapshot::compile`, over the test GeoIP data).
//!
//! Invariants checked: no panic; the zone is returned exactly when no error was reported;
//! every diagnostic names the file and has a position (line and column within the text) or
//! a key path, so an operator can find what it is about.

#![no_main]

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
    GEO.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let db = GeoDb::open(&[root.join("geoip/test-city.mmdb")], None, Vec::new())
            .expect("the test GeoIP data opens");
        let base = db.base_partition().expect("the test GeoIP data partitions");
        (Arc::new(db), base)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(FILE);
    let mut diags = Diagnostics::new();
    let zone = meridian::zone::validate_zone(path, text, &mut diags);
    assert_eq!(
        zone.is_some(),
        !diags.has_errors(),
        "a zone is returned exactly when there is no error:\n{}",
        diags.render()
    );
    let lines = text.split('\n').count();
    for d in diags.sorted() {
        assert_eq!(
            d.file.as_deref(),
            Some(path),
            "diagnostic without its file: {d}"
        );
        assert!(
            d.position.is_some() || !d.key.is_empty(),
            "diagnostic with neither position nor key: {d}"
        );
        if let Some((line, col)) = d.position {
            assert!(
                line >= 1 && line <= lines && col >= 1,
                "position out of the text: {d}"
            );
        }
    }
    if let Some(zone) = zone {
        let (db, base) = geo();
        let health = HealthSources::new(None).expect("in-memory overrides");
        // A zone that validates compiles, unless a table is full (an error, not a panic).
        let _ = Snapshot::compile(&[zone], db.clone(), base, &health, 1);
    }
});
