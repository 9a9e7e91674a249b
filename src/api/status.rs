//! `GET /v1/status`: every zone and GSLB name with its data centers as they stand now, as
//! JSON; and `GET /`, the page that shows it ([`PAGE`]).
//!
//! Built at request time from the live snapshot, the health table and the answer counters,
//! through the same [`crate::live`] functions `/metrics` and `explain` use, so the three
//! agree. Nothing here is written by a query or waits for one.
//!
//! A data center is listed once per GSLB name it is a candidate of: its health is the same
//! under each, its answers and share are that name's.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::compile::{Candidate, GslbNode, Snapshot};
use crate::geo::Coord;
use crate::health::{Admin, TargetHealth};
use crate::live;

/// The status page: one self-contained HTML file (inline CSS and JS, no external assets)
/// that fetches `v1/status` and redraws itself every 2 s.
pub const PAGE: &str = include_str!("status.html");

/// The whole answer of `GET /v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    /// The snapshot generation serving.
    pub generation: u64,
    /// Every zone, in load order.
    pub zones: Vec<ZoneStatus>,
}

/// One zone.
#[derive(Debug, Serialize, Deserialize)]
pub struct ZoneStatus {
    /// Its origin, with the final dot.
    pub zone: String,
    /// Its GSLB names, in name order (empty for a zone without any).
    pub names: Vec<NameStatus>,
}

/// One GSLB name.
#[derive(Debug, Serialize, Deserialize)]
pub struct NameStatus {
    /// The owner name, absolute.
    pub name: String,
    /// Answers of this name since the server started, summed over its data centers.
    pub answers: u64,
    /// Its candidates, in the order the zone file lists them.
    pub datacenters: Vec<DatacenterStatus>,
}

/// One data center as a candidate of one name.
#[derive(Debug, Serialize, Deserialize)]
pub struct DatacenterStatus {
    /// The data center id.
    pub id: String,
    /// Latitude from the zone file (`location`, else its country's centroid); `None` when
    /// it has neither.
    pub lat: Option<f64>,
    /// Longitude, as `lat`.
    pub lon: Option<f64>,
    /// `up`, `degraded` (some addresses out), `down` (none answered) or `no address`.
    pub health: String,
    /// Why, as `explain` says it: `down: every address is down`, `drain (operator override)`.
    pub reason: String,
    /// The operator's override of the data center: `up`, `down`, `drain`; `None` when none.
    #[serde(rename = "override")]
    pub admin: Option<String>,
    /// Who set the override, when, why, until when; `None` when nothing is known.
    pub override_note: Option<String>,
    /// The weight the zone file gives it.
    pub weight: u32,
    /// The weight in effect: after shedding, 0 when down or drained by override (the value
    /// of `meridian_datacenter_weight`).
    pub effective_weight: u32,
    /// Answers of this name that went to it first, since the server started.
    pub answers: u64,
    /// `answers` over all of the name's answers; 0 before any.
    pub share: f64,
    /// Its addresses, IPv4 then IPv6, in file order.
    pub addresses: Vec<AddressStatus>,
}

/// One address of a data center.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddressStatus {
    /// The address.
    pub address: IpAddr,
    /// `up` when it is answered, else `down`.
    pub health: String,
    /// Why, as `explain` says it: the override, or the probe state and its last result.
    pub reason: String,
    /// The operator's override of this address; `None` when none.
    #[serde(rename = "override")]
    pub admin: Option<String>,
    /// Who set the override, when, why, until when; `None` when nothing is known.
    pub override_note: Option<String>,
    /// What its health check last saw; `None` without a check.
    pub probe: Option<ProbeStatus>,
}

/// The probe of one address.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeStatus {
    /// The check, e.g. `http GET /health`.
    pub check: String,
    /// The probes' verdict after the rise/fall thresholds.
    pub up: bool,
    /// The last probe's error; `None` when it passed or none ran yet.
    pub last_error: Option<String>,
    /// The state has been changing too often.
    pub flapping: bool,
}

/// The status of everything `snap` serves, as it stands now.
pub fn status(snap: &Snapshot) -> Status {
    let zones = snap
        .zones()
        .iter()
        .map(|z| ZoneStatus {
            zone: z.origin.to_string(),
            names: {
                let mut names: Vec<NameStatus> = z
                    .gslb_names()
                    .map(|(name, g)| name_status(snap, name.to_string(), g))
                    .collect();
                names.sort_by(|a, b| a.name.cmp(&b.name));
                names
            },
        })
        .collect();
    Status {
        generation: snap.generation,
        zones,
    }
}

fn name_status(snap: &Snapshot, name: String, g: &GslbNode) -> NameStatus {
    let counts = live::answer_counts(g);
    let all: u64 = counts.iter().sum();
    let datacenters = g
        .candidates
        .iter()
        .enumerate()
        .map(|(pos, c)| {
            let coord = g.policy.coords().get(pos).copied().flatten();
            let answers = counts.get(pos).copied().unwrap_or(0);
            datacenter_status(snap, c, coord, answers, all)
        })
        .collect();
    NameStatus {
        name,
        answers: all,
        datacenters,
    }
}

fn datacenter_status(
    snap: &Snapshot,
    c: &Candidate,
    coord: Option<Coord>,
    answers: u64,
    all: u64,
) -> DatacenterStatus {
    let admin = snap.health.word(c.slot).admin();
    let mut verdicts = Vec::new();
    let mut addresses = Vec::new();
    for f in [&c.a, &c.aaaa] {
        for ((r, &slot), check) in f.records.iter().zip(f.slots.iter()).zip(f.checks.iter()) {
            let Some(address) = r.data.ip_addr() else {
                continue;
            };
            let v = live::verdict(snap, c, slot);
            verdicts.push(v);
            addresses.push(AddressStatus {
                address,
                health: if v.is_in() { "up" } else { "down" }.to_owned(),
                reason: live::address_state(v, check.as_deref()),
                admin: admin_text(snap.health.word(slot).admin()),
                override_note: snap.health.note_of(slot),
                probe: check.as_deref().map(probe_status),
            });
        }
    }
    let (health, reason) = live::datacenter_state(admin, &verdicts, "no address");
    DatacenterStatus {
        id: c.datacenter.clone(),
        lat: coord.map(|c| c.lat),
        lon: coord.map(|c| c.lon),
        health: health.as_str().to_owned(),
        reason,
        admin: admin_text(admin),
        override_note: snap.health.note_of(c.slot),
        weight: c.weight,
        effective_weight: live::effective_weight(snap, c),
        answers,
        share: if all == 0 {
            0.0
        } else {
            answers as f64 / all as f64
        },
        addresses,
    }
}

fn admin_text(a: Admin) -> Option<String> {
    (a != Admin::None).then(|| a.to_string())
}

fn probe_status(t: &TargetHealth) -> ProbeStatus {
    let d = t.detail();
    ProbeStatus {
        check: t.check().kind.to_string(),
        up: d.probe_up,
        last_error: d.last.and_then(|o| o.error),
        flapping: d.flapping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{HealthSources, OverrideKey};

    const ZONE: &str = r#"
[datacenters.a]
addresses = ["192.0.2.10", "2001:db8::10"]
location = [52.37, 4.90]
weight = 3
[datacenters.b]
addresses = ["192.0.2.20"]
location = [40.71, -74.01]
[names.cdn.gslb]
datacenters = ["a", "b"]
"#;

    #[test]
    fn lists_each_data_center_with_health_weights_and_overrides() {
        let health = HealthSources::new(None).unwrap();
        let snap = crate::compile::test_zone::snapshot(ZONE, &health);
        let key = OverrideKey::Datacenter {
            zone: "example.com.".into(),
            datacenter: "b".into(),
        };
        health.overrides.set(&key, Admin::Drain).unwrap();
        let s = status(&snap);
        assert_eq!(s.zones.len(), 1);
        let z = &s.zones[0];
        assert_eq!(z.zone, "example.com.");
        let n = &z.names[0];
        assert_eq!(n.name, "cdn.example.com.");
        let ids: Vec<&str> = n.datacenters.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let a = &n.datacenters[0];
        assert_eq!((a.lat, a.lon), (Some(52.37), Some(4.90)));
        assert_eq!((a.health.as_str(), a.reason.as_str()), ("up", "up"));
        assert_eq!(
            (a.weight, a.effective_weight, a.admin.as_deref()),
            (3, 3, None)
        );
        let addrs: Vec<String> = a.addresses.iter().map(|x| x.address.to_string()).collect();
        assert_eq!(addrs, ["192.0.2.10", "2001:db8::10"]);
        assert_eq!(a.addresses[0].reason, "up (no health check)");
        assert!(a.addresses[0].probe.is_none());
        let b = &n.datacenters[1];
        assert_eq!(
            (b.health.as_str(), b.reason.as_str()),
            ("down", "drain (operator override)")
        );
        assert_eq!((b.weight, b.effective_weight), (1, 0));
        assert_eq!(b.admin.as_deref(), Some("drain"));
        assert_eq!(b.addresses[0].health, "down");
        assert!(
            b.addresses[0].reason.starts_with("out: data center drain"),
            "{}",
            b.addresses[0].reason
        );
        // The JSON names the override field `override`.
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["zones"][0]["names"][0]["datacenters"][1]["override"],
            "drain"
        );
    }
}
