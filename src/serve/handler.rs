//! One DNS message in, one DNS message out: header rules, EDNS, ECS, truncation.
//!
//! [`Responder::respond`] is what every transport calls. It parses with hickory-proto, checks
//! the message (opcode, question count, class, EDNS version, ECS), asks
//! [`resolve`](super::resolve::resolve) for the records, and encodes the reply into the
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
use super::resolve::{Answer, Rec, resolve};
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
        // Hold the snapshot for the whole answer: records are borrowed from it.
        let snap = self.snapshot.load_full();
        self.answer(&request, &snap, transport, out);
        Outcome::Reply
    }

    fn answer(&self, request: &Request, snap: &Snapshot, transport: Transport, out: &mut Vec<u8>) {
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
            Some(rc) => {
                let mut a = Answer::refused();
                a.rcode = rc;
                a
            }
            None => {
                let q = &request.queries.queries()[0];
                let qtype = q.query_type();
                if q.query_class() != DNSClass::IN {
                    Answer::refused()
                } else if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
                    // Zone transfers are not offered; say so rather than time out the client.
                    Answer::refused()
                } else if qtype == RecordType::OPT {
                    let mut a = Answer::refused();
                    a.rcode = ResponseCode::FormErr;
                    a
                } else {
                    let name = q.name();
                    // RFC 7871 §7.1.2: SOURCE PREFIX-LENGTH 0 means "use the resolver's address".
                    let client = match ecs {
                        Some(cs) if cs.source > 0 => cs.addr,
                        _ => request.src().ip().to_canonical(),
                    };
                    match NameKey::new(name) {
                        Some(key) => resolve(snap, name, &key, qtype, client),
                        None => {
                            let mut a = Answer::refused();
                            a.rcode = ResponseCode::FormErr;
                            a
                        }
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

        encode(
            request,
            meta,
            resp_edns.as_ref(),
            &answer,
            Sections::All,
            out,
        );
        if out.len() <= limit {
            return;
        }
        // RFC 2181 §9: extra addresses may be dropped without TC, but not a referral's glue.
        if !answer.additional.is_empty() && !answer.referral {
            encode(
                request,
                meta,
                resp_edns.as_ref(),
                &answer,
                Sections::NoAdditional,
                out,
            );
            if out.len() <= limit {
                return;
            }
        }
        // Too big for this client over UDP: an empty reply with TC makes it retry over TCP.
        meta.truncation = true;
        encode(
            request,
            meta,
            resp_edns.as_ref(),
            &answer,
            Sections::None,
            out,
        );
    }
}

/// Which sections to emit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sections {
    All,
    NoAdditional,
    None,
}

fn encode(
    request: &Request,
    meta: Metadata,
    edns: Option<&Edns>,
    answer: &Answer<'_>,
    sections: Sections,
    out: &mut Vec<u8>,
) {
    out.clear();
    let pick = |s: &'_ [Rec<'_>], keep: bool| -> usize { if keep { s.len() } else { 0 } };
    let n_ans = pick(&answer.answer, sections != Sections::None);
    let n_auth = pick(&answer.authority, sections != Sections::None);
    let n_add = pick(&answer.additional, sections == Sections::All);
    let response = MessageResponseBuilder::new(&request.queries, edns).build(
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
