//! The wire fast path: the common query read straight from its bytes, and its reply written
//! straight into the output buffer, with no hickory message in between.
//!
//! ```text
//! packet ─ read (header, question, OPT + ECS, one pass) ─▶ Query ─▶ resolve (as always)
//!        ─▶ write (header, question as asked, records with names compressed, OPT) ─▶ out
//! ```
//!
//! [`read`] takes only what it can answer exactly as the general path would: QUERY, one
//! question of class IN and a type of [`TYPES`], no answer or authority records, at most
//! an OPT of version 0 whose only option is a valid ECS, and nothing after it. Anything
//! else returns `None` and goes the general way (hickory parses it), which also answers
//! every error. [`write()`] takes the records the fast path knows (A, AAAA, CNAME, NS, SOA)
//! when the reply fits the client's size; otherwise the caller encodes the same answer
//! the general way, so no query is resolved twice.
//!
//! Names are compressed as hickory-proto compresses them, so the two paths give the same
//! bytes (the differential test holds them to it): every suffix of every name written is a
//! candidate, first written first found, compared byte for byte, at most 64 candidates
//! below offset 0x3FFF, and no compression after 120 names. The question's suffixes come
//! first, in lowercase, whatever the question's case (see `encode`'s `Question`), so an
//! owner equal to the question is written `c0 0c`.

use arrayvec::ArrayVec;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::ecs;
use super::edns::{QueryEdns, ReplyOpt};
use crate::answer::{Answer, Rec};
use crate::compile::{LABELS_MAX, SoaNames, WIRE_MAX, WireName, write_wire};
use crate::name_key::NameKey;

/// The question types the fast path reads.
pub const TYPES: [RecordType; 5] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SOA,
    RecordType::NS,
    RecordType::ANY,
];

/// A query the fast path takes.
pub struct Query<'p, 'k> {
    /// The question name as asked (wire form, root included).
    pub qname: &'p [u8],
    /// Its lowercase key, in the caller's buffer.
    pub key: &'k NameKey,
    /// QTYPE.
    pub qtype: RecordType,
    /// The whole question (name, type, class), copied into the reply as asked.
    pub question: &'p [u8],
    /// What the query's OPT asks of the reply, as the general path reads it.
    pub edns: QueryEdns,
}

impl crate::answer::resolve::AskedName for Query<'_, '_> {
    /// The question name as a hickory [`Name`], case kept, read from the packet only when
    /// a wildcard answer needs it. On the stack for names of up to 32 bytes.
    fn to_name(&self) -> Option<Name> {
        Name::read(&mut BinDecoder::new(self.qname)).ok()
    }
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// Reads `packet` if the fast path takes it (see the module docs), its name's key into
/// `key`; `max_udp_payload` is the server's payload size.
pub fn read<'p, 'k>(
    packet: &'p [u8],
    max_udp_payload: u16,
    key: &'k mut NameKey,
) -> Option<Query<'p, 'k>> {
    if packet.len() < 12 {
        return None;
    }
    // QR clear, OPCODE 0 (QUERY), TC clear; Z clear (AD and CD may be set).
    if packet[2] & 0xFA != 0 || packet[3] & 0x40 != 0 {
        return None;
    }
    if be16(packet, 4)? != 1 || be16(packet, 6)? != 0 || be16(packet, 8)? != 0 {
        return None;
    }
    let arcount = be16(packet, 10)?;
    if arcount > 1 {
        return None;
    }
    let name_len = key.read_query(&packet[12..])?;
    let qname = &packet[12..12 + name_len];
    let at = 12 + name_len;
    let qtype = RecordType::from(be16(packet, at)?);
    if be16(packet, at + 2)? != 1 || !TYPES.contains(&qtype) {
        return None;
    }
    let question = &packet[12..at + 4];
    let mut end = at + 4;
    let edns = if arcount == 1 {
        // The OPT: root owner, TYPE 41, CLASS the payload, TTL extended RCODE 0, version 0
        // and the flags (only DO known), then its options.
        if packet.get(end)? != &0 || be16(packet, end + 1)? != 41 {
            return None;
        }
        let payload = be16(packet, end + 3)?;
        let (ext, version, flags) = (
            *packet.get(end + 5)?,
            *packet.get(end + 6)?,
            be16(packet, end + 7)?,
        );
        if ext != 0 || version != 0 || flags & 0x7FFF != 0 {
            return None;
        }
        let rdlen = usize::from(be16(packet, end + 9)?);
        let rdata = packet.get(end + 11..end + 11 + rdlen)?;
        end += 11 + rdlen;
        let mut edns = QueryEdns::version_0(payload, flags & 0x8000 != 0, max_udp_payload);
        if !rdata.is_empty() {
            // Exactly one option, ECS, well formed.
            let code = be16(rdata, 0)?;
            let len = usize::from(be16(rdata, 2)?);
            if code != 8 || 4 + len != rdata.len() {
                return None;
            }
            edns.subnet = Some(ecs::parse(&rdata[4..]).ok()?);
        }
        edns
    } else {
        QueryEdns::absent()
    };
    if end != packet.len() {
        return None;
    }
    Some(Query {
        qname,
        key,
        qtype,
        question,
        edns,
    })
}

/// Most compression candidates hickory-proto keeps.
const CANDIDATES: usize = 64;
/// Names after which hickory-proto stops compressing.
const COMPRESSED_NAMES: usize = 120;

/// Room for the uncompressed names of a reply, on the stack: a reply whose names need more
/// (dozens of distinct names) is left to the general path.
const SCRATCH: usize = 1024;

/// The reply being written, with the names it can point back to.
///
/// Compression follows hickory-proto's encoder exactly (the general path's replies must
/// be byte for byte the same): every suffix of the first [`COMPRESSED_NAMES`] names is
/// offered, up to [`CANDIDATES`] of them, and a name points to the first candidate equal
/// (byte for byte) to one of its suffixes. Candidates are kept as ranges of `scratch`,
/// which holds each name's uncompressed wire form, so a comparison is one `memcmp`.
struct Writer<'o> {
    out: &'o mut Vec<u8>,
    scratch: ArrayVec<u8, SCRATCH>,
    /// (offset in `out`, range in `scratch`) of each suffix offered.
    candidates: ArrayVec<(u16, u16, u16), CANDIDATES>,
    /// Set when a name did not fit `scratch`: the reply is then the general path's to write.
    full: bool,
    names: usize,
    /// The last name written (by address) and the offset of the first candidate equal to
    /// all of it: the owners of an RRset's later records are that pointer, found without
    /// reading the name again (the search would find the same candidate).
    last: Option<(*const (), u16)>,
}

impl Writer<'_> {
    fn name(&mut self, name: &Name) {
        let id = std::ptr::from_ref(name).cast::<()>();
        if self.repeat(id) {
            return;
        }
        // The name's wire form, built on the stack.
        let mut wire = [0u8; WIRE_MAX];
        let mut starts = [0u8; LABELS_MAX];
        let (len, labels) = write_wire(name, &mut wire, &mut starts);
        self.wire(id, &wire[..len], &starts[..labels]);
    }

    /// A name kept in wire form (see [`WireName`]).
    fn wire_name(&mut self, name: &WireName) {
        let id = std::ptr::from_ref(name).cast::<()>();
        if !self.repeat(id) {
            self.wire(id, name.wire(), name.starts());
        }
    }

    /// Writes the pointer again when `id` is the name written last; `false` otherwise.
    fn repeat(&mut self, id: *const ()) -> bool {
        if let Some((last, to)) = self.last
            && last == id
            && self.names < COMPRESSED_NAMES
        {
            self.names += 1;
            self.out.extend_from_slice(&(0xC000 | to).to_be_bytes());
            return true;
        }
        self.last = None;
        false
    }

    /// Writes the name `id` whose uncompressed form is `wire` and whose labels start at
    /// `starts`, pointing to the first candidate equal to one of its suffixes, and offers
    /// its suffixes before that one.
    fn wire(&mut self, id: *const (), wire: &[u8], starts: &[u8]) {
        let base = self.scratch.len();
        if self.scratch.try_extend_from_slice(wire).is_err() {
            self.full = true;
            return;
        }
        let at = self.out.len();
        // Where the name's labels end in `out` when written whole: hickory-proto offers
        // no suffix at or past 0x3FFF.
        let end = at + wire.len() - 1;
        let compress = self.names < COMPRESSED_NAMES;
        if compress {
            self.names += 1;
        }
        for &start in starts {
            let start = usize::from(start);
            let suffix = &wire[start..];
            if compress
                && let Some(&(to, _, _)) = self
                    .candidates
                    .iter()
                    .find(|&&(_, s, e)| &self.scratch[usize::from(s)..usize::from(e)] == suffix)
            {
                if start == 0 {
                    self.last = Some((id, to));
                }
                self.out.extend_from_slice(&wire[..start]);
                self.out.extend_from_slice(&(0xC000 | to).to_be_bytes());
                return;
            }
            if end < 0x3FFF && self.candidates.len() < CANDIDATES {
                let offset = (at + start) as u16;
                if start == 0 && compress {
                    self.last = Some((id, offset));
                }
                self.candidates
                    .push((offset, (base + start) as u16, (base + wire.len()) as u16));
            }
        }
        self.out.extend_from_slice(wire);
    }

    /// An owner; `at_question` when it is the question's name, lowercase (see
    /// [`Answer::at_question`]): the question's whole name is the first candidate, so the
    /// general encoder finds it first and writes `c0 0c`.
    fn owner(&mut self, name: &Name, at_question: bool) {
        if at_question && self.names < COMPRESSED_NAMES {
            self.names += 1;
            self.out.extend_from_slice(&[0xC0, 12]);
            self.last = Some((std::ptr::from_ref(name).cast(), 12));
        } else {
            self.name(name);
        }
    }

    /// One A or AAAA record held as its RDATA.
    fn address(&mut self, owner: &Name, at_question: bool, ttl: u32, rdata: &[u8]) {
        self.owner(owner, at_question);
        let rtype = if rdata.len() == 16 {
            RecordType::AAAA
        } else {
            RecordType::A
        };
        self.out.extend_from_slice(&u16::from(rtype).to_be_bytes());
        self.out
            .extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.out.extend_from_slice(rdata);
    }

    /// One record, with its SOA names ready when it is a zone's SOA; `false` for data the
    /// fast path does not write.
    fn record(&mut self, r: &Record, soa_names: Option<&SoaNames>, at_question: bool) -> bool {
        match soa_names {
            Some(names) if !at_question => self.wire_name(&names.owner),
            _ => self.owner(&r.name, at_question),
        }
        self.out
            .extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
        self.out
            .extend_from_slice(&u16::from(r.dns_class).to_be_bytes());
        self.out.extend_from_slice(&r.ttl.to_be_bytes());
        let len_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        match &r.data {
            RData::A(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::AAAA(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::CNAME(c) => self.name(&c.0),
            RData::NS(n) => self.name(&n.0),
            RData::SOA(soa) => {
                if let Some(names) = soa_names {
                    self.wire_name(&names.mname);
                    self.wire_name(&names.rname);
                } else {
                    self.name(&soa.mname);
                    self.name(&soa.rname);
                }
                for v in [
                    soa.serial,
                    soa.refresh as u32,
                    soa.retry as u32,
                    soa.expire as u32,
                    soa.minimum,
                ] {
                    self.out.extend_from_slice(&v.to_be_bytes());
                }
            }
            _ => return false,
        }
        let len = (self.out.len() - len_at - 2) as u16;
        self.out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        true
    }
}

/// Writes the reply to `query` (whose header is `packet`'s) into `out`: `false`, with `out`
/// to be rewritten, when it holds a record the fast path does not write or does not fit
/// `limit`.
pub fn write(
    packet: &[u8],
    query: &Query<'_, '_>,
    answer: &Answer<'_>,
    opt: Option<&ReplyOpt>,
    limit: usize,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    // ID; QR, OPCODE 0, AA, RD as asked; CD as asked and the RCODE's low bits.
    out.extend_from_slice(&packet[..2]);
    let aa = if answer.authoritative { 0x04 } else { 0 };
    out.push(0x80 | aa | (packet[2] & 0x01));
    out.push((packet[3] & 0x10) | answer.rcode.low());
    let counts = [
        1u16,
        answer.answer.len() as u16,
        answer.authority.len() as u16,
        answer.additional.len() as u16 + u16::from(opt.is_some()),
    ];
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    let mut w = Writer {
        out,
        scratch: ArrayVec::new(),
        candidates: ArrayVec::new(),
        full: false,
        names: 0,
        last: None,
    };
    // The question as received, its name's suffixes offered for compression in lowercase,
    // as the general encoder offers them: the answer's owner is then `c0 0c`.
    w.out.extend_from_slice(query.question);
    let key = query.key.full();
    // A name is at most 255 bytes: it fits the empty scratch.
    w.full |= w.scratch.try_extend_from_slice(key).is_err();
    for skip in 0..query.key.labels().min(CANDIDATES) {
        let start = key.len() - query.key.suffix(skip).len();
        w.candidates
            .push(((12 + start) as u16, start as u16, key.len() as u16));
    }
    // The root has no label to point to.
    let at_question = if query.key.labels() > 0 {
        answer.at_question
    } else {
        0
    };
    let sections = [&answer.answer, &answer.authority, &answer.additional];
    for (i, rec) in sections.into_iter().flatten().enumerate() {
        let q = i < at_question;
        let written = match rec {
            Rec::Shared(r) => w.record(r, None, q),
            Rec::Owned(r) => w.record(r, None, q),
            Rec::Soa(r, names) => w.record(r, Some(names), q),
            Rec::Address(owner, ttl, rdata) => {
                w.address(owner, q, *ttl, rdata);
                true
            }
        };
        if !written || w.full {
            return false;
        }
    }
    let opt_len = opt.map_or(0, ReplyOpt::wire_len);
    if w.out.len() + opt_len > limit {
        return false;
    }
    if let Some(opt) = opt {
        opt.write(answer.rcode, w.out);
    }
    true
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::Arc;

    use arc_swap::ArcSwap;

    use super::*;
    use crate::compile::Snapshot;
    use crate::config::ServerConfig;
    use crate::load::load_snapshot;
    use crate::serve::{Outcome, Responder, Transport};

    fn snapshot(zones: &str) -> Arc<ArcSwap<Snapshot>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cfg = ServerConfig {
            zones_dir: root.join(zones),
            ..ServerConfig::default()
        };
        cfg.geoip.databases = vec![root.join("geoip/test-city.mmdb")];
        let health = crate::health::HealthSources::new(None).expect("in-memory overrides");
        let (snap, _) = load_snapshot(&cfg, &health, 1).expect("zones load");
        Arc::new(ArcSwap::from_pointee(snap))
    }

    thread_local! {
        /// Fast-path queries whose reply the general encoder wrote, on this thread.
        pub(in crate::serve) static FALLBACKS: Cell<usize> = const { Cell::new(0) };
    }

    /// A small xorshift: the same queries on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    /// An OPT: payload, DO, and an ECS option (family, source prefix, address).
    type Opt<'a> = Option<(u16, bool, Option<(u16, u8, &'a [u8])>)>;

    /// The query in wire form: `flags` are the header's third and fourth bytes; `opt` is
    /// (payload, DO, ECS option bytes).
    fn packet(id: u16, flags: [u8; 2], name: &str, qtype: u16, opt: Opt<'_>) -> Vec<u8> {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&flags);
        p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())]);
        for label in name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
        {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        if let Some((payload, dnssec_ok, ecs)) = opt {
            p.extend_from_slice(&[0, 0, 41]);
            p.extend_from_slice(&payload.to_be_bytes());
            p.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
            match ecs {
                None => p.extend_from_slice(&[0, 0]),
                Some((family, source, addr)) => {
                    let n = usize::from(source).div_ceil(8);
                    p.extend_from_slice(&((8 + n) as u16).to_be_bytes());
                    p.extend_from_slice(&[0, 8]);
                    p.extend_from_slice(&((4 + n) as u16).to_be_bytes());
                    p.extend_from_slice(&family.to_be_bytes());
                    p.extend_from_slice(&[source, 0]);
                    p.extend_from_slice(&addr[..n]);
                }
            }
        }
        p
    }

    fn mixed_case(name: &str, rng: &mut Rng) -> String {
        name.chars()
            .map(|c| {
                if rng.next() % 3 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// Every name of the zones (and names beside and below them), each query type, with
    /// and without EDNS, DO and ECS, in random case, with random header flags, from
    /// several sources, over UDP and TCP.
    fn queries(snap: &Snapshot, seed: u64) -> Vec<(Vec<u8>, SocketAddr, Transport)> {
        let mut rng = Rng(seed);
        let mut names: Vec<String> = Vec::new();
        for zone in snap.zones() {
            for name in zone.names() {
                let n = name.to_ascii();
                names.push(format!("nx{}.{n}", rng.next() % 1000));
                names.push(format!("a.b.{n}"));
                names.push(n);
            }
        }
        names.push("example.invalid.".into());
        names.push(".".into());
        let types = [1u16, 28, 6, 2, 255, 5, 15, 16, 33, 43];
        let sources: [SocketAddr; 5] = [
            "127.0.1.5:5353".parse().unwrap(),
            "127.0.3.9:5353".parse().unwrap(),
            "203.0.113.7:5353".parse().unwrap(),
            "[::1]:5353".parse().unwrap(),
            "[2001:db8::7]:5353".parse().unwrap(),
        ];
        let v4: [[u8; 4]; 4] = [
            [127, 0, 1, 0],
            [127, 0, 2, 0],
            [127, 0, 5, 0],
            [198, 51, 100, 0],
        ];
        let mut out = Vec::new();
        for name in &names {
            for _ in 0..24 {
                let qtype = rng.pick(&types);
                let flags = [rng.pick(&[0u8, 1]), rng.pick(&[0u8, 0x10, 0x20, 0x30])];
                let addr = rng.pick(&v4);
                let v6 = [0x20, 0x01, 0x0d, 0xb8, rng.next() as u8, 0, 0, 0];
                let opt = match rng.next() % 6 {
                    0 => None,
                    1 => Some((1232, false, None)),
                    2 => Some((512, rng.next() % 2 == 0, None)),
                    3 => Some((
                        4096,
                        false,
                        Some((1, rng.pick(&[0u8, 8, 16, 24, 32]), &addr[..])),
                    )),
                    4 => Some((1232, true, Some((2, rng.pick(&[0u8, 32, 48, 56]), &v6[..])))),
                    _ => Some((1232, false, Some((1, 24, &addr[..])))),
                };
                let p = packet(
                    rng.next() as u16,
                    flags,
                    &mixed_case(name, &mut rng),
                    qtype,
                    opt,
                );
                let transport = if rng.next() % 4 == 0 {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                out.push((p, rng.pick(&sources), transport));
            }
        }
        out
    }

    /// The replies of `responder` to `queries`, on a thread of its own (so the per-thread
    /// rotation state starts fresh, as for the other path).
    fn replies(
        responder: Responder,
        queries: Arc<Vec<(Vec<u8>, SocketAddr, Transport)>>,
    ) -> (Vec<Option<Vec<u8>>>, usize) {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let replies = queries
                .iter()
                .map(|(p, src, t)| {
                    (responder.respond(p, *src, *t, &mut out) == Outcome::Reply)
                        .then(|| out.clone())
                })
                .collect();
            (replies, FALLBACKS.with(Cell::get))
        })
        .join()
        .expect("no panic")
    }

    #[test]
    fn the_fast_path_gives_the_general_paths_bytes() {
        for (zones, seed) in [
            ("zones", 0x9E37_79B9_7F4A_7C15u64),
            ("tests/fixtures/good", 0x2545_F491_4F6C_DD1D),
            ("tests/fixtures/scenarios", 0x1234_5678_9ABC_DEF1),
        ] {
            let shared = snapshot(zones);
            let queries = Arc::new(queries(&shared.load(), seed));
            let (fast, fallbacks) = replies(Responder::new(shared.clone(), 1232), queries.clone());
            let (general, _) = replies(
                Responder::new(shared.clone(), 1232).without_fast_path(),
                queries.clone(),
            );
            let mut taken = 0;
            for (i, (q, _, _)) in queries.iter().enumerate() {
                if read(q, 1232, &mut NameKey::empty()).is_some() {
                    taken += 1;
                }
                assert_eq!(
                    fast[i], general[i],
                    "{zones}: query {i} {q:02x?}\nfast:    {:02x?}\ngeneral: {:02x?}",
                    fast[i], general[i]
                );
            }
            // Not a comparison of general with general: many queries take the fast path,
            // and most of those are written by it.
            eprintln!(
                "{zones}: {} queries, {taken} read by the fast path, {fallbacks} of those encoded the general way",
                queries.len()
            );
            assert!(
                taken * 3 > queries.len() && fallbacks * 4 < taken,
                "{zones}: {taken} of {} queries read, {fallbacks} of them fell back",
                queries.len()
            );
        }
    }

    #[test]
    fn an_answer_owned_by_the_question_points_to_it_in_any_case() {
        let shared = snapshot("zones");
        for name in ["www.example.com.", "WwW.ExAmPlE.CoM."] {
            let query = packet(7, [1, 0], name, 1, Some((1232, false, None)));
            let question_end = query.len() - 11;
            for responder in [
                Responder::new(shared.clone(), 1232),
                Responder::new(shared.clone(), 1232).without_fast_path(),
            ] {
                let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
                let mut out = Vec::new();
                assert_eq!(
                    responder.respond(&query, src, Transport::Udp, &mut out),
                    Outcome::Reply
                );
                assert_eq!(&out[12..question_end], &query[12..question_end], "{name}");
                let answers = u16::from_be_bytes([out[6], out[7]]);
                assert!(answers >= 1, "{name}: {out:02x?}");
                // Owner c0 0c, then TYPE A, CLASS IN; every record is 2 + 10 + 4 bytes.
                for i in 0..usize::from(answers) {
                    let at = question_end + i * 16;
                    assert_eq!(
                        &out[at..at + 6],
                        &[0xC0, 0x0C, 0, 1, 0, 1],
                        "{name}: record {i}: {out:02x?}"
                    );
                }
            }
        }
    }

    /// One query's reply from the fast path (with how often it fell back) and from the
    /// general path alone.
    fn both_paths(
        shared: Arc<ArcSwap<Snapshot>>,
        query: Vec<u8>,
        transport: Transport,
    ) -> (Option<Vec<u8>>, usize, Option<Vec<u8>>) {
        let queries = Arc::new(vec![(query, "127.0.1.7:5353".parse().unwrap(), transport)]);
        let (mut fast, fallbacks) = replies(Responder::new(shared.clone(), 1232), queries.clone());
        let (mut general, _) = replies(Responder::new(shared, 1232).without_fast_path(), queries);
        (fast.remove(0), fallbacks, general.remove(0))
    }

    #[test]
    fn a_question_of_more_labels_than_candidates_offers_only_the_first() {
        // Found by the fast_path fuzz target: a wildcard answer (its owner in the asked
        // case) to a question of 90 labels; hickory offers the first 64 suffixes only.
        let shared = snapshot("zones");
        let mut name = "a.".repeat(70) + "X.";
        name += &"a.".repeat(20);
        name += "apps.example.com.";
        let query = packet(0x2000, [1, 0], &name, 255, None);
        let (fast, _, general) = both_paths(shared, query, Transport::Udp);
        assert!(fast.is_some());
        assert_eq!(fast, general);
    }

    #[test]
    fn a_reply_whose_names_outgrow_the_scratch_is_the_general_paths() {
        // Twenty distinct out-of-zone name servers of 58 bytes each: more than the
        // scratch holds, so the fast writer gives the reply up half-way.
        let dir = tempfile::tempdir().expect("temp dir");
        let ns: Vec<String> = (0..20)
            .map(|i| format!("\"ns.a-rather-long-name-server-label-{i:02}.provider-{i:02}.net.\""))
            .collect();
        let zone = format!(
            "origin = \"example.org\"\n[soa]\nprimary = \"ns1\"\n\
             contact = \"hostmaster@example.org\"\nserial = 1\n\
             [names.\"@\"]\nns = [\"ns1\"]\n[names.ns1]\na = \"192.0.2.53\"\n\
             [names.sub]\nns = [{}]\n",
            ns.join(", ")
        );
        std::fs::write(dir.path().join("example.org.toml"), zone).expect("write zone");
        let shared = snapshot(dir.path().to_str().expect("utf-8 path"));
        let query = packet(0x3000, [1, 0], "www.sub.example.org.", 1, None);
        let (fast, fallbacks, general) = both_paths(shared, query, Transport::Tcp);
        assert_eq!(fallbacks, 1, "the fast writer gave the reply up");
        let reply = fast.as_ref().expect("a reply");
        assert_eq!(
            u16::from_be_bytes([reply[8], reply[9]]),
            20,
            "20 NS records"
        );
        assert_eq!(fast, general);
    }

    #[test]
    fn declines_what_it_does_not_answer_itself() {
        let read = |packet: &[u8], max| read(packet, max, &mut NameKey::empty()).is_some();
        let q = |flags: [u8; 2], qtype: u16| packet(1, flags, "www.example.com.", qtype, None);
        assert!(read(&q([0, 0], 1), 1232));
        assert!(read(&q([0x01, 0x30], 28), 1232), "RD, AD and CD are fine");
        assert!(!read(&q([0x80, 0], 1), 1232), "a response");
        assert!(!read(&q([0x28, 0], 1), 1232), "NOTIFY");
        assert!(!read(&q([0x02, 0], 1), 1232), "TC");
        assert!(!read(&q([0, 0x40], 1), 1232), "Z");
        assert!(!read(&q([0, 0], 16), 1232), "TXT");
        assert!(!read(&q([0, 0], 252), 1232), "AXFR");
        let mut trailing = q([0, 0], 1);
        trailing.push(0);
        assert!(!read(&trailing, 1232), "bytes after the question");
        let v1 = packet(1, [0, 0], "a.", 1, Some((1232, false, None)));
        let mut badvers = v1.clone();
        badvers[v1.len() - 5] = 1;
        assert!(read(&v1, 1232) && !read(&badvers, 1232), "EDNS version 1");
        let bad_ecs = packet(
            1,
            [0, 0],
            "a.",
            1,
            Some((1232, false, Some((1, 24, &[1, 2, 3, 4])))),
        );
        let mut host_bits = bad_ecs.clone();
        let n = host_bits.len();
        // 1.2.9/20: the right length, but bits set past the prefix.
        host_bits[n - 1] = 9;
        host_bits[n - 5] = 20;
        assert!(read(&bad_ecs, 1232));
        assert!(!read(&host_bits, 1232), "ECS with host bits set");
        let mut pointer = q([0, 0], 1);
        pointer[12] = 0xC0;
        assert!(
            !read(&pointer, 1232),
            "a compression pointer in the question"
        );
    }
}
