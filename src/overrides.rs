//! Operator overrides: force a data center or an address up, down or drained.
//!
//! Each data center and each address has one [`AdminCell`], shared by every snapshot (the
//! compiler asks [`Overrides::cell`] for it), so a change takes effect on the next query
//! without a reload, and survives reloads. Every change is written to the state file
//! (write to a temporary file, then rename), and read back at start, so overrides
//! survive restarts.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::health::Admin;

/// The override of one data center or address; read lock-free on the query path.
#[derive(Debug, Default)]
pub struct AdminCell(AtomicU8);

impl AdminCell {
    /// The current override.
    #[inline]
    pub fn get(&self) -> Admin {
        match self.0.load(Ordering::Relaxed) {
            1 => Admin::Up,
            2 => Admin::Down,
            3 => Admin::Drain,
            _ => Admin::None,
        }
    }

    fn set(&self, a: Admin) {
        self.0.store(a as u8, Ordering::Relaxed);
    }
}

/// What an override applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(untagged)]
pub enum OverrideKey {
    /// A data center of a zone.
    Datacenter {
        /// Zone origin, absolute (`example.com.`).
        zone: String,
        /// Data center id.
        datacenter: String,
    },
    /// One address, wherever it is used.
    Address {
        /// The address.
        address: IpAddr,
    },
}

impl fmt::Display for OverrideKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverrideKey::Datacenter { zone, datacenter } => {
                write!(f, "data center {datacenter} of {zone}")
            }
            OverrideKey::Address { address } => write!(f, "address {address}"),
        }
    }
}

/// Why an override could not be applied or stored.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OverrideError {
    /// The state file could not be read or written.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file is not what this version writes.
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    overrides: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    key: OverrideKey,
    state: String,
}

/// Every override cell, and where they are persisted.
#[derive(Debug)]
pub struct Overrides {
    cells: Mutex<HashMap<OverrideKey, Arc<AdminCell>>>,
    file: Option<PathBuf>,
}

impl Overrides {
    /// Overrides read from `file` (missing file: none yet); `None` keeps them in memory only.
    pub fn load(file: Option<&Path>) -> Result<Arc<Self>, OverrideError> {
        let mut cells = HashMap::new();
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let state: StateFile =
                        serde_json::from_str(&text).map_err(|source| OverrideError::Corrupt {
                            path: path.to_path_buf(),
                            source,
                        })?;
                    for e in state.overrides {
                        let cell = AdminCell::default();
                        cell.set(parse_admin(&e.state).unwrap_or(Admin::None));
                        cells.insert(e.key, Arc::new(cell));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(OverrideError::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        Ok(Arc::new(Self {
            cells: Mutex::new(cells),
            file: file.map(Path::to_path_buf),
        }))
    }

    /// The cell of `key`, created (no override) on first use.
    pub fn cell(&self, key: &OverrideKey) -> Arc<AdminCell> {
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        cells.entry(key.clone()).or_default().clone()
    }

    /// Sets (or with [`Admin::None`] clears) an override and persists all of them.
    pub fn set(&self, key: &OverrideKey, admin: Admin) -> Result<(), OverrideError> {
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let cell = cells.entry(key.clone()).or_default().clone();
        let old = cell.get();
        cell.set(admin);
        if let Err(e) = self.persist(&cells) {
            cell.set(old);
            return Err(e);
        }
        if old != admin {
            tracing::info!("override: {key} {old} -> {admin}");
        }
        Ok(())
    }

    /// Every override in force, sorted.
    pub fn list(&self) -> Vec<(OverrideKey, Admin)> {
        let cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<(OverrideKey, Admin)> = cells
            .iter()
            .map(|(k, c)| (k.clone(), c.get()))
            .filter(|(_, a)| *a != Admin::None)
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn persist(&self, cells: &HashMap<OverrideKey, Arc<AdminCell>>) -> Result<(), OverrideError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let io = |source| OverrideError::Io {
            path: path.clone(),
            source,
        };
        let mut overrides: Vec<Entry> = cells
            .iter()
            .filter(|(_, c)| c.get() != Admin::None)
            .map(|(k, c)| Entry {
                key: k.clone(),
                state: c.get().to_string(),
            })
            .collect();
        overrides.sort_by(|a, b| a.key.cmp(&b.key));
        let text = serde_json::to_string_pretty(&StateFile { overrides })
            .map_err(|e| io(std::io::Error::other(e)))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// `up`, `down`, `drain`, `clear`/`none`.
pub fn parse_admin(s: &str) -> Option<Admin> {
    match s {
        "up" => Some(Admin::Up),
        "down" => Some(Admin::Down),
        "drain" => Some(Admin::Drain),
        "clear" | "none" => Some(Admin::None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/overrides.json");
        let ams = OverrideKey::Datacenter {
            zone: "example.com.".into(),
            datacenter: "ams".into(),
        };
        let addr = OverrideKey::Address {
            address: "192.0.2.10".parse().unwrap(),
        };
        let o = Overrides::load(Some(&file)).unwrap();
        let cell = o.cell(&ams);
        assert_eq!(cell.get(), Admin::None);
        o.set(&ams, Admin::Down).unwrap();
        o.set(&addr, Admin::Drain).unwrap();
        assert_eq!(cell.get(), Admin::Down, "the shared cell sees the change");

        let again = Overrides::load(Some(&file)).unwrap();
        assert_eq!(again.cell(&ams).get(), Admin::Down);
        assert_eq!(again.cell(&addr).get(), Admin::Drain);
        again.set(&ams, Admin::None).unwrap();
        assert_eq!(
            Overrides::load(Some(&file)).unwrap().list(),
            vec![(addr, Admin::Drain)]
        );
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("overrides.json");
        std::fs::write(&file, "{nope").unwrap();
        let e = Overrides::load(Some(&file)).unwrap_err();
        assert!(e.to_string().contains("overrides.json is corrupt"), "{e}");
    }
}
