//! One complete load: config → zones → compiled [`Snapshot`], or every diagnostic found.
//!
//! Start-up, `meridian check`, `explain` and reload all go through [`load_snapshot`], so
//! what `check` accepts is exactly what the server would serve.

use std::sync::Arc;

use crate::compile::Snapshot;
use crate::config::ServerConfig;
use crate::diag::Diagnostics;
use crate::geo::db::GeoDb;
use crate::health::HealthSources;
use crate::zone;

/// Reads, validates and compiles every zone. `Err` carries all diagnostics when any is an
/// error; `Ok` carries the warnings too.
pub fn load_snapshot(
    config: &ServerConfig,
    health: &HealthSources,
    generation: u64,
) -> Result<(Snapshot, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::new();
    let zones = zone::load_dir(&config.zones_dir, &mut diags);
    // The databases are read even when a zone is broken, so that `check` reports every
    // problem at once.
    let loaded = GeoDb::load(
        &config.geoip.databases,
        config.geoip.asn.as_deref(),
        config.geoip.overrides.clone(),
    );
    if let Err(e) = &loaded {
        diags.error_global(e.to_string(), Some(e.hint().into()));
    }
    let (geo, base) = match loaded {
        Ok(loaded) if !diags.has_errors() => loaded,
        _ => return Err(diags),
    };
    let compiled = Snapshot::compile(&zones, Arc::new(geo), &base, health, generation);
    drop((zones, base));
    // The zone files' parse trees and the partition were many small blocks, now free; give
    // their pages back, or the process keeps the peak of the load for good.
    // SAFETY: malloc_trim only releases free memory of glibc's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
    match compiled {
        Ok(snap) => Ok((snap, diags)),
        Err(e) => {
            diags.error_global(e.to_string(), None);
            Err(diags)
        }
    }
}
