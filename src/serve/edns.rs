//! EDNS (RFC 6891) and Client Subnet (RFC 7871): what the query's OPT asks of the reply.
//!
//! [`QueryEdns::read`] turns the query's OPT into everything the rest of the request path
//! needs from it: an error to answer before anything else (BADVERS, or FORMERR for a
//! malformed ECS option), the client subnet to route by, and the largest UDP reply the
//! client takes. [`QueryEdns::reply`] then makes the reply's OPT, with the ECS echo and the
//! scope of the answer, and [`ReplyOpt::write`] writes it without allocating.

use std::net::IpAddr;

use crate::answer::Client;

use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_server::zone_handler::MessageRequest;

use super::ecs::{self, ClientSubnet};

/// Largest UDP reply to a query without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_LIMIT: usize = 512;

/// What the query's EDNS asks of the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryEdns {
    /// The reply's OPT before the answer is known; `None` when the query had no OPT, and
    /// then the reply gets none either (RFC 6891 §7).
    opt: Option<ReplyOpt>,
    /// BADVERS or FORMERR: the reply to send whatever the question.
    pub error: Option<ResponseCode>,
    /// The client subnet of a valid ECS option.
    pub subnet: Option<ClientSubnet>,
    /// Largest reply over UDP: the client's payload size, at least 512 (RFC 6891 §6.2.3),
    /// at most what the server advertises; 512 without EDNS.
    pub udp_limit: usize,
}

impl QueryEdns {
    /// Reads the OPT of `request`; `raw` is the same query as received (the ECS option is
    /// read from the bytes, see [`ecs`]). `max_udp_payload` is the server's payload size.
    pub fn read(request: &MessageRequest, raw: &[u8], max_udp_payload: u16) -> Self {
        let Some(edns) = &request.edns else {
            return Self::absent();
        };
        let mut read = Self::version_0(edns.max_payload(), edns.flags().dnssec_ok, max_udp_payload);
        // RFC 6891 §6.1.3: only version 0 exists; a higher one gets BADVERS, and its options
        // are not read (their meaning could differ in that version).
        if edns.version() > 0 {
            read.error = Some(ResponseCode::BADVERS);
            return read;
        }
        match ecs::find(raw) {
            Some(Ok(subnet)) => read.subnet = Some(subnet),
            // RFC 7871 §7.1.1: a malformed option is FORMERR.
            Some(Err(_)) => read.error = Some(ResponseCode::FormErr),
            None => {}
        }
        read
    }

    /// A query without an OPT: the reply gets none, and 512 bytes over UDP.
    pub fn absent() -> Self {
        Self {
            opt: None,
            error: None,
            subnet: None,
            udp_limit: PLAIN_UDP_LIMIT,
        }
    }

    /// A version-0 OPT offering `payload` bytes, with DO as given and no ECS yet;
    /// `max_udp_payload` is the server's payload size.
    pub fn version_0(payload: u16, dnssec_ok: bool, max_udp_payload: u16) -> Self {
        Self {
            opt: Some(ReplyOpt {
                payload: max_udp_payload,
                // RFC 3225 §3: the DO bit is copied into the response.
                dnssec_ok,
                subnet: None,
            }),
            error: None,
            subnet: None,
            udp_limit: payload.clamp(512, max_udp_payload) as usize,
        }
    }

    /// The address to answer for: the ECS address, or the resolver's own when there is no
    /// option or its SOURCE PREFIX-LENGTH is 0 (RFC 7871 §7.1.2). A v4-mapped source is
    /// looked up as IPv4.
    /// With the ECS source prefix, which bounds what a sticky name may hash.
    pub fn client(&self, src: IpAddr) -> Client {
        match self.subnet {
            Some(cs) if cs.source > 0 => Client {
                addr: cs.addr,
                ecs_source: Some(cs.source),
            },
            _ => Client::from(src.to_canonical()),
        }
    }

    /// The reply's OPT for an answer whose ECS scope is `scope` ([`crate::answer::Answer::scope`]).
    ///
    /// RFC 7871 §7.2.1: family, source prefix and address are echoed; the scope says how
    /// widely the answer may be cached: 0 when it did not depend on the client (or the client
    /// asked with source 0), else the widest prefix over which it is the same.
    pub fn reply(&self, scope: Option<u8>) -> Option<ReplyOpt> {
        let mut opt = self.opt?;
        opt.subnet = self.subnet.map(|cs| {
            let scope = if cs.source == 0 {
                0
            } else {
                scope.unwrap_or(0)
            };
            (cs, scope)
        });
        Some(opt)
    }
}

/// The OPT of a reply: the server's payload size, version 0, the query's DO bit, and the
/// ECS echo with its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyOpt {
    payload: u16,
    dnssec_ok: bool,
    subnet: Option<(ClientSubnet, u8)>,
}

/// OPT's RR type (RFC 6891 §6.1.1).
const OPT_TYPE: u16 = 41;
/// The ECS option's code (RFC 7871 §6).
const ECS_CODE: u16 = 8;
/// Root owner, TYPE, CLASS, TTL, RDLENGTH.
const FIXED_LEN: usize = 1 + 2 + 2 + 4 + 2;

impl ReplyOpt {
    /// An OPT advertising `payload`, with DO as given and no option.
    pub fn new(payload: u16, dnssec_ok: bool) -> Self {
        Self {
            payload,
            dnssec_ok,
            subnet: None,
        }
    }

    /// Its length on the wire.
    pub fn wire_len(&self) -> usize {
        FIXED_LEN + self.rdata_len()
    }

    fn rdata_len(&self) -> usize {
        match self.subnet {
            // OPTION-CODE, OPTION-LENGTH, then FAMILY, SOURCE, SCOPE and the address octets.
            Some((cs, _)) => 4 + 4 + address_octets(cs.source),
            None => 0,
        }
    }

    /// Appends the record to `out`, for a reply whose RCODE is `rcode` (RFC 6891 §6.1.2:
    /// the TTL field holds the upper 8 bits of an extended RCODE, the version, and the flags).
    pub fn write(&self, rcode: ResponseCode, out: &mut Vec<u8>) {
        out.push(0); // the root
        out.extend_from_slice(&OPT_TYPE.to_be_bytes());
        out.extend_from_slice(&self.payload.to_be_bytes()); // CLASS: UDP payload size
        let flags: u16 = if self.dnssec_ok { 0x8000 } else { 0 };
        out.extend_from_slice(&[rcode.high(), 0]); // EXTENDED-RCODE, VERSION 0
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&(self.rdata_len() as u16).to_be_bytes());
        if let Some((cs, scope)) = self.subnet {
            let n = address_octets(cs.source);
            let (family, octets): (u16, [u8; 16]) = match cs.addr {
                IpAddr::V4(a) => {
                    let mut b = [0; 16];
                    b[..4].copy_from_slice(&a.octets());
                    (1, b)
                }
                IpAddr::V6(a) => (2, a.octets()),
            };
            out.extend_from_slice(&ECS_CODE.to_be_bytes());
            out.extend_from_slice(&(4 + n as u16).to_be_bytes());
            out.extend_from_slice(&family.to_be_bytes());
            out.extend_from_slice(&[cs.source, scope]);
            out.extend_from_slice(&octets[..n]);
        }
    }

    /// The same OPT as hickory's [`Edns`], for the rare reply that hickory encodes whole,
    /// OPT included (one near 64 KiB, see `encode.rs`).
    pub fn to_edns(&self) -> Edns {
        let mut e = Edns::new();
        e.set_max_payload(self.payload);
        e.set_version(0);
        e.set_dnssec_ok(self.dnssec_ok);
        if let Some((cs, scope)) = self.subnet {
            e.options_mut().insert(EdnsOption::Subnet(
                hickory_proto::rr::rdata::opt::ClientSubnet::new(cs.addr, cs.source, scope),
            ));
        }
        e
    }
}

/// RFC 7871 §6: ADDRESS holds just the octets SOURCE PREFIX-LENGTH covers.
fn address_octets(source: u8) -> usize {
    usize::from(source).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, Record, RecordType};
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
    use hickory_server::net::xfer::Protocol;
    use hickory_server::server::Request;

    fn read(edns: Option<Edns>, max: u16) -> QueryEdns {
        let mut m = Message::query();
        m.add_query(Query::query(Name::root(), RecordType::A));
        if let Some(e) = edns {
            m.set_edns(e);
        }
        let raw = m.to_vec().unwrap();
        let src = "192.0.2.1:53".parse().unwrap();
        let request = Request::from_bytes(raw.clone(), src, Protocol::Udp).unwrap();
        QueryEdns::read(&request, &raw, max)
    }

    fn edns(payload: u16, ecs: Option<(&str, u8)>) -> Edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        if let Some((addr, source)) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(
                hickory_proto::rr::rdata::opt::ClientSubnet::new(addr.parse().unwrap(), source, 0),
            ));
        }
        e
    }

    fn subnet(addr: &str, source: u8) -> ClientSubnet {
        ClientSubnet {
            addr: addr.parse().unwrap(),
            source,
        }
    }

    #[test]
    fn without_edns_no_opt_and_512_bytes() {
        let q = read(None, 1232);
        assert_eq!(q.udp_limit, 512);
        assert_eq!((q.error, q.subnet, q.reply(Some(24))), (None, None, None));
    }

    #[test]
    fn the_udp_limit_is_the_clients_payload_within_512_and_the_servers() {
        assert_eq!(read(Some(edns(4096, None)), 1232).udp_limit, 1232);
        assert_eq!(read(Some(edns(1000, None)), 1232).udp_limit, 1000);
        // RFC 6891 §6.2.5: a payload under 512 counts as 512.
        assert_eq!(read(Some(edns(100, None)), 1232).udp_limit, 512);
    }

    #[test]
    fn the_reply_opt_advertises_the_server_payload_and_copies_do() {
        let mut e = edns(4096, None);
        e.set_dnssec_ok(true);
        let q = read(Some(e), 1400);
        assert_eq!(q.reply(None), Some(ReplyOpt::new(1400, true)));
        let q = read(Some(edns(4096, None)), 1400);
        assert_eq!(q.reply(None), Some(ReplyOpt::new(1400, false)));
    }

    #[test]
    fn version_1_is_badvers_and_its_options_unread() {
        let mut e = edns(1232, Some(("192.0.2.0", 23)));
        e.set_version(1);
        let q = read(Some(e), 1232);
        assert_eq!(q.error, Some(ResponseCode::BADVERS));
        assert_eq!(q.subnet, None);
        assert_eq!(q.reply(None), Some(ReplyOpt::new(1232, false)));
    }

    #[test]
    fn ecs_is_read_checked_and_echoed_with_the_scope() {
        let q = read(Some(edns(1232, Some(("198.51.100.0", 24)))), 1232);
        assert_eq!(q.error, None);
        assert_eq!(q.subnet, Some(subnet("198.51.100.0", 24)));
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            q.client(src),
            Client {
                addr: "198.51.100.0".parse().unwrap(),
                ecs_source: Some(24)
            }
        );
        let echo = |scope| q.reply(scope).unwrap().subnet;
        assert_eq!(echo(Some(20)), Some((subnet("198.51.100.0", 24), 20)));
        assert_eq!(echo(None), Some((subnet("198.51.100.0", 24), 0)));

        // Host bits past the prefix: FORMERR, an OPT, no echo.
        let q = read(Some(edns(1232, Some(("192.0.3.0", 23)))), 1232);
        assert_eq!(q.error, Some(ResponseCode::FormErr));
        assert_eq!(q.reply(Some(16)), Some(ReplyOpt::new(1232, false)));
    }

    #[test]
    fn source_0_routes_by_the_resolver_and_scopes_0() {
        let q = read(Some(edns(1232, Some(("0.0.0.0", 0)))), 1232);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            q.client(mapped),
            Client::from("192.0.2.1".parse::<IpAddr>().unwrap())
        );
        assert_eq!(q.reply(Some(24)).unwrap().subnet.unwrap().1, 0);
        assert_eq!(read(None, 1232).client(mapped), q.client(mapped));
    }

    /// What hickory writes for the same OPT as the last record of a message.
    fn hickory_bytes(opt: &ReplyOpt, rcode: ResponseCode) -> Vec<u8> {
        let mut e = opt.to_edns();
        e.set_rcode_high(rcode.high());
        let mut out = Vec::new();
        Record::from(&e)
            .emit(&mut BinEncoder::new(&mut out))
            .unwrap();
        out
    }

    #[test]
    fn written_as_hickory_writes_it() {
        let mut opts = vec![ReplyOpt::new(512, false), ReplyOpt::new(65535, true)];
        for (addr, sources) in [
            ("0.0.0.0", &[0u8][..]),
            ("192.0.2.0", &[8, 23, 24]),
            ("192.0.2.128", &[25, 32]),
            ("2001:db8::", &[0, 32, 47, 56]),
            ("2001:db8:1:2:3:4:5:6", &[128]),
            ("::ffff:192.0.2.128", &[121]),
        ] {
            for &source in sources {
                for scope in [0, source, 17] {
                    let mut o = ReplyOpt::new(1232, source % 2 == 0);
                    o.subnet = Some((subnet(addr, source), scope));
                    opts.push(o);
                }
            }
        }
        for opt in opts {
            for rcode in [
                ResponseCode::NoError,
                ResponseCode::FormErr,
                ResponseCode::BADVERS,
            ] {
                let mut out = vec![0xAA];
                opt.write(rcode, &mut out);
                assert_eq!(out[1..], hickory_bytes(&opt, rcode), "{opt:?} {rcode}");
                assert_eq!(out.len() - 1, opt.wire_len(), "{opt:?}");
            }
        }
    }
}
