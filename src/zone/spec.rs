//! The raw shape of a zone file: serde types that mirror the TOML one to one.
//!
//! Nothing here is checked beyond TOML syntax, key names and value types; meaning (is this
//! an address, is that name inside the zone) is judged by [`super::validate`], which can then
//! report every problem with its position because values keep their [`Spanned`] byte ranges.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

pub use crate::spec_values::{ProbeDuration, Seconds};

/// The `[soa]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaSpec {
    /// MNAME: the primary name server, relative to the origin unless it ends in a dot.
    pub primary: Spanned<String>,
    /// RNAME: the responsible mailbox, as `hostmaster` or `hostmaster@example.com`.
    pub contact: Spanned<String>,
    /// Zone serial; operators bump it on change (secondaries are not supported, but dig shows it).
    pub serial: Spanned<i64>,
    /// Refresh interval.
    pub refresh: Option<Spanned<Seconds>>,
    /// Retry interval.
    pub retry: Option<Spanned<Seconds>>,
    /// Expire interval.
    pub expire: Option<Spanned<Seconds>>,
    /// SOA MINIMUM: how long resolvers cache NXDOMAIN and NODATA (RFC 2308).
    pub negative_ttl: Option<Spanned<Seconds>>,
}

/// One `[names."…"]` table: the records of one owner name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameSpec {
    /// TTL of every record set at this name (default: the zone's `ttl`).
    pub ttl: Option<Spanned<Seconds>>,
    /// IPv4 addresses.
    pub a: Option<Spanned<Values>>,
    /// IPv6 addresses.
    pub aaaa: Option<Spanned<Values>>,
    /// Alias target (exactly one).
    pub cname: Option<Spanned<Values>>,
    /// `"PREFERENCE HOST"` entries.
    pub mx: Option<Spanned<Values>>,
    /// Text strings; one record per entry, split into 255-byte pieces as needed.
    pub txt: Option<Spanned<Values>>,
    /// `"PRIORITY WEIGHT PORT TARGET"` entries.
    pub srv: Option<Spanned<Values>>,
    /// `"FLAGS TAG VALUE"` entries, e.g. `0 issue "letsencrypt.org"`.
    pub caa: Option<Spanned<Values>>,
    /// Pointer targets.
    pub ptr: Option<Spanned<Values>>,
    /// Name servers: at the apex the zone's own, below it a delegation.
    pub ns: Option<Spanned<Values>>,
    /// Makes this a GSLB name: A/AAAA answers chosen per client from data centers.
    pub gslb: Option<Box<Spanned<GslbSpec>>>,
}

/// One `[datacenters.ID]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatacenterSpec {
    /// Addresses answered for this data center, IPv4 and/or IPv6.
    pub addresses: Spanned<Vec<Spanned<AddressSpec>>>,
    /// `[latitude, longitude]` in degrees.
    pub location: Option<Spanned<Vec<f64>>>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<Spanned<String>>,
    /// Continent code (AF AN AS EU NA OC SA); derived from `country` when omitted.
    pub continent: Option<Spanned<String>>,
    /// Name of a `[checks.NAME]` table probing each address (an address may override it).
    pub check: Option<Spanned<String>>,
    /// Relative capacity of the site among the data centers sharing a client (default 1);
    /// 0 drains it. Read as a number so that `1.5` is judged by the validator, with its key.
    pub weight: Option<Spanned<f64>>,
    /// A load signal: above `high` the site sheds a growing share of its answers.
    pub load: Option<Spanned<LoadSpec>>,
}

/// `[datacenters.ID.load]`: where the site reports how loaded it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// HTTP(S) URL whose body is a number, or Prometheus text holding `metric`.
    pub url: Spanned<String>,
    /// A Prometheus series (`name` or `name{label="x"}`) to read from the body.
    pub metric: Option<Spanned<String>>,
    /// Above this, shed a growing share of answers to the next choice.
    pub high: Spanned<f64>,
    /// Below this, take the shed share back.
    pub low: Spanned<f64>,
    /// Time between reads (default 5s).
    pub interval: Option<Spanned<ProbeDuration>>,
    /// Limit on one read (default 2s, below `interval`).
    pub timeout: Option<Spanned<ProbeDuration>>,
    /// Share of the weight shed or taken back per interval (default 0.25).
    pub step: Option<Spanned<f64>>,
}

/// One `[checks.NAME]` table: a health check data centers and addresses refer to by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// `"tcp"`, `"http"` or `"https"`.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// Port (default 80 for http, 443 for https; required for tcp).
    pub port: Option<Spanned<i64>>,
    /// HTTP path (default `/`).
    pub path: Option<Spanned<String>>,
    /// HTTP Host header.
    pub host: Option<Spanned<String>>,
    /// Accepted status codes (default 200-399).
    pub expect: Option<Spanned<Vec<i64>>>,
    /// A substring the body must contain.
    pub body: Option<Spanned<String>>,
    /// Verify the TLS certificate (default true).
    pub verify_tls: Option<bool>,
    /// TLS server name (default: `host`).
    pub sni: Option<Spanned<String>>,
    /// Time between probes (default 10s).
    pub interval: Option<Spanned<ProbeDuration>>,
    /// Limit on one probe (default 3s, must be below `interval`).
    pub timeout: Option<Spanned<ProbeDuration>>,
    /// Successes in a row to come up (default 2).
    pub rise: Option<Spanned<i64>>,
    /// Failures in a row to go down (default 3).
    pub fall: Option<Spanned<i64>>,
    /// Random delay added to each probe (default: a tenth of the interval).
    pub jitter: Option<Spanned<ProbeDuration>>,
    /// State before results: `"up"` (default), `"down"`, or `"first_result"`.
    pub initial: Option<Spanned<String>>,
}

/// What a GSLB name answers when every candidate is down.
#[derive(Debug)]
pub enum AllDownSpec {
    /// `"fail_open"`, `"servfail"` or `"nodata"`.
    Word(String),
    /// `{ addresses = [...] }` or `{ cname = "..." }`.
    Fallback(FallbackSpec),
}

/// The table form of `all_down`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSpec {
    /// Fixed addresses to answer.
    pub addresses: Option<Vec<String>>,
    /// A name to answer as a CNAME (relative to the origin unless it ends in a dot).
    pub cname: Option<String>,
}

impl<'de> Deserialize<'de> for AllDownSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AllDownSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"fail_open\", \"servfail\", \"nodata\", or a table { addresses = [...] } or { cname = \"...\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AllDownSpec, E> {
                Ok(AllDownSpec::Word(s.to_owned()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<AllDownSpec, A::Error> {
                FallbackSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(AllDownSpec::Fallback)
            }
        }
        d.deserialize_any(V)
    }
}

/// An address, written as `"192.0.2.10"` or `{ address = "192.0.2.10", weight = 2 }`.
#[derive(Debug)]
pub struct AddressSpec {
    /// The address as written.
    pub address: String,
    /// Relative weight within the data center; a number, so that `1.5` is judged by the
    /// validator, with its key.
    pub weight: Option<f64>,
    /// Check for this address instead of the data center's; `"none"` for no check.
    pub check: Option<String>,
}

impl<'de> Deserialize<'de> for AddressSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            address: String,
            weight: Option<f64>,
            check: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AddressSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address string or a table { address = \"...\", weight = N }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AddressSpec, E> {
                Ok(AddressSpec {
                    address: s.to_owned(),
                    weight: None,
                    check: None,
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<AddressSpec, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(AddressSpec {
                    address: t.address,
                    weight: t.weight,
                    check: t.check,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `[names.X.gslb]`: how a GSLB name picks data centers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GslbSpec {
    /// Candidate data center ids.
    pub datacenters: Spanned<Vec<Spanned<String>>>,
    /// `"nearest"` (default) or `"map"`.
    pub policy: Option<Spanned<String>>,
    /// Rules for `policy = "map"`.
    pub map: Option<Spanned<MapSpec>>,
    /// Data centers per answer (default 1).
    pub max_datacenters: Option<Spanned<i64>>,
    /// Addresses per data center and family (default: all).
    pub max_addresses: Option<Spanned<i64>>,
    /// TTL of the answers (default 30 s: short, so clients move soon after a change).
    pub ttl: Option<Spanned<Seconds>>,
    /// TTL while candidates are degraded or flapping (default: a third of `ttl`, at least 5 s).
    pub min_ttl: Option<Spanned<Seconds>>,
    /// What to answer when every candidate is down (default `"fail_open"`).
    pub all_down: Option<Spanned<AllDownSpec>>,
    /// `"rotate"` (default): weighted round-robin per query; `"sticky"`: by a hash of the
    /// client network.
    pub select: Option<Spanned<String>>,
    /// How many data centers at the head of a client's list share its traffic (default 1).
    pub spread: Option<Spanned<i64>>,
    /// Distance (`"500km"`) within which candidates count as equally near as the nearest.
    pub band: Option<Spanned<String>>,
    /// How many further healthy candidates take the share of a down data center (default 1).
    pub spill: Option<Spanned<i64>>,
    /// Prefix length of the IPv4 client network hashed by `select = "sticky"` (default 24).
    pub sticky_ipv4_prefix: Option<Spanned<i64>>,
    /// Prefix length of the IPv6 client network hashed by `select = "sticky"` (default 56).
    pub sticky_ipv6_prefix: Option<Spanned<i64>>,
}

/// `[names.X.gslb.map]`: client geography → ordered data center lists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSpec {
    /// A list of data centers, or `"nearest"`, for clients no rule covers.
    pub default: Option<Spanned<Values>>,
    /// Continent code → list.
    pub continent: Option<BTreeMap<String, Spanned<Values>>>,
    /// ISO 3166-1 country code → list.
    pub country: Option<BTreeMap<String, Spanned<Values>>>,
    /// ISO 3166-2 subdivision (`"US-CA"`) → list.
    pub subdivision: Option<BTreeMap<String, Spanned<Values>>>,
    /// CIDR network → list.
    pub network: Option<BTreeMap<String, Spanned<Values>>>,
    /// AS number (`"AS64500"` or `"64500"`) → list.
    pub asn: Option<BTreeMap<String, Spanned<Values>>>,
}

/// Keys of [`NameSpec`], for "did you mean" hints (a test keeps them equal to its fields).
pub const NAME_KEYS: &[&str] = &[
    "ttl", "a", "aaaa", "cname", "mx", "txt", "srv", "caa", "ptr", "ns", "gslb",
];

/// Top-level keys of a zone file: the sections [`super::validate`] reads, for "did you mean" hints.
pub const ZONE_KEYS: &[&str] = &[
    "origin",
    "ttl",
    "soa",
    "names",
    "datacenters",
    "network_overrides",
    "checks",
];

/// One string or a list of strings; each item remembers where it was written.
#[derive(Debug, Default)]
pub struct Values(pub Vec<Item>);

/// One string value and, when written inside a list, its own byte range.
#[derive(Debug)]
pub struct Item {
    /// Byte range of this item; `None` when the value was a single string (use the key's span).
    pub span: Option<Range<usize>>,
    /// The text as written.
    pub value: String,
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Values, E> {
                Ok(Values(vec![Item {
                    span: None,
                    value: s.to_owned(),
                }]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    let span = s.span();
                    items.push(Item {
                        span: Some(span),
                        value: s.into_inner(),
                    });
                }
                Ok(Values(items))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::expected_fields;

    #[test]
    fn name_keys_are_the_fields_of_name_spec() {
        let err = toml::from_str::<NameSpec>("not_a_key = 0").unwrap_err();
        assert_eq!(expected_fields(err.message()), NAME_KEYS);
    }
}
