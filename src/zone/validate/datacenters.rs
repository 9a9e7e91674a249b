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
                Some(w) if (1..=i64::from(MAX_WEIGHT)).contains(&w) => w as u32,
                Some(w) => {
                    self.d.error(
                        Some(a.span()),
                        format!("{akey}.weight"),
                        format!("{w} is outside 1..={MAX_WEIGHT}"),
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
