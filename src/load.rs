//! One complete load: config → zones → compiled [`Snapshot`], or every diagnostic found.
//!
//! Start-up, `meridian check`, `explain` and reload all go through [`load_snapshot`], so
//! what `check` accepts is exactly what the server would serve.

use crate::compile::Snapshot;
use crate::config::ServerConfig;
use crate::diag::Diagnostics;
use crate::zone;

/// Reads, validates and compiles every zone. `Err` carries all diagnostics when any is an
/// error; `Ok` carries the warnings too.
pub fn load_snapshot(
    config: &ServerConfig,
    generation: u64,
) -> Result<(Snapshot, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::new();
    let zones = zone::load_dir(&config.zones_dir, &mut diags);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok((Snapshot::compile(&zones, generation), diags))
}
