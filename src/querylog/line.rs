//! One [`Entry`] as one JSON line, on the writer thread.
//!
//! ```text
//! {"time":"2026-12-03T06:40:01.123456Z","client":"192.0.2.7","client_port":5353,
//!  "transport":"udp","ecs":"198.51.100.0/24","scope":24,"name":"cdn.example.com.",
//!  "type":"A","rcode":"NOERROR","zone":"example.com.","gslb":"cdn.example.com.",
//!  "datacenter":"ams","rank":0,"how":"ranked","latency_us":3.2}
//! ```
//!
//! `ecs` and `scope` are there only when the query had ECS and the reply a scope; `gslb`,
//! `datacenter`, `rank` and `how` only for GSLB answers (`datacenter` and `rank` absent when
//! the all-down policy answered). Zone, name and data center come from the metric slots the
//! entry carries; their names are looked up once and kept.

use std::collections::HashMap;
use std::fmt::Write as _;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Entry;
use crate::metrics::{self, Series, Slot};

/// The names behind metric slots, as the writer has seen them.
#[derive(Default)]
pub struct Names {
    known: HashMap<Slot, Series>,
}

impl Names {
    fn get(&mut self, slot: Slot) -> Option<&Series> {
        // The fixed slots (no zone, among them) name no series: nothing to read for them,
        // or every REFUSED line would copy the whole list.
        if slot.is_fixed() {
            return None;
        }
        if !self.known.contains_key(&slot) {
            // New since the last look (a reload added a zone or a name): read them all.
            self.known = metrics::series().into_iter().map(|(s, i)| (i, s)).collect();
        }
        self.known.get(&slot)
    }
}

/// Appends `entry` as one JSON line (with its newline) to `out`.
pub fn write(entry: &Entry, names: &mut Names, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(256);
    let time = OffsetDateTime::from(entry.time)
        .format(&Rfc3339)
        .unwrap_or_default();
    s.push_str("{\"time\":");
    push_str(&mut s, &time);
    let _ = write!(
        s,
        ",\"client\":\"{}\",\"client_port\":{},\"transport\":\"{}\"",
        entry.client.ip().to_canonical(),
        entry.client.port(),
        if entry.tcp { "tcp" } else { "udp" }
    );
    if let Some((addr, source)) = entry.ecs {
        let _ = write!(s, ",\"ecs\":\"{addr}/{source}\"");
    }
    if let Some(scope) = entry.scope {
        let _ = write!(s, ",\"scope\":{scope}");
    }
    s.push_str(",\"name\":");
    push_str(
        &mut s,
        &presentation(&entry.name[..usize::from(entry.name_len)]),
    );
    if let Some(t) = entry.qtype {
        let t = RecordType::from(t);
        let _ = write!(s, ",\"type\":\"{t}\"");
    }
    let _ = write!(s, ",\"rcode\":\"{}\"", rcode_name(entry.rcode));
    if let Some(Series::Queries { zone }) = names.get(entry.zone) {
        s.push_str(",\"zone\":");
        push_str(&mut s, zone);
    }
    if let Some(chosen) = entry.chosen {
        if let Some(Series::Answers {
            name, datacenter, ..
        }) = chosen.datacenter.and_then(|d| names.get(d))
        {
            s.push_str(",\"gslb\":");
            push_str(&mut s, name);
            s.push_str(",\"datacenter\":");
            push_str(&mut s, datacenter);
        }
        if let Some(rank) = chosen.rank {
            let _ = write!(s, ",\"rank\":{rank}");
        }
        let _ = write!(s, ",\"how\":\"{}\"", chosen.how.name());
    }
    let _ = write!(
        s,
        ",\"latency_us\":{:.1}}}",
        entry.latency.as_secs_f64() * 1e6
    );
    s.push('\n');
    out.extend_from_slice(s.as_bytes());
}

/// A JSON string.
fn push_str(s: &mut String, text: &str) {
    s.push_str(&serde_json::Value::from(text).to_string());
}

/// The name in presentation form (RFC 1035 §5.1): dots between labels, a final dot, and
/// `\.`, `\\` and `\DDD` for bytes that would otherwise be misread.
fn presentation(wire: &[u8]) -> String {
    let mut s = String::with_capacity(wire.len() + 1);
    let mut at = 0;
    while let Some(&l) = wire.get(at) {
        let label = wire.get(at + 1..at + 1 + usize::from(l)).unwrap_or(&[]);
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' => {
                    s.push('\\');
                    s.push(char::from(b));
                }
                0x21..=0x7e => s.push(char::from(b)),
                _ => {
                    let _ = write!(s, "\\{b:03}");
                }
            }
        }
        s.push('.');
        at += 1 + usize::from(l);
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

/// The mnemonic of an (extended) response code.
fn rcode_name(rcode: u16) -> String {
    match ResponseCode::from((rcode >> 4) as u8, (rcode & 0xf) as u8) {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::BADVERS => "BADVERS".into(),
        _ => rcode.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::querylog::{Chosen, How};
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_gslb_entry_is_one_json_object_with_every_field() {
        let zone = metrics::slot(Series::Queries {
            zone: "log.example.".into(),
        });
        let dc = metrics::slot(Series::Answers {
            zone: "log.example.".into(),
            name: "cdn.log.example.".into(),
            datacenter: "ams".into(),
        });
        let (name, name_len) = Entry::question_name(
            b"\0\0\0\0\0\0\0\0\0\0\0\0\x03CdN\x03l.g\x07example\0\0\x01\0\x01",
        );
        let entry = Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_micros(1_764_744_001_123_456),
            client: "[::ffff:192.0.2.7]:5353".parse().unwrap(),
            tcp: false,
            ecs: Some(("198.51.100.0".parse().unwrap(), 24)),
            scope: Some(20),
            name,
            name_len,
            qtype: Some(1),
            rcode: 0,
            zone,
            chosen: Some(Chosen {
                datacenter: Some(dc),
                rank: Some(1),
                how: How::Failover,
            }),
            latency: Duration::from_nanos(3_250),
        };
        let mut out = Vec::new();
        write(&entry, &mut Names::default(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("}\n") && text.matches('\n').count() == 1,
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2025-12-03T06:40:01.123456Z",
                "client": "192.0.2.7",
                "client_port": 5353,
                "transport": "udp",
                "ecs": "198.51.100.0/24",
                "scope": 20,
                "name": "CdN.l\\.g.example.",
                "type": "A",
                "rcode": "NOERROR",
                "zone": "log.example.",
                "gslb": "cdn.log.example.",
                "datacenter": "ams",
                "rank": 1,
                "how": "failover",
                "latency_us": 3.2,
            })
        );
    }

    #[test]
    fn an_unreadable_query_logs_what_is_known() {
        let (name, name_len) = Entry::question_name(&[0; 12]);
        let entry = Entry {
            time: SystemTime::UNIX_EPOCH,
            client: "127.0.0.1:1".parse().unwrap(),
            tcp: true,
            ecs: None,
            scope: None,
            name,
            name_len,
            qtype: None,
            rcode: 1,
            zone: Slot::NO_ZONE,
            chosen: None,
            latency: Duration::ZERO,
        };
        let mut out = Vec::new();
        write(&entry, &mut Names::default(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["name"], ".");
        assert_eq!(v["rcode"], "FORMERR");
        assert_eq!(v["transport"], "tcp");
        assert!(v.get("type").is_none() && v.get("zone").is_none() && v.get("how").is_none());
    }

    #[test]
    fn names_stop_at_a_pointer_or_a_cut() {
        let (_, len) = Entry::question_name(b"\0\0\0\0\0\0\0\0\0\0\0\0\x03www\xc0\x0c");
        assert_eq!(len, 4);
        let (_, len) = Entry::question_name(b"\0\0\0\0\0\0\0\0\0\0\0\0\x03www\x07exa");
        assert_eq!(len, 4);
        let mut long = vec![0u8; 12];
        for _ in 0..200 {
            long.extend_from_slice(b"\x01a");
        }
        let (name, len) = Entry::question_name(&long);
        assert!(len <= 254 && name[usize::from(len)..].iter().all(|&b| b == 0));
    }
}
