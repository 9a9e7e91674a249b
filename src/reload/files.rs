//! The files a reload reads, and how to tell that they changed.
//!
//! Both ways of noticing a change start here: the check every `reload_check` compares
//! [`Fingerprint`]s, and the watcher watches the directories of [`Watched`] and keeps the
//! events about the files it names.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::ServerConfig;

/// What a file looked like: enough to see an edit, a replacement or a removal without
/// reading it. The inode and change time are there because tools that copy or unpack
/// files keep the modification time; nothing can set the change time back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    modified: SystemTime,
    changed: (i64, i64),
    len: u64,
    inode: u64,
}

/// The state of the files a reload reads (`None`: missing).
pub type Fingerprint = Vec<(PathBuf, Option<Stamp>)>;

/// The stamp of `p`, `None` when it is missing or unreadable.
pub(super) fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some(Stamp {
        modified: m.modified().ok()?,
        changed: (m.ctime(), m.ctime_nsec()),
        len: m.len(),
        inode: m.ino(),
    })
}

fn is_toml(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "toml")
}

/// The current state of the config file and every zone file and database it names.
pub fn fingerprint(config: &ServerConfig) -> Fingerprint {
    let mut files = crate::zone::zone_files(&config.zones_dir).unwrap_or_default();
    files.extend(config.file.iter().cloned());
    files.extend(config.geoip.databases.iter().cloned());
    files.extend(config.geoip.asn.iter().cloned());
    files
        .into_iter()
        .map(|p| {
            let s = stamp(&p);
            (p, s)
        })
        .collect()
}

/// The directories to watch, and the names in each that matter: every `*.toml` of the
/// zones directory, the config file, the databases. Directories rather than files, because
/// editors, `mv` and `geoipupdate` replace a file with a new one, and a watch on the old
/// one would see nothing more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Watched {
    dirs: BTreeMap<PathBuf, Names>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Names {
    /// Every `*.toml` (the zones directory).
    toml: bool,
    /// These file names.
    files: BTreeSet<OsString>,
}

impl Watched {
    /// What `config` reads. Directories are made absolute and resolved (watch events name
    /// files under the directory as it was watched); one that does not exist stays as
    /// written, and watching it fails.
    pub(crate) fn of(config: &ServerConfig) -> Self {
        let mut w = Self::default();
        w.dir(&config.zones_dir).toml = true;
        let files = config
            .file
            .iter()
            .chain(&config.geoip.databases)
            .chain(&config.geoip.asn);
        for file in files {
            let Some(name) = file.file_name() else {
                continue;
            };
            let parent = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            w.dir(parent).files.insert(name.to_owned());
        }
        w
    }

    fn dir(&mut self, dir: &Path) -> &mut Names {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        self.dirs.entry(dir).or_default()
    }

    /// The directories, each once.
    pub(crate) fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.keys().map(PathBuf::as_path)
    }

    /// Whether `dir` is one of the directories.
    pub(crate) fn is_dir(&self, dir: &Path) -> bool {
        self.dirs.contains_key(dir)
    }

    /// Whether a change at `path` (a file in a watched directory) matters to a reload.
    pub(crate) fn matters(&self, path: &Path) -> bool {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        self.dirs
            .get(dir)
            .is_some_and(|n| (n.toml && is_toml(path)) || n.files.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_the_zones_dir_and_the_directories_of_the_config_and_databases() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let zones = root.join("zones");
        let geo = root.join("geo");
        std::fs::create_dir(&zones).unwrap();
        std::fs::create_dir(&geo).unwrap();
        let mut config = ServerConfig {
            file: Some(root.join("meridian.toml")),
            zones_dir: zones.clone(),
            ..ServerConfig::default()
        };
        config.geoip.databases = vec![geo.join("city.mmdb"), geo.join("v6.mmdb")];
        config.geoip.asn = Some(root.join("asn.mmdb"));
        let w = Watched::of(&config);

        let dirs: Vec<&Path> = w.dirs().collect();
        assert_eq!(dirs, [root.as_path(), geo.as_path(), zones.as_path()]);
        assert!(w.is_dir(&zones) && !w.is_dir(&root.join("other")));
        for matters in [
            zones.join("example.com.toml"),
            zones.join("new.toml"),
            root.join("meridian.toml"),
            root.join("asn.mmdb"),
            geo.join("city.mmdb"),
            geo.join("v6.mmdb"),
        ] {
            assert!(w.matters(&matters), "{}", matters.display());
        }
        for ignored in [
            zones.join(".example.com.toml.swp"),
            zones.join("README"),
            root.join("other.toml"),
            root.join(".meridian").join("overrides.json"),
            geo.join("city.mmdb.tmp"),
            root.join("zones"),
        ] {
            assert!(!w.matters(&ignored), "{}", ignored.display());
        }
    }

    #[test]
    fn a_replaced_file_has_a_new_fingerprint_even_with_the_old_time_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        let file = zones.join("a.toml");
        std::fs::write(&file, "one").unwrap();
        let config = ServerConfig {
            zones_dir: zones.clone(),
            geoip: Default::default(),
            ..ServerConfig::default()
        };
        let before = fingerprint(&config);
        assert_eq!(before, fingerprint(&config));

        // Same length and modification time, but a new file put in its place.
        let old = std::fs::metadata(&file).unwrap().modified().unwrap();
        let new = zones.join("a.toml.new");
        std::fs::write(&new, "two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&new)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::rename(&new, &file).unwrap();
        assert_ne!(before, fingerprint(&config));
    }
}
