//! The raw shape of a zone file: serde types that mirror the TOML one to one.
//!
//! Nothing here is checked beyond TOML syntax, key names and value types; meaning (is this
//! an address, is that name inside the zone) is judged by [`super::validate`], which can then
//! report every problem with its position because values keep their [`Spanned`] byte ranges.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

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
}

/// Record-type keys of [`NameSpec`], for "did you mean" hints and for iteration.
pub const NAME_KEYS: &[&str] = &[
    "ttl", "a", "aaaa", "cname", "mx", "txt", "srv", "caa", "ptr", "ns",
];

/// Top-level keys of a zone file.
pub const ZONE_KEYS: &[&str] = &["origin", "ttl", "soa", "names"];

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

/// A duration in whole seconds, written as an integer (`300`) or with units (`"5m"`, `"1h30m"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl Seconds {
    /// Parses `"90"`, `"90s"`, `"5m"`, `"1h30m"`, `"2d"`, `"1w"`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let mut total: u64 = 0;
        let mut num: Option<u64> = None;
        for c in s.chars() {
            if let Some(d) = c.to_digit(10) {
                num = Some(
                    num.unwrap_or(0)
                        .checked_mul(10)?
                        .checked_add(u64::from(d))?,
                );
                continue;
            }
            let unit = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return None,
            };
            total = total.checked_add(num.take()?.checked_mul(unit)?)?;
        }
        if let Some(n) = num {
            total = total.checked_add(n)?;
        }
        Some(Self(total))
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration: seconds as an integer, or a string like \"5m\" or \"1h30m\"",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v).map(Seconds).map_err(|_| {
                    E::custom(format!("{v} is negative; a duration is 0 or more seconds"))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                Seconds::parse(v).ok_or_else(|| {
                    E::custom(format!(
                        "{v:?} is not a duration; write seconds (300) or a number with a unit s, m, h, d or w (\"5m\", \"1h30m\")"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(Seconds::parse("300"), Some(Seconds(300)));
        assert_eq!(Seconds::parse("5m"), Some(Seconds(300)));
        assert_eq!(Seconds::parse("1h30m"), Some(Seconds(5400)));
        assert_eq!(Seconds::parse("2d"), Some(Seconds(172_800)));
        assert_eq!(Seconds::parse("1w1s"), Some(Seconds(604_801)));
        assert_eq!(Seconds::parse("m"), None);
        assert_eq!(Seconds::parse("5x"), None);
        assert_eq!(Seconds::parse(""), None);
    }
}
