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
    AllDown, Datacenter, DcAddress, Fallback, GeoMap, Gslb, Node, Policy, RrSet, Ttl, Zone,
};
use super::spec::{
    AllDownSpec, DatacenterSpec, FallbackSpec, GslbSpec, HealthCheckSpec, Item, MapSpec, NAME_KEYS,
    NameSpec, ProbeDuration, Seconds, SoaSpec, Values, ZONE_KEYS,
};
use crate::diag::{
    Diagnostics, FileDiags, Source, deserialize, did_you_mean, key_segment, sections,
};
use crate::geo::{
    Code, Invalid, centroid_of, continent_of, country, parse_asn, parse_continent, parse_coord,
    parse_country, parse_network,
};
use crate::health::{CheckKind, CheckSpec, InitialState};

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

    fn soa(&mut self, origin: &Name, s: SoaSpec) -> Option<SOA> {
        let primary = self.name(
            origin,
            s.primary.get_ref(),
            s.primary.span(),
            "soa.primary",
            false,
        );
        let contact_text = s.contact.get_ref().clone();
        let contact = match contact_text.split_once('@') {
            Some((local, domain)) => Name::from_labels([local.as_bytes()])
                .ok()
                .and_then(|l| {
                    // The domain of a mailbox is always absolute, as in an email address.
                    let domain = format!("{}.", domain.trim_end_matches('.'));
                    let d = self.name(origin, &domain, s.contact.span(), "soa.contact", false)?;
                    l.append_domain(&d).ok()
                })
                .or_else(|| {
                    self.d.error(
                        Some(s.contact.span()),
                        "soa.contact",
                        format!("{contact_text:?} is not a mailbox"),
                        Some("write \"hostmaster@example.com\" or \"hostmaster\"".into()),
                    );
                    None
                }),
            None => self.name(
                origin,
                &contact_text,
                s.contact.span(),
                "soa.contact",
                false,
            ),
        };
        let serial = match u32::try_from(*s.serial.get_ref()) {
            Ok(v) => Some(v),
            Err(_) => {
                self.d.error(
                    Some(s.serial.span()),
                    "soa.serial",
                    format!("{} is not a 32-bit serial", s.serial.get_ref()),
                    Some("use a number from 0 to 4294967295, e.g. a date like 2026112201".into()),
                );
                None
            }
        };
        let mut secs = |v: Option<Spanned<Seconds>>, key: &str, default: u64| -> Option<i32> {
            match v {
                None => Some(default as i32),
                Some(v) => match i32::try_from(v.get_ref().0) {
                    Ok(x) => Some(x),
                    Err(_) => {
                        self.d.error(
                            Some(v.span()),
                            format!("soa.{key}"),
                            format!("{} seconds is too long", v.get_ref().0),
                            Some(format!("use at most {} seconds", i32::MAX)),
                        );
                        None
                    }
                },
            }
        };
        let refresh = secs(s.refresh, "refresh", 3600);
        let retry = secs(s.retry, "retry", 900);
        let expire = secs(s.expire, "expire", 604_800);
        let minimum = match s.negative_ttl {
            None => Some(300),
            Some(v) => self
                .ttl(*v.get_ref(), v.span(), "soa.negative_ttl")
                .map(Ttl::secs),
        };
        Some(SOA::new(
            primary?, contact?, serial?, refresh?, retry?, expire?, minimum?,
        ))
    }

    fn names(&mut self, origin: &Name, table: &DeTable<'_>) -> Vec<ParsedName> {
        let mut out: Vec<ParsedName> = Vec::new();
        let mut seen: HashMap<Name, String> = HashMap::new();
        for (k, v) in table.iter() {
            let raw = k.get_ref().as_ref();
            let key = format!("names.{}", key_segment(raw));
            let Some(name) = self.name(origin, raw, k.span(), &key, true) else {
                continue;
            };
            if name.iter().skip(1).any(|l| l == b"*") {
                self.d.error(
                    Some(k.span()),
                    &key,
                    format!("{raw:?} has a `*` label that is not the leftmost one"),
                    Some("a wildcard is written as \"*.something\" (RFC 4592)".into()),
                );
                continue;
            }
            if let Some(first) = seen.get(&name) {
                self.d.error(
                    Some(k.span()),
                    &key,
                    format!("{name} is already defined as names.{first}"),
                    Some("merge the two tables into one".into()),
                );
                continue;
            }
            seen.insert(name.clone(), key_segment(raw));
            if v.get_ref().as_table().is_none() {
                self.d.error(
                    Some(v.span()),
                    &key,
                    format!("expected a table, found {}", v.get_ref().type_str()),
                    Some(format!(
                        "write [{key}] with record keys: {}",
                        NAME_KEYS.join(", ")
                    )),
                );
                continue;
            }
            let Some(spec) = deserialize::<NameSpec>(self.d, &key, v) else {
                continue;
            };
            out.push(ParsedName {
                key,
                span: k.span(),
                name,
                spec,
            });
        }
        out
    }

    /// Parses each name's records, then checks the rules that span names.
    fn nodes(
        &mut self,
        origin: &Name,
        default_ttl: Ttl,
        parsed: Vec<ParsedName>,
        root_span: Range<usize>,
        datacenters: &[Datacenter],
    ) -> Vec<Node> {
        let dc_ids: Vec<&str> = datacenters.iter().map(|d| d.id.as_str()).collect();
        let mut nodes = Vec::with_capacity(parsed.len());
        let mut meta: Vec<(String, Range<usize>)> = Vec::with_capacity(parsed.len());
        for p in parsed {
            let ttl = match &p.spec.ttl {
                Some(t) => self
                    .ttl(*t.get_ref(), t.span(), &format!("{}.ttl", p.key))
                    .unwrap_or(default_ttl),
                None => default_ttl,
            };
            let mut rrsets = Vec::new();
            let s = &p.spec;
            let fields: [(&str, RecordType, &Option<Spanned<Values>>); 9] = [
                ("a", RecordType::A, &s.a),
                ("aaaa", RecordType::AAAA, &s.aaaa),
                ("cname", RecordType::CNAME, &s.cname),
                ("mx", RecordType::MX, &s.mx),
                ("txt", RecordType::TXT, &s.txt),
                ("srv", RecordType::SRV, &s.srv),
                ("caa", RecordType::CAA, &s.caa),
                ("ptr", RecordType::PTR, &s.ptr),
                ("ns", RecordType::NS, &s.ns),
            ];
            for (field, rtype, values) in fields {
                let Some(values) = values else { continue };
                let key = format!("{}.{field}", p.key);
                let list = &values.get_ref().0;
                if list.is_empty() {
                    self.d.error(
                        Some(values.span()),
                        &key,
                        "the list is empty",
                        Some("give at least one value, or remove the key".into()),
                    );
                    continue;
                }
                if rtype == RecordType::CNAME && list.len() > 1 {
                    self.d.error(
                        Some(values.span()),
                        &key,
                        format!("a name has one CNAME target, found {}", list.len()),
                        Some(
                            "keep one target; use a GSLB name or several A records to spread load"
                                .into(),
                        ),
                    );
                    continue;
                }
                let mut data: Vec<RData> = Vec::with_capacity(list.len());
                for (i, item) in list.iter().enumerate() {
                    let span = item.span.clone().unwrap_or_else(|| values.span());
                    let item_key = if values.get_ref().0.len() > 1 || item.span.is_some() {
                        format!("{key}[{i}]")
                    } else {
                        key.clone()
                    };
                    if let Some(rd) = self.rdata(origin, rtype, item, span, &item_key) {
                        if !data.contains(&rd) {
                            data.push(rd);
                        }
                    }
                }
                if !data.is_empty() {
                    rrsets.push(RrSet { rtype, ttl, data });
                }
            }
            let gslb = match &p.spec.gslb {
                Some(g) => {
                    for (field, present) in [
                        ("a", s.a.is_some()),
                        ("aaaa", s.aaaa.is_some()),
                        ("cname", s.cname.is_some()),
                    ] {
                        if present {
                            self.d.error(
                                Some(g.span()),
                                format!("{}.{field}", p.key),
                                format!(
                                    "a GSLB name takes its {} answers from its data centers",
                                    field.to_uppercase()
                                ),
                                Some(format!(
                                    "remove `{field}`, or add those addresses to a data center"
                                )),
                            );
                        }
                    }
                    let gslb =
                        self.gslb(origin, &format!("{}.gslb", p.key), g, datacenters, &dc_ids);
                    if let Some(AllDown::Cname(target)) = gslb.as_ref().map(|g| &g.all_down) {
                        if *target == p.name {
                            self.d.error(
                                Some(g.span()),
                                format!("{}.gslb.all_down", p.key),
                                format!("the fallback CNAME points back at {}", p.name),
                                Some("point it at another name, e.g. a static sorry page".into()),
                            );
                        }
                    }
                    gslb
                }
                None => None,
            };
            meta.push((p.key, p.span));
            nodes.push(Node {
                name: p.name,
                rrsets,
                gslb,
            });
        }
        self.check_rules(origin, &nodes, &meta, root_span);
        nodes
    }

    fn rdata(
        &mut self,
        origin: &Name,
        rtype: RecordType,
        item: &Item,
        span: Range<usize>,
        key: &str,
    ) -> Option<RData> {
        let v = item.value.trim();
        let bad = |d: &mut FileDiags<'_>, what: &str, help: &str| {
            d.error(
                Some(span.clone()),
                key,
                format!("{:?} is not {what}", item.value),
                Some(help.to_owned()),
            );
        };
        match rtype {
            RecordType::A => match v.parse::<Ipv4Addr>() {
                Ok(ip) => Some(RData::A(rdata::A(ip))),
                Err(_) if v.parse::<Ipv6Addr>().is_ok() => {
                    bad(self.d, "an IPv4 address", "IPv6 addresses go under `aaaa`");
                    None
                }
                Err(_) => {
                    bad(
                        self.d,
                        "an IPv4 address",
                        "write an IPv4 literal, e.g. \"192.0.2.10\"",
                    );
                    None
                }
            },
            RecordType::AAAA => match v.parse::<Ipv6Addr>() {
                Ok(ip) => Some(RData::AAAA(rdata::AAAA(ip))),
                Err(_) if v.parse::<IpAddr>().is_ok() => {
                    bad(self.d, "an IPv6 address", "IPv4 addresses go under `a`");
                    None
                }
                Err(_) => {
                    bad(
                        self.d,
                        "an IPv6 address",
                        "write an IPv6 literal, e.g. \"2001:db8::10\"",
                    );
                    None
                }
            },
            RecordType::CNAME => self
                .name(origin, v, span, key, false)
                .map(|n| RData::CNAME(CNAME(n))),
            RecordType::PTR => self
                .name(origin, v, span, key, false)
                .map(|n| RData::PTR(PTR(n))),
            RecordType::NS => self
                .name(origin, v, span, key, false)
                .map(|n| RData::NS(NS(n))),
            RecordType::MX => {
                let parts: Vec<&str> = v.split_whitespace().collect();
                let help = "write \"PREFERENCE HOST\", e.g. \"10 mail\"";
                match parts.as_slice() {
                    [pref, host] => match pref.parse::<u16>() {
                        Ok(pref) => self
                            .name(origin, host, span, key, false)
                            .map(|n| RData::MX(MX::new(pref, n))),
                        Err(_) => {
                            bad(
                                self.d,
                                "a valid MX record (the preference is not 0-65535)",
                                help,
                            );
                            None
                        }
                    },
                    _ => {
                        bad(self.d, "a valid MX record", help);
                        None
                    }
                }
            }
            RecordType::SRV => {
                let parts: Vec<&str> = v.split_whitespace().collect();
                let help = "write \"PRIORITY WEIGHT PORT TARGET\", e.g. \"10 5 443 www\"";
                match parts.as_slice() {
                    [p, w, port, target] => {
                        match (p.parse::<u16>(), w.parse::<u16>(), port.parse::<u16>()) {
                            (Ok(p), Ok(w), Ok(port)) => self
                                .name(origin, target, span, key, false)
                                .map(|n| RData::SRV(SRV::new(p, w, port, n))),
                            _ => {
                                bad(
                                    self.d,
                                    "a valid SRV record (priority, weight and port are 0-65535)",
                                    help,
                                );
                                None
                            }
                        }
                    }
                    _ => {
                        bad(self.d, "a valid SRV record", help);
                        None
                    }
                }
            }
            RecordType::TXT => {
                // One record per entry; RFC 1035 character-strings hold 255 bytes, so longer
                // text (DKIM keys) is split, as resolvers join the pieces back.
                let bytes = item.value.as_bytes();
                let mut pieces = Vec::new();
                let mut start = 0;
                while start < bytes.len() {
                    let mut end = (start + 255).min(bytes.len());
                    while !item.value.is_char_boundary(end) {
                        end -= 1;
                    }
                    pieces.push(item.value[start..end].to_owned());
                    start = end;
                }
                if pieces.is_empty() {
                    pieces.push(String::new());
                }
                Some(RData::TXT(TXT::new(pieces)))
            }
            RecordType::CAA => match RData::try_from_str(RecordType::CAA, v) {
                Ok(rd) => Some(rd),
                Err(e) => {
                    self.d.error(
                        Some(span),
                        key,
                        format!("{:?} is not a valid CAA record: {e}", item.value),
                        Some(
                            "write \"FLAGS TAG VALUE\", e.g. '0 issue \"letsencrypt.org\"'".into(),
                        ),
                    );
                    None
                }
            },
            _ => None,
        }
    }

    fn checks(&mut self, v: &Spanned<DeValue<'_>>) -> HashMap<String, Option<CheckSpec>> {
        let Some(table) = v.get_ref().as_table() else {
            self.d.error(
                Some(v.span()),
                "checks",
                format!("expected a table, found {}", v.get_ref().type_str()),
                Some("write one table per check, e.g. [checks.web]".into()),
            );
            return HashMap::new();
        };
        let mut out = HashMap::new();
        for (k, v) in table.iter() {
            let name = k.get_ref().as_ref().to_owned();
            let key = format!("checks.{}", key_segment(&name));
            // A check that fails to validate is remembered as None, so references to it do
            // not add a second, misleading "no such check" error.
            let check = deserialize::<HealthCheckSpec>(self.d, &key, v)
                .and_then(|spec| self.check(&key, &spec));
            out.insert(name, check);
        }
        out
    }

    fn check(&mut self, key: &str, c: &HealthCheckSpec) -> Option<CheckSpec> {
        let errors = self.d.error_count();
        let kind_word = c.kind.get_ref().as_str();
        let port = match &c.port {
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    self.d.error(
                        Some(p.span()),
                        format!("{key}.port"),
                        format!("{} is not a port", p.get_ref()),
                        Some("use 1-65535".into()),
                    );
                    None
                }
            },
            None => None,
        };
        let http_only = [
            ("path", c.path.as_ref().map(Spanned::span)),
            ("host", c.host.as_ref().map(Spanned::span)),
            ("expect", c.expect.as_ref().map(Spanned::span)),
            ("body", c.body.as_ref().map(Spanned::span)),
            ("sni", c.sni.as_ref().map(Spanned::span)),
        ];
        let kind = match kind_word {
            "tcp" => {
                for (field, span) in http_only {
                    if let Some(span) = span {
                        self.d.error(
                            Some(span),
                            format!("{key}.{field}"),
                            format!("`{field}` applies to http and https checks, not tcp"),
                            Some("remove it, or set type = \"http\"".into()),
                        );
                    }
                }
                match port {
                    Some(port) => Some(CheckKind::Tcp { port }),
                    None => {
                        if c.port.is_none() {
                            self.d.error(
                                Some(c.kind.span()),
                                format!("{key}.port"),
                                "a tcp check needs a port",
                                Some("add port = 443 (or the service's port)".into()),
                            );
                        }
                        None
                    }
                }
            }
            "http" | "https" => {
                let tls = kind_word == "https";
                let path = c
                    .path
                    .as_ref()
                    .map_or_else(|| "/".to_owned(), |p| p.get_ref().clone());
                for (field, value) in [("host", &c.host), ("sni", &c.sni)] {
                    let Some(v) = value else { continue };
                    let text = v.get_ref();
                    // SNI carries names only (RFC 6066 §3); an IPv6 literal would need
                    // brackets in the Host header and URL, so the address itself is used.
                    let ip_ok = match text.parse::<IpAddr>() {
                        Ok(IpAddr::V4(_)) => field == "host",
                        _ => false,
                    };
                    let ok = ip_ok
                        || (!text.is_empty()
                            && text.parse::<IpAddr>().is_err()
                            && text.len() <= 253
                            && text.split('.').all(|l| {
                                !l.is_empty()
                                    && l.len() <= 63
                                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            }));
                    if !ok {
                        self.d.error(
                            Some(v.span()),
                            format!("{key}.{field}"),
                            format!("{text:?} is not a host name"),
                            Some(
                                "write a name like \"www.example.com\" (no port, no scheme)".into(),
                            ),
                        );
                    }
                }
                if path
                    .bytes()
                    .any(|b| b.is_ascii_control() || b == b' ' || b == b'#')
                {
                    self.d.error(
                        c.path.as_ref().map(Spanned::span),
                        format!("{key}.path"),
                        format!("{path:?} is not a URL path"),
                        Some("percent-encode spaces and control characters, e.g. \"/health%20check\"".into()),
                    );
                }
                if c.body.as_ref().is_some_and(|b| b.get_ref().is_empty()) {
                    self.d.error(
                        c.body.as_ref().map(Spanned::span),
                        format!("{key}.body"),
                        "an empty body substring matches every body",
                        Some("give the text the body must contain, or remove `body`".into()),
                    );
                }
                if !path.starts_with('/') {
                    let span = c.path.as_ref().map(Spanned::span);
                    self.d.error(
                        span,
                        format!("{key}.path"),
                        format!("{path:?} does not start with /"),
                        Some("write the path part of the URL, e.g. \"/health\"".into()),
                    );
                }
                let mut expect = Vec::new();
                if let Some(e) = &c.expect {
                    for code in e.get_ref() {
                        match u16::try_from(*code) {
                            Ok(v) if (100..=599).contains(&v) => expect.push(v),
                            _ => self.d.error(
                                Some(e.span()),
                                format!("{key}.expect"),
                                format!("{code} is not an HTTP status code"),
                                Some("use codes from 100 to 599, e.g. [200, 204]".into()),
                            ),
                        }
                    }
                }
                Some(CheckKind::Http {
                    tls,
                    port: port.unwrap_or(if tls { 443 } else { 80 }),
                    path,
                    host: c.host.as_ref().map(|h| h.get_ref().clone()),
                    expect,
                    body_contains: c.body.as_ref().map(|b| b.get_ref().clone()),
                    verify_tls: c.verify_tls.unwrap_or(true),
                    sni: c.sni.as_ref().map(|h| h.get_ref().clone()),
                })
            }
            other => {
                self.d.error(
                    Some(c.kind.span()),
                    format!("{key}.type"),
                    format!("unknown check type {other:?}"),
                    Some("use \"tcp\", \"http\" or \"https\"".into()),
                );
                None
            }
        };
        let dur = |v: &Option<Spanned<ProbeDuration>>, default: std::time::Duration| {
            v.as_ref().map_or(default, |d| d.get_ref().0)
        };
        let interval = dur(&c.interval, std::time::Duration::from_secs(10));
        let timeout = dur(
            &c.timeout,
            std::time::Duration::from_secs(3).min(interval / 2),
        );
        let jitter = dur(&c.jitter, interval / 10);
        if interval > std::time::Duration::from_secs(86_400) {
            self.d.error(
                c.interval.as_ref().map(Spanned::span),
                format!("{key}.interval"),
                format!("{interval:?} is longer than a day"),
                Some("probe at least daily, e.g. interval = \"10s\"".into()),
            );
        }
        if interval < std::time::Duration::from_millis(100) {
            self.d.error(
                c.interval.as_ref().map(Spanned::span),
                format!("{key}.interval"),
                format!("{interval:?} is too short"),
                Some("probe at most ten times a second, e.g. interval = \"1s\"".into()),
            );
        }
        if timeout.is_zero() || timeout >= interval {
            self.d.error(
                c.timeout.as_ref().or(c.interval.as_ref()).map(Spanned::span),
                format!("{key}.timeout"),
                format!("timeout {timeout:?} must be above zero and below the interval {interval:?}"),
                Some("a probe must finish before the next one starts; e.g. interval = \"5s\", timeout = \"2s\"".into()),
            );
        }
        if jitter >= interval {
            self.d.error(
                c.jitter.as_ref().map(Spanned::span),
                format!("{key}.jitter"),
                format!("jitter {jitter:?} must be below the interval {interval:?}"),
                Some("use a fraction of the interval, e.g. a tenth".into()),
            );
        }
        let mut count = |v: &Option<Spanned<i64>>, field: &str, default: u32| -> u32 {
            match v {
                None => default,
                Some(x) if (1..=100).contains(x.get_ref()) => *x.get_ref() as u32,
                Some(x) => {
                    self.d.error(
                        Some(x.span()),
                        format!("{key}.{field}"),
                        format!("{} is outside 1..=100", x.get_ref()),
                        Some(
                            "consecutive results needed to change state; 2 or 3 is typical".into(),
                        ),
                    );
                    default
                }
            }
        };
        let rise = count(&c.rise, "rise", 2);
        let fall = count(&c.fall, "fall", 3);
        let initial = match c.initial.as_ref().map(|i| i.get_ref().as_str()) {
            None | Some("up") => InitialState::Up,
            Some("down") => InitialState::Down,
            Some("first_result") => InitialState::FirstResult,
            Some(other) => {
                self.d.error(
                    c.initial.as_ref().map(Spanned::span),
                    format!("{key}.initial"),
                    format!("unknown initial state {other:?}"),
                    Some("use \"up\", \"down\" or \"first_result\"".into()),
                );
                InitialState::Up
            }
        };
        if self.d.error_count() > errors {
            return None;
        }
        Some(CheckSpec {
            kind: kind?,
            interval,
            timeout,
            rise,
            fall,
            jitter,
            initial,
        })
    }

    /// Looks up a check by name for `key`; `Err` when the name is unknown.
    fn check_ref(
        &mut self,
        key: &str,
        name: &str,
        span: Range<usize>,
        checks: &HashMap<String, Option<CheckSpec>>,
    ) -> Result<Option<CheckSpec>, ()> {
        if name == "none" {
            return Ok(None);
        }
        match checks.get(name) {
            Some(c) => Ok(c.clone()),
            None => {
                let names: Vec<&str> = checks.keys().map(String::as_str).collect();
                let help = match did_you_mean(name, &names) {
                    Some(best) => format!("did you mean {best:?}?"),
                    None => "declare it in a [checks.NAME] table, or write \"none\"".to_owned(),
                };
                self.d.error(
                    Some(span),
                    key,
                    format!("no check {name:?} in this zone"),
                    Some(help),
                );
                Err(())
            }
        }
    }

    fn datacenters(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        checks: &HashMap<String, Option<CheckSpec>>,
    ) -> Vec<Datacenter> {
        let Some(table) = v.get_ref().as_table() else {
            self.d.error(
                Some(v.span()),
                "datacenters",
                format!("expected a table, found {}", v.get_ref().type_str()),
                Some("write one table per data center, e.g. [datacenters.ams]".into()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in table.iter() {
            let id = k.get_ref().as_ref().to_owned();
            let key = format!("datacenters.{}", key_segment(&id));
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.d.error(
                    Some(k.span()),
                    &key,
                    format!("{id:?} is not a usable data center id"),
                    Some("use letters, digits, '-' and '_', e.g. ams or us-east-1".into()),
                );
                continue;
            }
            let Some(spec) = deserialize::<DatacenterSpec>(self.d, &key, v) else {
                continue;
            };
            if let Some(dc) = self.datacenter(&key, id, spec, checks) {
                out.push(dc);
            }
        }
        out
    }

    fn datacenter(
        &mut self,
        key: &str,
        id: String,
        spec: DatacenterSpec,
        checks: &HashMap<String, Option<CheckSpec>>,
    ) -> Option<Datacenter> {
        let errors = self.d.error_count();
        let dc_check = match &spec.check {
            Some(c) => self
                .check_ref(&format!("{key}.check"), c.get_ref(), c.span(), checks)
                .ok()
                .flatten(),
            None => None,
        };
        let mut addresses = Vec::new();
        if spec.addresses.get_ref().is_empty() {
            self.d.error(
                Some(spec.addresses.span()),
                format!("{key}.addresses"),
                "the list is empty",
                Some("give at least one IPv4 or IPv6 address".into()),
            );
        }
        for (i, a) in spec.addresses.get_ref().iter().enumerate() {
            let akey = format!("{key}.addresses[{i}]");
            let Ok(ip) = a.get_ref().address.trim().parse::<IpAddr>() else {
                self.d.error(
                    Some(a.span()),
                    &akey,
                    format!("{:?} is not an IP address", a.get_ref().address),
                    Some(
                        "write an IPv4 or IPv6 literal, e.g. \"192.0.2.10\" or \"2001:db8::10\""
                            .into(),
                    ),
                );
                continue;
            };
            let weight = match a.get_ref().weight {
                None => 1,
                Some(w) if (1..=1_000_000).contains(&w) => w as u32,
                Some(w) => {
                    self.d.error(
                        Some(a.span()),
                        format!("{akey}.weight"),
                        format!("{w} is outside 1..=1000000"),
                        Some(
                            "weights are relative shares; use small positive numbers like 1, 2, 10"
                                .into(),
                        ),
                    );
                    continue;
                }
            };
            if addresses.iter().any(|x: &DcAddress| x.ip == ip) {
                self.d.error(
                    Some(a.span()),
                    &akey,
                    format!("{ip} is listed twice"),
                    Some("remove the duplicate".into()),
                );
                continue;
            }
            let check = match &a.get_ref().check {
                Some(name) => {
                    match self.check_ref(&format!("{akey}.check"), name, a.span(), checks) {
                        Ok(c) => c,
                        Err(()) => continue,
                    }
                }
                None => dc_check.clone(),
            };
            if addresses
                .iter()
                .filter(|x: &&DcAddress| x.ip.is_ipv6() == ip.is_ipv6())
                .count()
                >= 64
            {
                self.d.error(
                    Some(a.span()),
                    &akey,
                    "more than 64 addresses of one family in a data center",
                    Some("split it into several data centers".into()),
                );
                continue;
            }
            addresses.push(DcAddress { ip, weight, check });
        }
        let mut geo = |value: Option<&Spanned<String>>,
                       field: &str,
                       parse: fn(&str) -> Result<Code, Invalid>|
         -> Option<Code> {
            let v = value?;
            parse(v.get_ref())
                .map_err(|e| {
                    self.d.error(
                        Some(v.span()),
                        format!("{key}.{field}"),
                        e.message,
                        Some(e.help),
                    )
                })
                .ok()
        };
        let country = geo(spec.country.as_ref(), "country", parse_country);
        let continent = geo(spec.continent.as_ref(), "continent", parse_continent)
            .or_else(|| country.and_then(continent_of));
        let location = match &spec.location {
            Some(l) => parse_coord(l.get_ref())
                .map_err(|e| {
                    self.d.error(
                        Some(l.span()),
                        format!("{key}.location"),
                        e.message,
                        Some(e.help),
                    )
                })
                .ok(),
            None => country.and_then(centroid_of),
        };
        if self.d.error_count() > errors {
            return None;
        }
        Some(Datacenter {
            id,
            addresses,
            location,
            country,
            continent,
        })
    }

    /// Resolves a list of data center ids, each required to be in `allowed`.
    fn dc_list(
        &mut self,
        key: &str,
        values: &Spanned<Values>,
        all_ids: &[&str],
        allowed: Option<&[usize]>,
    ) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in values.get_ref().0.iter().enumerate() {
            let span = item.span.clone().unwrap_or_else(|| values.span());
            let ikey = if item.span.is_some() {
                format!("{key}[{i}]")
            } else {
                key.to_owned()
            };
            match all_ids.iter().position(|d| *d == item.value) {
                Some(idx) if allowed.is_none_or(|a| a.contains(&idx)) => {
                    if !out.contains(&idx) {
                        out.push(idx);
                    }
                }
                Some(_) => {
                    ok = false;
                    self.d.error(
                        Some(span),
                        ikey,
                        format!(
                            "data center {:?} is not a candidate of this name",
                            item.value
                        ),
                        Some("add it to this name's gslb.datacenters, or remove it here".into()),
                    );
                }
                None => {
                    ok = false;
                    let help = match did_you_mean(&item.value, all_ids) {
                        Some(best) => format!("did you mean {best:?}?"),
                        None if all_ids.is_empty() => {
                            "declare it in a [datacenters.ID] table".to_owned()
                        }
                        None => format!("known data centers: {}", all_ids.join(", ")),
                    };
                    self.d.error(
                        Some(span),
                        ikey,
                        format!("no data center {:?} in this zone", item.value),
                        Some(help),
                    );
                }
            }
        }
        if out.is_empty() && ok {
            self.d.error(
                Some(values.span()),
                key,
                "the list is empty",
                Some("name at least one data center".into()),
            );
            return None;
        }
        ok.then_some(out)
    }

    fn network(&mut self, key: &str, text: &str, span: Range<usize>) -> Option<IpNet> {
        parse_network(text)
            .map_err(|e| self.d.error(Some(span), key, e.message, Some(e.help)))
            .ok()
    }

    fn network_overrides(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        dc_ids: &[&str],
    ) -> Vec<(IpNet, Vec<usize>)> {
        let Some(map) =
            deserialize::<BTreeMap<String, Spanned<Values>>>(self.d, "network_overrides", v)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (net, list) in &map {
            let key = format!("network_overrides.{}", key_segment(net));
            let net = self.network(&key, net, list.span());
            let list = self.dc_list(&key, list, dc_ids, None);
            if let (Some(n), Some(l)) = (net, list) {
                out.push((n, l));
            }
        }
        out
    }

    fn gslb(
        &mut self,
        origin: &Name,
        key: &str,
        g: &Spanned<GslbSpec>,
        datacenters: &[Datacenter],
        dc_ids: &[&str],
    ) -> Option<Gslb> {
        let errors = self.d.error_count();
        let spec = g.get_ref();
        let as_values = Values(
            spec.datacenters
                .get_ref()
                .iter()
                .map(|s| Item {
                    span: Some(s.span()),
                    value: s.get_ref().clone(),
                })
                .collect(),
        );
        let candidates = self
            .dc_list(
                &format!("{key}.datacenters"),
                &Spanned::new(spec.datacenters.span(), as_values),
                dc_ids,
                None,
            )
            .unwrap_or_default();
        if candidates.len() > 255 {
            self.d.error(
                Some(spec.datacenters.span()),
                format!("{key}.datacenters"),
                format!("{} candidates; at most 255 are supported", candidates.len()),
                Some("split the name, or group addresses into fewer data centers".into()),
            );
        }
        let policy_name = spec.policy.as_ref().map(|p| p.get_ref().as_str());
        let policy = match (policy_name, &spec.map) {
            (None | Some("nearest"), None) => Some(Policy::Nearest),
            (None | Some("map"), Some(m)) => self
                .geo_map(&format!("{key}.map"), m.get_ref(), dc_ids, &candidates)
                .map(Policy::Map),
            (Some("map"), None) => {
                self.d.error(
                    Some(g.span()),
                    format!("{key}.map"),
                    "policy \"map\" needs a [map] table",
                    Some("add rules such as map.country.BR = [\"nyc\"] and map.default = \"nearest\"".into()),
                );
                None
            }
            (Some("nearest"), Some(m)) => {
                self.d.error(
                    Some(m.span()),
                    format!("{key}.map"),
                    "a map is given but policy is \"nearest\"",
                    Some("set policy = \"map\" (with default = \"nearest\" for uncovered clients), or remove the map".into()),
                );
                None
            }
            (Some(other), _) => {
                let p = spec.policy.as_ref().map(Spanned::span);
                self.d.error(
                    p,
                    format!("{key}.policy"),
                    format!("unknown policy {other:?}"),
                    Some("use \"nearest\" or \"map\"".into()),
                );
                None
            }
        };
        let needs_location = match &policy {
            Some(Policy::Nearest) => true,
            Some(Policy::Map(m)) => m.default == Fallback::Nearest,
            None => false,
        };
        if needs_location {
            for &c in &candidates {
                if datacenters[c].location.is_none() {
                    self.d.error(
                        Some(spec.datacenters.span()),
                        format!("{key}.datacenters"),
                        format!(
                            "data center {:?} has no location, which \"nearest\" needs",
                            datacenters[c].id
                        ),
                        Some(format!(
                            "give datacenters.{}.location = [latitude, longitude] or a country",
                            datacenters[c].id
                        )),
                    );
                }
            }
        }
        let small = |d: &mut FileDiags<'_>,
                     v: &Option<Spanned<i64>>,
                     field: &str,
                     max: i64|
         -> Option<Option<usize>> {
            match v {
                None => Some(None),
                Some(x) if (1..=max).contains(x.get_ref()) => Some(Some(*x.get_ref() as usize)),
                Some(x) => {
                    d.error(
                        Some(x.span()),
                        format!("{key}.{field}"),
                        format!("{} is outside 1..={max}", x.get_ref()),
                        Some(
                            "a small positive number; 1 sends each client to one data center"
                                .into(),
                        ),
                    );
                    None
                }
            }
        };
        let max_datacenters = small(self.d, &spec.max_datacenters, "max_datacenters", 255);
        let max_addresses = small(self.d, &spec.max_addresses, "max_addresses", 255);
        let ttl = match &spec.ttl {
            Some(t) => self.ttl(*t.get_ref(), t.span(), &format!("{key}.ttl")),
            None => Ttl::new(30),
        };
        let min_ttl = match (&spec.min_ttl, ttl) {
            (Some(t), Some(ttl)) => self
                .ttl(*t.get_ref(), t.span(), &format!("{key}.min_ttl"))
                .filter(|m| {
                    let ok = *m <= ttl;
                    if !ok {
                        self.d.error(
                            Some(t.span()),
                            format!("{key}.min_ttl"),
                            format!("{} s is above ttl ({} s)", m.secs(), ttl.secs()),
                            Some(
                                "min_ttl is the shorter TTL used while candidates are unhealthy"
                                    .into(),
                            ),
                        );
                    }
                    ok
                }),
            (None, Some(ttl)) => Ttl::new(u64::from((ttl.secs() / 3).max(5).min(ttl.secs()))),
            (_, None) => None,
        };
        let all_down = match &spec.all_down {
            None => Some(AllDown::FailOpen),
            Some(a) => self.all_down(origin, &format!("{key}.all_down"), a),
        };
        if self.d.error_count() > errors {
            return None;
        }
        Some(Gslb {
            candidates,
            policy: policy?,
            max_datacenters: max_datacenters?.unwrap_or(1),
            max_addresses: max_addresses?,
            ttl: ttl?,
            min_ttl: min_ttl?,
            all_down: all_down?,
        })
    }

    fn all_down(&mut self, origin: &Name, key: &str, a: &Spanned<AllDownSpec>) -> Option<AllDown> {
        let help = "use \"fail_open\", \"servfail\", \"nodata\", { addresses = [\"192.0.2.99\"] } or { cname = \"sorry.example.net.\" }";
        let bad = |d: &mut FileDiags<'_>, msg: String| {
            d.error(Some(a.span()), key, msg, Some(help.into()));
            None
        };
        match a.get_ref() {
            AllDownSpec::Word(w) => match w.as_str() {
                "fail_open" => Some(AllDown::FailOpen),
                "servfail" => Some(AllDown::ServFail),
                "nodata" => Some(AllDown::NoData),
                other => bad(self.d, format!("unknown all_down policy {other:?}")),
            },
            AllDownSpec::Fallback(FallbackSpec {
                addresses: Some(list),
                cname: None,
            }) => {
                let ips: Result<Vec<IpAddr>, _> =
                    list.iter().map(|s| s.parse::<IpAddr>()).collect();
                match ips {
                    Ok(ips) if !ips.is_empty() => Some(AllDown::Addresses(ips)),
                    _ => bad(self.d, format!("{list:?} is not a list of IP addresses")),
                }
            }
            AllDownSpec::Fallback(FallbackSpec {
                addresses: None,
                cname: Some(c),
            }) => self
                .name(origin, c, a.span(), &format!("{key}.cname"), false)
                .map(AllDown::Cname),
            AllDownSpec::Fallback(_) => {
                bad(self.d, "give exactly one of `addresses` and `cname`".into())
            }
        }
    }

    fn geo_map(
        &mut self,
        key: &str,
        m: &MapSpec,
        dc_ids: &[&str],
        candidates: &[usize],
    ) -> Option<GeoMap> {
        let errors = self.d.error_count();
        let mut map = GeoMap::default();
        if let Some(d) = &m.default {
            match d.get_ref().0.as_slice() {
                [one] if one.value == "nearest" && one.span.is_none() => {
                    map.default = Fallback::Nearest
                }
                _ => {
                    if let Some(l) =
                        self.dc_list(&format!("{key}.default"), d, dc_ids, Some(candidates))
                    {
                        map.default = Fallback::List(l);
                    }
                }
            }
        } else {
            map.default = Fallback::List(candidates.to_vec());
        }
        let rules = [
            (
                &m.continent,
                "continent",
                parse_continent as fn(&str) -> Result<Code, Invalid>,
            ),
            (&m.country, "country", parse_country),
        ];
        for (table, field, parse) in rules {
            for (code, list) in table.iter().flatten() {
                let k = format!("{key}.{field}.{}", key_segment(code));
                let c = parse(code)
                    .map_err(|e| self.d.error(Some(list.span()), &k, e.message, Some(e.help)))
                    .ok();
                if let (Some(c), Some(l)) = (c, self.dc_list(&k, list, dc_ids, Some(candidates))) {
                    if field == "continent" {
                        map.continent.push((c, l));
                    } else {
                        map.country.push((c, l));
                    }
                }
            }
        }
        for (code, list) in m.subdivision.iter().flatten() {
            let k = format!("{key}.subdivision.{}", key_segment(code));
            let valid = code.split_once('-').is_some_and(|(c, s)| {
                Code::parse(c).is_some_and(|c| country::lookup(c.as_str()).is_some())
                    && (1..=3).contains(&s.len())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric())
            });
            if !valid {
                self.d.error(
                    Some(list.span()),
                    &k,
                    format!("{code:?} is not an ISO 3166-2 subdivision code"),
                    Some("write COUNTRY-SUBDIVISION, e.g. \"US-CA\" or \"NL-NH\"".into()),
                );
            }
            if let Some(l) = self.dc_list(&k, list, dc_ids, Some(candidates)) {
                if valid {
                    map.subdivision.push((code.to_ascii_uppercase(), l));
                }
            }
        }
        for (net, list) in m.network.iter().flatten() {
            let k = format!("{key}.network.{}", key_segment(net));
            let n = self.network(&k, net, list.span());
            if let (Some(n), Some(l)) = (n, self.dc_list(&k, list, dc_ids, Some(candidates))) {
                map.network.push((n, l));
            }
        }
        for (asn, list) in m.asn.iter().flatten() {
            let k = format!("{key}.asn.{}", key_segment(asn));
            let n = parse_asn(asn);
            if n.is_none() {
                self.d.error(
                    Some(list.span()),
                    &k,
                    format!("{asn:?} is not an AS number"),
                    Some("write \"AS64500\" or \"64500\"".into()),
                );
            }
            if let (Some(n), Some(l)) = (n, self.dc_list(&k, list, dc_ids, Some(candidates))) {
                map.asn.push((n, l));
            }
        }
        (self.d.error_count() == errors).then_some(map)
    }

    /// Rules between names: apex NS, CNAME exclusivity, delegations, CNAME loops.
    fn check_rules(
        &mut self,
        origin: &Name,
        nodes: &[Node],
        meta: &[(String, Range<usize>)],
        root_span: Range<usize>,
    ) {
        let by_name: BTreeMap<&Name, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (&n.name, i))
            .collect();

        let apex = by_name.get(origin).map(|&i| &nodes[i]);
        if apex.and_then(|a| a.rrset(RecordType::NS)).is_none() {
            let span = by_name
                .get(origin)
                .map_or(root_span.start..root_span.start, |&i| meta[i].1.clone());
            self.d.error(
                Some(span),
                "names.\"@\".ns",
                "the zone has no NS records at its apex",
                Some(
                    "add [names.\"@\"] with ns = [\"ns1\", \"ns2\"] naming this server's hostnames"
                        .into(),
                ),
            );
        }

        // Delegation points: NS below the apex.
        let cuts: Vec<&Name> = nodes
            .iter()
            .filter(|n| n.name != *origin && n.rrset(RecordType::NS).is_some())
            .map(|n| &n.name)
            .collect();

        for (i, node) in nodes.iter().enumerate() {
            let (key, span) = (&meta[i].0, meta[i].1.clone());
            let types: Vec<RecordType> = node.rrsets.iter().map(|r| r.rtype).collect();
            if types.contains(&RecordType::CNAME) {
                if node.name == *origin {
                    self.d.error(
                        Some(span.clone()),
                        format!("{key}.cname"),
                        "the apex cannot be a CNAME: it holds the zone's SOA and NS",
                        Some(
                            "put the CNAME on a name below the apex, or use address records".into(),
                        ),
                    );
                } else if types.len() > 1 {
                    let others: Vec<String> = types
                        .iter()
                        .filter(|t| **t != RecordType::CNAME)
                        .map(|t| t.to_string())
                        .collect();
                    self.d.error(
                        Some(span.clone()),
                        key,
                        format!("CNAME cannot coexist with {} at the same name", others.join(", ")),
                        Some(format!(
                            "remove the {} record, or move the CNAME to a different name (RFC 1034 §3.6.2)",
                            others.join(", ")
                        )),
                    );
                }
            }
            let is_cut = cuts.contains(&&node.name);
            if is_cut {
                if node.name.is_wildcard() {
                    self.d.error(
                        Some(span.clone()),
                        format!("{key}.ns"),
                        "a wildcard name cannot be a delegation",
                        Some("delegate a concrete name instead (RFC 4592 §4.2)".into()),
                    );
                }
                let others: Vec<String> = types
                    .iter()
                    .filter(|t| **t != RecordType::NS)
                    .map(|t| t.to_string())
                    .collect();
                if !others.is_empty() {
                    self.d.error(
                        Some(span.clone()),
                        key,
                        format!(
                            "{} at a delegation point would never be served: NS below the apex delegates {} to other servers",
                            others.join(", "),
                            node.name
                        ),
                        Some("remove the other records, or remove `ns` to serve the name from this zone".into()),
                    );
                }
            }
            if node.gslb.is_some() && (is_cut || cuts.iter().any(|c| c.zone_of(&node.name))) {
                self.d.error(
                    Some(span.clone()),
                    format!("{key}.gslb"),
                    format!("{} is delegated to other servers, so its GSLB answers would never be served", node.name),
                    Some("move the GSLB name out of the delegated subtree, or remove the delegation".into()),
                );
            }
            if let Some(cut) = cuts
                .iter()
                .find(|c| **c != &node.name && c.zone_of(&node.name))
            {
                let non_glue: Vec<String> = types
                    .iter()
                    .filter(|t| !matches!(t, RecordType::A | RecordType::AAAA))
                    .map(|t| t.to_string())
                    .collect();
                if !non_glue.is_empty() {
                    self.d.error(
                        Some(span.clone()),
                        key,
                        format!(
                            "{} is below the delegation {cut}, so its {} would never be served",
                            node.name,
                            non_glue.join(", ")
                        ),
                        Some("only glue addresses (a, aaaa) for the delegated name servers belong below a delegation".into()),
                    );
                }
            }
        }

        self.check_name_servers(origin, nodes, meta, &by_name);
        self.check_cname_loops(nodes, meta, &by_name);
    }

    /// In-zone name servers must be reachable: addresses (glue below a delegation), no CNAME.
    fn check_name_servers(
        &mut self,
        origin: &Name,
        nodes: &[Node],
        meta: &[(String, Range<usize>)],
        by_name: &BTreeMap<&Name, usize>,
    ) {
        for (i, node) in nodes.iter().enumerate() {
            // MX and SRV targets must not be aliases either (RFC 2181 §10.3, RFC 2782);
            // many mail servers cope, so this is a warning.
            for rs in [RecordType::MX, RecordType::SRV]
                .iter()
                .filter_map(|t| node.rrset(*t))
            {
                for d in &rs.data {
                    let target = match d {
                        RData::MX(mx) => &mx.exchange,
                        RData::SRV(srv) => &srv.target,
                        _ => continue,
                    };
                    let is_alias = by_name
                        .get(target)
                        .is_some_and(|&j| nodes[j].rrset(RecordType::CNAME).is_some());
                    if is_alias {
                        let field = rs.rtype.to_string().to_ascii_lowercase();
                        self.d.warning(
                            Some(meta[i].1.clone()),
                            format!("{}.{field}", meta[i].0),
                            format!("{} target {target} is a CNAME", rs.rtype),
                            Some("point it at the canonical name instead (RFC 2181 §10.3)".into()),
                        );
                    }
                }
            }
            let Some(ns) = node.rrset(RecordType::NS) else {
                continue;
            };
            for d in &ns.data {
                let RData::NS(target) = d else { continue };
                let target = &target.0;
                if !origin.zone_of(target) {
                    continue;
                }
                let key = format!("{}.ns", meta[i].0);
                let span = Some(meta[i].1.clone());
                let t = by_name.get(target).map(|&j| &nodes[j]);
                if t.and_then(|t| t.rrset(RecordType::CNAME)).is_some() {
                    self.d.error(
                        span,
                        key,
                        format!("name server {target} is a CNAME"),
                        Some("an NS record must name a host with addresses, not an alias (RFC 2181 §10.3)".into()),
                    );
                    continue;
                }
                let has_address = t.is_some_and(|t| {
                    t.rrset(RecordType::A).is_some() || t.rrset(RecordType::AAAA).is_some()
                });
                if !has_address {
                    let help = if node.name == *origin {
                        format!("add a or aaaa records for {target}")
                    } else {
                        format!("add glue: a or aaaa records for {target} in this zone")
                    };
                    self.d.error(
                        span,
                        key,
                        format!("name server {target} is inside this zone but has no address records, so resolvers cannot reach it"),
                        Some(help),
                    );
                }
            }
        }
    }

    fn check_cname_loops(
        &mut self,
        nodes: &[Node],
        meta: &[(String, Range<usize>)],
        by_name: &BTreeMap<&Name, usize>,
    ) {
        let target = |i: usize| -> Option<usize> {
            match nodes[i].rrset(RecordType::CNAME)?.data.first()? {
                RData::CNAME(c) => by_name.get(&c.0).copied(),
                _ => None,
            }
        };
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; nodes.len()];
        for start in 0..nodes.len() {
            let mut path = Vec::new();
            let mut cur = Some(start);
            while let Some(i) = cur {
                match state[i] {
                    2 => break,
                    1 => {
                        let from = path.iter().position(|&p| p == i).unwrap_or(0);
                        let cycle: Vec<String> = path[from..]
                            .iter()
                            .chain(std::iter::once(&i))
                            .map(|&p| nodes[p].name.to_string())
                            .collect();
                        let first = path[from];
                        self.d.error(
                            Some(meta[first].1.clone()),
                            format!("{}.cname", meta[first].0),
                            format!("CNAME chain loops: {}", cycle.join(" -> ")),
                            Some("point one of these names at address records instead".into()),
                        );
                        break;
                    }
                    _ => {
                        state[i] = 1;
                        path.push(i);
                        cur = target(i);
                    }
                }
            }
            for p in path {
                state[p] = 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"
origin = "example.com"
[soa]
primary = "ns1"
contact = "hostmaster@example.com"
serial = 1
[names."@"]
ns = ["ns1"]
[names.ns1]
a = "192.0.2.53"
"#;

    fn check(extra: &str) -> (Option<Zone>, String) {
        let mut diags = Diagnostics::new();
        let text = format!("{HEAD}{extra}");
        let zone = validate_zone(Path::new("z.toml"), &text, &mut diags);
        (zone, diags.render())
    }

    #[test]
    fn a_good_zone_has_no_diagnostics() {
        let (zone, out) = check("[names.www]\na = [\"192.0.2.1\", \"192.0.2.2\"]\n");
        assert_eq!(out, "");
        let zone = zone.expect("zone");
        assert_eq!(zone.origin.to_string(), "example.com.");
        let www = zone
            .nodes
            .iter()
            .find(|n| n.name.to_string() == "www.example.com.")
            .unwrap();
        assert_eq!(www.rrset(RecordType::A).unwrap().data.len(), 2);
        assert_eq!(zone.soa.rname.to_string(), "hostmaster.example.com.");
    }

    #[test]
    fn bad_address_is_reported_with_position_and_help() {
        let (zone, out) = check("[names.www]\na = [\"192.0.2.1\", \"10.0.0.300\"]\n");
        assert!(zone.is_none());
        assert_eq!(
            out,
            "error: z.toml:12:19: names.www.a[1]: \"10.0.0.300\" is not an IPv4 address\n  help: write an IPv4 literal, e.g. \"192.0.2.10\"\n"
        );
    }

    #[test]
    fn ipv6_under_a_says_where_it_belongs() {
        let (_, out) = check("[names.www]\na = \"2001:db8::1\"\n");
        assert!(
            out.contains("names.www.a: \"2001:db8::1\" is not an IPv4 address"),
            "{out}"
        );
        assert!(
            out.contains("help: IPv6 addresses go under `aaaa`"),
            "{out}"
        );
    }

    #[test]
    fn every_error_is_reported_not_just_the_first() {
        let (_, out) =
            check("[names.a]\na = \"x\"\n[names.b]\naaaa = \"y\"\n[names.c]\nmx = \"ten mail\"\n");
        assert_eq!(out.matches("error:").count(), 3, "{out}");
        assert!(out.contains("names.a.a:"));
        assert!(out.contains("names.b.aaaa:"));
        assert!(out.contains("names.c.mx:"));
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let (_, out) = check("[names.www]\ncnmae = \"ns1\"\n");
        assert_eq!(
            out,
            "error: z.toml:12:1: names.www: unknown key `cnmae`\n  help: did you mean `cname`?\n"
        );
        let (_, out) = check("[names.www]\naddress = \"192.0.2.1\"\n");
        assert!(
            out.contains("help: allowed keys: ttl, a, aaaa, cname"),
            "{out}"
        );
        let (_, out) = check("[sao]\nx = 1\n");
        assert!(
            out.contains("sao: unknown key `sao`\n  help: did you mean `soa`?"),
            "{out}"
        );
    }

    #[test]
    fn every_listed_top_level_key_is_a_section_the_validator_reads() {
        for key in ZONE_KEYS {
            let mut diags = Diagnostics::new();
            validate_zone(Path::new("z.toml"), &format!("{key} = 0\n"), &mut diags);
            let out = diags.render();
            assert!(!out.contains("unknown key"), "{key}: {out}");
        }
    }

    #[test]
    fn cname_and_other_data_are_rejected() {
        let (_, out) = check("[names.www]\ncname = \"ns1\"\na = \"192.0.2.1\"\n");
        assert!(
            out.contains("names.www: CNAME cannot coexist with A at the same name"),
            "{out}"
        );
    }

    #[test]
    fn cname_loops_are_spelled_out() {
        let (_, out) = check("[names.a]\ncname = \"b\"\n[names.b]\ncname = \"a\"\n");
        assert!(
            out.contains("CNAME chain loops: a.example.com. -> b.example.com. -> a.example.com."),
            "{out}"
        );
        assert_eq!(out.matches("error:").count(), 1, "{out}");
    }

    #[test]
    fn data_below_a_delegation_is_rejected_but_glue_is_fine() {
        let (zone, out) =
            check("[names.sub]\nns = \"ns.sub\"\n[names.\"ns.sub\"]\na = \"192.0.2.9\"\n");
        assert_eq!(out, "");
        assert!(zone.is_some());
        let (_, out) = check("[names.sub]\nns = \"ns.sub\"\n[names.\"x.sub\"]\ntxt = \"hi\"\n");
        assert!(
            out.contains("below the delegation sub.example.com."),
            "{out}"
        );
    }

    #[test]
    fn names_outside_the_zone_are_rejected() {
        let (_, out) = check("[names.\"www.example.org.\"]\na = \"192.0.2.1\"\n");
        assert!(out.contains("is outside the zone example.com."), "{out}");
    }

    #[test]
    fn the_apex_needs_ns_and_a_soa() {
        let mut diags = Diagnostics::new();
        let z = validate_zone(
            Path::new("example.net.toml"),
            "[names.www]\na = \"192.0.2.1\"\n",
            &mut diags,
        );
        assert!(z.is_none());
        let out = diags.render();
        assert!(out.contains("soa: the zone has no [soa] table"), "{out}");
    }

    #[test]
    fn toml_syntax_errors_have_a_position() {
        let mut diags = Diagnostics::new();
        validate_zone(Path::new("z.toml"), "origin = \"a\nttl = 1\n", &mut diags);
        let out = diags.render();
        assert!(out.starts_with("error: z.toml:1:"), "{out}");
        assert!(out.contains("invalid TOML"), "{out}");
    }

    #[test]
    fn long_txt_is_split_into_character_strings() {
        let long = "x".repeat(600);
        let (zone, out) = check(&format!("[names.t]\ntxt = \"{long}\"\n"));
        assert_eq!(out, "");
        let zone = zone.unwrap();
        let t = zone
            .nodes
            .iter()
            .find(|n| n.name.to_string() == "t.example.com.")
            .unwrap();
        match &t.rrset(RecordType::TXT).unwrap().data[0] {
            RData::TXT(txt) => assert_eq!(
                txt.txt_data.iter().map(|p| p.len()).collect::<Vec<_>>(),
                vec![255, 255, 90]
            ),
            other => panic!("{other:?}"),
        }
    }

    const DCS: &str = r#"
[datacenters.ams]
addresses = ["192.0.2.10", "2001:db8:a::10"]
location = [52.37, 4.90]
[datacenters.nyc]
addresses = [{ address = "198.51.100.10", weight = 2 }]
country = "US"
"#;

    #[test]
    fn gslb_names_resolve_their_data_centers() {
        let (zone, out) = check(&format!(
            "{DCS}[names.cdn.gslb]\ndatacenters = [\"ams\", \"nyc\"]\nttl = \"20s\"\n"
        ));
        assert_eq!(out, "");
        let zone = zone.unwrap();
        let nyc = &zone.datacenters[1];
        assert_eq!(nyc.addresses[0].weight, 2);
        assert_eq!(nyc.continent.unwrap().as_str(), "NA");
        assert!(nyc.location.is_some(), "country centroid stands in");
        let cdn = zone.nodes.iter().find(|n| n.gslb.is_some()).unwrap();
        let g = cdn.gslb.as_ref().unwrap();
        assert_eq!(g.candidates, vec![0, 1]);
        assert_eq!(g.ttl.secs(), 20);
        assert_eq!(g.policy, Policy::Nearest);
    }

    #[test]
    fn gslb_errors_name_the_data_center_and_the_fix() {
        let (_, out) = check(&format!(
            "{DCS}[names.cdn.gslb]\ndatacenters = [\"ams\", \"nyk\"]\n"
        ));
        assert!(out.contains("names.cdn.gslb.datacenters[1]: no data center \"nyk\" in this zone\n  help: did you mean \"nyc\"?"), "{out}");

        let (_, out) = check(&format!(
            "{DCS}[names.cdn.gslb]\ndatacenters = [\"ams\"]\npolicy = \"map\"\n[names.cdn.gslb.map]\ncountry.BR = [\"nyc\"]\nnetwork.\"10.0.0.1/8\" = [\"ams\"]\ncontinent.XX = [\"ams\"]\n"
        ));
        assert!(out.contains("names.cdn.gslb.map.country.BR[0]: data center \"nyc\" is not a candidate of this name"), "{out}");
        assert!(
            out.contains(
                "has address bits set past its prefix length\n  help: did you mean \"10.0.0.0/8\"?"
            ),
            "{out}"
        );
        assert!(
            out.contains("names.cdn.gslb.map.continent.XX: \"XX\" is not a continent code"),
            "{out}"
        );

        let (_, out) = check(&format!(
            "{DCS}[names.cdn]\na = \"192.0.2.1\"\n[names.cdn.gslb]\ndatacenters = [\"ams\"]\n"
        ));
        assert!(
            out.contains("names.cdn.a: a GSLB name takes its A answers from its data centers"),
            "{out}"
        );
    }

    #[test]
    fn nearest_needs_locations() {
        let (_, out) = check(
            "[datacenters.x]\naddresses = [\"192.0.2.1\"]\n[names.cdn.gslb]\ndatacenters = [\"x\"]\n",
        );
        assert!(
            out.contains("data center \"x\" has no location, which \"nearest\" needs"),
            "{out}"
        );
    }

    #[test]
    fn in_zone_name_servers_need_addresses_and_no_cname() {
        let (_, out) = check("[names.sub]\nns = \"ns.sub\"\n");
        assert!(out.contains("names.sub.ns: name server ns.sub.example.com. is inside this zone but has no address records"), "{out}");
        assert!(out.contains("help: add glue"), "{out}");
        let (_, out) = check("[names.sub]\nns = \"alias\"\n[names.alias]\ncname = \"ns1\"\n");
        assert!(
            out.contains("names.sub.ns: name server alias.example.com. is a CNAME"),
            "{out}"
        );
        let (_, out) = check("[names.sub]\nns = \"ns.elsewhere.net.\"\n");
        assert_eq!(out, "");
    }

    #[test]
    fn checks_are_validated_with_their_keys() {
        let (_, out) = check(
            "[checks.a]\ntype = \"icmp\"\n\
             [checks.b]\ntype = \"tcp\"\n\
             [checks.c]\ntype = \"http\"\ninterval = \"2s\"\ntimeout = \"3s\"\nhost = \"bad host\"\n\
             [datacenters.x]\naddresses = [\"192.0.2.1\"]\ncheck = \"d\"\nlocation = [0.0, 0.0]\n",
        );
        assert!(
            out.contains("checks.a.type: unknown check type \"icmp\""),
            "{out}"
        );
        assert!(
            out.contains("checks.b.port: a tcp check needs a port"),
            "{out}"
        );
        assert!(
            out.contains(
                "checks.c.timeout: timeout 3s must be above zero and below the interval 2s"
            ),
            "{out}"
        );
        assert!(
            out.contains("checks.c.host: \"bad host\" is not a host name"),
            "{out}"
        );
        assert!(
            out.contains("datacenters.x.check: no check \"d\" in this zone"),
            "{out}"
        );
    }

    #[test]
    fn a_valid_check_reaches_the_addresses() {
        let (zone, out) = check(
            "[checks.web]\ntype = \"https\"\npath = \"/health\"\ninterval = \"1s\"\n\
             [datacenters.x]\naddresses = [\"192.0.2.1\", { address = \"192.0.2.2\", check = \"none\" }]\ncheck = \"web\"\nlocation = [0.0, 0.0]\n",
        );
        assert_eq!(out, "");
        let dc = &zone.unwrap().datacenters[0];
        let spec = dc.addresses[0].check.as_ref().unwrap();
        assert_eq!(spec.kind.port(), 443);
        assert_eq!(spec.timeout, std::time::Duration::from_millis(500));
        assert!(dc.addresses[1].check.is_none());
    }

    #[test]
    fn mx_at_an_alias_is_a_warning_not_an_error() {
        let (zone, out) = check("[names.m]\nmx = \"10 alias\"\n[names.alias]\ncname = \"ns1\"\n");
        assert!(zone.is_some(), "warnings do not reject the zone");
        assert!(out.starts_with("warning: z.toml:"), "{out}");
        assert!(
            out.contains("names.m.mx: MX target alias.example.com. is a CNAME"),
            "{out}"
        );
    }
}
