//! Durations as operators write them, shared by the zone files and the server config.
//!
//! They live apart from both file formats so that neither parser depends on the other; each
//! deserializes from an integer or a string with units, and its error says which forms it takes.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A duration that may be shorter than a second (`"500ms"`), for probe timings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeDuration(pub std::time::Duration);

impl ProbeDuration {
    /// Parses what [`Seconds::parse`] takes, plus a milliseconds form `"250ms"`.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        if let Some(ms) = t.strip_suffix("ms") {
            return ms
                .parse::<u64>()
                .ok()
                .map(|m| Self(std::time::Duration::from_millis(m)));
        }
        Seconds::parse(t).map(|s| Self(std::time::Duration::from_secs(s.0)))
    }
}

impl<'de> Deserialize<'de> for ProbeDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProbeDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration: seconds as an integer, or a string like \"500ms\" or \"5s\"",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProbeDuration, E> {
                u64::try_from(v)
                    .map(|s| ProbeDuration(std::time::Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("{v} is negative; a duration is 0 or more")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProbeDuration, E> {
                ProbeDuration::parse(v).ok_or_else(|| {
                    E::custom(format!(
                        "{v:?} is not a duration; write seconds (5) or a number with a unit ms, s, m, h (\"500ms\", \"5s\")"
                    ))
                })
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
