//! What the fuzz targets share: the fixture zones and GeoIP data, the client addresses the
//! request-path targets choose from, and the diagnostics check of the loader targets.
//! Each target includes this file as a module and uses part of it.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meridian::compile::Snapshot;
use meridian::diag::Diagnostics;
use meridian::geo::db::{BasePartition, GeoDb};
use meridian::health::HealthSources;
use meridian::zone::Zone;

/// The crate root (fuzz/ sits in it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ sits in the crate root")
        .to_path_buf()
}

/// The test GeoIP data (geoip/test-city.mmdb) and its partition.
pub fn test_geo() -> (Arc<GeoDb>, BasePartition) {
    let (db, base) = GeoDb::load(&[root().join("geoip/test-city.mmdb")], None, Vec::new())
        .expect("the test GeoIP data loads");
    (Arc::new(db), base)
}

/// The example zone (zones/) and the test zone example.net (tests/fixtures/good/: big
/// answers that need TC, CNAME chains across names), compiled over the test GeoIP data.
pub fn fixture_zones() -> (Vec<Zone>, Snapshot) {
    let root = root();
    let mut diags = Diagnostics::new();
    let mut zones = meridian::zone::load_dir(&root.join("zones"), &mut diags);
    zones.extend(meridian::zone::load_dir(
        &root.join("tests/fixtures/good"),
        &mut diags,
    ));
    assert!(!diags.has_errors(), "{}", diags.render());
    let (geo, base) = test_geo();
    let health = HealthSources::new(None).expect("in-memory overrides");
    let snap = Snapshot::compile(&zones, geo, &base, &health, 1).expect("the zones compile");
    (zones, snap)
}

/// The client address two input bytes choose: 127.0.0.0/16 (where the test GeoIP data
/// places 127.0.1.0/24 to 127.0.5.0/24), 192.0.2.0/24 (the example map's `network` rule),
/// or IPv6, mapped or not.
pub fn source(a: u8, b: u8) -> SocketAddr {
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

/// What a loader reported about `text` read from `path`: it returned its result (`loaded`)
/// exactly when no error was reported, and every diagnostic names the file and has a
/// position inside the text or a key path.
pub fn check_diagnostics(path: &Path, text: &str, diags: &Diagnostics, loaded: bool) {
    assert_eq!(
        loaded,
        !diags.has_errors(),
        "a result is returned exactly when there is no error:\n{}",
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
}
