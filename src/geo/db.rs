//! GeoIP databases (MaxMind DB format) and operator overrides → client [`Location`]s.
//!
//! One decoder reads every layout operators bring (see [`super::record`]). Several location
//! databases may be given (ip-location-db ships IPv4 and IPv6 separately); the first one
//! that knows an address wins.
//!
//! A load reads each file into memory, walks it once into the address partition every
//! GSLB table is compiled from, and lets the bytes go: answers never read the files. Files
//! are read rather than mapped for the walk because a database overwritten in place (`cp`
//! over it) while mapped would crash the server with SIGBUS, and the watcher starts a
//! reload exactly when files change. `explain` alone goes back to a file, mapping it for
//! one lookup and only when it is still the file that was loaded (same inode, size and
//! modification time), so the server holds no copy of any database between loads.

use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use maxminddb::{Reader, WithinOptions};
use rustc_hash::FxHashMap;
use thiserror::Error;

use super::partition::{Partition, SortedRanges};
use super::record::DecodedRecord;
use super::{Code, Location};
use crate::family::Family;

/// Why a database could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GeoError {
    /// The file could not be read.
    #[error("{path}: cannot read GeoIP database: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a MaxMind DB.
    #[error("{path}: cannot open GeoIP database: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: maxminddb::MaxMindDbError,
    },
    /// The file opened but its records could not be walked.
    #[error("{path}: corrupt GeoIP database: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: maxminddb::MaxMindDbError,
    },
    /// The search tree lists networks out of address order.
    #[error("{path}: corrupt GeoIP database: network {network} is out of address order")]
    Unordered {
        /// The file.
        path: PathBuf,
        /// The first network out of order.
        network: IpNet,
    },
}

impl GeoError {
    /// What the operator can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            GeoError::Read { .. } | GeoError::Open { .. } => {
                "point [geoip] databases at a MaxMind DB (.mmdb) file; see geoip/README.md"
            }
            GeoError::Corrupt { .. } | GeoError::Unordered { .. } => {
                "replace the file with a valid database"
            }
        }
    }
}

/// A location the operator pins to a network, ahead of any database.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationOverride {
    /// The network.
    pub network: IpNet,
    /// Where its clients are.
    pub location: Location,
    /// AS number to use for its clients, if given.
    pub asn: Option<u32>,
}

/// The databases of one load, as `explain` finds them again: which files, in which
/// order, and which version of each was loaded.
#[derive(Debug)]
pub struct GeoDb {
    locations: Vec<Source>,
    asn: Option<Source>,
    overrides: Vec<LocationOverride>,
}

/// One database file and the version of it that was loaded.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    stamp: Stamp,
}

/// What tells one version of a file from another without reading it: a file replaced by
/// rename has a new inode, one written in place a new modification time (and usually size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

/// What the databases say about one address, for `explain`.
#[derive(Clone, Debug, Default)]
pub struct GeoAnswer {
    /// The database network the address is in, and the file, when one knew it.
    pub network: Option<(IpNet, PathBuf)>,
    /// The operator override that applied, if any.
    pub override_network: Option<IpNet>,
    /// The location (default when unknown).
    pub location: Location,
    /// AS number and its network, when known.
    pub asn: Option<(u32, Option<IpNet>)>,
    /// Database files that could not be asked: changed or gone since the load (the
    /// answers come from what was loaded; a reload brings the new version in).
    pub unavailable: Vec<PathBuf>,
}

/// Every address range of both families mapped to (location id, AS number; 0 = unknown),
/// with the locations those ids stand for. Id 0 is the unknown location.
#[derive(Debug)]
pub struct BasePartition {
    /// IPv4 ranges.
    pub v4: Partition<(u32, u32)>,
    /// IPv6 ranges.
    pub v6: Partition<(u32, u32)>,
    /// Interned locations; index 0 is "unknown".
    pub locations: Vec<Location>,
}

impl GeoDb {
    /// No databases: every client is unknown (overrides still apply).
    pub fn empty(overrides: Vec<LocationOverride>) -> Self {
        Self {
            locations: Vec::new(),
            asn: None,
            overrides,
        }
    }

    /// Reads the location databases (in priority order) and the optional ASN database,
    /// one at a time, into the partition of every address, with the overrides laid over.
    /// At most one file's bytes are held at once, and none after.
    pub fn load(
        locations: &[PathBuf],
        asn: Option<&Path>,
        overrides: Vec<LocationOverride>,
    ) -> Result<(Self, BasePartition), GeoError> {
        let mut located = Interner::new();
        // Location databases, first one wins where several know an address.
        let mut sources = Vec::with_capacity(locations.len());
        let mut v4: Option<Partition<(u32, u32)>> = None;
        let mut v6: Option<Partition<(u32, u32)>> = None;
        for path in locations {
            let (source, reader) = read(path)?;
            let (p4, p6) = walk(&reader, path, |rec| {
                (located.id(rec.location), rec.asn.unwrap_or(0))
            })?;
            drop(reader);
            sources.push(source);
            v4 = Some(first_known(v4, p4));
            v6 = Some(first_known(v6, p6));
        }
        let mut v4 = v4.unwrap_or_else(|| Partition::uniform(Family::V4, (0, 0)));
        let mut v6 = v6.unwrap_or_else(|| Partition::uniform(Family::V6, (0, 0)));

        // The ASN database, where given, decides AS numbers.
        let asn = match asn {
            Some(path) => {
                let (source, reader) = read(path)?;
                let (a4, a6) = walk(&reader, path, |rec| rec.asn.unwrap_or(0))?;
                drop(reader);
                let asn_over = |(l, a): (u32, u32), b: u32| (l, if b != 0 { b } else { a });
                v4 = v4.zip(&a4, asn_over);
                v6 = v6.zip(&a6, asn_over);
                Some(source)
            }
            None => None,
        };

        // Operator overrides beat every database.
        if !overrides.is_empty() {
            let ids: Vec<(u32, u32)> = overrides
                .iter()
                .map(|o| (located.id(o.location.clone()), o.asn.unwrap_or(0)))
                .collect();
            let nets: Vec<(IpNet, usize)> = overrides
                .iter()
                .enumerate()
                .map(|(i, o)| (o.network, i))
                .collect();
            let (o4, o6) = Partition::from_networks(&nets);
            let apply = |(l, a): (u32, u32), o: Option<usize>| match o {
                Some(i) => (ids[i].0, if ids[i].1 != 0 { ids[i].1 } else { a }),
                None => (l, a),
            };
            v4 = v4.zip(&o4, apply);
            v6 = v6.zip(&o6, apply);
        }
        v4.coalesce();
        v6.coalesce();
        let db = Self {
            locations: sources,
            asn,
            overrides,
        };
        Ok((
            db,
            BasePartition {
                v4,
                v6,
                locations: located.into_locations(),
            },
        ))
    }

    /// Looks one address up the slow way (decoding records), for `explain`.
    pub fn lookup(&self, ip: IpAddr) -> GeoAnswer {
        // The same precedence as [`Self::load`]: location databases in order, the ASN
        // database over their AS numbers, overrides over both.
        let ip = ip.to_canonical();
        let mut out = GeoAnswer::default();
        // As in the compiled tables: addresses in the aliases of the IPv4 subtree
        // (Teredo 2001::/32, 6to4 2002::/16) are not looked up in the databases.
        let aliased = match ip {
            IpAddr::V6(a) => {
                let top = u128::from(a) >> 96;
                top >> 16 == 0x2002 || top == 0x2001_0000
            }
            IpAddr::V4(_) => false,
        };
        if !aliased {
            for s in &self.locations {
                match s.find(ip) {
                    Err(()) => out.unavailable.push(s.path.clone()),
                    Ok(None) => {}
                    Ok(Some((net, rec))) => {
                        out.location = rec.location;
                        out.asn = rec.asn.map(|a| (a, Some(net)));
                        out.network = Some((net, s.path.clone()));
                        break;
                    }
                }
            }
            if let Some(s) = &self.asn {
                match s.find(ip) {
                    Err(()) => out.unavailable.push(s.path.clone()),
                    Ok(None) => {}
                    Ok(Some((net, rec))) => {
                        if let Some(a) = rec.asn {
                            out.asn = Some((a, Some(net)));
                        }
                    }
                }
            }
        }
        if let Some(o) = self
            .overrides
            .iter()
            .filter(|o| o.network.contains(&ip))
            .max_by_key(|o| o.network.prefix_len())
        {
            out.override_network = Some(o.network);
            out.location = o.location.clone();
            if let Some(a) = o.asn {
                out.asn = Some((a, Some(o.network)));
            }
        }
        out
    }
}

impl Source {
    /// The record for `ip` in the loaded version of this file; `Err` when the file is
    /// gone, changed, or unreadable.
    fn find(&self, ip: IpAddr) -> Result<Option<(IpNet, DecodedRecord)>, ()> {
        let file = File::open(&self.path).map_err(drop)?;
        let meta = file.metadata().map_err(drop)?;
        if Stamp::of(&meta) != self.stamp {
            return Err(());
        }
        // SAFETY: the map lives for this one lookup, of a file that is the version loaded
        // (checked just above); replacing it by rename does not touch the mapped inode.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(drop)?;
        let reader = Reader::from_source(map).map_err(drop)?;
        let Ok(r) = reader.lookup(ip) else {
            return Ok(None);
        };
        if !r.has_data() {
            return Ok(None);
        }
        let (Ok(Some(rec)), Ok(net)) = (r.decode::<DecodedRecord>(), r.network()) else {
            return Ok(None);
        };
        Ok(IpNet::new(net.ip(), net.prefix()).ok().map(|n| (n, rec)))
    }
}

/// Reads a database file whole, and notes which version of it that was.
fn read(path: &Path) -> Result<(Source, Reader<Vec<u8>>), GeoError> {
    let io = |source| GeoError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(io)?;
    let reader = Reader::from_source(bytes).map_err(|source| GeoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((
        Source {
            path: path.to_path_buf(),
            stamp: Stamp::of(&meta),
        },
        reader,
    ))
}

/// `prev` where it knows the location, `next` elsewhere (location id 0 is unknown).
fn first_known(
    prev: Option<Partition<(u32, u32)>>,
    next: Partition<(u32, u32)>,
) -> Partition<(u32, u32)> {
    match prev {
        None => next,
        // A file without networks of this family (ip-location-db's IPv4-only files) has
        // nothing to add: skip the pass over millions of ranges.
        Some(prev) if next.len() == 1 && next.value(0).0 == 0 => prev,
        Some(prev) => prev.zip(&next, |a, b| if a.0 == 0 { b } else { a }),
    }
}

/// Locations by value, each stored once: a city database has millions of networks and a
/// few hundred thousand places. Id 0 is the unknown location.
struct Interner(FxHashMap<ByValue, u32>);

impl Interner {
    fn new() -> Self {
        let mut ids = FxHashMap::default();
        ids.insert(ByValue(Location::default()), 0);
        Self(ids)
    }

    fn id(&mut self, loc: Location) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(ByValue(loc)).or_insert(next)
    }

    /// The locations, indexed by id.
    fn into_locations(self) -> Vec<Location> {
        let mut by_id: Vec<(u32, Location)> = self.0.into_iter().map(|(l, id)| (id, l.0)).collect();
        by_id.sort_unstable_by_key(|(id, _)| *id);
        by_id.into_iter().map(|(_, l)| l).collect()
    }
}

/// A location compared and hashed by value (coordinates by their bits).
struct ByValue(Location);

impl ByValue {
    #[allow(clippy::type_complexity)]
    fn key(
        &self,
    ) -> (
        Option<Code>,
        Option<Code>,
        Option<&str>,
        Option<(u64, u64)>,
        Option<&str>,
        bool,
    ) {
        let l = &self.0;
        (
            l.country,
            l.continent,
            l.subdivision.as_deref(),
            l.coord.map(|c| (c.lat.to_bits(), c.lon.to_bits())),
            l.city.as_deref(),
            l.coord_is_centroid,
        )
    }
}

impl PartialEq for ByValue {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ByValue {}

impl std::hash::Hash for ByValue {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.key().hash(h);
    }
}

/// Every network of `reader` with data, as one partition per family. Each distinct record
/// is decoded once (networks share records by offset), and `decode` turns it into a small
/// value; ranges go straight into the partitions, neighbours with one value merged, so the
/// walk holds a few bytes per range and never the list of networks.
#[allow(clippy::type_complexity)]
fn walk<T: Copy + PartialEq + Default>(
    reader: &Reader<Vec<u8>>,
    path: &Path,
    mut decode: impl FnMut(DecodedRecord) -> T,
) -> Result<(Partition<T>, Partition<T>), GeoError> {
    let corrupt = |source| GeoError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    let mut cache: FxHashMap<usize, Option<T>> = FxHashMap::default();
    let mut last: Option<(usize, Option<T>)> = None;
    // Networks number about as many as tree nodes; ranges at most twice the networks.
    let room = 2 * reader.metadata().node_count as usize;
    let mut v4 = SortedRanges::with_capacity(Family::V4, room);
    let mut v6 = SortedRanges::with_capacity(Family::V6, room);
    // Aliases of the IPv4 subtree (6to4, Teredo) are left out (the default): they would
    // copy every IPv4 network into the IPv6 tables of every policy. Their clients are
    // unknown; `lookup` says the same.
    for item in reader.networks(WithinOptions::default()).map_err(corrupt)? {
        let r = item.map_err(corrupt)?;
        let Some(offset) = r.offset() else { continue };
        // Neighbouring networks often share a record (one place split into several
        // prefixes): the last one answers without a probe of the cache.
        let value = match last {
            Some((o, v)) if o == offset => v,
            _ => {
                let v = match cache.get(&offset) {
                    Some(v) => *v,
                    None => {
                        let v = r
                            .decode::<DecodedRecord>()
                            .map_err(corrupt)?
                            .map(&mut decode);
                        cache.insert(offset, v);
                        v
                    }
                };
                last = Some((offset, v));
                v
            }
        };
        let Some(value) = value else { continue };
        let net = r.network().map_err(corrupt)?;
        let Ok(net) = IpNet::new(net.ip(), net.prefix()) else {
            continue;
        };
        let (start, end) = Family::range_of(&net);
        let ranges = match net {
            IpNet::V4(_) => &mut v4,
            IpNet::V6(_) => &mut v6,
        };
        ranges
            .add(start, end, value)
            .map_err(|_| GeoError::Unordered {
                path: path.to_path_buf(),
                network: net,
            })?;
    }
    Ok((v4.finish(), v6.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("geoip")
            .join(name)
    }

    #[test]
    fn the_partition_places_what_the_database_says() {
        let (_, base) = GeoDb::load(&[test_data("test-city.mmdb")], None, Vec::new()).unwrap();
        let at = |p: &Partition<(u32, u32)>, key: u128| *p.value(p.index_of(key));
        let ams = at(&base.v4, u128::from(u32::from_be_bytes([127, 0, 1, 9])));
        let loc = &base.locations[ams.0 as usize];
        assert_eq!(loc.city.as_deref(), Some("Amsterdam"));
        assert_eq!(loc.subdivision.as_deref(), Some("NL-NH"));
        let v6 = at(&base.v6, 0x2001_0db8_0005_0000_0000_0000_0000_0001);
        assert_eq!(
            base.locations[v6.0 as usize].city.as_deref(),
            Some("Sydney")
        );
        // Unknown space is location 0, the unknown location.
        assert_eq!(at(&base.v4, 0x0A00_0001).0, 0);
        assert!(base.locations[0].is_unknown());
    }

    #[test]
    fn explain_asks_the_loaded_file_and_no_other_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        std::fs::copy(test_data("test-city.mmdb"), &path).unwrap();
        let (db, _) = GeoDb::load(std::slice::from_ref(&path), None, Vec::new()).unwrap();
        let ip: IpAddr = "127.0.1.9".parse().unwrap();

        let a = db.lookup(ip);
        assert_eq!(a.location.city.as_deref(), Some("Amsterdam"));
        assert_eq!(a.network.as_ref().map(|(_, f)| f), Some(&path));
        assert!(a.unavailable.is_empty());

        // Replaced by rename (as geoipupdate does): a new inode, not the version loaded.
        let new = dir.path().join("new.mmdb");
        std::fs::copy(test_data("test-country.mmdb"), &new).unwrap();
        std::fs::rename(&new, &path).unwrap();
        let a = db.lookup(ip);
        assert_eq!(a.unavailable, vec![path.clone()]);
        assert_eq!(a.network, None);
        assert!(a.location.is_unknown());

        // Gone altogether: the same.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(db.lookup(ip).unavailable, vec![path]);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        let err = GeoDb::load(std::slice::from_ref(&path), None, Vec::new()).unwrap_err();
        assert!(matches!(err, GeoError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("junk.mmdb"), "{err}");
        let err = GeoDb::load(&[dir.path().join("missing.mmdb")], None, Vec::new()).unwrap_err();
        assert!(matches!(err, GeoError::Read { .. }), "{err:?}");
    }
}
