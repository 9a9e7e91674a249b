//! Response rate limiting (RRL), in the style of BIND and Knot: a spoofed flood must not
//! turn the server into an amplifier aimed at the owner of the spoofed addresses.
//!
//! ```text
//!  reply bytes ─▶ exempt network? ─▶ send
//!      │
//!      └▶ classify (rcode, AA, counts) ─▶ key = (client network, kind, name)
//!           ─▶ one slot of a fixed table (AtomicU64, compare-exchange)
//!           ─▶ within the rate: send │ over it: drop, or every `slip`-th one a TC=1 reply
//! ```
//!
//! Only UDP replies are limited: a TCP client has completed a handshake, so its address is
//! not spoofed. The limit applies to the reply, whatever produced it, so it is decided from
//! the reply's bytes: its rcode, AA bit, counts, question and first authority owner.
//!
//! Kinds, as BIND and Knot classify responses, each limited on its own:
//! - answers (NOERROR with records, or truncated), keyed by the query name;
//! - NODATA (NOERROR, AA, no answer), keyed by the query name;
//! - NXDOMAIN, keyed by the zone (the owner of the SOA in the authority section), so random
//!   names under one zone share one limit;
//! - referrals (NOERROR, AA clear, no answer, NS in authority), keyed by the delegation;
//! - errors (FORMERR, SERVFAIL, REFUSED, NOTIMP, BADVERS, ...), keyed by the network alone.
//!
//! The credit of a key is a token bucket kept as a single number, its theoretical arrival
//! time (GCRA): each reply moves it `1/rate` seconds later, and a reply is within the limit
//! while it stays at most `window` ahead of now. So after a quiet spell a network gets a
//! burst of `rate × window` replies, and then `rate` per second while it keeps asking. Unlike
//! BIND, a network over the limit builds no debt: a flood gets the configured rate, not
//! silence.
//!
//! The table is one array of `table_size` words shared by every thread. A word holds a tag
//! of the key's hash, the slip counter and the arrival time; a key looks at four slots from
//! its hash, takes the one with its tag, or else the one whose time is oldest (an empty
//! slot first). Updates are a compare-exchange on that word: no lock, and a reply costs one
//! hash of the name and one or two atomic operations. Keys are hashed with a random key per
//! process, so a client cannot choose names that collide.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::ecs::skip_name;
use crate::config::RrlConfig;
use crate::metrics::{self, Slot, cells};

/// What a reply counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// NOERROR with answer records, or truncated.
    Answer,
    /// NOERROR, authoritative, no answer records.
    NoData,
    /// Name error.
    NxDomain,
    /// NOERROR, not authoritative, no answer, NS records in authority.
    Referral,
    /// Any other response code.
    Error,
}

/// What to do with a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit (or not limited): send it.
    Send,
    /// Over the limit: send nothing.
    Drop,
    /// Over the limit, and this one is sent as an empty TC=1 reply instead.
    Slip,
}

/// Slots a key may use, from its hash on.
const PROBE: usize = 4;
/// Bits of the arrival time, in microseconds: 2^40 µs is about 12.7 days, and a time more
/// than `window` ahead of now (as one that wrapped would be) counts as stale.
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
/// The slip counter: dropped replies since the last slipped one (4 bits: `slip` ≤ 10).
const SLIP_SHIFT: u32 = TIME_BITS;
const SLIP_MASK: u64 = 0xF << SLIP_SHIFT;
/// The tag: 20 bits of the key's hash, low bit set so that a used slot is never 0.
const TAG_SHIFT: u32 = 44;
const TAG_MASK: u64 = !0 << TAG_SHIFT;

/// The limiter: settings and the shared table.
pub struct Rrl {
    slots: Box<[AtomicU64]>,
    /// Microseconds of credit one reply takes: 1 s / rate.
    interval: u64,
    /// How far ahead of now the arrival time may go: the burst, in microseconds.
    window: u64,
    slip: u8,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    exempt: Box<[ipnet::IpNet]>,
    hasher: RandomState,
    epoch: Instant,
}

impl std::fmt::Debug for Rrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rrl")
            .field("slots", &self.slots.len())
            .field("interval_us", &self.interval)
            .field("window_us", &self.window)
            .field("slip", &self.slip)
            .finish_non_exhaustive()
    }
}

impl Rrl {
    /// A limiter with `config`'s settings and an empty table.
    pub fn new(config: &RrlConfig) -> Self {
        let rate = u64::from(config.responses_per_second.max(1));
        Self {
            slots: (0..config.table_size.max(PROBE))
                .map(|_| AtomicU64::new(0))
                .collect(),
            interval: (1_000_000 / rate).max(1),
            window: config.window.as_micros().min(u128::from(TIME_MASK >> 2)) as u64,
            slip: config.slip,
            ipv4_prefix: config.ipv4_prefix,
            ipv6_prefix: config.ipv6_prefix,
            exempt: config.exempt.clone().into_boxed_slice(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    /// Decides whether `reply`, about to go to `client` over UDP, is sent: true to send
    /// `reply` (which a slip has rewritten to an empty TC=1 reply), false to drop it.
    /// Counts drops and slips in this thread's metric cells.
    pub fn admit(&self, client: IpAddr, reply: &mut Vec<u8>) -> bool {
        let now = self.now();
        match self.verdict(client, reply, now) {
            Verdict::Send => true,
            Verdict::Drop => {
                count(Slot::RRL_DROPPED);
                false
            }
            Verdict::Slip => {
                slip_reply(reply);
                count(Slot::RRL_SLIPPED);
                true
            }
        }
    }

    /// Microseconds since the limiter was made, wrapped to [`TIME_BITS`].
    fn now(&self) -> u64 {
        (self.epoch.elapsed().as_micros() as u64) & TIME_MASK
    }

    /// The verdict on `reply` to `client` at time `now` (µs).
    fn verdict(&self, client: IpAddr, reply: &[u8], now: u64) -> Verdict {
        let client = client.to_canonical();
        if self.exempt.iter().any(|n| n.contains(&client)) {
            return Verdict::Send;
        }
        let Some((kind, name)) = classify(reply) else {
            return Verdict::Send;
        };
        let mut h = self.hasher.build_hasher();
        h.write_u8(kind as u8);
        match client {
            IpAddr::V4(a) => {
                let bits = u32::from(a) & prefix_mask32(self.ipv4_prefix);
                h.write_u8(4);
                h.write_u32(bits);
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a) & prefix_mask128(self.ipv6_prefix);
                h.write_u8(6);
                h.write_u128(bits);
            }
        }
        if let Some(at) = name {
            hash_name(reply, at, &mut h);
        }
        self.take(h.finish(), now)
    }

    /// Takes one reply's credit from the entry of `key`.
    fn take(&self, key: u64, now: u64) -> Verdict {
        let n = self.slots.len();
        let start = (key % n as u64) as usize;
        let tag = ((key >> TAG_SHIFT) | 1) << TAG_SHIFT;
        // Another thread may update the same slot between the load and the exchange: then
        // again. Each failure is another thread's success, so this ends; the bound only
        // guards against a livelock that cannot be ruled out in theory (then: send).
        for _ in 0..100 {
            let mut found = None;
            let mut victim: Option<(usize, u64, i64)> = None;
            for i in 0..PROBE {
                let at = (start + i) % n;
                let word = self.slots[at].load(Ordering::Relaxed);
                if word & TAG_MASK == tag {
                    found = Some((at, word));
                    break;
                }
                // The oldest arrival time is the entry most out of use; an empty slot first.
                let age = if word == 0 {
                    i64::MIN
                } else {
                    signed(word.wrapping_sub(now))
                };
                if victim.is_none_or(|v| age < v.2) {
                    victim = Some((at, word, age));
                }
            }
            let (at, old, entry) = match (found, victim) {
                (Some((at, word)), _) => (at, word, Some(word)),
                (None, Some((at, word, _))) => (at, word, None),
                (None, None) => return Verdict::Send,
            };
            let (new, verdict) = self.step(tag, entry, now);
            if new == old
                || self.slots[at]
                    .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                return verdict;
            }
        }
        Verdict::Send
    }

    /// The next state of the entry `entry` (`None`: new) with tag `tag`, and the verdict.
    fn step(&self, tag: u64, entry: Option<u64>, now: u64) -> (u64, Verdict) {
        let (tat, slipped) =
            entry.map_or((now, 0), |w| (w & TIME_MASK, (w & SLIP_MASK) >> SLIP_SHIFT));
        // How far the entry's time is ahead of now: 0 when in the past (full credit), and
        // when further than the window could take it (stale, e.g. wrapped).
        let ahead = match signed(tat.wrapping_sub(now)) {
            a if a <= 0 || a as u64 > self.window => 0,
            a => a as u64,
        };
        if ahead + self.interval <= self.window {
            let tat = (now + ahead + self.interval) & TIME_MASK;
            return (tag | (slipped << SLIP_SHIFT) | tat, Verdict::Send);
        }
        let tat = (now + ahead) & TIME_MASK;
        if self.slip == 0 {
            return (tag | tat, Verdict::Drop);
        }
        let slipped = slipped + 1;
        let (slipped, verdict) = if slipped >= u64::from(self.slip) {
            (0, Verdict::Slip)
        } else {
            (slipped, Verdict::Drop)
        };
        (tag | (slipped << SLIP_SHIFT) | tat, verdict)
    }
}

fn count(slot: Slot) {
    if metrics::enabled() {
        cells::with(|c| c.add(slot, 1));
    }
}

/// A [`TIME_BITS`]-bit difference as a signed number.
fn signed(diff: u64) -> i64 {
    ((diff << (64 - TIME_BITS)) as i64) >> (64 - TIME_BITS)
}

fn prefix_mask32(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

fn prefix_mask128(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

fn be16(msg: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *msg.get(at)?,
        *msg.get(at + 1)?,
    ])))
}

/// Where the parts of a reply that RRL reads are.
#[derive(Debug, Default, PartialEq, Eq)]
struct Layout {
    /// The end of the question section (12 when there is none).
    question_end: usize,
    /// The start of the first authority record.
    authority: Option<usize>,
    /// The start of the OPT record.
    opt: Option<usize>,
}

/// Finds the sections of `msg`; `None` when it is cut or malformed.
fn layout(msg: &[u8]) -> Option<Layout> {
    let (qd, an, ns, ar) = (be16(msg, 4)?, be16(msg, 6)?, be16(msg, 8)?, be16(msg, 10)?);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(msg, i)? + 4;
    }
    let mut out = Layout {
        question_end: i,
        ..Layout::default()
    };
    for r in 0..an + ns + ar {
        let start = i;
        i = skip_name(msg, i)?;
        let rtype = be16(msg, i)?;
        i += 10 + be16(msg, i + 8)?;
        if r == an && ns > 0 {
            out.authority = Some(start);
        }
        if r >= an + ns && rtype == 41 && out.opt.is_none() {
            out.opt = Some(start);
        }
    }
    (i <= msg.len()).then_some(out)
}

/// The kind of `reply` and where the name it is keyed by starts (`None`: the network
/// alone). `None` when the reply cannot be read, and then it is not limited (the replies
/// this server makes can always be read).
fn classify(reply: &[u8]) -> Option<(Kind, Option<usize>)> {
    let layout = layout(reply)?;
    let flags = reply[2];
    let low = reply[3] & 0x0f;
    // RFC 6891 §6.1.3: the OPT holds the upper 8 bits of the response code (BADVERS is 16).
    let high = layout
        .opt
        .and_then(|at| reply.get(at + 5))
        .copied()
        .unwrap_or(0);
    let rcode = (u16::from(high) << 4) | u16::from(low);
    let qname = (layout.question_end > 12).then_some(12);
    let (an, ns) = (be16(reply, 6)?, be16(reply, 8)?);
    let kind = match rcode {
        0 if an > 0 || flags & 0x02 != 0 => (Kind::Answer, qname),
        0 if flags & 0x04 != 0 => (Kind::NoData, qname),
        0 if ns > 0 => (Kind::Referral, layout.authority),
        3 => (Kind::NxDomain, layout.authority.or(qname)),
        _ => (Kind::Error, None),
    };
    Some(kind)
}

/// Feeds the name at `at` in `msg` to `h`, lowercased, following compression pointers:
/// copied into one buffer first, so the hasher is called once.
fn hash_name(msg: &[u8], mut at: usize, h: &mut impl Hasher) {
    let mut buf = [0u8; 256];
    let mut n = 0;
    // A name has at most 127 labels; the bound also stops pointer loops.
    for _ in 0..128 {
        let Some(&len) = msg.get(at) else { break };
        match len & 0xC0 {
            0x00 if len == 0 => break,
            0x00 => {
                let l = usize::from(len);
                let Some(label) = msg.get(at + 1..at + 1 + l) else {
                    break;
                };
                if n + 1 + l > buf.len() {
                    break;
                }
                buf[n] = len;
                for (d, s) in buf[n + 1..n + 1 + l].iter_mut().zip(label) {
                    *d = s.to_ascii_lowercase();
                }
                n += 1 + l;
                at += 1 + l;
            }
            0xC0 => {
                let Some(&low) = msg.get(at + 1) else { break };
                at = usize::from(u16::from_be_bytes([len & 0x3F, low]));
            }
            _ => break,
        }
    }
    h.write(&buf[..n]);
}

/// Rewrites `reply` into the slipped reply: its header with TC set, its question, no
/// records, and its OPT without options (no ECS), so a real client retries over TCP.
fn slip_reply(reply: &mut Vec<u8>) {
    let Some(layout) = layout(reply) else {
        return;
    };
    let opt = layout.opt.and_then(|at| {
        let fixed = skip_name(reply, at)?;
        // TYPE, CLASS (payload size), TTL (extended rcode, version, flags).
        reply.get(fixed..fixed + 8).map(|b| {
            let mut f = [0u8; 8];
            f.copy_from_slice(b);
            f
        })
    });
    reply.truncate(layout.question_end);
    reply[2] |= 0x02;
    reply[6..12].fill(0);
    if let Some(fixed) = opt {
        reply.push(0);
        reply.extend_from_slice(&fixed);
        reply.extend_from_slice(&[0, 0]);
        reply[11] = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(rate: u32, window: u64, slip: u8) -> RrlConfig {
        RrlConfig {
            responses_per_second: rate,
            window: Duration::from_secs(window),
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
            table_size: 1000,
        }
    }

    /// A reply: `flags` (bytes 2 and 3), the question `qname` A IN, `an` answer records
    /// (A, owner a pointer to the question), and `authority`: (owner, type) records.
    fn reply(flags: u16, qname: &str, an: u16, authority: &[(&str, u16)]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&an.to_be_bytes());
        m.extend_from_slice(&(authority.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        let wire = |n: &str| {
            let mut v = Vec::new();
            for l in n.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
                v.push(l.len() as u8);
                v.extend_from_slice(l.as_bytes());
            }
            v.push(0);
            v
        };
        m.extend(wire(qname));
        m.extend_from_slice(&[0, 1, 0, 1]);
        for _ in 0..an {
            m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        }
        for (owner, rtype) in authority {
            m.extend(wire(owner));
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 12]);
        }
        m
    }

    const SEC: u64 = 1_000_000;

    #[test]
    fn replies_are_classified_from_their_bytes() {
        let kind = |r: &[u8]| classify(r).map(|(k, _)| k);
        assert_eq!(
            kind(&reply(0x8400, "www.example.", 2, &[])),
            Some(Kind::Answer)
        );
        assert_eq!(
            kind(&reply(0x8600, "big.example.", 0, &[])),
            Some(Kind::Answer)
        );
        assert_eq!(
            kind(&reply(0x8400, "www.example.", 0, &[("example.", 6)])),
            Some(Kind::NoData)
        );
        assert_eq!(
            kind(&reply(0x8403, "nx.example.", 0, &[("example.", 6)])),
            Some(Kind::NxDomain)
        );
        assert_eq!(
            kind(&reply(0x8000, "a.sub.example.", 0, &[("sub.example.", 2)])),
            Some(Kind::Referral)
        );
        for rcode in [1, 2, 4, 5] {
            assert_eq!(
                kind(&reply(0x8000 | rcode, "x.", 0, &[])),
                Some(Kind::Error)
            );
        }
        // Header only (FORMERR for what does not parse), and cut replies.
        assert_eq!(
            classify(&[0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            Some((Kind::Error, None))
        );
        let r = reply(0x8400, "www.example.", 2, &[]);
        assert_eq!(classify(&r[..r.len() - 1]), None);
    }

    /// Replies of one key at `per_second` from `start` for `secs`: how many are sent.
    fn flood(
        rrl: &Rrl,
        r: &[u8],
        client: &str,
        start: u64,
        per_second: u64,
        secs: u64,
    ) -> [u64; 3] {
        let ip: IpAddr = client.parse().unwrap();
        let mut n = [0; 3];
        for i in 0..per_second * secs {
            let v = rrl.verdict(ip, r, start + i * SEC / per_second);
            n[v as usize] += 1;
        }
        n
    }

    #[test]
    fn a_burst_of_rate_times_window_then_the_rate() {
        let rrl = Rrl::new(&config(20, 2, 0));
        let r = reply(0x8400, "www.example.", 1, &[]);
        // 1000 a second for 3 s: 40 at once, then one per 50 ms (59 more in 2.999 s).
        let [sent, dropped, slipped] = flood(&rrl, &r, "192.0.2.1", SEC, 1000, 3);
        assert_eq!((sent, dropped, slipped), (40 + 59, 3000 - 99, 0));
        // Quiet for the window: the whole burst again.
        let [sent, ..] = flood(&rrl, &r, "192.0.2.1", 6 * SEC, 1000, 1);
        assert_eq!(sent, 40 + 19);
        // At the rate or below, nothing is dropped.
        let rrl = Rrl::new(&config(20, 2, 0));
        assert_eq!(flood(&rrl, &r, "192.0.2.1", SEC, 20, 10), [200, 0, 0]);
    }

    #[test]
    fn every_slip_th_limited_reply_is_slipped() {
        let rrl = Rrl::new(&config(5, 1, 2));
        let r = reply(0x8400, "www.example.", 1, &[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..11).map(|_| rrl.verdict(ip, &r, SEC)).collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            [
                Send, Send, Send, Send, Send, Drop, Slip, Drop, Slip, Drop, Slip
            ]
        );
        let rrl = Rrl::new(&config(5, 1, 1));
        assert_eq!(flood(&rrl, &r, "192.0.2.1", SEC, 100, 1), [5 + 4, 0, 91]);
    }

    #[test]
    fn networks_kinds_and_names_are_limited_apart() {
        let rrl = Rrl::new(&config(10, 1, 0));
        let www = reply(0x8400, "www.example.", 1, &[]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let sent = |client: &str, r: &[u8]| {
            (0..50)
                .filter(|_| rrl.verdict(ip(client), r, SEC) == Verdict::Send)
                .count()
        };
        assert_eq!(sent("192.0.2.1", &www), 10);
        // The same /24, in any case of the name: the same bucket, already empty.
        assert_eq!(sent("192.0.2.200", &www), 0);
        assert_eq!(sent("192.0.2.7", &reply(0x8400, "WWW.Example.", 1, &[])), 0);
        // Another /24, another name, another kind: each its own bucket.
        assert_eq!(sent("192.0.3.1", &www), 10);
        assert_eq!(
            sent("192.0.2.1", &reply(0x8400, "mail.example.", 1, &[])),
            10
        );
        let nodata = reply(0x8400, "www.example.", 0, &[("example.", 6)]);
        assert_eq!(sent("192.0.2.1", &nodata), 10);
        // NXDOMAIN is keyed by the zone: random names share it.
        let nx = |q: &str| reply(0x8403, q, 0, &[("example.", 6)]);
        assert_eq!(sent("192.0.2.1", &nx("r1.example.")), 10);
        assert_eq!(sent("192.0.2.1", &nx("r2.example.")), 0);
        // The SOA owner as a compression pointer (into "r3.example.") is the same zone.
        let mut compressed = reply(0x8403, "r3.example.", 0, &[]);
        compressed[9] = 1; // NSCOUNT
        compressed.extend_from_slice(&[0xC0, 15, 0, 6, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 12]);
        assert_eq!(classify(&compressed), Some((Kind::NxDomain, Some(28))));
        assert_eq!(sent("192.0.2.1", &compressed), 0);
        assert_eq!(sent("192.0.4.1", &compressed), 10);
        assert_eq!(sent("192.0.4.1", &nx("r4.example.")), 0);
        // Errors are keyed by the network alone.
        assert_eq!(sent("192.0.2.1", &reply(0x8005, "a.", 0, &[])), 10);
        assert_eq!(sent("192.0.2.1", &reply(0x8001, "b.", 0, &[])), 0);
        // IPv6 by /56; a v4-mapped address is its IPv4 network.
        assert_eq!(sent("2001:db8:0:1::1", &www), 10);
        assert_eq!(sent("2001:db8:0:2::1", &www), 0);
        assert_eq!(sent("2001:db8:0:100::1", &www), 10);
        assert_eq!(sent("::ffff:192.0.3.9", &www), 0);
        // Exempt networks are never limited.
        assert_eq!(sent("10.1.2.3", &www), 50);
    }

    #[test]
    fn the_table_is_bounded_and_reuses_the_oldest_entries() {
        let mut c = config(1, 1, 0);
        c.table_size = 64;
        let rrl = Rrl::new(&c);
        assert_eq!(rrl.slots.len(), 64);
        let r = reply(0x8400, "www.example.", 1, &[]);
        // 10000 networks: each is new, so each is sent, and the table stays 64 words.
        for i in 0..10_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(
                0x0a00_0000_u32.wrapping_add(i << 8) | 0x4000_0000,
            ));
            assert_eq!(rrl.verdict(ip, &r, SEC * (1 + u64::from(i))), Verdict::Send);
        }
        assert!(rrl.slots.iter().all(|s| s.load(Ordering::Relaxed) != 0));
    }

    #[test]
    fn stale_and_wrapped_times_count_as_full_credit() {
        let rrl = Rrl::new(&config(1, 1, 0));
        let r = reply(0x8400, "www.example.", 1, &[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(rrl.verdict(ip, &r, 5), Verdict::Send);
        assert_eq!(rrl.verdict(ip, &r, 6), Verdict::Drop);
        // Just short of the wrap, and past it.
        assert_eq!(rrl.verdict(ip, &r, TIME_MASK - 10), Verdict::Send);
        assert_eq!(rrl.verdict(ip, &r, 3 * SEC), Verdict::Send);
        assert_eq!(rrl.verdict(ip, &r, 3 * SEC + 1), Verdict::Drop);
    }

    #[test]
    fn a_slipped_reply_is_header_question_and_a_bare_opt() {
        // An answer with an OPT carrying ECS (8) after it.
        let mut r = reply(0x8500, "www.example.", 2, &[]);
        r[11] = 1;
        r.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 11]);
        r.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 24, 192, 0, 2]);
        slip_reply(&mut r);
        let mut want = reply(0x8700, "www.example.", 0, &[]);
        want[11] = 1;
        want.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        assert_eq!(r, want);
        // Without an OPT, header and question; without a question, the header.
        let mut r = reply(0x8403, "nx.example.", 0, &[("example.", 6)]);
        slip_reply(&mut r);
        assert_eq!(r, reply(0x8603, "nx.example.", 0, &[]));
        let mut r = vec![0, 7, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        slip_reply(&mut r);
        assert_eq!(r, [0, 7, 0x82, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn threads_share_one_limit() {
        let rrl = std::sync::Arc::new(Rrl::new(&config(100, 1, 0)));
        let r = std::sync::Arc::new(reply(0x8400, "www.example.", 1, &[]));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (rrl, r) = (rrl.clone(), r.clone());
                std::thread::spawn(move || {
                    let ip: IpAddr = format!("192.0.2.{t}").parse().unwrap();
                    (0..1000)
                        .filter(|_| rrl.verdict(ip, &r, SEC) == Verdict::Send)
                        .count()
                })
            })
            .collect();
        let sent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sent, 100);
    }
}
