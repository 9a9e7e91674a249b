//! Why a client gets the answer it gets: the GeoIP result, the rule or distance ranking,
//! each candidate, the answer and the ECS scope, as text for operators.
//!
//! The answer shown is computed by the same [`resolve`](resolve()) the server runs, over the same
//! snapshot, so `explain` cannot disagree with what is served. The HTTP API can call
//! [`explain`] on the live snapshot.

use std::fmt::Write;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};

use crate::answer::select::{self, Choice, Verdict};
use crate::answer::{Answer, resolve};
use crate::compile::{AllDownAnswer, Found, GslbNode, Snapshot};
use crate::family::Family;
use crate::geo::db::GeoAnswer;
use crate::geo::decision::{Reason, Rule};
use crate::live;
use crate::name_key::NameKey;
use crate::zone::model::Select;

/// The client of an explained query: an address, and the ECS prefix when it came as a subnet.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    /// The address (for a subnet: its first address).
    pub addr: IpAddr,
    /// ECS SOURCE PREFIX-LENGTH, when the client is a subnet.
    pub prefix: Option<u8>,
}

impl FromStr for Client {
    type Err = String;

    /// `192.0.2.7`, `192.0.2.0/24`, `2001:db8::/48`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s:?} is not an address or address/prefix (e.g. 192.0.2.7 or 192.0.2.0/24)")
        };
        match s.split_once('/') {
            None => Ok(Self {
                addr: s.parse().map_err(|_| bad())?,
                prefix: None,
            }),
            Some(_) => {
                let net: ipnet::IpNet = s.parse().map_err(|_| bad())?;
                Ok(Self {
                    addr: net.network(),
                    prefix: Some(net.prefix_len()),
                })
            }
        }
    }
}

/// What to explain, parsed from what an operator typed (command line or API query).
#[derive(Clone, Debug)]
pub struct Question {
    /// The name, absolute.
    pub name: Name,
    /// The record type.
    pub qtype: RecordType,
    /// Who asks.
    pub client: Client,
}

impl Question {
    /// Parses `cdn.example.com`, `aaaa` and `192.0.2.0/24`; the error says what is wrong.
    pub fn parse(name: &str, qtype: &str, client: &str) -> Result<Self, String> {
        let mut parsed =
            Name::from_str(name).map_err(|_| format!("{name:?} is not a domain name"))?;
        parsed.set_fqdn(true);
        let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
            .map_err(|_| format!("{qtype:?} is not a record type (e.g. A, AAAA, MX)"))?;
        Ok(Self {
            name: parsed,
            qtype,
            client: client.parse()?,
        })
    }
}

/// Explains the answer to `name`/`qtype` for `client`.
pub fn explain(snap: &Snapshot, name: &Name, qtype: RecordType, client: Client) -> String {
    let mut out = String::new();
    let w = &mut out;
    let addr = client.addr.to_canonical();
    let _ = writeln!(w, "query      {name} {qtype}");
    let _ = match client.prefix {
        Some(p) => writeln!(w, "client     {addr}/{p} (EDNS Client Subnet)"),
        None => writeln!(w, "client     {addr} (source address)"),
    };
    let Some(key) = NameKey::new(name) else {
        let _ = writeln!(w, "answer     FORMERR: the name is too long");
        return out;
    };
    let Some(zone) = snap.find_zone(&key) else {
        let _ = writeln!(w, "answer     REFUSED: no served zone contains {name}");
        return out;
    };
    let _ = writeln!(
        w,
        "zone       {} (generation {})",
        zone.origin, snap.generation
    );

    let node = match zone.find(&key) {
        Found::Node(id) | Found::Wildcard(id) => Some(zone.node(id)),
        _ => None,
    };
    let gslb = node
        .and_then(|n| n.gslb.as_deref())
        .filter(|_| matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY));
    let asked = crate::answer::Client {
        addr,
        ecs_source: client.prefix,
    };
    if let Some(g) = gslb {
        geo_section(w, snap, g, asked, qtype);
    }

    let answer = resolve(snap, name, &key, qtype, asked);
    answer_section(w, &answer);
    let _ = match (answer.scope, client.prefix) {
        (None, _) => writeln!(w, "ecs scope  /0: the answer does not depend on the client"),
        (Some(_), Some(0)) => writeln!(w, "ecs scope  /0: the client sent source prefix 0"),
        (Some(0), _) => writeln!(w, "ecs scope  /0: every client gets this answer"),
        (Some(s), _) => {
            let net = ipnet::IpNet::new(addr, s).map(|n| n.trunc());
            match net {
                Ok(n) => writeln!(w, "ecs scope  /{s}: all of {n} gets this same ordering"),
                Err(_) => writeln!(w, "ecs scope  /{s}"),
            }
        }
    };
    out
}

fn geo_section(
    w: &mut String,
    snap: &Snapshot,
    g: &GslbNode,
    client: crate::answer::Client,
    qtype: RecordType,
) {
    let addr = client.addr;
    let geo: GeoAnswer = snap.geo.lookup(addr);
    match (&geo.override_network, &geo.network) {
        (Some(n), _) => {
            let _ = writeln!(w, "geoip      {n} from a [[geoip.override]] in the config");
        }
        (None, Some((n, file))) => {
            let _ = writeln!(w, "geoip      {n} in {}", file.display());
        }
        (None, None) => {
            let _ = writeln!(w, "geoip      not in any database: location unknown");
        }
    }
    for file in &geo.unavailable {
        let _ = writeln!(
            w,
            "           {} changed on disk since the load: not asked (reload to load it)",
            file.display()
        );
    }
    let l = &geo.location;
    if l != &Default::default() {
        let mut place = Vec::new();
        match (&l.city, &l.subdivision) {
            (Some(c), Some(s)) => place.push(format!("{c} ({s})")),
            (Some(c), None) => place.push(c.to_string()),
            (None, Some(s)) => place.push(s.to_string()),
            (None, None) => {}
        }
        if let Some(c) = l.country {
            place.push(c.to_string());
        }
        if let Some(c) = l.continent {
            place.push(c.to_string());
        }
        let coords = match l.coord {
            Some(c) if l.coord_is_centroid => {
                format!(" at {:.4}, {:.4} (country centroid)", c.lat, c.lon)
            }
            Some(c) => format!(" at {:.4}, {:.4}", c.lat, c.lon),
            None => String::new(),
        };
        let _ = writeln!(w, "           {}{coords}", place.join(", "));
    }
    if let Some((asn, _)) = geo.asn {
        let _ = writeln!(w, "           AS{asn}");
    }

    let names: Vec<&str> = g.candidates.iter().map(|c| c.datacenter.as_str()).collect();
    let policy = match &g.policy.rule {
        Rule::Nearest => "nearest".to_owned(),
        Rule::Map { default: None, .. } => "map (default: nearest)".to_owned(),
        Rule::Map { .. } => "map".to_owned(),
    };
    let _ = writeln!(w, "policy     {policy} over {}", names.join(", "));

    let (list, reason) = match g.policy.network_rule(addr) {
        Some((net, list)) => (list.clone(), Reason::Network(*net)),
        None => g.policy.decide(&geo.location, geo.asn.map_or(0, |a| a.0)),
    };
    let decision = g.table.lookup(addr);
    let _ = writeln!(w, "decision   {reason}");
    let family = Family::of(qtype);
    let family_name = if family == Family::V6 { "AAAA" } else { "A" };
    for (rank, &pos) in decision.list.iter().enumerate() {
        let c = &g.candidates[pos as usize];
        let dist = match (geo.location.coord, g.policy.coords()[pos as usize]) {
            (Some(a), Some(b)) => format!("{:>7.0} km", a.distance_km(&b)),
            _ => String::from("          "),
        };
        let f = c.family(family);
        // The verdicts the answer is chosen by: explain prints them, it does not recount.
        let verdicts: Vec<Verdict> = select::verdicts(c, &snap.health, family).collect();
        let (_, dc_state) = live::datacenter_state(
            snap.health.word(c.slot).admin(),
            &verdicts,
            &format!("no {family_name} address"),
        );
        let _ = writeln!(w, "  {}. {:<10} {dist}  {dc_state}", rank + 1, c.datacenter);
        if let Some(note) = snap.health.note_of(c.slot) {
            let _ = writeln!(w, "       override set {note}");
        }
        for (((r, v), check), &slot) in f
            .records
            .iter()
            .zip(&verdicts)
            .zip(f.checks.iter())
            .zip(f.slots.iter())
        {
            let _ = writeln!(
                w,
                "       {:<22} {}",
                rdata_text(r),
                live::address_state(*v, check.as_deref())
            );
            if let Some(note) = snap.health.note_of(slot) {
                let _ = writeln!(w, "       {:<22} override set {note}", "");
            }
        }
    }
    // Explain only reads: the rotation state of this thread is not advanced for this.
    let key = select::client_key(g, client);
    let choice = select::choose_quietly(g, &snap.health, &decision, family, key);
    share_section(w, snap, g, &decision, family, key, &choice);
    // Failing open is the name's all-down policy too, answered by selection.
    let (all_down, degraded) = match choice {
        Choice::AllDown(policy) => (Some(policy), false),
        Choice::Addresses(p) => (p.failed_open.then_some(&g.all_down), p.degraded),
        Choice::NoFamily => (None, false),
    };
    if let Some(policy) = all_down {
        let policy = match policy {
            AllDownAnswer::FailOpen => "fail open: answer as if all were up",
            AllDownAnswer::ServFail => "SERVFAIL",
            AllDownAnswer::NoData => "NODATA",
            AllDownAnswer::Records { .. } => "the fallback addresses",
            AllDownAnswer::Cname(_) => "the fallback CNAME",
        };
        let _ = writeln!(w, "all down   every candidate is down: {policy}");
    } else if degraded {
        let _ = writeln!(
            w,
            "ttl        short (min_ttl): a candidate is down, degraded or flapping"
        );
    }
    if list.as_slice() != decision.list {
        let _ = writeln!(
            w,
            "  note: a direct database lookup orders these differently from the compiled \
             table, which is what the server answers from"
        );
    }
}

/// Who shares the client's traffic and how: the head by weight, a down head's share
/// spilling, and for a sticky name the data center its network hashes to.
fn share_section(
    w: &mut String,
    snap: &Snapshot,
    g: &GslbNode,
    decision: &crate::geo::table::Decision<'_>,
    family: Family,
    key: select::ClientKey,
    choice: &Choice<'_>,
) {
    let s = select::shares(g, &snap.health, decision, family);
    if s.members.is_empty() {
        return;
    }
    let how = match g.select {
        Select::Rotate => "rotate (weighted round-robin per query)".to_owned(),
        Select::Sticky { .. } => format!("sticky (by client network /{})", key.net.prefix),
    };
    let _ = writeln!(
        w,
        "select     {how}; spread {}, spill {}{}",
        g.spread,
        g.spill,
        if decision.near > 1 {
            format!("; {} equally near within the band", decision.near)
        } else {
            String::new()
        }
    );
    let totals = live::answer_counts(g);
    let all: u64 = totals.iter().sum();
    for (pos, share) in s.fractions() {
        let c = &g.candidates[pos as usize];
        let m = s.members.iter().find(|m| m.pos == pos);
        let role = match m {
            Some(m) if m.head && m.mask == 0 => "head, down: its share spills",
            Some(m) if m.head && m.keep < 100 && s.targets_of(m).next().is_none() => {
                "head, overloaded but nobody else is up: not shedding"
            }
            Some(m) if m.head => "head",
            Some(m) if m.mask == 0 => "down",
            Some(_) if share > 0.0 => "takes spilled share",
            _ => "after the head",
        };
        let recent = if all > 0 {
            format!(
                "; {:.1}% of {all} answers since start",
                100.0 * totals[pos as usize] as f64 / all as f64
            )
        } else {
            String::new()
        };
        let keep = m.map_or(100, |m| m.keep);
        let weight = if keep < 100 {
            format!(
                "{} (effective {:.2})",
                c.weight,
                f64::from(c.weight) * f64::from(keep) / 100.0
            )
        } else {
            c.weight.to_string()
        };
        let _ = writeln!(
            w,
            "  share    {:<10} weight {:<4} {:>5.1}%  {role}{recent}",
            c.datacenter,
            weight,
            100.0 * share
        );
        if let Some(load) = &c.load_state {
            let _ = writeln!(w, "           load: {}", load_text(load));
        }
    }
    if let (Select::Sticky { .. }, Choice::Addresses(p)) = (g.select, choice) {
        if let Some(&(pos, _)) = p.chosen.first() {
            let _ = writeln!(
                w,
                "  sticky   this client network hashes to {}",
                g.candidates[pos as usize].datacenter
            );
        }
    }
}

/// `0.91 > high 0.85: shedding, keeps 50% of its weight (read 2 s ago)`.
fn load_text(load: &crate::health::LoadState) -> String {
    let d = load.detail();
    let s = &load.signal;
    let (high, low) = (s.high_milli as f64 / 1000.0, s.low_milli as f64 / 1000.0);
    let keep = load.keep();
    let ago = live::ago;
    let value = match d.value {
        Some((v, at)) if v > high => format!("{v} > high {high} (read {})", ago(at)),
        Some((v, at)) if v < low => format!("{v} < low {low} (read {})", ago(at)),
        Some((v, at)) => format!("{v} between low {low} and high {high} (read {})", ago(at)),
        None => "no reading yet".to_owned(),
    };
    let state = if keep < 100 {
        format!("shedding, keeps {keep}% of its weight")
    } else {
        "not shedding".to_owned()
    };
    let error = match d.error {
        Some((e, at)) => format!(
            "; last read failed {}: {e} (weight left as it was)",
            ago(at)
        ),
        None => String::new(),
    };
    format!("{value}: {state}{error}")
}

fn rdata_text(r: &hickory_proto::rr::Record) -> String {
    match &r.data {
        hickory_proto::rr::RData::A(a) => a.0.to_string(),
        hickory_proto::rr::RData::AAAA(a) => a.0.to_string(),
        other => other.to_string(),
    }
}

fn answer_section(w: &mut String, a: &Answer<'_>) {
    let flags = if a.authoritative { "aa" } else { "referral" };
    let _ = writeln!(w, "answer     {} ({flags})", a.rcode);
    for r in &a.answer {
        let _ = writeln!(w, "           {}", r.record());
    }
    for r in &a.authority {
        let _ = writeln!(w, "  authority {}", r.record());
    }
    for r in &a.additional {
        let _ = writeln!(w, "  additional {}", r.record());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::select::admit;
    use crate::health::{Admin, HealthSources, OverrideKey};

    const ZONE: &str = r#"
[datacenters.a]
addresses = ["192.0.2.10"]
location = [0.0, 0.0]
[datacenters.b]
addresses = ["192.0.2.20"]
location = [0.0, 1.0]
[names.cdn.gslb]
datacenters = ["a", "b"]
"#;

    /// For every combination of data center override, address override and probe state,
    /// the answer holds the address exactly when `explain` prints it as in.
    #[test]
    fn explain_and_the_answer_agree_for_every_address_state() {
        let health = HealthSources::new(None).unwrap();
        let snap = crate::compile::test_zone::snapshot(ZONE, &health);
        let g = snap.zones()[0].gslb_nodes().next().unwrap();
        let a = &g.candidates[0];
        let addr_slot = a.a.slots[0];
        let dc_key = OverrideKey::Datacenter {
            zone: "example.com.".into(),
            datacenter: "a".into(),
        };
        let addr_key = OverrideKey::Address {
            address: "192.0.2.10".parse().unwrap(),
        };
        let name = Name::from_ascii("cdn.example.com.").unwrap();
        let client: Client = "192.0.2.1".parse().unwrap();
        let admins = [Admin::None, Admin::Up, Admin::Down, Admin::Drain];
        for dc in admins {
            for address in admins {
                for probe_up in [true, false] {
                    health.overrides.set(&dc_key, dc).unwrap();
                    health.overrides.set(&addr_key, address).unwrap();
                    snap.health.set_probe(addr_slot, probe_up, false);
                    let verdict = admit(snap.health.word(a.slot), snap.health.word(addr_slot));
                    let text = explain(&snap, &name, RecordType::A, client);
                    let answered = text.contains("IN A 192.0.2.10");
                    let line = text
                        .lines()
                        .find(|l| l.trim_start().starts_with("192.0.2.10 "))
                        .unwrap_or_else(|| panic!("{text}"));
                    let shown_in = line
                        .split_whitespace()
                        .nth(1)
                        .is_some_and(|w| w.starts_with("up"));
                    let case = format!("dc {dc}, address {address}, probe up {probe_up}");
                    assert_eq!(answered, verdict.is_in(), "{case}\n{text}");
                    assert_eq!(shown_in, verdict.is_in(), "{case}\n{text}");
                }
            }
        }
    }
}
