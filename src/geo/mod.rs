//! Client geography: GeoIP databases, locations, and the prefix tables GSLB answers come from.
//!
//! ```text
//! *.mmdb ──db::GeoDb::load (record: any layout)──▶ every address range → (location, ASN)
//!                                                   │   + [[geoip.override]] networks
//!                                                   ▼
//!               per GSLB policy: range → ordered candidate list (decision.rs), neighbours merged
//!                                                   ▼
//!                       table::GeoTable: address → (list, widest prefix with the same list)
//! ```
//! The query path only sees the finished [`table::GeoTable`]: one indexed binary search, no
//! database access, no allocation. The prefix it reports is the ECS scope.

pub mod country;
pub mod db;
pub mod decision;
pub mod partition;
pub mod record;
pub mod table;
pub mod unlocated;

use std::fmt;

/// A two-letter code: ISO 3166-1 country (`NL`) or continent (`EU`), uppercase.
///
/// Why not `String`: codes are compared per network at load, millions of times; two bytes
/// compare and hash for free and cannot hold a wrong-length value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code([u8; 2]);

impl Code {
    /// Parses a two-letter ASCII code, any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a written geographic value was rejected: what is wrong, and how to fix it. Zone
/// files and the server config report it at their own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, quoting the value.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Invalid {
    fn new(message: String, help: &str) -> Self {
        Self {
            message,
            help: help.to_owned(),
        }
    }
}

/// An ISO 3166-1 alpha-2 code this build knows.
pub fn parse_country(s: &str) -> Result<Code, Invalid> {
    Code::parse(s)
        .filter(|c| country::lookup(c.as_str()).is_some())
        .ok_or_else(|| {
            Invalid::new(
                format!("{s:?} is not an ISO 3166-1 alpha-2 country code"),
                "use two letters, e.g. \"NL\", \"US\", \"BR\"",
            )
        })
}

/// A continent code (AF AN AS EU NA OC SA).
pub fn parse_continent(s: &str) -> Result<Code, Invalid> {
    Code::parse(s)
        .filter(|c| country::is_continent(c.as_str()))
        .ok_or_else(|| {
            Invalid::new(
                format!("{s:?} is not a continent code"),
                "use one of AF, AN, AS, EU, NA, OC, SA",
            )
        })
}

/// `[latitude, longitude]` in degrees.
pub fn parse_coord(v: &[f64]) -> Result<Coord, Invalid> {
    match v {
        [lat, lon] if (-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon) => Ok(Coord {
            lat: *lat,
            lon: *lon,
        }),
        _ => Err(Invalid::new(
            format!("{v:?} is not [latitude, longitude]"),
            "write two numbers in degrees, latitude (-90..90) first, e.g. [52.37, 4.90]",
        )),
    }
}

/// A CIDR network with no address bits past its prefix, IPv4-mapped ones as IPv4.
pub fn parse_network(s: &str) -> Result<ipnet::IpNet, Invalid> {
    match s.parse::<ipnet::IpNet>() {
        Ok(net) if net.trunc() == net => Ok(canonical_net(net)),
        Ok(net) => Err(Invalid {
            message: format!("{s:?} has address bits set past its prefix length"),
            help: format!("did you mean \"{}\"?", net.trunc()),
        }),
        Err(_) => Err(Invalid::new(
            format!("{s:?} is not a network"),
            "write an address and prefix length, e.g. \"192.0.2.0/24\" or \"2001:db8::/32\"",
        )),
    }
}

/// An AS number written `AS64500`, `as64500` or `64500`.
pub fn parse_asn(s: &str) -> Option<u32> {
    let digits = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .unwrap_or(s);
    digits.parse().ok()
}

/// `::ffff:10.0.0.0/104` as `10.0.0.0/8`: clients asking from IPv4-mapped addresses are
/// looked up as IPv4, so rules written in the mapped form must be too.
pub fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    if let ipnet::IpNet::V6(n) = net {
        if let (Some(v4), true) = (n.network().to_ipv4_mapped(), n.prefix_len() >= 96) {
            if let Ok(v4net) = ipnet::Ipv4Net::new(v4, n.prefix_len() - 96) {
                return ipnet::IpNet::V4(v4net);
            }
        }
    }
    net
}

/// The continent a country is on (as GeoIP databases assign them).
pub fn continent_of(country: Code) -> Option<Code> {
    country::lookup(country.as_str())
        .and_then(|i| Code::parse(std::str::from_utf8(&i.continent).unwrap_or("")))
}

/// A country's centroid: where `nearest` places a client or data center known only by country.
pub fn centroid_of(country: Code) -> Option<Coord> {
    country::lookup(country.as_str()).map(|i| Coord {
        lat: i.latitude,
        lon: i.longitude,
    })
}

/// A point on Earth in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coord {
    /// Latitude, −90..=90.
    pub lat: f64,
    /// Longitude, −180..=180.
    pub lon: f64,
}

/// Mean Earth radius: distances are on a sphere (the 0.5% error of ignoring the ellipsoid
/// never changes which site is nearer in practice).
const EARTH_RADIUS_KM: f64 = 6371.0;

impl Coord {
    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(&self, other: &Coord) -> f64 {
        let (la1, la2) = (self.lat.to_radians(), other.lat.to_radians());
        let dla = la2 - la1;
        let dlo = (other.lon - self.lon).to_radians();
        let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
    }

    /// The point on the unit sphere.
    pub fn unit(&self) -> [f64; 3] {
        let (sla, cla) = self.lat.to_radians().sin_cos();
        let (slo, clo) = self.lon.to_radians().sin_cos();
        [cla * clo, cla * slo, sla]
    }
}

/// Where a client is, as far as the databases say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Location {
    /// City name, for `explain` only.
    pub city: Option<Box<str>>,
    /// Country.
    pub country: Option<Code>,
    /// Continent (from the database, else from the country).
    pub continent: Option<Code>,
    /// ISO 3166-2 subdivision as `CC-SUB` (e.g. `US-NY`).
    pub subdivision: Option<Box<str>>,
    /// Coordinates (from the database, else the country's centroid).
    pub coord: Option<Coord>,
    /// True when `coord` is a country centroid rather than the database's own point.
    pub coord_is_centroid: bool,
}

impl Location {
    /// Nothing is known of where the client is: a GeoIP miss.
    pub fn is_unknown(&self) -> bool {
        self.country.is_none() && self.continent.is_none() && self.coord.is_none()
    }

    /// Fills continent and coordinates from the country when the database lacked them.
    pub fn complete(mut self) -> Self {
        if let Some(c) = self.country {
            if self.continent.is_none() {
                self.continent = continent_of(c);
            }
            if self.coord.is_none() {
                self.coord = centroid_of(c);
                self.coord_is_centroid = self.coord.is_some();
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_city_pairs() {
        let ams = Coord {
            lat: 52.3676,
            lon: 4.9041,
        };
        let nyc = Coord {
            lat: 40.7128,
            lon: -74.0060,
        };
        let d = ams.distance_km(&nyc);
        assert!((5800.0..5900.0).contains(&d), "{d}");
        assert_eq!(ams.distance_km(&ams), 0.0);
    }

    #[test]
    fn mapped_networks_become_ipv4() {
        let n: ipnet::IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(canonical_net(n).to_string(), "10.0.0.0/8");
        let n: ipnet::IpNet = "2001:db8::/32".parse().unwrap();
        assert_eq!(canonical_net(n), n);
    }

    #[test]
    fn codes_are_uppercased_and_two_letters() {
        assert_eq!(Code::parse("nl").unwrap().as_str(), "NL");
        assert!(Code::parse("NLD").is_none());
        assert!(Code::parse("N1").is_none());
    }
}
