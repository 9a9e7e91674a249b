//! Data centers: addresses, locations, checks, and the zone's network overrides.

use super::*;

impl Validator<'_, '_> {
    pub(super) fn datacenters(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        checks: &HashMap<String, Option<Check>>,
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

    pub(super) fn datacenter(
        &mut self,
        key: &str,
        id: String,
        spec: DatacenterSpec,
        checks: &HashMap<String, Option<Check>>,
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
                Some(w) if w.fract() == 0.0 && (1.0..=f64::from(MAX_WEIGHT)).contains(&w) => {
                    w as u32
                }
                Some(w) => {
                    let why = if w.fract() != 0.0 {
                        "is not a whole number".to_owned()
                    } else {
                        format!("is outside 1..={MAX_WEIGHT}")
                    };
                    self.d.error(
                        Some(a.span()),
                        format!("{akey}.weight"),
                        format!("{w} {why}"),
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
                >= MAX_ADDRESSES
            {
                self.d.error(
                    Some(a.span()),
                    &akey,
                    format!("more than {MAX_ADDRESSES} addresses of one family in a data center"),
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
        let weight = match &spec.weight {
            None => 1,
            Some(w)
                if w.get_ref().fract() == 0.0
                    && (0.0..=f64::from(MAX_WEIGHT)).contains(w.get_ref()) =>
            {
                *w.get_ref() as u32
            }
            Some(w) => {
                let why = if w.get_ref().fract() != 0.0 {
                    "is not a whole number".to_owned()
                } else {
                    format!("is outside 0..={MAX_WEIGHT}")
                };
                self.d.error(
                    Some(w.span()),
                    format!("{key}.weight"),
                    format!("{} {why}", w.get_ref()),
                    Some(
                        "the site's relative capacity: small whole numbers like 1, 3, 10; 0 drains it"
                            .into(),
                    ),
                );
                1
            }
        };
        let load = spec
            .load
            .as_ref()
            .and_then(|l| self.load_signal(&format!("{key}.load"), l));
        if self.d.error_count() > errors {
            return None;
        }
        Some(Datacenter {
            id,
            addresses,
            location,
            country,
            continent,
            weight,
            load,
        })
    }

    /// `[datacenters.ID.load]`: a URL, thresholds with `low < high`, and sane timing.
    fn load_signal(&mut self, key: &str, l: &Spanned<LoadSpec>) -> Option<LoadSignal> {
        let errors = self.d.error_count();
        let spec = l.get_ref();
        let url = spec.url.get_ref().trim();
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || reqwest::Url::parse(url).is_err() {
            self.d.error(
                Some(spec.url.span()),
                format!("{key}.url"),
                format!("{url:?} is not an http:// or https:// URL"),
                Some("e.g. url = \"http://10.0.0.5:9100/load\"".into()),
            );
        }
        if let Some(m) = &spec.metric {
            if crate::health::load::Series::parse(m.get_ref()).is_none() {
                self.d.error(
                    Some(m.span()),
                    format!("{key}.metric"),
                    format!("{:?} is not a Prometheus series", m.get_ref()),
                    Some("write a metric name, optionally with labels: node_load1 or cpu_busy{core=\"all\"}".into()),
                );
            }
        }
        let (high, low) = (*spec.high.get_ref(), *spec.low.get_ref());
        for (v, field) in [(&spec.high, "high"), (&spec.low, "low")] {
            if !v.get_ref().is_finite() {
                self.d.error(
                    Some(v.span()),
                    format!("{key}.{field}"),
                    format!("{} is not a finite number", v.get_ref()),
                    Some("thresholds are in the unit the endpoint reports, e.g. 0.85".into()),
                );
            }
        }
        if high.is_finite() && low.is_finite() && low >= high {
            self.d.error(
                Some(spec.low.span()),
                format!("{key}.low"),
                format!("low ({low}) must be below high ({high})"),
                Some("the gap between them keeps the weight from flapping, e.g. high = 0.85, low = 0.70".into()),
            );
        }
        let interval = spec
            .interval
            .as_ref()
            .map_or(std::time::Duration::from_secs(5), |d| d.get_ref().0);
        let timeout = spec
            .timeout
            .as_ref()
            .map_or(std::time::Duration::from_secs(2).min(interval / 2), |d| {
                d.get_ref().0
            });
        if interval < std::time::Duration::from_millis(100)
            || interval > std::time::Duration::from_secs(3600)
        {
            self.d.error(
                spec.interval.as_ref().map(Spanned::span),
                format!("{key}.interval"),
                format!("{interval:?} is outside 100ms..=1h"),
                Some("read the load every few seconds, e.g. interval = \"5s\"".into()),
            );
        } else if timeout.is_zero() || timeout >= interval {
            self.d.error(
                spec.timeout
                    .as_ref()
                    .or(spec.interval.as_ref())
                    .map(Spanned::span),
                format!("{key}.timeout"),
                format!(
                    "timeout {timeout:?} must be above zero and below the interval {interval:?}"
                ),
                Some("e.g. interval = \"5s\", timeout = \"2s\"".into()),
            );
        }
        let step = spec.step.as_ref().map_or(0.25, |s| *s.get_ref());
        if !(step > 0.0 && step <= 1.0) {
            let span = spec.step.as_ref().map(Spanned::span);
            self.d.error(
                span,
                format!("{key}.step"),
                format!("{step} is outside (0, 1]"),
                Some("the share of the weight shed or taken back per interval, e.g. 0.25".into()),
            );
        }
        (self.d.error_count() == errors).then(|| LoadSignal {
            url: url.to_owned(),
            metric: spec.metric.as_ref().map(|m| m.get_ref().trim().to_owned()),
            high_milli: (high * 1000.0).round() as i64,
            low_milli: (low * 1000.0).round() as i64,
            interval,
            timeout,
            step_percent: ((step * 100.0).round() as u8).max(1),
        })
    }

    /// Resolves a list of data center ids, each required to be in `allowed`.
    pub(super) fn dc_list(
        &mut self,
        key: &str,
        values: &Spanned<Values>,
        all_ids: &[&str],
        allowed: Option<&[DcIdx]>,
    ) -> Option<Vec<DcIdx>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in values.get_ref().0.iter().enumerate() {
            let span = item.span.clone().unwrap_or_else(|| values.span());
            let ikey = if item.span.is_some() {
                format!("{key}[{i}]")
            } else {
                key.to_owned()
            };
            match all_ids
                .iter()
                .position(|d| *d == item.value)
                .map(DcIdx::new)
            {
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

    pub(super) fn network(&mut self, key: &str, text: &str, span: Range<usize>) -> Option<IpNet> {
        parse_network(text)
            .map_err(|e| self.d.error(Some(span), key, e.message, Some(e.help)))
            .ok()
    }

    pub(super) fn network_overrides(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        dc_ids: &[&str],
    ) -> Vec<(IpNet, Vec<DcIdx>)> {
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
}
