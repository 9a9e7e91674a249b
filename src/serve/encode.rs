//! The reply on the wire, encoded once: hickory-proto writes the header, the question and
//! every record; [`ReplyOpt::write`] appends the OPT; what does not fit the client's limit
//! is cut off the end.
//!
//! Why cutting gives the same bytes as encoding fewer sections: a message is written front
//! to back and a compression pointer only points backwards, so the encoding up to the end
//! of a section does not depend on what follows it. Dropping the additional section
//! (RFC 2181 §9) or every section (TC, RFC 1035 §4.2.1) is truncating at that section's
//! start, fixing the header's counts, and then writing the OPT, which is always last and
//! compresses nothing (its owner is the root). So the sections need no size estimate: the
//! one encoding measures them.
//!
//! The exception is a reply near 64 KiB, where hickory's encoder stops at its own ceiling
//! and drops records (or the OPT) by itself. There the reply is encoded the old way, once
//! per choice of sections with hickory writing the OPT, so its bytes stay what they were,
//! except that a reply from which hickory left records out counts as not fitting: an RRset
//! over 64 KiB gets TC and no records, over TCP too, never part of the RRset.

use std::borrow::Cow;

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, EmitAndCount, Metadata, ResponseCode, emit_message_parts};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::zone_handler::{MessageRequest, Queries};
use smallvec::SmallVec;

use super::ecs::skip_name;
use super::edns::ReplyOpt;
use crate::answer::{Answer, Rec};
use crate::name_key::NameKey;

/// Which sections a reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fit {
    /// Everything.
    All,
    /// Answer and authority; the additional records did not fit and are not needed.
    NoAdditional,
    /// No records and TC set: the client retries over TCP.
    Truncated,
}

/// RFC 1035 §4.1.1: TC is this bit of the header's third byte.
const TC: u8 = 0x02;
/// RFC 1035 §4.1.1: ANCOUNT, NSCOUNT and ARCOUNT are the header's bytes 6..12.
const ANCOUNT: usize = 6;
const NSCOUNT: usize = 8;
const ARCOUNT: usize = 10;

/// Encodes into `out` (cleared first) the reply `meta` + `answer` + `opt` to `request`,
/// with the sections that fit `limit` bytes, and says which those are.
pub(super) fn reply(
    request: &MessageRequest,
    meta: Metadata,
    answer: &Answer<'_>,
    opt: Option<&ReplyOpt>,
    limit: usize,
    out: &mut Vec<u8>,
) -> Fit {
    // hickory writes the header and never sees the OPT, so it gets the low 4 bits of the
    // RCODE; the OPT carries the high 8 (RFC 6891 §6.1.3). Given BADVERS whole, hickory
    // would warn that it has no OPT to put them in.
    let mut head = meta;
    head.response_code = ResponseCode::from(0, meta.response_code.low());
    if !encode(request, head, answer, Sections::All, None, out) {
        return Fit::All; // SERVFAIL
    }
    let opt_len = opt.map_or(0, ReplyOpt::wire_len);
    // TC here means hickory hit its ceiling and left records out (nothing else sets it yet).
    if out[2] & TC != 0 || out.len() + opt_len > usize::from(u16::MAX) {
        return fit_by_encoding(request, meta, answer, opt, limit, out);
    }
    let fit = if out.len() + opt_len <= limit {
        Fit::All
    } else if let Some(fit) = cut(out, answer, opt_len, limit) {
        fit
    } else {
        return fit_by_encoding(request, meta, answer, opt, limit, out);
    };
    if let Some(opt) = opt {
        opt.write(meta.response_code, out);
        let ar = u16::from_be_bytes([out[ARCOUNT], out[ARCOUNT + 1]]);
        set_count(out, ARCOUNT, ar + 1);
    }
    fit
}

/// Cuts the encoded reply in `out` (all sections, no OPT yet) to what fits `limit` with an
/// OPT of `opt_len` bytes after it: without the additional section when that may be
/// dropped, else without any record and with TC (RFC 1035 §4.2.1: the client retries
/// over TCP). `None` if the sections cannot be found, and nothing is cut.
fn cut(out: &mut Vec<u8>, answer: &Answer<'_>, opt_len: usize, limit: usize) -> Option<Fit> {
    let (question_end, additional_start) = section_starts(out)?;
    if droppable(answer) && additional_start + opt_len <= limit {
        out.truncate(additional_start);
        set_count(out, ARCOUNT, 0);
        return Some(Fit::NoAdditional);
    }
    out.truncate(question_end);
    for count in [ANCOUNT, NSCOUNT, ARCOUNT] {
        set_count(out, count, 0);
    }
    out[2] |= TC;
    Some(Fit::Truncated)
}

/// RFC 2181 §9: additional records may be left out without TC, but not a referral's glue,
/// without which the referral cannot be followed.
fn droppable(answer: &Answer<'_>) -> bool {
    !answer.additional.is_empty() && !answer.referral
}

fn set_count(out: &mut [u8], at: usize, n: u16) {
    out[at..at + 2].copy_from_slice(&n.to_be_bytes());
}

/// Where the question section ends and the additional section starts, read from the
/// header's counts and the records' lengths. `None` only if hickory wrote a name this
/// reader does not know, and then the reply is encoded the old way.
fn section_starts(msg: &[u8]) -> Option<(usize, usize)> {
    let count = |at: usize| usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]));
    let mut i = 12;
    for _ in 0..count(4) {
        i = skip_name(msg, i)? + 4; // QTYPE, QCLASS
    }
    let question_end = i;
    for _ in 0..count(ANCOUNT) + count(NSCOUNT) {
        i = skip_name(msg, i)?;
        // TYPE, CLASS, TTL, then RDLENGTH and the data.
        let rdlength = msg.get(i + 8..i + 10)?;
        i += 10 + usize::from(u16::from_be_bytes([rdlength[0], rdlength[1]]));
    }
    (i <= msg.len()).then_some((question_end, i))
}

/// The reply encoded whole once per choice of sections, hickory writing the OPT, until one
/// fits: up to three encodes. Used only where hickory's own ceiling shapes the reply.
fn fit_by_encoding(
    request: &MessageRequest,
    mut meta: Metadata,
    answer: &Answer<'_>,
    opt: Option<&ReplyOpt>,
    limit: usize,
    out: &mut Vec<u8>,
) -> Fit {
    let edns = opt.map(ReplyOpt::to_edns);
    let edns = edns.as_ref();
    // TC from hickory (`meta` has it clear) means it left records out at its ceiling: a
    // partial RRset, which must not be sent as if whole (RFC 2181 §9), so that does not fit.
    let fits = |out: &[u8]| out.len() <= limit && out[2] & TC == 0;
    encode(request, meta, answer, Sections::All, edns, out);
    if fits(out) {
        return Fit::All;
    }
    if droppable(answer) {
        encode(request, meta, answer, Sections::NoAdditional, edns, out);
        if fits(out) {
            return Fit::NoAdditional;
        }
    }
    meta.truncation = true;
    encode(request, meta, answer, Sections::None, edns, out);
    Fit::Truncated
}

/// Which sections [`encode`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sections {
    All,
    NoAdditional,
    None,
}

/// A section's records as hickory records: address records held as bytes are built here,
/// on the stack.
fn whole<'a>(section: &'a [Rec<'_>]) -> SmallVec<[Cow<'a, Record>; 8]> {
    section.iter().map(Rec::record).collect()
}

/// The question section, copied as it was asked, with its name offered for compression.
///
/// The answer's owner is most often the question's name, so it is written as a pointer to
/// it (`c0 0c`, 2 bytes instead of the whole name), as it is by most authoritative servers.
/// Names in the zone are lowercase and the question may be in any case (RFC 4343; 0x20
/// clients randomise it), so the question's suffixes are offered in lowercase: an owner
/// then points to the question whatever its case, and reads back in the client's case,
/// which is the same name.
struct Question<'q>(&'q Queries);

impl EmitAndCount for Question<'_> {
    fn emit(&mut self, encoder: &mut BinEncoder<'_>) -> Result<usize, ProtoError> {
        let asked = self.0.as_bytes();
        let start = encoder.offset();
        if self.0.len() == 1
            && let Some((key, name_len)) = NameKey::from_query(asked)
            && start + name_len < 0x3FFF
        {
            // Write the name in lowercase, offer each of its suffixes (its labels without
            // the root, as a name being written offers them), then write it again as asked.
            encoder.emit_vec(key.full())?;
            for skip in 0..key.labels() {
                let at = name_len - key.suffix(skip).len();
                encoder.store_label_pointer(start + at, start + name_len - 1);
            }
            // Overwritten in place: `trim` would also forget the suffixes just offered.
            encoder.set_offset(start);
        }
        encoder.emit_vec(asked)?;
        Ok(self.0.len())
    }
}

/// One hickory encode into `out` (cleared first). False when a record could not be encoded
/// and `out` holds a header-only SERVFAIL instead.
fn encode(
    request: &MessageRequest,
    meta: Metadata,
    answer: &Answer<'_>,
    sections: Sections,
    edns: Option<&Edns>,
    out: &mut Vec<u8>,
) -> bool {
    #[cfg(test)]
    tests::ENCODES.with(|n| n.set(n.get() + 1));
    out.clear();
    let (n_ans, n_auth, n_add) = match sections {
        Sections::All => (
            answer.answer.len(),
            answer.authority.len(),
            answer.additional.len(),
        ),
        Sections::NoAdditional => (answer.answer.len(), answer.authority.len(), 0),
        Sections::None => (0, 0, 0),
    };
    let (ans, auth, add) = (
        whole(&answer.answer[..n_ans]),
        whole(&answer.authority[..n_auth]),
        whole(&answer.additional[..n_add]),
    );
    let mut encoder = BinEncoder::new(out);
    let emitted = emit_message_parts(
        &meta,
        &mut Question(&request.queries),
        &mut ans.iter().map(|r| &**r),
        &mut auth.iter().map(|r| &**r),
        &mut add.iter().map(|r| &**r),
        edns,
        None,
        &mut encoder,
    );
    if emitted.is_ok() {
        return true;
    }
    // Only a broken record could fail to encode; say SERVFAIL rather than stay silent.
    out.clear();
    out.extend_from_slice(&meta.id.to_be_bytes());
    out.push(0x80 | (u8::from(meta.op_code) << 3) | u8::from(meta.recursion_desired));
    out.push(ResponseCode::ServFail.low());
    out.extend_from_slice(&[0; 8]);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::edns::QueryEdns;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use hickory_proto::rr::rdata::{A, MX, NS, SOA, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use hickory_server::net::xfer::Protocol;
    use hickory_server::server::Request;
    use std::cell::Cell;
    use std::net::Ipv4Addr;

    thread_local! {
        /// hickory encodes made on this thread.
        pub(super) static ENCODES: Cell<usize> = const { Cell::new(0) };
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn rec(owner: &str, data: RData) -> Rec<'static> {
        Rec::Owned(Box::new(Record::from_rdata(name(owner), 300, data)))
    }

    fn a(owner: &str, i: usize) -> Rec<'static> {
        let ip = Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8);
        rec(owner, RData::A(A(ip)))
    }

    /// Answers of every shape `reply` has to cut, by name.
    fn answers() -> Vec<(&'static str, Answer<'static>)> {
        let ok = || Answer::new(ResponseCode::NoError, true);
        let mut out = Vec::new();

        let mut small = ok();
        small
            .answer
            .extend((0..2).map(|i| a("www.example.net.", i)));
        out.push(("two addresses", small));

        let mut many = ok();
        many.answer
            .extend((0..100).map(|i| a("many.example.net.", i)));
        out.push(("100 addresses", many));

        // Twenty MX records (about 500 bytes) and their 40 addresses in the additional.
        let mut mx = ok();
        for i in 0..20 {
            let target = name(&format!("mail{i}.example.net."));
            mx.answer
                .push(rec("example.net.", RData::MX(MX::new(10, target))));
            mx.additional
                .extend((0..2).map(|j| a(&format!("mail{i}.example.net."), j)));
        }
        out.push(("MX and 40 additional addresses", mx));

        // A referral's glue is never dropped alone.
        let mut referral = Answer::new(ResponseCode::NoError, false);
        referral.referral = true;
        for i in 0..8 {
            let ns = format!("ns{i}.sub.example.net.");
            referral
                .authority
                .push(rec("sub.example.net.", RData::NS(NS(name(&ns)))));
            referral
                .additional
                .extend((0..6).map(|j| a(&ns, i * 8 + j)));
        }
        out.push(("referral with glue", referral));

        let mut nx = Answer::new(ResponseCode::NXDomain, true);
        let soa = SOA::new(
            name("ns1.example.net."),
            name("hostmaster.example.net."),
            1,
            3600,
            900,
            604_800,
            300,
        );
        nx.authority.push(rec("example.net.", RData::SOA(soa)));
        out.push(("NXDOMAIN", nx));

        out.push(("BADVERS", Answer::error(ResponseCode::BADVERS)));

        // Past hickory's 64 KiB ceiling, and just under it without room for the OPT.
        let txt = |n: usize| {
            rec(
                "big.example.net.",
                RData::TXT(TXT::new(vec!["x".repeat(n)])),
            )
        };
        let mut huge = ok();
        huge.answer.extend((0..300).map(|_| txt(250)));
        huge.additional
            .extend((0..3).map(|i| a("big.example.net.", i)));
        out.push(("over 64 KiB", huge));
        // Just under the ceiling, with no room left for an OPT: 65530 bytes.
        let request = &request(None).0;
        let meta = Metadata::new(0, MessageType::Response, OpCode::Query);
        let mut buf = Vec::new();
        let mut len = |answer: &Answer<'_>| {
            encode(request, meta, answer, Sections::All, None, &mut buf);
            buf.len()
        };
        let target = usize::from(u16::MAX) - 5;
        let mut near = ok();
        while len(&near) + 600 < target {
            near.answer.push(txt(255));
        }
        loop {
            // The length grows by one per character of the last string.
            near.answer.push(txt(0));
            let n = target - len(&near);
            near.answer.pop();
            near.answer.push(txt(n.min(255)));
            if n <= 255 {
                break;
            }
        }
        assert_eq!(len(&near), target);
        out.push(("64 KiB less 5 bytes", near));
        out
    }

    /// A query for big.example.net. A, with EDNS and ECS when asked.
    fn request(edns: Option<(bool, bool)>) -> (Request, Vec<u8>) {
        let mut m = Message::query();
        m.add_query(Query::query(name("big.example.net."), RecordType::A));
        if let Some((dnssec_ok, ecs)) = edns {
            let mut e = hickory_proto::op::Edns::new();
            e.set_max_payload(4096);
            e.set_dnssec_ok(dnssec_ok);
            if ecs {
                let cs = ClientSubnet::new("2001:db8:1::".parse().unwrap(), 48, 0);
                e.options_mut().insert(EdnsOption::Subnet(cs));
            }
            m.set_edns(e);
        }
        let raw = m.to_vec().unwrap();
        let src = "192.0.2.1:53".parse().unwrap();
        (
            Request::from_bytes(raw.clone(), src, Protocol::Udp).unwrap(),
            raw,
        )
    }

    /// Every shape of answer, with and without an OPT (and ECS), at every limit from 400 to
    /// 1600 bytes and a few larger: the reply cut from one encode is byte for byte the one
    /// encoded again for each choice of sections, and the cut is taken below the ceiling.
    #[test]
    fn one_encode_cut_to_fit_is_the_reply_encoded_per_choice() {
        let mut seen = Vec::new();
        let answers = answers();
        for edns in [None, Some((false, false)), Some((true, true))] {
            let (request, raw) = request(edns);
            let query_edns = QueryEdns::read(&request, &raw, 4096);
            for (shape, answer) in &answers {
                let shape = *shape;
                let mut meta = Metadata::response_from_request(&request.metadata);
                meta.response_code = answer.rcode;
                meta.authoritative = answer.authoritative;
                let opt = query_edns.reply(Some(40));
                let huge = shape.contains("64 KiB");
                let mut limits: Vec<usize> = match huge {
                    true => vec![512, 1232, 65_000, 65_535],
                    false => (400..1600).step_by(7).chain([4096, 65_535]).collect(),
                };
                // Both sides of each size at which the choice changes.
                let edns = opt.map(|o| o.to_edns());
                let mut buf = Vec::new();
                for sections in [Sections::All, Sections::NoAdditional] {
                    encode(&request, meta, answer, sections, edns.as_ref(), &mut buf);
                    limits.extend([buf.len() - 1, buf.len(), buf.len() + 1]);
                }
                for limit in limits {
                    let (mut once, mut again) = (Vec::new(), Vec::new());
                    ENCODES.with(|n| n.set(0));
                    let fit = reply(&request, meta, answer, opt.as_ref(), limit, &mut once);
                    let encodes = ENCODES.with(Cell::get);
                    let old =
                        fit_by_encoding(&request, meta, answer, opt.as_ref(), limit, &mut again);
                    let case = format!("{shape}, {edns:?}, limit {limit}");
                    assert_eq!((fit, &once), (old, &again), "{case}");
                    if !huge {
                        assert_eq!(encodes, 1, "{case}");
                        assert!(once.len() <= limit.max(512), "{case}");
                    }
                    if !seen.contains(&(shape, fit)) {
                        seen.push((shape, fit));
                    }
                }
            }
        }
        // The cases that matter were all met.
        for case in [
            ("two addresses", Fit::All),
            ("100 addresses", Fit::Truncated),
            ("MX and 40 additional addresses", Fit::NoAdditional),
            ("MX and 40 additional addresses", Fit::Truncated),
            ("referral with glue", Fit::All),
            ("referral with glue", Fit::Truncated),
            ("over 64 KiB", Fit::Truncated),
            ("64 KiB less 5 bytes", Fit::All),
        ] {
            assert!(seen.contains(&case), "{case:?} never met: {seen:?}");
        }
    }

    #[test]
    fn a_common_reply_is_one_encode_with_the_opt_appended() {
        let (request, raw) = request(Some((true, true)));
        let opt = QueryEdns::read(&request, &raw, 1232).reply(Some(40));
        let mut answer = Answer::new(ResponseCode::NoError, true);
        answer
            .answer
            .extend((0..2).map(|i| a("big.example.net.", i)));
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        let mut out = Vec::new();
        ENCODES.with(|n| n.set(0));
        assert_eq!(
            reply(&request, meta, &answer, opt.as_ref(), 1232, &mut out),
            Fit::All
        );
        assert_eq!(ENCODES.with(Cell::get), 1);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.answers.len(), 2);
        let edns = m.edns.expect("an OPT");
        assert!(edns.flags().dnssec_ok);
        assert_eq!(edns.max_payload(), 1232);
        let Some(EdnsOption::Subnet(cs)) =
            edns.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet)
        else {
            panic!("no ECS echo: {edns:?}");
        };
        assert_eq!(cs.scope_prefix(), 40);
    }
}
