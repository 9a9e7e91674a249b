//! Zone-wide rules over the names that parsed: CNAME exclusivity, delegations, name
//! servers, CNAME loops.

use super::*;

impl Validator<'_, '_> {
    /// Rules between names: apex NS, CNAME exclusivity, delegations, CNAME loops.
    pub(super) fn check_rules(
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
    pub(super) fn check_name_servers(
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

    pub(super) fn check_cname_loops(
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
