//! Operator overrides: force a data center or an address up, down or drained.
//!
//! An override is written into the [`HealthTable`] slots it covers, so it takes effect on
//! the next query without a reload and survives reloads. Every change is also written to
//! the state file (to a temporary file, then renamed) and read back at start, so overrides
//! survive restarts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::table::HealthTable;

/// An operator's override of what the probes say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Admin {
    /// No override: the probe state decides.
    #[default]
    #[serde(alias = "clear")]
    None,
    /// Forced up, whatever the probes say.
    Up,
    /// Forced down, whatever the probes say.
    Down,
    /// Taken out of answers for maintenance, like `Down`, but says why: the probes go on and
    /// `explain` shows whether the target is healthy to be put back.
    Drain,
}

impl Admin {
    /// Two bits, for the health table's words.
    pub(crate) fn code(self) -> u8 {
        match self {
            Admin::None => 0,
            Admin::Up => 1,
            Admin::Down => 2,
            Admin::Drain => 3,
        }
    }

    /// The inverse of [`Self::code`].
    pub(crate) fn from_code(code: u8) -> Self {
        match code & 0b11 {
            1 => Admin::Up,
            2 => Admin::Down,
            3 => Admin::Drain,
            _ => Admin::None,
        }
    }

    /// Down or drained: out of answers whatever the probes say.
    pub fn is_out(self) -> bool {
        matches!(self, Admin::Down | Admin::Drain)
    }
}

impl fmt::Display for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Admin::None => "none",
            Admin::Up => "up",
            Admin::Down => "down",
            Admin::Drain => "drain",
        })
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
    /// The state file is not what this version writes (an unknown state included).
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// Who set an override, when, why, and until when: shown beside it, never deciding it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideMeta {
    /// Who asked (`user@host` as the command saw it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When it was set, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// What the operator said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it ends by itself, Unix seconds; `None`: when cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

impl OverrideMeta {
    /// `set by ops@host at 2026-12-03 12:00:00 UTC, expires 14:00:00 UTC: "why"`, or
    /// empty when nothing is known.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(by) = &self.by {
            parts.push(format!("by {by}"));
        }
        if let Some(at) = self.at {
            parts.push(format!("at {}", unix_time(at)));
        }
        if let Some(e) = self.expires {
            parts.push(format!("expires {}", unix_time(e)));
        }
        let mut text = parts.join(", ");
        if let Some(r) = &self.reason {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&format!("{r:?}"));
        }
        text
    }
}

/// What the table keeps to say about an override: `None` when nothing is known.
fn note(meta: &OverrideMeta) -> Option<String> {
    Some(meta.describe()).filter(|d| !d.is_empty())
}

/// `2026-12-03 12:00:00 UTC`.
fn unix_time(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&format).unwrap_or_else(|_| secs.to_string())
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    overrides: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    key: OverrideKey,
    state: Admin,
    #[serde(flatten)]
    meta: OverrideMeta,
}

/// One override in force, with what is known about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideDetail {
    /// What it applies to.
    pub key: OverrideKey,
    /// Never [`Admin::None`].
    pub state: Admin,
    /// Who, when, why, until when.
    pub meta: OverrideMeta,
}

/// The overrides of one server: kept in its health table, persisted in its state file.
///
/// In a fleet the state file is the cache a node serves from while etcd cannot be
/// reached; [`Overrides::replace_all`] brings it in line with what etcd holds.
#[derive(Debug)]
pub struct Overrides {
    table: Arc<HealthTable>,
    file: Option<PathBuf>,
    /// What is known of each override in force. Its lock also serializes changes, so the
    /// file always holds the latest set.
    meta: Mutex<BTreeMap<OverrideKey, OverrideMeta>>,
}

impl Overrides {
    /// Overrides read from `file` (missing file: none yet) into `table`; `None` keeps them
    /// in memory only.
    pub fn load(file: Option<&Path>, table: Arc<HealthTable>) -> Result<Arc<Self>, OverrideError> {
        let mut meta = BTreeMap::new();
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let state: StateFile =
                        serde_json::from_str(&text).map_err(|source| OverrideError::Corrupt {
                            path: path.to_path_buf(),
                            source,
                        })?;
                    for e in state.overrides {
                        table.set_admin(&e.key, e.state);
                        table.set_note(&e.key, note(&e.meta));
                        meta.insert(e.key, e.meta);
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
            table,
            file: file.map(Path::to_path_buf),
            meta: Mutex::new(meta),
        }))
    }

    /// The override of `key`.
    pub fn get(&self, key: &OverrideKey) -> Admin {
        self.table.admin(key)
    }

    /// Sets (or with [`Admin::None`] clears) an override and persists all of them; when
    /// the file cannot be written, the override is taken back.
    pub fn set(&self, key: &OverrideKey, admin: Admin) -> Result<(), OverrideError> {
        self.set_with(key, admin, OverrideMeta::default())
    }

    /// [`Self::set`], with who, when, why and until when.
    pub fn set_with(
        &self,
        key: &OverrideKey,
        admin: Admin,
        meta: OverrideMeta,
    ) -> Result<(), OverrideError> {
        let mut metas = self.lock();
        let old = self.table.set_admin(key, admin);
        let old_meta = if admin == Admin::None {
            metas.remove(key)
        } else {
            metas.insert(key.clone(), meta)
        };
        if let Err(e) = self.persist(&metas) {
            self.table.set_admin(key, old);
            match old_meta {
                Some(m) => metas.insert(key.clone(), m),
                None => metas.remove(key),
            };
            return Err(e);
        }
        self.table.set_note(key, metas.get(key).and_then(note));
        if old != admin {
            tracing::info!("override: {key} {old} -> {admin}");
        }
        Ok(())
    }

    /// Makes the overrides in force exactly `wanted` (the fleet's set, read from etcd), less
    /// those past their `expires`:
    /// sets what is new or changed, clears what is gone, logs each change, and writes the
    /// state file. A file that cannot be written is logged: the table follows the fleet
    /// whatever the cache does.
    pub fn replace_all(&self, wanted: Vec<OverrideDetail>) {
        let mut metas = self.lock();
        let mut changed = false;
        let now = unix_now();
        let wanted: BTreeMap<OverrideKey, (Admin, OverrideMeta)> = wanted
            .into_iter()
            .filter(|d| d.state != Admin::None)
            // Past its time: etcd's lease may outlive it (a leader change renews leases).
            .filter(|d| d.meta.expires.is_none_or(|e| e >= now))
            .map(|d| (d.key, (d.state, d.meta)))
            .collect();
        for (key, _) in self.table.admins() {
            if !wanted.contains_key(&key) {
                let old = self.table.set_admin(&key, Admin::None);
                metas.remove(&key);
                self.table.set_note(&key, None);
                tracing::info!("override (fleet): {key} {old} -> none");
                changed = true;
            }
        }
        for (key, (admin, meta)) in wanted {
            let old = self.table.set_admin(&key, admin);
            if old != admin {
                tracing::info!("override (fleet): {key} {old} -> {admin}");
                changed = true;
            }
            if metas.get(&key) != Some(&meta) {
                self.table.set_note(&key, note(&meta));
                metas.insert(key, meta);
                changed = true;
            }
        }
        if changed {
            if let Err(e) = self.persist(&metas) {
                tracing::warn!("overrides from the fleet applied but not cached: {e}");
            }
        }
    }

    /// Clears the overrides whose time ran out before `now` (Unix seconds; `expires` is
    /// whole seconds, so an override lasts its time and up to a second more); returns how
    /// many.
    pub fn expire(&self, now: u64) -> usize {
        let due: Vec<OverrideKey> = self
            .lock()
            .iter()
            .filter(|(_, m)| m.expires.is_some_and(|e| e < now))
            .map(|(k, _)| k.clone())
            .collect();
        let mut n = 0;
        for key in due {
            match self.set(&key, Admin::None) {
                Ok(()) => {
                    tracing::info!("override of {key} expired");
                    n += 1;
                }
                Err(e) => tracing::warn!("override of {key} expired but: {e}"),
            }
        }
        n
    }

    /// Every override in force, sorted.
    pub fn list(&self) -> Vec<(OverrideKey, Admin)> {
        self.table.admins()
    }

    /// Every override in force with who, when and why, sorted.
    pub fn details(&self) -> Vec<OverrideDetail> {
        let metas = self.lock();
        self.table
            .admins()
            .into_iter()
            .map(|(key, state)| OverrideDetail {
                meta: metas.get(&key).cloned().unwrap_or_default(),
                key,
                state,
            })
            .collect()
    }

    /// What is known about the override of `key`, if one is in force.
    pub fn meta(&self, key: &OverrideKey) -> Option<OverrideMeta> {
        self.lock().get(key).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<OverrideKey, OverrideMeta>> {
        self.meta.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn persist(&self, metas: &BTreeMap<OverrideKey, OverrideMeta>) -> Result<(), OverrideError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let io = |source| OverrideError::Io {
            path: path.clone(),
            source,
        };
        let overrides = self
            .list()
            .into_iter()
            .map(|(key, state)| Entry {
                meta: metas.get(&key).cloned().unwrap_or_default(),
                key,
                state,
            })
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Arc<HealthTable> {
        HealthTable::new(16)
    }

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
        let t = table();
        let slot = t.datacenter_slot("example.com.", "ams").unwrap();
        let o = Overrides::load(Some(&file), t.clone()).unwrap();
        assert_eq!(o.get(&ams), Admin::None);
        o.set(&ams, Admin::Down).unwrap();
        o.set(&addr, Admin::Drain).unwrap();
        assert_eq!(
            t.word(slot).admin(),
            Admin::Down,
            "the table sees the change"
        );

        let again = Overrides::load(Some(&file), table()).unwrap();
        assert_eq!(again.get(&ams), Admin::Down);
        assert_eq!(again.get(&addr), Admin::Drain);
        again.set(&ams, Admin::None).unwrap();
        assert_eq!(
            Overrides::load(Some(&file), table()).unwrap().list(),
            vec![(addr, Admin::Drain)]
        );
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("overrides.json");
        std::fs::write(&file, "{nope").unwrap();
        let e = Overrides::load(Some(&file), table()).unwrap_err();
        assert!(e.to_string().contains("overrides.json is corrupt"), "{e}");
    }

    #[test]
    fn an_unknown_state_in_the_state_file_is_an_error_not_no_override() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("overrides.json");
        std::fs::write(
            &file,
            r#"{"overrides":[{"address":"192.0.2.10","state":"offline"}]}"#,
        )
        .unwrap();
        let e = Overrides::load(Some(&file), table()).unwrap_err();
        assert!(e.to_string().contains("unknown variant `offline`"), "{e}");
    }

    #[test]
    fn codes_round_trip() {
        for a in [Admin::None, Admin::Up, Admin::Down, Admin::Drain] {
            assert_eq!(Admin::from_code(a.code()), a);
            assert_eq!(parse_admin(&a.to_string()), Some(a));
        }
    }
}
