//! One DNS message in, one DNS message out.
//!
//! [`Responder::respond`] is what every transport calls, and reads top to bottom: parse with
//! hickory-proto, read the query's EDNS ([`edns`](super::edns)), check the header
//! ([`rules`]), [`resolve`](crate::answer::resolve()) the question, and encode the reply
//! once into the caller's buffer, cut to the client's limit over UDP (`encode.rs`). It
//! never blocks and never logs per query.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Metadata, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::edns::{QueryEdns, ReplyOpt};
use super::{ecs, encode, fast, rules};
use crate::answer::resolve::resolve_into;
use crate::answer::{Answer, resolve};
use crate::compile::Snapshot;
use crate::metrics::{self, Slot};
use crate::name_key::NameKey;
use crate::querylog::{Entry, QueryLog, Started};

/// Which transport a message came over; decides truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: replies are limited by the client's payload size.
    Udp,
    /// TCP: replies up to 65535 bytes.
    Tcp,
}

impl Transport {
    fn protocol(self) -> Protocol {
        match self {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        }
    }

    /// The largest reply: `udp_limit` (the client's, from its EDNS) over UDP, 65535 over TCP.
    fn limit(self, udp_limit: usize) -> usize {
        match self {
            Transport::Udp => udp_limit,
            Transport::Tcp => usize::from(u16::MAX),
        }
    }
}

/// Answers DNS messages from the current snapshot.
#[derive(Debug)]
pub struct Responder {
    snapshot: Arc<ArcSwap<Snapshot>>,
    max_udp_payload: u16,
    log: Option<Arc<QueryLog>>,
    /// Whether [`fast`] reads the queries it can (off only to compare the two paths).
    fast: bool,
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
            log: None,
            fast: true,
        }
    }

    /// Every query through the general path: hickory parses and encodes. For comparing the
    /// two paths, which must give the same bytes.
    pub fn without_fast_path(mut self) -> Self {
        self.fast = false;
        self
    }

    /// Sends a sample of the queries answered to `log`.
    pub fn with_query_log(mut self, log: Arc<QueryLog>) -> Self {
        self.log = Some(log);
        self
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
        let protocol = transport.protocol();
        // The clocks are read only for a query the log samples.
        let logged = self
            .log
            .as_deref()
            .filter(|l| l.sample())
            .map(|l| (l, Started::now()));
        let mut key = NameKey::empty();
        if self.fast
            && let Some(query) = fast::read(packet, self.max_udp_payload, &mut key)
            && self.respond_fast(&query, packet, src, transport, out, logged)
        {
            return Outcome::Reply;
        }
        // hickory reserves room for QDCOUNT questions before reading one: not for a count
        // the packet cannot hold, which it would reject anyway (see rules::questions_fit).
        // A question pointing into the header would be echoed with other bytes.
        let parsed = (rules::questions_fit(packet) && !question_points_into_header(packet))
            .then(|| Request::from_bytes(packet.to_vec(), src, protocol).ok())
            .flatten();
        let Some(request) = parsed else {
            unparsed(packet, self.max_udp_payload, out);
            let answer = Answer::error(ResponseCode::FormErr);
            if metrics::enabled() {
                count(&answer, None, false, transport, out);
            }
            if let Some((log, started)) = logged {
                log.record(entry(started, packet, src, transport, None, None, &answer));
            }
            return Outcome::Reply;
        };
        let edns = QueryEdns::read(&request, packet, self.max_udp_payload);
        // Hold the snapshot for the whole answer: records are borrowed from it. A guard, not
        // a clone of the Arc: no shared counter is touched, and nothing here awaits.
        let snap = self.snapshot.load();
        // EDNS errors first (RFC 6891 §6.1.3, RFC 7871 §7.1.1), then the header rules.
        let question = match edns.error {
            Some(rcode) => Err(rcode),
            None => rules::check(&request),
        };
        let answer = match question {
            Ok(q) => resolve(&snap, q.name, &q.key, q.qtype, edns.client(src.ip())),
            Err(rcode) => Answer::error(rcode),
        };
        let limit = transport.limit(edns.udp_limit);
        let opt = edns.reply(answer.scope);
        encode::reply(
            &request,
            reply_meta(&request, &answer),
            &answer,
            opt.as_ref(),
            limit,
            out,
        );
        let qtype = request.queries.queries().first().map(|q| q.query_type());
        if metrics::enabled() {
            count(&answer, qtype, edns.subnet.is_some(), transport, out);
        }
        if let Some((log, started)) = logged {
            let ecs = edns.subnet.map(|s| (s.addr, s.source));
            log.record(entry(started, packet, src, transport, qtype, ecs, &answer));
        }
        Outcome::Reply
    }
}

impl Responder {
    /// The fast path (see [`fast`]): the query as read from its bytes, resolved as always,
    /// the reply written directly, or by the general encoder when it holds what the fast
    /// writer does not write. `false` when the general path must take the query whole.
    fn respond_fast(
        &self,
        query: &fast::Query<'_, '_>,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
        logged: Option<(&QueryLog, Started)>,
    ) -> bool {
        let snap = self.snapshot.load();
        let mut answer = Answer::refused();
        resolve_into(
            &mut answer,
            &snap,
            query,
            query.key,
            query.qtype,
            query.edns.client(src.ip()),
        );
        let limit = transport.limit(query.edns.udp_limit);
        let opt = query.edns.reply(answer.scope);
        if !fast::write(packet, query, &answer, opt.as_ref(), limit, out) {
            #[cfg(test)]
            fast::tests::FALLBACKS.with(|f| f.set(f.get() + 1));
            // Records the fast writer does not write, or a reply to cut: the general
            // encoder, for the same answer.
            let Ok(request) = Request::from_bytes(packet.to_vec(), src, transport.protocol())
            else {
                return false;
            };
            let meta = reply_meta(&request, &answer);
            encode::reply(&request, meta, &answer, opt.as_ref(), limit, out);
        }
        let ecs = query.edns.subnet;
        if metrics::enabled() {
            count(&answer, Some(query.qtype), ecs.is_some(), transport, out);
        }
        if let Some((log, started)) = logged {
            let ecs = ecs.map(|s| (s.addr, s.source));
            log.record(entry(
                started,
                packet,
                src,
                transport,
                Some(query.qtype),
                ecs,
                &answer,
            ));
        }
        true
    }
}

/// The reply's header fields for `answer` to `request`.
fn reply_meta(request: &Request, answer: &Answer<'_>) -> Metadata {
    let mut meta = Metadata::response_from_request(&request.metadata);
    // RD and CD are defined for QUERY only (RFC 1035 §4.1.1, RFC 6840 §5.9): the NOTIMP for
    // another opcode echoes neither (ISC genreport's `opcodeflg`).
    let query = meta.op_code == OpCode::Query;
    meta.checking_disabled &= query;
    meta.recursion_desired &= query;
    meta.response_code = answer.rcode;
    meta.authoritative = answer.authoritative;
    meta
}

/// The query log's entry for a reply just encoded.
fn entry(
    started: Started,
    packet: &[u8],
    src: SocketAddr,
    transport: Transport,
    qtype: Option<RecordType>,
    ecs: Option<(std::net::IpAddr, u8)>,
    answer: &Answer<'_>,
) -> Entry {
    let (name, name_len) = Entry::question_name(packet);
    Entry {
        time: started.time,
        client: src,
        tcp: transport == Transport::Tcp,
        ecs,
        scope: ecs.and(answer.scope),
        name,
        name_len,
        qtype: qtype.map(u16::from),
        rcode: metrics::rcode_value(answer.rcode),
        zone: answer.zone_metric,
        chosen: answer.chosen,
        latency: started.at.elapsed(),
    }
}

/// Counts a reply that is about to be sent: its zone, type, rcode and transport, whether
/// the query had ECS, whether it was cut, and the GSLB answer's [`Tally`](metrics::Tally).
/// One thread-local lookup; every write is to this thread's own cells.
fn count(
    answer: &Answer<'_>,
    qtype: Option<RecordType>,
    ecs: bool,
    transport: Transport,
    out: &[u8],
) {
    let t = match transport {
        Transport::Udp => metrics::Transport::Udp,
        Transport::Tcp => metrics::Transport::Tcp,
    };
    // The rcode as sent: BADVERS is 16, its upper bits in the OPT.
    let rcode = metrics::rcode_value(answer.rcode);
    let truncated = out.len() > 2 && out[2] & 0x02 != 0;
    metrics::cells::with(|c| {
        c.add(
            answer
                .zone_metric
                .query(qtype.unwrap_or(RecordType::Unknown(0)), rcode, t),
            1,
        );
        c.add(
            if ecs {
                Slot::ECS_WITH
            } else {
                Slot::ECS_WITHOUT
            },
            1,
        );
        if truncated {
            c.add(
                match transport {
                    Transport::Udp => Slot::TRUNCATED_UDP,
                    Transport::Tcp => Slot::TRUNCATED_TCP,
                },
                1,
            );
        }
        for s in answer.tally.iter() {
            c.add(s, 1);
        }
    });
}

/// Whether a name of the question section is compressed with a pointer into the header
/// (offsets 0 to 11). hickory-server copies the question's bytes into the reply as they came,
/// pointers included, and the reply's header is not the query's, so there the name would
/// read differently, or not parse at all. No client compresses into the header; such a
/// query gets the same FORMERR as one hickory cannot parse, as does a name of over 255
/// labels and pointers. A message too broken to walk is left to the parser.
fn question_points_into_header(packet: &[u8]) -> bool {
    let be16 = |i: usize| {
        packet
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let Some(questions) = be16(4) else {
        return false;
    };
    let mut start = 12;
    for _ in 0..questions {
        // Follow the name as a parser does, through its pointers. A pointer must point
        // before the labels that lead to it (as hickory reads RFC 1035 §4.1.4), so each
        // jump lands earlier than the last and the walk ends.
        let mut at = start;
        let mut labels_from = start;
        for step in 0.. {
            // A name has at most 127 labels (RFC 1035 §2.3.4: 255 bytes); one that takes
            // more steps is a pointer chain no client sends, and would make this walk long.
            if step > 255 {
                return true;
            }
            let Some(&len) = packet.get(at) else {
                return false;
            };
            match len & 0xC0 {
                0x00 if len == 0 => break,
                0x00 => at += 1 + usize::from(len),
                0xC0 => {
                    let Some(target) = be16(at).map(|p| usize::from(p & 0x3FFF)) else {
                        return false;
                    };
                    if target < 12 {
                        return true;
                    }
                    if target >= labels_from {
                        return false;
                    }
                    at = target;
                    labels_from = target;
                }
                _ => return false,
            }
        }
        let Some(end) = ecs::skip_name(packet, start) else {
            return false;
        };
        start = end + 4;
    }
    false
}

/// FORMERR for a message hickory-proto cannot parse (or whose question points into the
/// header, see [`question_points_into_header`]): a header with the same id and opcode
/// and RD copied for QUERY, no question, and an OPT when the query has one (RFC 6891 §7), like the
/// reply to an ECS option our own checks reject: hickory rejects some malformed ECS options
/// itself (an unknown family, a prefix longer than the address) and lets others through.
fn unparsed(packet: &[u8], max_udp_payload: u16, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&packet[..2]);
    // RD as the answered replies have it: copied for QUERY only.
    let opcode = packet[2] & 0x78;
    let rd = if opcode == 0 { packet[2] & 0x01 } else { 0 };
    out.push(0x80 | opcode | rd);
    out.push(ResponseCode::FormErr.low());
    out.extend_from_slice(&[0; 8]);
    if let Some(opt) = ecs::opt(packet) {
        let dnssec_ok = opt.ttl & 0x8000 != 0;
        ReplyOpt::new(max_udp_payload, dnssec_ok).write(ResponseCode::FormErr, out);
        out[11] = 1; // ARCOUNT
    }
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
                    if Request::from_bytes(p.clone(), src, Protocol::Udp).is_err() {
                        assert_eq!(out[3] & 0x0f, ResponseCode::FormErr.low());
                        let opt = ecs::opt(&p).is_some();
                        assert_eq!(out.len(), if opt { 23 } else { 12 }, "{out:02x?}");
                    }
                    if t == Transport::Udp {
                        assert!(out.len() <= 1232, "a UDP reply over the payload limit");
                    }
                }
            }
        }
    }

    /// A question name compressed with a pointer into the header (found by the `respond`
    /// fuzz target): hickory-server copies the question's bytes into the reply, where the
    /// header differs, so the reply named another question, or none that parses. FORMERR,
    /// header only, as for a message hickory cannot parse.
    #[test]
    fn a_question_pointing_into_the_header_is_formerr() {
        let r = example_responder();
        let src: std::net::SocketAddr = "127.0.1.7:5353".parse().unwrap();
        // The fuzzer's input: QDCOUNT 2, the second question "cdn" and a pointer to offset 1.
        let mut two = vec![0x40, 0x01, 0x00, 0x00, 0, 2, 0, 0, 0, 0, 0, 0];
        two.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        two.extend_from_slice(b"\x03cdn\xc0\x01\x00\x01\x00\x01");
        // One question that is a pointer to offset 2: "\000." with RD set in the query, but
        // an invalid label type where the reply has QR and RD.
        let one = vec![
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x02, 0, 1, 0, 1,
        ];
        let mut out = Vec::new();
        for q in [two, one] {
            assert!(Request::from_bytes(q.clone(), src, Protocol::Udp).is_ok());
            for t in [Transport::Udp, Transport::Tcp] {
                assert_eq!(r.respond(&q, src, t, &mut out), Outcome::Reply);
                let rd = q[2] & 0x01;
                assert_eq!(out, [q[0], q[1], 0x80 | rd, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
            }
        }
        // Pointers that do not point before their own labels (here "a" and a pointer back to
        // it, a loop) are the parser's to reject; the walk ends. Found by the fuzz target
        // when an earlier version of the walk followed them forever.
        let looped = vec![
            0x12, 0x35, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0xc0, 12, 0, 1, 0, 1,
        ];
        assert!(Request::from_bytes(looped.clone(), src, Protocol::Udp).is_err());
        assert_eq!(
            r.respond(&looped, src, Transport::Udp, &mut out),
            Outcome::Reply
        );
        assert_eq!(out, [0x12, 0x35, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
        // A pointer into an earlier question is fine: the same bytes are at the same place
        // in the reply. (It still gets FORMERR, for its two questions, with them echoed.)
        let mut ok = vec![0x40, 0x02, 0x00, 0x00, 0, 2, 0, 0, 0, 0, 0, 0];
        ok.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        ok.extend_from_slice(b"\x03cdn\xc0\x10\x00\x01\x00\x01");
        assert_eq!(
            r.respond(&ok, src, Transport::Udp, &mut out),
            Outcome::Reply
        );
        let m = Message::from_vec(&out).unwrap();
        let asked = Message::from_vec(&ok).unwrap();
        assert_eq!(m.queries, asked.queries);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }

    /// A query whose ECS option hickory rejects (family 3) gets FORMERR with an OPT carrying
    /// the server's payload size and the query's DO bit; one without an OPT, just a header.
    #[test]
    fn unparsable_queries_get_formerr_with_an_opt_if_they_had_one() {
        let r = example_responder();
        let src: std::net::SocketAddr = "127.0.4.1:5353".parse().unwrap();
        let mut q = vec![0x53, 0x00, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x03cdn\x07example\x03com\x00\x00\x01\x00\x01");
        // OPT: payload 4096, DO set, one option 8 of family 3.
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 11]);
        q.extend_from_slice(&[0, 8, 0, 7, 0, 3, 24, 0, 192, 0, 2]);
        let mut out = Vec::new();
        assert_eq!(r.respond(&q, src, Transport::Udp, &mut out), Outcome::Reply);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.id, 0x5300);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert!(m.metadata.recursion_desired);
        assert!(m.queries.is_empty() && m.answers.is_empty() && m.additionals.is_empty());
        let edns = m.edns.expect("an OPT");
        assert_eq!((edns.max_payload(), edns.version()), (1232, 0));
        assert!(edns.flags().dnssec_ok);
        assert!(edns.options().as_ref().is_empty());

        // Without the OPT the same question is fine; cut inside it, a header-only FORMERR.
        q[11] = 0;
        let cut = &q[..20];
        assert_eq!(
            r.respond(cut, src, Transport::Udp, &mut out),
            Outcome::Reply
        );
        assert_eq!(out, [0x53, 0x00, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
