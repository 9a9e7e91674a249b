//! GSLB names: data center lists, policies, the all-down answer and geo maps.

use super::*;

impl Validator<'_, '_> {
    pub(super) fn gslb(
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
        if candidates.len() > MAX_CANDIDATES {
            self.d.error(
                Some(spec.datacenters.span()),
                format!("{key}.datacenters"),
                format!(
                    "{} candidates; at most {MAX_CANDIDATES} are supported",
                    candidates.len()
                ),
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
        // No more data centers per answer than a name can have candidates.
        let max_datacenters = small(
            self.d,
            &spec.max_datacenters,
            "max_datacenters",
            MAX_CANDIDATES as i64,
        );
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
        let share = self.sharing(key, spec, candidates.len(), needs_location);
        if self.d.error_count() > errors {
            return None;
        }
        let (select, spread, band_km, spill) = share?;
        Some(Gslb {
            candidates,
            policy: policy?,
            max_datacenters: max_datacenters?.unwrap_or(1),
            max_addresses: max_addresses?,
            ttl: ttl?,
            min_ttl: min_ttl?,
            all_down: all_down?,
            select,
            spread,
            band_km,
            spill,
        })
    }

    /// `select`, `spread`, `band`, `spill` and the sticky prefixes: how the head of a
    /// client's list shares its traffic.
    fn sharing(
        &mut self,
        key: &str,
        spec: &GslbSpec,
        candidates: usize,
        ordered_by_distance: bool,
    ) -> Option<(Select, usize, Option<f64>, usize)> {
        let errors = self.d.error_count();
        let count = |d: &mut FileDiags<'_>, v: &Option<Spanned<i64>>, field: &str, help: &str| {
            let Some(x) = v else { return 1 };
            let n = *x.get_ref();
            if n >= 1 && (n as u64) <= candidates.max(1) as u64 {
                return n as usize;
            }
            d.error(
                Some(x.span()),
                format!("{key}.{field}"),
                format!(
                    "{n} is outside 1..={} (the number of candidates)",
                    candidates.max(1)
                ),
                Some(help.into()),
            );
            1
        };
        let spread = count(
            self.d,
            &spec.spread,
            "spread",
            "how many data centers at the head of each client's list share its traffic; 1 sends it to the first",
        );
        let spill = count(
            self.d,
            &spec.spill,
            "spill",
            "how many further healthy data centers take a down data center's share; 1 gives it to the next",
        );
        let band_km = spec.band.as_ref().and_then(|b| {
            let text = b.get_ref().trim();
            let value = text
                .strip_suffix("km")
                .map(str::trim_end)
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|km| km.is_finite() && *km >= 0.0 && *km <= 20_040.0);
            if value.is_none() {
                self.d.error(
                    Some(b.span()),
                    format!("{key}.band"),
                    format!("{text:?} is not a distance"),
                    Some("write kilometres from 0 to 20040 with the unit, e.g. \"500km\"".into()),
                );
            } else if !ordered_by_distance {
                self.d.error(
                    Some(b.span()),
                    format!("{key}.band"),
                    "band needs lists ordered by distance",
                    Some("use it with policy = \"nearest\" (or a map whose default is \"nearest\"), or remove it".into()),
                );
            }
            value
        });
        let prefix = |d: &mut FileDiags<'_>,
                      v: &Option<Spanned<i64>>,
                      field: &str,
                      max: i64,
                      default: u8| {
            let Some(x) = v else { return default };
            if (1..=max).contains(x.get_ref()) {
                return *x.get_ref() as u8;
            }
            d.error(
                Some(x.span()),
                format!("{key}.{field}"),
                format!("{} is outside 1..={max}", x.get_ref()),
                Some(format!("the prefix length of the client network that keeps its data center; the default is {default}")),
            );
            default
        };
        let v4_prefix = prefix(
            self.d,
            &spec.sticky_ipv4_prefix,
            "sticky_ipv4_prefix",
            32,
            24,
        );
        let v6_prefix = prefix(
            self.d,
            &spec.sticky_ipv6_prefix,
            "sticky_ipv6_prefix",
            128,
            56,
        );
        let select = match spec.select.as_ref().map(|s| (s, s.get_ref().as_str())) {
            None | Some((_, "rotate")) => {
                for (field, v) in [
                    ("sticky_ipv4_prefix", &spec.sticky_ipv4_prefix),
                    ("sticky_ipv6_prefix", &spec.sticky_ipv6_prefix),
                ] {
                    if let Some(x) = v {
                        self.d.error(
                            Some(x.span()),
                            format!("{key}.{field}"),
                            "a sticky prefix is given but select is \"rotate\"",
                            Some("set select = \"sticky\", or remove it".into()),
                        );
                    }
                }
                Select::Rotate
            }
            Some((_, "sticky")) => Select::Sticky {
                v4_prefix,
                v6_prefix,
            },
            Some((s, other)) => {
                self.d.error(
                    Some(s.span()),
                    format!("{key}.select"),
                    format!("unknown select {other:?}"),
                    Some("use \"rotate\" (weighted round-robin per query) or \"sticky\" (by client network)".into()),
                );
                Select::Rotate
            }
        };
        (self.d.error_count() == errors).then_some((select, spread, band_km, spill))
    }

    pub(super) fn all_down(
        &mut self,
        origin: &Name,
        key: &str,
        a: &Spanned<AllDownSpec>,
    ) -> Option<AllDown> {
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

    pub(super) fn geo_map(
        &mut self,
        key: &str,
        m: &MapSpec,
        dc_ids: &[&str],
        candidates: &[DcIdx],
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
}
