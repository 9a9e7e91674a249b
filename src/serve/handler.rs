//! One DNS message in, one DNS message out: header rules, EDNS, ECS, truncation.
//!
//! [`Responder::respond`] is what every transport calls. It parses with hickory-proto, checks
//! the message (opcode, question count, class, EDNS version, ECS), asks
//! [`resolve`](crate::answer::resolve()) for the records, and encodes the reply into the
//! caller's buffer, truncating for UDP. It never blocks and never logs per query.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use hickory_server::zone_handler::MessageResponseBuilder;

use super::ecs;
use crate::answer::{Answer, Client, Rec, resolve};
use crate::compile::Snapshot;
use crate::name_key::NameKey;

/// Largest reply without EDNS (RFC 1035 §4.2.1).
const PLAIN_UDP_LIMIT: usize = 512;

/// Which transport a message came over; decides truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: replies are limited by the client's payload size.
    Udp,
    /// TCP: replies up to 65535 bytes.
    Tcp,
}

/// Answers DNS messages from the current snapshot.
#[derive(Debug)]
pub struct Responder {
    snapshot: Arc<ArcSwap<Snapshot>>,
    max_udp_payload: u16,
}

/// What came of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `out` holds a reply to send.
    Reply,
    /// Send nothing (too short to answer, or itself a response).
    Drop,
}

impl Responder {
    /// A responder over `snapshot`, advertising and truncating at `max_udp_payload` bytes.
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, max_udp_payload: u16) -> Self {
        Self {
            snapshot,
            max_udp_payload: max_udp_payload.max(512),
        }
    }

    /// The snapshot handle, shared with reload.
    pub fn snapshot(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.snapshot
    }

    /// Answers `packet` from `src` into `out` (cleared first).
    pub fn respond(
        &self,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        out.clear();
        // RFC 1035 §4.1.1: a header is 12 bytes; QR=1 means a response, which we never answer
        // (answering would let two servers bounce packets forever).
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            return Outcome::Drop;
        }
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        };
        let Ok(request) = Request::from_bytes(packet.to_vec(), src, protocol) else {
            header_only_error(packet, ResponseCode::FormErr, out);
            return Outcome::Reply;
        };
        // Hold the snapshot for the whole answer: records are borrowed from it. A guard, not
        // a clone of the Arc: no shared counter is touched, and nothing here awaits.
        let snap = self.snapshot.load();
        self.prepare(&request, &snap, transport).fit(&request, out);
        Outcome::Reply
    }

    fn prepare<'s>(
        &self,
        request: &Request,
        snap: &'s Snapshot,
        transport: Transport,
    ) -> Prepared<'s> {
        let mut meta = Metadata::response_from_request(&request.metadata);
        let mut ecs: Option<ecs::ClientSubnet> = None;
        let mut early: Option<ResponseCode> = None;

        let resp_edns = request.edns.as_ref().map(|req_edns| {
            let mut e = Edns::new();
            e.set_max_payload(self.max_udp_payload);
            e.set_version(0);
            // RFC 3225 §3: the DO bit is copied into the response.
            e.set_dnssec_ok(req_edns.flags().dnssec_ok);
            if req_edns.version() > 0 {
                early = Some(ResponseCode::BADVERS);
            } else {
                match ecs::find(request.as_slice()) {
                    Some(Ok(cs)) => ecs = Some(cs),
                    Some(Err(_)) => early = Some(ResponseCode::FormErr),
                    None => {}
                }
            }
            e
        });
        if early.is_none() && request.metadata.op_code != OpCode::Query {
            early = Some(ResponseCode::NotImp);
        }
        if early.is_none() && request.queries.len() != 1 {
            early = Some(ResponseCode::FormErr);
        }

        let limit = match transport {
            Transport::Tcp => u16::MAX as usize,
            Transport::Udp => match &request.edns {
                Some(e) => (e.max_payload().clamp(512, self.max_udp_payload)) as usize,
                None => PLAIN_UDP_LIMIT,
            },
        };

        let answer = match early {
            Some(rc) => Answer::error(rc),
            None => {
                let q = &request.queries.queries()[0];
                let qtype = q.query_type();
                if q.query_class() != DNSClass::IN {
                    Answer::refused()
                } else if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
                    // Zone transfers are not offered; say so rather than time out the client.
                    Answer::refused()
                } else if qtype == RecordType::OPT {
                    Answer::error(ResponseCode::FormErr)
                } else {
                    // The name as asked, case kept: a wildcard's records take it as owner (RFC 4343).
                    let name = q.original().name();
                    // RFC 7871 §7.1.2: SOURCE PREFIX-LENGTH 0 means "use the resolver's address".
                    let client = match ecs {
                        Some(cs) if cs.source > 0 => Client {
                            addr: cs.addr,
                            ecs_source: Some(cs.source),
                        },
                        _ => Client::from(request.src().ip().to_canonical()),
                    };
                    match NameKey::new(name) {
                        Some(key) => resolve(snap, name, &key, qtype, client),
                        None => Answer::error(ResponseCode::FormErr),
                    }
                }
            }
        };

        meta.response_code = answer.rcode;
        meta.authoritative = answer.authoritative;

        // RFC 7871 §7.2.1: echo family, source prefix and address; the scope says how widely
        // the answer may be cached: 0 when it did not depend on the client (or the client
        // asked with source 0), else the widest prefix over which it is the same.
        let resp_edns = resp_edns.map(|mut e| {
            if let Some(cs) = ecs {
                let scope = if cs.source == 0 {
                    0
                } else {
                    answer.scope.unwrap_or(0)
                };
                e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                    cs.addr, cs.source, scope,
                )));
            }
            e
        });

        Prepared {
            meta,
            edns: resp_edns,
            answer,
            limit,
        }
    }
}

/// A reply decided but not yet encoded.
struct Prepared<'s> {
    meta: Metadata,
    edns: Option<Edns>,
    answer: Answer<'s>,
    /// Largest reply the client takes.
    limit: usize,
}

impl Prepared<'_> {
    /// Encodes into `out` what fits the client's limit, and returns which sections that is.
    fn fit(&mut self, request: &Request, out: &mut Vec<u8>) -> Sections {
        encode(request, self, Sections::All, out);
        if out.len() <= self.limit {
            return Sections::All;
        }
        // RFC 2181 §9: extra addresses may be dropped without TC, but not a referral's glue.
        if !self.answer.additional.is_empty() && !self.answer.referral {
            encode(request, self, Sections::NoAdditional, out);
            if out.len() <= self.limit {
                return Sections::NoAdditional;
            }
        }
        // Too big for this client over UDP: an empty reply with TC makes it retry over TCP.
        self.meta.truncation = true;
        encode(request, self, Sections::None, out);
        Sections::None
    }

    /// How many records of each section `sections` keeps.
    fn counts(&self, sections: Sections) -> (usize, usize, usize) {
        let a = &self.answer;
        match sections {
            Sections::All => (a.answer.len(), a.authority.len(), a.additional.len()),
            Sections::NoAdditional => (a.answer.len(), a.authority.len(), 0),
            Sections::None => (0, 0, 0),
        }
    }
}

/// Which sections to emit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sections {
    All,
    NoAdditional,
    None,
}

fn encode(request: &Request, p: &Prepared<'_>, sections: Sections, out: &mut Vec<u8>) {
    out.clear();
    let (meta, answer) = (p.meta, &p.answer);
    let (n_ans, n_auth, n_add) = p.counts(sections);
    let response = MessageResponseBuilder::new(&request.queries, p.edns.as_ref()).build(
        meta,
        answer.answer[..n_ans].iter().map(Rec::get),
        answer.authority[..n_auth].iter().map(Rec::get),
        std::iter::empty(),
        answer.additional[..n_add].iter().map(Rec::get),
    );
    let mut encoder = BinEncoder::new(out);
    if response.destructive_emit(&mut encoder).is_err() {
        // Only a broken record could fail to encode; say SERVFAIL rather than stay silent.
        let mut header = [0u8; 12];
        header[..2].copy_from_slice(&meta.id.to_be_bytes());
        out.clear();
        out.extend_from_slice(&header);
        out[2] = 0x80 | (u8::from(meta.op_code) << 3) | u8::from(meta.recursion_desired);
        out[3] = ResponseCode::ServFail.low();
    }
}

/// A reply of just a header, for messages too broken to parse: same id and opcode, RD copied.
fn header_only_error(packet: &[u8], rcode: ResponseCode, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&packet[..2]);
    let opcode_and_rd = packet[2] & 0x79;
    out.push(0x80 | opcode_and_rd);
    out.push(rcode.low());
    out.extend_from_slice(&[0; 8]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::load::load_snapshot;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::path::Path;
    use std::str::FromStr;

    fn example_responder() -> Responder {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cfg = ServerConfig {
            zones_dir: root.join("zones"),
            ..ServerConfig::default()
        };
        cfg.geoip.databases = vec![root.join("geoip/test-city.mmdb")];
        let health = crate::health::HealthSources::new(None).expect("in-memory overrides");
        let (snap, _) = load_snapshot(&cfg, &health, 1).expect("example zones load");
        Responder::new(Arc::new(ArcSwap::from_pointee(snap)), 1232)
    }

    /// Mangled queries (bit flips, cuts, splices of valid ones with ECS, OPT and several
    /// sections) never panic, and every reply is a parseable DNS message.
    #[test]
    fn mangled_packets_never_panic() {
        use hickory_proto::op::Edns;
        use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
        let r = example_responder();
        let src: std::net::SocketAddr = "127.0.4.1:5353".parse().unwrap();
        let mut seeds = Vec::new();
        for (name, t) in [
            ("cdn.example.com.", RecordType::A),
            ("www.example.com.", RecordType::AAAA),
            ("x.y.apps.example.com.", RecordType::TXT),
            ("example.com.", RecordType::ANY),
            ("a.dev.example.com.", RecordType::NS),
        ] {
            let mut m = Message::query();
            m.add_query(Query::query(Name::from_str(name).unwrap(), t));
            let mut e = Edns::new();
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                "192.0.2.0".parse().unwrap(),
                24,
                0,
            )));
            m.set_edns(e);
            seeds.push(m.to_vec().unwrap());
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = Vec::new();
        for i in 0..30_000 {
            let mut p = seeds[i % seeds.len()].clone();
            for _ in 0..(1 + next() % 4) {
                let n = next();
                if p.is_empty() {
                    p.push(n as u8);
                }
                let at = (n >> 8) as usize % p.len();
                match n % 4 {
                    0 => p[at] ^= 1 << ((n >> 32) % 8),
                    1 => p.truncate(at),
                    2 => p.insert(at, (n >> 40) as u8),
                    _ => {
                        if at < p.len() {
                            p[at] = (n >> 24) as u8;
                        }
                    }
                }
            }
            for t in [Transport::Udp, Transport::Tcp] {
                if r.respond(&p, src, t, &mut out) == Outcome::Reply {
                    assert!(out.len() >= 12, "reply shorter than a header");
                    assert_eq!(out[..2], p[..2], "the reply carries the query's id");
                    assert!(out[2] & 0x80 != 0, "QR is set");
                    // Parseable, or the header-only FORMERR for what hickory cannot parse.
                    let header_only_formerr =
                        out.len() == 12 && out[3] & 0x0f == ResponseCode::FormErr.low();
                    assert!(Message::from_vec(&out).is_ok() || header_only_formerr);
                    if t == Transport::Udp {
                        assert!(out.len() <= 1232, "a UDP reply over the payload limit");
                    }
                }
            }
        }
    }
}
