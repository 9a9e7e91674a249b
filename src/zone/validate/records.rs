//! Records: the SOA, the `[names]` tables and each record type's data.

use super::*;

impl Validator<'_, '_> {
    pub(super) fn soa(&mut self, origin: &Name, s: SoaSpec) -> Option<SOA> {
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

    pub(super) fn names(&mut self, origin: &Name, table: &DeTable<'_>) -> Vec<ParsedName> {
        let mut out: Vec<ParsedName> = Vec::with_capacity(table.len());
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
    pub(super) fn nodes(
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

    pub(super) fn rdata(
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
}
