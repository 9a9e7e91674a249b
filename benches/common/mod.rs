//! Shared set-up for the benchmarks: a full-size synthetic GeoIP database and a snapshot
//! of the example zones compiled against it.

// Each benchmark uses part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use meridian::compile::Snapshot;
use meridian::config::ServerConfig;
use meridian::load::load_snapshot;

#[path = "../../tests/support/mmdb.rs"]
#[allow(unused_imports, unreachable_pub, missing_docs)]
pub(crate) mod mmdb;

#[path = "../../tests/support/geoip_fixtures.rs"]
#[allow(unused_imports, unreachable_pub, missing_docs)]
pub(crate) mod geoip_fixtures;

/// IPv4 and IPv6 networks in the synthetic database: about the size of GeoLite2 City.
pub(crate) const SYNTHETIC_V4: usize = 2_000_000;
/// See [`SYNTHETIC_V4`].
pub(crate) const SYNTHETIC_V6: usize = 1_000_000;

/// Writes (once per target directory) the synthetic database and returns its path.
pub(crate) fn synthetic_db() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("synthetic-city-{SYNTHETIC_V4}-{SYNTHETIC_V6}.mmdb"));
    if !path.exists() {
        let w = geoip_fixtures::synthetic_city(SYNTHETIC_V4, SYNTHETIC_V6, 1);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, w.to_bytes(geoip_fixtures::BUILD_EPOCH)).expect("write db");
        std::fs::rename(&tmp, &path).expect("rename db");
    }
    path
}

/// The example zones compiled against `db`.
pub(crate) fn snapshot(db: &Path) -> Arc<Snapshot> {
    let mut cfg = ServerConfig {
        zones_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("zones"),
        ..ServerConfig::default()
    };
    cfg.geoip.databases = vec![db.to_path_buf()];
    let health = meridian::health::HealthSources::new(None).expect("in-memory overrides");
    let (snap, _) = load_snapshot(&cfg, &health, 1).expect("example zones load");
    Arc::new(snap)
}

/// `n` client addresses spread over the IPv4 space (deterministic).
pub(crate) fn clients(n: usize) -> Vec<std::net::IpAddr> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            std::net::IpAddr::V4(std::net::Ipv4Addr::from(x as u32))
        })
        .collect()
}
