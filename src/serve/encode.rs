//! The reply on the wire: encoded whole, once per choice of sections, until one fits the
//! client's limit (up to three encodes).

use hickory_proto::op::{Edns, Metadata, ResponseCode};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::zone_handler::{MessageRequest, MessageResponseBuilder};

use crate::answer::{Answer, Rec};

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

/// Encodes into `out` (cleared first) the reply `meta` + `answer` + `edns` to `request`,
/// with the sections that fit `limit` bytes, and says which those are.
pub(super) fn reply(
    request: &MessageRequest,
    mut meta: Metadata,
    answer: &Answer<'_>,
    edns: Option<&Edns>,
    limit: usize,
    out: &mut Vec<u8>,
) -> Fit {
    encode(request, meta, answer, Sections::All, edns, out);
    if out.len() <= limit {
        return Fit::All;
    }
    // RFC 2181 §9: extra addresses may be dropped without TC, but not a referral's glue.
    if !answer.additional.is_empty() && !answer.referral {
        encode(request, meta, answer, Sections::NoAdditional, edns, out);
        if out.len() <= limit {
            return Fit::NoAdditional;
        }
    }
    // Too big for this client over UDP: an empty reply with TC makes it retry over TCP.
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

/// One hickory encode into `out` (cleared first).
fn encode(
    request: &MessageRequest,
    meta: Metadata,
    answer: &Answer<'_>,
    sections: Sections,
    edns: Option<&Edns>,
    out: &mut Vec<u8>,
) {
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
        out.clear();
        out.extend_from_slice(&meta.id.to_be_bytes());
        out.push(0x80 | (u8::from(meta.op_code) << 3) | u8::from(meta.recursion_desired));
        out.push(ResponseCode::ServFail.low());
        out.extend_from_slice(&[0; 8]);
    }
}
