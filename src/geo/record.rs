//! One database record, of any layout operators bring, → the location and AS number it
//! gives.
//!
//! Layouts: MaxMind GeoIP2/GeoLite2 City and Country and DB-IP's compatible files (nested:
//! `country.iso_code`, `location.latitude`, `city.names.en`…), and the flat layouts of
//! IPinfo Lite and ip-location-db (`country_code`, `latitude`, `city`, `asn`…).
//!
//! Records are read with serde straight from the database bytes, looking only at the few
//! fields that place a client; everything else (city names in eight languages, postal
//! codes, time zones) is skipped without being built. A full-size city database has
//! millions of distinct records, so this is most of what loading one costs.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Code, Coord, Location};

/// What one database record says, whatever its layout.
#[derive(Debug, Default, PartialEq)]
pub struct DecodedRecord {
    /// The location (completed from the country table where the record lacks parts).
    pub location: Location,
    /// The AS number, for layouts that carry one.
    pub asn: Option<u32>,
}

/// Reads one record of any supported layout. Fields of an unexpected type count as absent;
/// only a record that is not a map is an error.
impl<'de> de::Deserialize<'de> for DecodedRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor).map(Fields::into_record)
    }
}

/// The fields that place a client, as found (strings borrowed from the database).
#[derive(Default)]
struct Fields<'de> {
    country: Option<Scalar<'de>>,
    registered_country: Option<Scalar<'de>>,
    country_code: Option<Scalar<'de>>,
    continent: Option<Scalar<'de>>,
    continent_code: Option<Scalar<'de>>,
    /// `location.latitude` / `location.longitude` (nested layouts).
    location: (Option<Scalar<'de>>, Option<Scalar<'de>>),
    latitude: Option<Scalar<'de>>,
    longitude: Option<Scalar<'de>>,
    subdivision: Option<Scalar<'de>>,
    city: Option<Scalar<'de>>,
    autonomous_system_number: Option<Scalar<'de>>,
    asn: Option<Scalar<'de>>,
}

fn text<'a>(v: &'a Option<Scalar<'_>>) -> Option<&'a str> {
    v.as_ref().and_then(Scalar::as_str)
}

impl Fields<'_> {
    fn into_record(self) -> DecodedRecord {
        let code = text;
        // The first field present decides, even when it does not parse: a database that
        // names a wrong country is not second-guessed from another field.
        let country = code(&self.country)
            .or_else(|| code(&self.registered_country))
            .or_else(|| code(&self.country_code))
            .and_then(Code::parse);
        let continent = code(&self.continent)
            .or_else(|| code(&self.continent_code))
            .and_then(Code::parse);
        let num = |v: &Option<Scalar<'_>>| v.as_ref().and_then(Scalar::as_f64);
        let lat = num(&self.location.0).or_else(|| num(&self.latitude));
        let lon = num(&self.location.1).or_else(|| num(&self.longitude));
        let coord = match (lat, lon) {
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                Some(Coord { lat, lon })
            }
            _ => None,
        };
        let subdivision = code(&self.subdivision)
            .zip(country)
            .map(|(sub, c)| format!("{c}-{}", sub.to_ascii_uppercase()).into_boxed_str());
        let city = code(&self.city).map(Box::from);
        let asn = match self.autonomous_system_number.or(self.asn) {
            Some(Scalar::UInt(n)) => u32::try_from(n).ok(),
            Some(Scalar::Str(s)) => super::parse_asn(&s),
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
}

/// A leaf value. Layouts disagree on whether numbers are numbers or strings.
#[derive(Debug)]
enum Scalar<'de> {
    Str(Cow<'de, str>),
    UInt(u64),
    Float(f64),
}

impl Scalar<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Str(s) => s.parse().ok(),
            Scalar::UInt(n) => Some(*n as f64),
            Scalar::Float(f) => Some(*f),
        }
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoIP record (a map)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut out = Fields::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let slot = match &*key.0 {
                "country" => &mut out.country,
                "registered_country" => &mut out.registered_country,
                "continent" => &mut out.continent,
                "subdivisions" => &mut out.subdivision,
                "city" => &mut out.city,
                "country_code" => &mut out.country_code,
                "continent_code" => &mut out.continent_code,
                "latitude" => &mut out.latitude,
                "longitude" => &mut out.longitude,
                "autonomous_system_number" => &mut out.autonomous_system_number,
                "asn" => &mut out.asn,
                "location" => {
                    out.location = map.next_value_seed(LatLon)?;
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let path = match &*key.0 {
                "country" | "registered_country" => Path::nested(&["iso_code"]),
                "continent" => Path::nested(&["code"]),
                "subdivisions" => Path::nested(&["iso_code"]),
                // GeoIP2 nests the name by language; flat layouts give it as a string.
                "city" => Path {
                    keys: &["names", "en"],
                    or_scalar: true,
                },
                _ => Path::LEAF,
            };
            *slot = map.next_value_seed(path)?;
        }
        Ok(out)
    }
}

/// A map key, borrowed from the database where the deserializer allows.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(Key)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Follows `keys` through nested maps to a scalar; the first element stands for a list.
/// Anything of another shape is consumed and counts as absent.
#[derive(Clone, Copy)]
struct Path {
    keys: &'static [&'static str],
    /// Take a scalar met before the keys run out (a flat layout's value).
    or_scalar: bool,
}

impl Path {
    const LEAF: Path = Path {
        keys: &[],
        or_scalar: true,
    };

    const fn nested(keys: &'static [&'static str]) -> Path {
        Path {
            keys,
            or_scalar: false,
        }
    }

    fn scalar<'de>(self, v: Scalar<'de>) -> Option<Scalar<'de>> {
        (self.keys.is_empty() || self.or_scalar).then_some(v)
    }
}

impl<'de> DeserializeSeed<'de> for Path {
    type Value = Option<Scalar<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Path {
    type Value = Option<Scalar<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self.scalar(Scalar::Str(Cow::Borrowed(v))))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.scalar(Scalar::Str(Cow::Owned(v.to_owned()))))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.scalar(Scalar::UInt(v)))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
        Ok(u64::try_from(v)
            .ok()
            .and_then(|v| self.scalar(Scalar::UInt(v))))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.scalar(match u64::try_from(v) {
            Ok(v) => Scalar::UInt(v),
            Err(_) => Scalar::Float(v as f64),
        }))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.scalar(Scalar::Float(v)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match self.keys.split_first() {
                Some((first, rest)) if *first == key.0 && found.is_none() => {
                    found = map.next_value_seed(Path {
                        keys: rest,
                        or_scalar: self.or_scalar && rest.is_empty(),
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = if self.keys.is_empty() {
            seq.next_element::<IgnoredAny>()?;
            None
        } else {
            seq.next_element_seed(self)?.flatten()
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(first)
    }
}

/// `location`: latitude and longitude from one map.
struct LatLon;

impl<'de> DeserializeSeed<'de> for LatLon {
    type Value = (Option<Scalar<'de>>, Option<Scalar<'de>>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LatLon {
    type Value = (Option<Scalar<'de>>, Option<Scalar<'de>>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a location map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = (None, None);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "latitude" => out.0 = map.next_value_seed(Path::LEAF)?,
                "longitude" => out.1 = map.next_value_seed(Path::LEAF)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }

    // Any other shape is ignored.
    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok((None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{Value, json};

    fn decode(v: Value) -> DecodedRecord {
        DecodedRecord::deserialize(&v).expect("a map decodes")
    }

    #[test]
    fn nested_geoip2_layout() {
        let r = decode(json!({
            "city": {"names": {"de": "Amsterdam", "en": "Amsterdam"}, "geoname_id": 1},
            "continent": {"code": "EU", "names": {"en": "Europe"}},
            "country": {"iso_code": "NL"},
            "location": {"latitude": 52.37, "longitude": 4.89, "time_zone": "Europe/Amsterdam"},
            "subdivisions": [{"iso_code": "NH"}, {"iso_code": "XX"}],
            "postal": {"code": "1012"}
        }));
        assert_eq!(r.location.country.unwrap().as_str(), "NL");
        assert_eq!(r.location.continent.unwrap().as_str(), "EU");
        assert_eq!(r.location.subdivision.as_deref(), Some("NL-NH"));
        assert_eq!(r.location.city.as_deref(), Some("Amsterdam"));
        assert_eq!(
            r.location.coord,
            Some(Coord {
                lat: 52.37,
                lon: 4.89
            })
        );
        assert!(!r.location.coord_is_centroid);
        assert_eq!(r.asn, None);
    }

    #[test]
    fn flat_layouts_and_country_only_records() {
        // "country" and "continent" are names here, not maps: the codes come from
        // country_code and continent_code.
        let r = decode(json!({
            "country_code": "BR", "country": "Brazil", "continent_code": "SA",
            "continent": "South America", "asn": "AS64500"
        }));
        assert_eq!(r.location.country.unwrap().as_str(), "BR");
        assert_eq!(r.location.continent.unwrap().as_str(), "SA");
        assert_eq!(r.asn, Some(64500));
        // No coordinates in the record: the country's centroid stands in.
        assert!(r.location.coord_is_centroid);
        assert!(r.location.coord.is_some());

        let r = decode(json!({
            "country_code": "AU", "latitude": -33.87, "longitude": "151.21", "city": "Sydney"
        }));
        assert_eq!(r.location.continent.unwrap().as_str(), "OC");
        assert_eq!(r.location.city.as_deref(), Some("Sydney"));
        assert_eq!(
            r.location.coord,
            Some(Coord {
                lat: -33.87,
                lon: 151.21
            })
        );
    }

    #[test]
    fn registered_country_stands_in_for_a_missing_country() {
        let r = decode(json!({"registered_country": {"iso_code": "DE"}}));
        assert_eq!(r.location.country.unwrap().as_str(), "DE");
    }

    #[test]
    fn asn_layout() {
        let r = decode(
            json!({"autonomous_system_number": 64501, "autonomous_system_organization": "x"}),
        );
        assert_eq!(r.asn, Some(64501));
        assert_eq!(r.location, Location::default());
    }

    #[test]
    fn fields_of_the_wrong_shape_count_as_absent() {
        let r = decode(json!({
            "country": ["NL"], "location": "here", "latitude": true, "longitude": null,
            "city": {"names": "Amsterdam"}, "subdivisions": "NH", "asn": -5,
            "autonomous_system_number": 1.5e12
        }));
        assert_eq!(r.location, Location::default());
        assert_eq!(r.asn, None);
        // Coordinates out of range are dropped, the country still counts.
        let r = decode(json!({"country_code": "NL", "latitude": 95.0, "longitude": 4.0}));
        assert!(r.location.coord_is_centroid);
        // Not a map at all: an error, not an empty record.
        assert!(DecodedRecord::deserialize(&json!("NL")).is_err());
    }
}
