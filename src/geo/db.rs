//! GeoIP databases (MaxMind DB format) and operator overrides → client [`Location`]s.
//!
//! One decoder reads every layout operators bring: MaxMind GeoIP2/GeoLite2 City and
//! Country and DB-IP's compatible files (nested `country.iso_code`, `location.latitude`…),
//! and the flat layouts of IPinfo Lite and ip-location-db (`country_code`, `latitude`,
//! `asn`…). Several location databases may be given (ip-location-db ships IPv4 and IPv6
//! separately); the first one that knows an address wins.
//!
//! Files are read into memory rather than mapped: a database overwritten in place (`cp`
//! over it) would otherwise crash the server with SIGBUS. Answers never read the files;
//! they use the tables compiled from them (see [`super::partition`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use maxminddb::{Reader, WithinOptions};
use serde_json::Value;
use thiserror::Error;

use super::partition::Partition;
use super::{Code, Coord, Location};
use crate::family::Family;

/// Why a database could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GeoError {
    /// The file could not be read or is not a MaxMind DB.
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

/// The databases of one load.
pub struct GeoDb {
    locations: Vec<Source>,
    asn: Option<Source>,
    overrides: Vec<LocationOverride>,
}

struct Source {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field(
                "locations",
                &self.locations.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .field("asn", &self.asn.as_ref().map(|s| &s.path))
            .field("overrides", &self.overrides.len())
            .finish()
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

    /// Opens the location databases (in priority order), the optional ASN database, and
    /// keeps the overrides.
    pub fn open(
        locations: &[PathBuf],
        asn: Option<&Path>,
        overrides: Vec<LocationOverride>,
    ) -> Result<Self, GeoError> {
        let open = |p: &Path| -> Result<Source, GeoError> {
            let reader = Reader::open_readfile(p).map_err(|source| GeoError::Open {
                path: p.to_path_buf(),
                source,
            })?;
            Ok(Source {
                path: p.to_path_buf(),
                reader,
            })
        };
        Ok(Self {
            locations: locations
                .iter()
                .map(|p| open(p))
                .collect::<Result<_, _>>()?,
            asn: asn.map(open).transpose()?,
            overrides,
        })
    }

    /// Looks one address up the slow way (decoding records), for `explain`.
    pub fn lookup(&self, ip: IpAddr) -> GeoAnswer {
        // The same precedence as [`Self::base_partition`]: location databases in order,
        // the ASN database over their AS numbers, overrides over both.
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
        for s in self.locations.iter().filter(|_| !aliased) {
            let Ok(r) = s.reader.lookup(ip) else { continue };
            if !r.has_data() {
                continue;
            }
            if let (Ok(Some(v)), Ok(net)) = (r.decode::<Value>(), r.network()) {
                let net = IpNet::new(net.ip(), net.prefix()).ok();
                let rec = decode_record(&v);
                out.location = rec.location;
                out.asn = rec.asn.map(|a| (a, net));
                out.network = net.map(|n| (n, s.path.clone()));
                break;
            }
        }
        if let Some(r) = self
            .asn
            .as_ref()
            .filter(|_| !aliased)
            .and_then(|db| db.reader.lookup(ip).ok())
        {
            if let (Ok(Some(v)), Ok(net)) = (r.decode::<Value>(), r.network()) {
                if let Some(a) = decode_record(&v).asn {
                    out.asn = Some((a, IpNet::new(net.ip(), net.prefix()).ok()));
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

    /// Walks every database into one partition per family: each range of addresses gets
    /// the location and AS number its clients have. Ranges no database knows get id 0.
    pub fn base_partition(&self) -> Result<BasePartition, GeoError> {
        let mut locations = vec![Location::default()];
        let mut interned: HashMap<LocationKey, u32> = HashMap::new();
        let mut intern = |loc: Location, locations: &mut Vec<Location>| -> u32 {
            let key = LocationKey::of(&loc);
            *interned.entry(key).or_insert_with(|| {
                locations.push(loc);
                (locations.len() - 1) as u32
            })
        };

        // Location databases, first one wins where several know an address.
        let mut v4: Option<Partition<(u32, u32)>> = None;
        let mut v6: Option<Partition<(u32, u32)>> = None;
        for s in &self.locations {
            let (p4, p6) = walk(s, |v| {
                let rec = decode_record(v);
                (intern(rec.location, &mut locations), rec.asn.unwrap_or(0))
            })?;
            let (p4, p6) = (
                p4.map(Option::unwrap_or_default),
                p6.map(Option::unwrap_or_default),
            );
            v4 = Some(match v4 {
                None => p4,
                Some(prev) => prev.zip(&p4, |a, b| if a.0 == 0 { b } else { a }),
            });
            v6 = Some(match v6 {
                None => p6,
                Some(prev) => prev.zip(&p6, |a, b| if a.0 == 0 { b } else { a }),
            });
        }
        let mut v4 = v4.unwrap_or_else(|| Partition::uniform(Family::V4, (0, 0)));
        let mut v6 = v6.unwrap_or_else(|| Partition::uniform(Family::V6, (0, 0)));

        // The ASN database, where given, decides AS numbers.
        if let Some(s) = &self.asn {
            let (a4, a6) = walk(s, |v| decode_record(v).asn)?;
            v4 = v4.zip(&a4, |(l, a), b| (l, b.flatten().unwrap_or(a)));
            v6 = v6.zip(&a6, |(l, a), b| (l, b.flatten().unwrap_or(a)));
        }

        // Operator overrides beat every database.
        if !self.overrides.is_empty() {
            let ids: Vec<(u32, u32)> = self
                .overrides
                .iter()
                .map(|o| {
                    (
                        intern(o.location.clone(), &mut locations),
                        o.asn.unwrap_or(0),
                    )
                })
                .collect();
            let nets: Vec<(IpNet, usize)> = self
                .overrides
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
        Ok(BasePartition { v4, v6, locations })
    }
}

/// Identity of a location for interning (floats compared by bits).
#[derive(Hash, PartialEq, Eq)]
struct LocationKey(
    Option<Code>,
    Option<Code>,
    Option<Box<str>>,
    Option<(u64, u64)>,
    Option<Box<str>>,
);

impl LocationKey {
    fn of(l: &Location) -> Self {
        Self(
            l.country,
            l.continent,
            l.subdivision.clone(),
            l.coord.map(|c| (c.lat.to_bits(), c.lon.to_bits())),
            l.city.clone(),
        )
    }
}

/// Every network of `s` with data as one partition per family. Each distinct record is
/// decoded once (networks share records by offset), and `decode` turns it into a small
/// value, so the walk holds a few bytes per network, never a decoded record.
#[allow(clippy::type_complexity)]
fn walk<T: Copy + PartialEq>(
    s: &Source,
    mut decode: impl FnMut(&Value) -> T,
) -> Result<(Partition<Option<T>>, Partition<Option<T>>), GeoError> {
    let corrupt = |source| GeoError::Corrupt {
        path: s.path.clone(),
        source,
    };
    let mut cache: HashMap<usize, T> = HashMap::new();
    let mut v4: Vec<(u128, u128, T)> = Vec::new();
    let mut v6: Vec<(u128, u128, T)> = Vec::new();
    // Aliases of the IPv4 subtree (6to4, Teredo) are left out: they would copy every IPv4
    // network into the IPv6 tables of every policy. Their clients are unknown; `lookup`
    // says the same.
    for item in s
        .reader
        .networks(WithinOptions::default())
        .map_err(corrupt)?
    {
        let r = item.map_err(corrupt)?;
        let Some(offset) = r.offset() else { continue };
        let net = r.network().map_err(corrupt)?;
        let value = match cache.get(&offset) {
            Some(v) => *v,
            None => {
                let Some(v) = r.decode::<Value>().map_err(corrupt)? else {
                    continue;
                };
                let t = decode(&v);
                cache.insert(offset, t);
                t
            }
        };
        let Ok(net) = IpNet::new(net.ip(), net.prefix()) else {
            continue;
        };
        let (start, end) = Family::range_of(&net);
        match net {
            IpNet::V4(_) => v4.push((start, end, value)),
            IpNet::V6(_) => v6.push((start, end, value)),
        }
    }
    Ok((
        Partition::from_sorted(Family::V4, v4),
        Partition::from_sorted(Family::V6, v6),
    ))
}

/// What one database record says, whatever its layout.
#[derive(Debug, Default, PartialEq)]
pub struct DecodedRecord {
    /// The location (completed from the country table where the record lacks parts).
    pub location: Location,
    /// The AS number, for layouts that carry one.
    pub asn: Option<u32>,
}

/// Reads a record of any supported layout.
pub fn decode_record(v: &Value) -> DecodedRecord {
    fn s(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str)
    }
    let num = |v: Option<&Value>| -> Option<f64> {
        match v? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    };
    let country = s(v.pointer("/country/iso_code"))
        .or_else(|| s(v.pointer("/registered_country/iso_code")))
        .or_else(|| s(v.get("country_code")))
        .and_then(Code::parse);
    let continent = s(v.pointer("/continent/code"))
        .or_else(|| s(v.get("continent_code")))
        .and_then(Code::parse);
    let lat = num(v.pointer("/location/latitude")).or_else(|| num(v.get("latitude")));
    let lon = num(v.pointer("/location/longitude")).or_else(|| num(v.get("longitude")));
    let coord = match (lat, lon) {
        (Some(lat), Some(lon))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Some(Coord { lat, lon })
        }
        _ => None,
    };
    let subdivision = s(v.pointer("/subdivisions/0/iso_code"))
        .zip(country)
        .map(|(sub, c)| format!("{c}-{}", sub.to_ascii_uppercase()).into_boxed_str());
    let city = s(v.pointer("/city/names/en"))
        .or_else(|| s(v.get("city")))
        .map(Box::from);
    let asn = match v.get("autonomous_system_number").or_else(|| v.get("asn")) {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(Value::String(s)) => super::parse_asn(s),
        _ => None,
    };
    DecodedRecord {
        location: Location {
            city,
            country,
            continent,
            subdivision,
            coord,
            coord_is_centroid: false,
        }
        .complete(),
        asn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_geoip2_layout() {
        let r = decode_record(&json!({
            "city": {"names": {"en": "Amsterdam"}},
            "continent": {"code": "EU"},
            "country": {"iso_code": "NL"},
            "location": {"latitude": 52.37, "longitude": 4.89},
            "subdivisions": [{"iso_code": "NH"}]
        }));
        assert_eq!(r.location.country.unwrap().as_str(), "NL");
        assert_eq!(r.location.continent.unwrap().as_str(), "EU");
        assert_eq!(r.location.subdivision.as_deref(), Some("NL-NH"));
        assert_eq!(r.location.city.as_deref(), Some("Amsterdam"));
        assert!(!r.location.coord_is_centroid);
        assert_eq!(r.asn, None);
    }

    #[test]
    fn flat_layouts_and_country_only_records() {
        let r = decode_record(&json!({
            "country_code": "BR", "country": "Brazil", "continent_code": "SA",
            "continent": "South America", "asn": "AS64500"
        }));
        assert_eq!(r.location.country.unwrap().as_str(), "BR");
        assert_eq!(r.asn, Some(64500));
        // No coordinates in the record: the country's centroid stands in.
        assert!(r.location.coord_is_centroid);
        assert!(r.location.coord.is_some());

        let r = decode_record(
            &json!({"country_code": "AU", "latitude": -33.87, "longitude": "151.21"}),
        );
        assert_eq!(r.location.continent.unwrap().as_str(), "OC");
        assert_eq!(
            r.location.coord,
            Some(Coord {
                lat: -33.87,
                lon: 151.21
            })
        );
    }

    #[test]
    fn asn_layout() {
        let r = decode_record(
            &json!({"autonomous_system_number": 64501, "autonomous_system_organization": "x"}),
        );
        assert_eq!(r.asn, Some(64501));
        assert_eq!(r.location, Location::default());
    }
}
