//! Zones: from the TOML an operator writes to a validated model.
//!
//! ```text
//! zones/*.toml ──parse──▶ spec (serde mirror, spans kept) ──validate──▶ model::Zone
//!                 syntax, unknown keys       meaning: names, addresses, CNAME rules, delegations
//! ```
//!
//! [`load_dir`] reads every zone of a directory and reports all problems of all files together.

pub mod model;
pub mod spec;
pub mod validate;

use std::path::Path;

use crate::diag::Diagnostics;
pub use model::{Node, RrSet, Ttl, Zone};
pub use validate::{load_zone_file, validate_zone};

/// The zone files of `dir`: its `*.toml` files, sorted. What the loader reads, what a
/// reload watches and what `meridian push` stores.
pub fn zone_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every `*.toml` file in `dir` (sorted by name). All diagnostics go to `diags`;
/// the zones returned are only those that validated.
pub fn load_dir(dir: &Path, diags: &mut Diagnostics) -> Vec<Zone> {
    let files = match zone_files(dir) {
        Ok(f) => f,
        Err(e) => {
            diags.error_global(
                format!("cannot read zones directory {}: {e}", dir.display()),
                Some("set `zones_dir` in the config to a directory of *.toml zone files".into()),
            );
            return Vec::new();
        }
    };
    if files.is_empty() {
        diags.error_global(
            format!("no zone files (*.toml) in {}", dir.display()),
            Some("add one file per zone, e.g. example.com.toml".into()),
        );
    }
    let mut zones: Vec<Zone> = Vec::new();
    for f in files {
        if let Some(z) = load_zone_file(&f, diags) {
            if let Some(other) = zones.iter().find(|o| o.origin == z.origin) {
                diags.error_global(
                    format!(
                        "{}: zone {} is already defined in {}",
                        f.display(),
                        z.origin,
                        other.file.display()
                    ),
                    Some("keep one file per zone".into()),
                );
                continue;
            }
            zones.push(z);
        }
    }
    zones
}
