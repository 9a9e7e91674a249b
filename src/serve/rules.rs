//! Header rules: which question a query asks, or the response code that declines it.
//!
//! These run after EDNS (a BADVERS or a malformed ECS option is answered first, see
//! [`super::edns`]) and before any zone data is read, so the resolver only ever sees one
//! class-IN question it can answer. The order of the checks is the order of the replies a
//! query breaking several rules gets, and the scenario files pin it.

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_server::zone_handler::MessageRequest;

use crate::name_key::NameKey;

/// The one question of a query that passed the header rules.
pub struct Question<'r> {
    /// The name as asked, case kept: a wildcard's records take it as owner (RFC 4343 §4.1).
    pub name: &'r Name,
    /// The lowercase wire form every lookup uses.
    pub key: NameKey,
    /// QTYPE.
    pub qtype: RecordType,
}

/// The question to resolve, or the response code for a query these rules decline.
pub fn check(request: &MessageRequest) -> Result<Question<'_>, ResponseCode> {
    // RFC 1035 §4.1.1: only standard queries are served; NOTIFY, UPDATE, STATUS and the
    // rest get NOTIMP, "the kind of query" this server "does not support".
    if request.metadata.op_code != OpCode::Query {
        return Err(ResponseCode::NotImp);
    }
    // RFC 9619: QDCOUNT is 1 in a query; no server answers several questions at once.
    let [q] = request.queries.queries() else {
        return Err(ResponseCode::FormErr);
    };
    // Only the Internet class is served; CH, HS and ANY are someone else's (RFC 1035 §3.2.4).
    if q.query_class() != DNSClass::IN {
        return Err(ResponseCode::Refused);
    }
    let qtype = q.query_type();
    // RFC 5936 §2.2: zone transfers are not offered. REFUSED tells the client at once
    // rather than letting it time out.
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        return Err(ResponseCode::Refused);
    }
    // OPT is a pseudo-record (RFC 6891 §6.1.1), not data anyone can ask for: malformed.
    if qtype == RecordType::OPT {
        return Err(ResponseCode::FormErr);
    }
    let name = q.original().name();
    // A name the key cannot hold (over 255 bytes on the wire) is malformed (RFC 1035 §2.3.4).
    let key = NameKey::new(name).ok_or(ResponseCode::FormErr)?;
    Ok(Question { name, key, qtype })
}

/// Whether the packet has room for the questions its header announces: each takes at least
/// 5 bytes (the root name, QTYPE, QCLASS), so a QDCOUNT beyond that cannot parse.
///
/// Checked before hickory-proto reads the message, because hickory allocates room for
/// QDCOUNT questions first: a 12-byte packet claiming 65535 questions made it reserve
/// 11 MB (168 bytes a question), and glibc's malloc, which raises its mmap threshold after such a block is
/// freed, then serves later ones from each thread's heap and keeps them: RSS grew by about
/// 20 MB under a barrage of random packets.
pub fn questions_fit(packet: &[u8]) -> bool {
    let Some(counts) = packet.get(4..6) else {
        return false;
    };
    let qdcount = usize::from(u16::from_be_bytes([counts[0], counts[1]]));
    qdcount * 5 <= packet.len().saturating_sub(12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_server::net::xfer::Protocol;
    use hickory_server::server::Request;

    fn request(m: &Message) -> Request {
        let src = "192.0.2.1:53".parse().unwrap();
        Request::from_bytes(m.to_vec().unwrap(), src, Protocol::Udp).unwrap()
    }

    fn query(name: &str, qtype: RecordType, class: DNSClass) -> Message {
        let mut m = Message::query();
        let mut q = Query::query(Name::from_ascii(name).unwrap(), qtype);
        q.set_query_class(class);
        m.add_query(q);
        m
    }

    fn verdict(m: &Message) -> Result<RecordType, ResponseCode> {
        check(&request(m)).map(|q| q.qtype)
    }

    #[test]
    fn one_in_question_is_resolved_with_its_name_as_asked() {
        let r = request(&query("WwW.Example.COM.", RecordType::AAAA, DNSClass::IN));
        let q = check(&r).unwrap();
        assert_eq!(q.qtype, RecordType::AAAA);
        assert_eq!(q.name.to_ascii(), "WwW.Example.COM.");
        assert_eq!(q.key.full(), b"\x03www\x07example\x03com\x00");
    }

    #[test]
    fn declined_queries_get_their_rcode() {
        let a = |class| query("a.example.", RecordType::A, class);
        assert_eq!(verdict(&a(DNSClass::CH)), Err(ResponseCode::Refused));
        assert_eq!(verdict(&a(DNSClass::ANY)), Err(ResponseCode::Refused));
        for t in [RecordType::AXFR, RecordType::IXFR] {
            let m = query("a.example.", t, DNSClass::IN);
            assert_eq!(verdict(&m), Err(ResponseCode::Refused));
        }
        let m = query("a.example.", RecordType::OPT, DNSClass::IN);
        assert_eq!(verdict(&m), Err(ResponseCode::FormErr));

        let mut none = Message::query();
        assert_eq!(verdict(&none), Err(ResponseCode::FormErr));
        none.add_query(Query::query(Name::root(), RecordType::A));
        none.add_query(Query::query(Name::root(), RecordType::A));
        assert_eq!(verdict(&none), Err(ResponseCode::FormErr), "two questions");

        let mut notify = a(DNSClass::IN);
        notify.metadata.op_code = OpCode::Notify;
        assert_eq!(verdict(&notify), Err(ResponseCode::NotImp));
    }

    #[test]
    fn a_question_count_the_packet_cannot_hold_is_refused_before_parsing() {
        let mut m = query("a.example.", RecordType::A, DNSClass::IN)
            .to_vec()
            .unwrap();
        assert!(questions_fit(&m));
        // Every count up to what the bytes could hold passes (and hickory decides).
        let room = (m.len() - 12) / 5;
        m[4..6].copy_from_slice(&(room as u16).to_be_bytes());
        assert!(questions_fit(&m));
        for count in [room + 1, 65_535] {
            m[4..6].copy_from_slice(&(count as u16).to_be_bytes());
            assert!(!questions_fit(&m));
            let src = "192.0.2.1:53".parse().unwrap();
            assert!(Request::from_bytes(m.clone(), src, Protocol::Udp).is_err());
        }
        assert!(questions_fit(&[0; 12]));
        assert!(!questions_fit(&[0; 5]));
    }

    #[test]
    fn the_opcode_is_checked_before_the_question() {
        // A NOTIFY with a CH question and an UPDATE without one: NOTIMP both times.
        let mut m = query("a.example.", RecordType::AXFR, DNSClass::CH);
        m.metadata.op_code = OpCode::Notify;
        assert_eq!(verdict(&m), Err(ResponseCode::NotImp));
        let mut m = Message::query();
        m.metadata.op_code = OpCode::Update;
        assert_eq!(verdict(&m), Err(ResponseCode::NotImp));
        // The class before the type: AXFR in CH is REFUSED for the class, OPT in CH too.
        let m = query("a.example.", RecordType::OPT, DNSClass::CH);
        assert_eq!(verdict(&m), Err(ResponseCode::Refused));
    }
}
