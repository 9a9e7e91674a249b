//! Zone file text → [`Zone`] model, collecting every problem as a [`Diagnostic`](crate::diag::Diagnostic).
//!
//! The file is first parsed into a spanned TOML tree; each top-level section and each
//! `[names."…"]` table is then deserialized on its own, so one bad name does not hide the
//! problems of the others. Semantic rules (CNAME exclusivity, delegations, loops) run last,
//! over names that parsed.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::rdata::{self, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use ipnet::IpNet;

use super::model::{
    AllDown, Datacenter, DcAddress, DcIdx, Fallback, GeoMap, Gslb, MAX_ADDRESSES, MAX_CANDIDATES,
    MAX_WEIGHT, Node, Policy, RrSet, Select, Ttl, Zone,
};
use super::spec::{
    AllDownSpec, CheckSpec, DatacenterSpec, FallbackSpec, GslbSpec, Item, LoadSpec, MapSpec,
    NAME_KEYS, NameSpec, ProbeDuration, Seconds, SoaSpec, Values, ZONE_KEYS,
};
use crate::diag::{
    Diagnostics, FileDiags, Source, deserialize, did_you_mean, key_segment, sections,
};
use crate::geo::{
    Code, Invalid, centroid_of, continent_of, country, parse_asn, parse_continent, parse_coord,
    parse_country, parse_network,
};
use crate::health::LoadSignal;
use crate::health::{Check, CheckKind, InitialState};

mod checks;
mod datacenters;
mod gslb;
mod records;
mod rules;

/// Default TTL when a zone sets none: one hour, as most hand-written zones use.
const DEFAULT_TTL: u64 = 3600;

/// Reads and validates one zone file. Problems go to `diags`; `None` when any error was found.
pub fn load_zone_file(path: &Path, diags: &mut Diagnostics) -> Option<Zone> {
    match std::fs::read_to_string(path) {
        Ok(text) => validate_zone(path, &text, diags),
        Err(e) => {
            diags.error_global(
                format!("{}: cannot read zone file: {e}", path.display()),
                Some("check that the file exists and is readable".into()),
            );
            None
        }
    }
}

/// Validates the text of one zone file (`path` is used for messages and the default origin).
pub fn validate_zone(path: &Path, text: &str, diags: &mut Diagnostics) -> Option<Zone> {
    let source = Source::new(path, text);
    let errors_before = diags.error_count();
    let mut d = FileDiags::new(source, diags);
    let zone = Validator::new(path, &mut d).run(text);
    if diags.error_count() > errors_before {
        None
    } else {
        zone
    }
}

struct Validator<'d, 'o> {
    path: &'d Path,
    d: &'d mut FileDiags<'o>,
}

/// A name that parsed, with where it was written.
struct ParsedName {
    key: String,
    span: Range<usize>,
    name: Name,
    spec: NameSpec,
}

impl<'d, 'o> Validator<'d, 'o> {
    fn new(path: &'d Path, d: &'d mut FileDiags<'o>) -> Self {
        Self { path, d }
    }

    fn run(&mut self, text: &str) -> Option<Zone> {
        let root = match DeTable::parse(text) {
            Ok(root) => root,
            Err(e) => {
                let msg = e.message().trim_end_matches('\n').to_owned();
                self.d
                    .error(e.span(), "", format!("invalid TOML: {msg}"), None);
                return None;
            }
        };
        let root_span = root.span();
        let root = root.into_inner();

        let mut origin_v = None;
        let mut ttl_v = None;
        let mut soa_v = None;
        let mut names_v = None;
        let mut dcs_v = None;
        let mut overrides_v = None;
        let mut checks_v = None;
        sections(
            self.d,
            &root,
            ZONE_KEYS,
            "allowed top-level keys",
            |_, key, v| {
                let slot = match key {
                    "datacenters" => &mut dcs_v,
                    "network_overrides" => &mut overrides_v,
                    "checks" => &mut checks_v,
                    "origin" => &mut origin_v,
                    "ttl" => &mut ttl_v,
                    "soa" => &mut soa_v,
                    "names" => &mut names_v,
                    _ => return false,
                };
                *slot = Some(v);
                true
            },
        );

        let origin = self.origin(origin_v);
        let default_ttl = match ttl_v {
            Some(v) => {
                deserialize::<Seconds>(self.d, "ttl", v).and_then(|s| self.ttl(s, v.span(), "ttl"))
            }
            None => Ttl::new(DEFAULT_TTL),
        };
        let soa = match soa_v {
            Some(v) => deserialize::<SoaSpec>(self.d, "soa", v),
            None => {
                self.d.error(
                    Some(root_span.start..root_span.start),
                    "soa",
                    "the zone has no [soa] table",
                    Some(
                        "add a [soa] table with at least `primary`, `contact` and `serial`".into(),
                    ),
                );
                None
            }
        };
        let names = match names_v {
            Some(v) => match v.get_ref().as_table() {
                Some(t) => Some(t),
                None => {
                    self.d.error(
                        Some(v.span()),
                        "names",
                        format!("expected a table, found {}", v.get_ref().type_str()),
                        Some("write one table per owner name, e.g. [names.www]".into()),
                    );
                    None
                }
            },
            None => None,
        };

        // Without a valid origin nothing below can be resolved; stop here.
        let origin = origin?;
        let soa = soa.and_then(|s| self.soa(&origin, s));
        let checks = checks_v.map(|v| self.checks(v)).unwrap_or_default();
        let datacenters = dcs_v
            .map(|v| self.datacenters(v, &checks))
            .unwrap_or_default();
        let dc_ids: Vec<&str> = datacenters.iter().map(|d| d.id.as_str()).collect();
        let network_overrides = overrides_v
            .map(|v| self.network_overrides(v, &dc_ids))
            .unwrap_or_default();
        let parsed = names.map(|n| self.names(&origin, n)).unwrap_or_default();
        let default_ttl = default_ttl?;
        let nodes = self.nodes(&origin, default_ttl, parsed, root_span, &datacenters);
        let (soa, soa_ttl) = (soa?, default_ttl);
        Some(Zone {
            origin,
            file: self.path.to_path_buf(),
            soa,
            soa_ttl,
            nodes,
            datacenters,
            network_overrides,
        })
    }

    fn origin(&mut self, v: Option<&Spanned<DeValue<'_>>>) -> Option<Name> {
        let (text, span) = match v {
            Some(v) => match v.get_ref().as_str() {
                Some(s) => (s.to_owned(), Some(v.span())),
                None => {
                    self.d.error(
                        Some(v.span()),
                        "origin",
                        format!("expected a string, found {}", v.get_ref().type_str()),
                        Some("write the zone's apex, e.g. origin = \"example.com\"".into()),
                    );
                    return None;
                }
            },
            None => {
                let stem = self
                    .path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .and_then(|f| f.strip_suffix(".toml"))
                    .unwrap_or_default()
                    .to_owned();
                (stem, None)
            }
        };
        match Name::from_str(&text) {
            Ok(mut n) if !text.is_empty() && !text.contains('*') => {
                n.set_fqdn(true);
                Some(n.to_lowercase())
            }
            _ => {
                let (message, help) = if span.is_some() {
                    (
                        format!("{text:?} is not a domain name"),
                        "write the zone's apex, e.g. origin = \"example.com\"",
                    )
                } else {
                    (
                        format!(
                            "no `origin` given and the file name {:?} is not a domain name",
                            text
                        ),
                        "add origin = \"example.com\" or name the file after the zone (example.com.toml)",
                    )
                };
                self.d
                    .error(span.or(Some(0..0)), "origin", message, Some(help.into()));
                None
            }
        }
    }

    fn ttl(&mut self, s: Seconds, span: Range<usize>, key: &str) -> Option<Ttl> {
        let t = Ttl::new(s.0);
        if t.is_none() {
            self.d.error(
                Some(span),
                key,
                format!("{} seconds is longer than the largest TTL", s.0),
                Some(format!("use at most {} seconds (RFC 2181 §8)", Ttl::MAX)),
            );
        }
        t
    }

    /// Resolves a name written in the file: `@` is the origin, a trailing dot makes it
    /// absolute, anything else is relative to the origin.
    fn name(
        &mut self,
        origin: &Name,
        text: &str,
        span: Range<usize>,
        key: &str,
        must_be_in_zone: bool,
    ) -> Option<Name> {
        let resolved = if text == "@" {
            Ok(origin.clone())
        } else {
            Name::from_str(text).and_then(|n| {
                if n.is_fqdn() {
                    Ok(n)
                } else {
                    n.append_domain(origin)
                }
            })
        };
        match resolved {
            Ok(n) if !text.is_empty() && !text.contains("..") => {
                if must_be_in_zone && !origin.zone_of(&n) {
                    self.d.error(
                        Some(span),
                        key,
                        format!("{text:?} is outside the zone {origin}"),
                        Some(format!(
                            "write a name relative to the origin (without a trailing dot), or an absolute name ending in .{origin}"
                        )),
                    );
                    None
                } else {
                    Some(n.to_lowercase())
                }
            }
            _ => {
                self.d.error(
                    Some(span),
                    key,
                    format!("{text:?} is not a valid domain name"),
                    Some(
                        "use labels of letters, digits and hyphens separated by dots, at most 63 bytes each; \"@\" means the origin"
                            .into(),
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
