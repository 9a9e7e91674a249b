//! Weighted choice on the query path without locks or shared writes: smooth weighted
//! round-robin over per-thread state, and weighted rendezvous hashing of client networks.
//! (What was answered is counted in [`crate::metrics`].)
//!
//! Why per thread: rotation state shared by every UDP thread would be one cache
//! line written by every core on every query. Each thread rotates on its own, so each
//! thread's answers hold the weights exactly and so does their sum.

use std::cell::RefCell;
use std::net::IpAddr;

/// A 64-bit hash that is the same on every machine, build and release (FNV-1a, then a
/// finalizer): sticky choices must survive restarts and upgrades, so no seeded hasher.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// The splitmix64 finalizer: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The client network a sticky choice hashes: the address cut to a prefix, as a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientNet {
    hash: u64,
    /// The prefix length hashed: the answer holds for this network, which bounds the ECS
    /// scope of a reply that depended on it.
    pub prefix: u8,
}

impl ClientNet {
    /// A placeholder for choices that hash no network (rotation).
    pub const UNUSED: Self = Self { hash: 0, prefix: 0 };

    /// The network of `addr` (IPv4-mapped IPv6 counts as IPv4) cut to `prefix` bits.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let (bits, family): (u128, u8) = match addr.to_canonical() {
            IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 4),
            IpAddr::V6(a) => (u128::from(a), 6),
        };
        let max = if family == 4 { 32 } else { 128 };
        let prefix = prefix.min(max);
        let net = if prefix == 0 {
            0
        } else {
            bits & (!0u128 << (128 - u32::from(prefix)))
        };
        let mut bytes = [0u8; 18];
        bytes[..16].copy_from_slice(&net.to_be_bytes());
        bytes[16] = family;
        bytes[17] = prefix;
        Self {
            hash: stable_hash(&bytes),
            prefix,
        }
    }
}

/// Weighted rendezvous (highest random weight) score of one member for `net`: the member
/// with the highest score wins. With `-w / ln(u)`, a member wins in proportion to its weight,
/// and removing one moves only the networks it had.
pub fn score(net: ClientNet, member: u64, weight: u64) -> f64 {
    if weight == 0 {
        return f64::NEG_INFINITY;
    }
    weight as f64 / draw(net, member)
}

/// `-ln(u)` for the uniform `u` in (0, 1) that `net` and `member` hash to: positive.
fn draw(net: ClientNet, member: u64) -> f64 {
    let h = mix(net.hash ^ member.rotate_left(23));
    // 53 random bits into (0, 1): never 0, so the logarithm is finite.
    let u = ((h >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    -fast_ln(u)
}

/// Table steps per octave of [`fast_ln`]: the first bits of the mantissa pick the step.
const LN_STEPS: usize = 256;

/// `ln` at the start of each step of [1, 2), and the step start's reciprocal; built once
/// with [`ln`], so the table is the same on every machine.
static LN_TABLE: std::sync::LazyLock<[(f64, f64); LN_STEPS]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|k| {
        let start = 1.0 + k as f64 / LN_STEPS as f64;
        (ln(start), 1.0 / start)
    })
});

/// `ln(x)` for a positive normal `x` to about 1e-8 relative, with no division: the
/// exponent's share, the table's value at the mantissa's step, and three terms of the
/// series of `ln(1 + r)` for the small rest `r < 1/256`. Ranking scores need no more,
/// and this is several times cheaper than `f64::ln`.
fn fast_ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let k = ((bits >> (52 - 8)) & 0xff) as usize;
    let (ln_start, inv_start) = LN_TABLE[k];
    let r = (m - (1.0 + k as f64 / LN_STEPS as f64)) * inv_start;
    exp as f64 * std::f64::consts::LN_2 + ln_start + r * (1.0 - r * (0.5 - r * (1.0 / 3.0)))
}

/// The natural logarithm of a positive normal `x`, to about 1e-9 relative: the exponent's
/// share plus a short series for the mantissa, in plain arithmetic (the same on every
/// machine). Builds [`LN_TABLE`].
fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    // The mantissa as a number in [1, 2), then in [√½, √2) so the series converges fast.
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        exp += 1;
    }
    // ln m = 2 atanh(t) with t = (m - 1) / (m + 1), |t| < 0.172.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = 1.0
        + t2 * (1.0 / 3.0
            + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0 + t2 * (1.0 / 11.0)))));
    exp as f64 * std::f64::consts::LN_2 + 2.0 * t * series
}

/// A number in `0..100` drawn from `net` and `key`, the same every time: the networks
/// below a threshold are a stable set that grows with it.
pub fn percentile(net: ClientNet, key: u64) -> u64 {
    mix(net.hash ^ key.rotate_left(41)) % 100
}

/// The index in `members` (`(key, weight)`) with the highest rendezvous score for `net`.
/// Scores `w / d` are compared as `w₁ · d₂ > w₂ · d₁`: no division per member.
pub fn rendezvous(net: ClientNet, members: impl Iterator<Item = (u64, u64)>) -> Option<usize> {
    let mut best: Option<(usize, f64, f64)> = None;
    for (i, (key, w)) in members.enumerate() {
        if w == 0 {
            continue;
        }
        let (w, d) = (w as f64, draw(net, key));
        if best.is_none_or(|(_, bw, bd)| w * bd > bw * d) {
            best = Some((i, w, d));
        }
    }
    best.map(|(i, _, _)| i)
}

thread_local! {
    /// Smooth round-robin "current weights", by rotor index (assigned at compile time).
    /// Grows to the largest index used; a reload that renumbers only perturbs a few picks.
    static ROTOR: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's rotation state, grown to hold every index of `members`.
fn with_rotor<R>(members: &[(u32, u64)], f: impl FnOnce(&mut [i64]) -> R) -> R {
    let need = members.iter().map(|m| m.0 as usize + 1).max().unwrap_or(0);
    ROTOR.with(|r| {
        let mut cur = r.borrow_mut();
        if cur.len() < need {
            cur.resize(need, 0);
        }
        f(&mut cur)
    })
}

/// Smooth weighted round-robin (the nginx scheme): each member's current weight grows by
/// its weight, the largest wins and gives back the total. Picks interleave (5:1:1 gives
/// a a b a c a a) and every run of `total` picks holds the weights exactly.
///
/// `members` are `(rotor index, weight)`; returns the index of the winner in `members`.
pub fn rotate(members: &[(u32, u64)]) -> Option<usize> {
    let total: u64 = members.iter().map(|m| m.1).sum();
    if total == 0 {
        return None;
    }
    with_rotor(members, |cur| {
        let mut best: Option<(usize, i64)> = None;
        for (i, &(slot, w)) in members.iter().enumerate() {
            if w == 0 {
                continue;
            }
            let c = &mut cur[slot as usize];
            *c += w as i64;
            if best.is_none_or(|(_, b)| *c > b) {
                best = Some((i, *c));
            }
        }
        let (i, _) = best?;
        cur[members[i].0 as usize] -= total as i64;
        Some(i)
    })
}

/// Chooses `n` distinct members at once (a bit per index of `members`, at most 64), each
/// included in proportion to its weight: the n-way form of [`rotate`]. Members whose share
/// of `n` picks would be one or more are always included; the rest rotate, each growing by
/// `n` times its weight and the `n` largest giving back the total.
pub fn rotate_many(members: &[(u32, u64)], n: usize) -> u64 {
    let mut chosen = 0u64;
    let mut n = n.min(members.len()).min(64);
    // Members that would be picked more than once per round are always in.
    loop {
        let total: u64 = (0..members.len())
            .filter(|&i| chosen & (1 << i) == 0)
            .map(|i| members[i].1)
            .sum();
        let always = (0..members.len()).find(|&i| {
            chosen & (1 << i) == 0 && members[i].1 > 0 && (n as u64) * members[i].1 >= total
        });
        match always {
            Some(i) if n > 0 => {
                chosen |= 1 << i;
                n -= 1;
            }
            _ => break,
        }
    }
    if n == 0 {
        return chosen;
    }
    let rest: smallvec::SmallVec<[usize; 16]> = (0..members.len())
        .filter(|&i| chosen & (1 << i) == 0 && members[i].1 > 0)
        .collect();
    let total: u64 = rest.iter().map(|&i| members[i].1).sum();
    with_rotor(members, |cur| {
        for &i in &rest {
            cur[members[i].0 as usize] += (n as u64 * members[i].1) as i64;
        }
        for _ in 0..n.min(rest.len()) {
            let best = rest
                .iter()
                .copied()
                .filter(|&i| chosen & (1 << i) == 0)
                .max_by_key(|&i| (cur[members[i].0 as usize], std::cmp::Reverse(i)));
            let Some(i) = best else { break };
            chosen |= 1 << i;
            cur[members[i].0 as usize] -= total as i64;
        }
    });
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_interleaves_and_holds_the_weights_exactly() {
        let members = [(1_000_000, 5), (1_000_001, 1), (1_000_002, 1)];
        let picks: Vec<usize> = (0..7).map(|_| rotate(&members).unwrap()).collect();
        // The nginx sequence for 5:1:1: no burst of five.
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let mut counts = [0u32; 3];
        for _ in 0..7000 {
            counts[rotate(&members).unwrap()] += 1;
        }
        assert_eq!(counts, [5000, 1000, 1000]);
    }

    #[test]
    fn rotating_several_includes_each_in_proportion_to_its_weight() {
        // 2:1:1, two per answer: the heavy one always, the light ones every other time.
        let members = [(3_000_000, 2), (3_000_001, 1), (3_000_002, 1)];
        let mut seen = [0u32; 3];
        for _ in 0..400 {
            let m = rotate_many(&members, 2);
            assert_eq!(m.count_ones(), 2);
            for (i, s) in seen.iter_mut().enumerate() {
                *s += u32::from(m & (1 << i) != 0);
            }
        }
        assert_eq!(seen, [400, 200, 200]);
        // 3:2:1:1:1, two per answer: each in 2/8 of its weight's worth of answers.
        let members = [
            (3_000_010, 3),
            (3_000_011, 2),
            (3_000_012, 1),
            (3_000_013, 1),
            (3_000_014, 1),
        ];
        let mut seen = [0u32; 5];
        for _ in 0..800 {
            let m = rotate_many(&members, 2);
            assert_eq!(m.count_ones(), 2);
            for (i, s) in seen.iter_mut().enumerate() {
                *s += u32::from(m & (1 << i) != 0);
            }
        }
        assert_eq!(seen, [600, 400, 200, 200, 200]);
    }

    #[test]
    fn rotation_skips_zero_weights_and_answers_none_when_all_are_zero() {
        let members = [(2_000_000, 0), (2_000_001, 2)];
        assert!((0..10).all(|_| rotate(&members) == Some(1)));
        assert_eq!(rotate(&[(2_000_002, 0)]), None);
    }

    #[test]
    fn the_logarithm_is_close_to_the_library_one() {
        let mut x: u64 = 0x1234_5678;
        for _ in 0..100_000 {
            x = mix(x.wrapping_add(1));
            let u = ((x >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
            let std = u.ln();
            for ours in [ln(u), fast_ln(u)] {
                assert!(
                    (ours - std).abs() <= 1e-8 * std.abs().max(1e-3),
                    "{u}: {ours} vs {std}"
                );
            }
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(fast_ln(1.0), 0.0);
    }

    #[test]
    fn client_networks_hash_by_their_prefix() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            ClientNet::new(a("192.0.2.1"), 24),
            ClientNet::new(a("192.0.2.200"), 24)
        );
        assert_ne!(
            ClientNet::new(a("192.0.2.1"), 24),
            ClientNet::new(a("192.0.3.1"), 24)
        );
        assert_eq!(
            ClientNet::new(a("::ffff:192.0.2.1"), 24),
            ClientNet::new(a("192.0.2.9"), 24)
        );
        assert_eq!(ClientNet::new(a("192.0.2.1"), 40).prefix, 32);
    }

    #[test]
    fn rendezvous_follows_weights_and_moves_only_the_removed_members_networks() {
        let members: Vec<(u64, u64)> = (0..10u64)
            .map(|i| (stable_hash(format!("dc{i}").as_bytes()), 1 + i % 3))
            .collect();
        let total: u64 = members.iter().map(|m| m.1).sum();
        let nets: Vec<ClientNet> = (0..20_000u32)
            .map(|i| ClientNet::new(IpAddr::V4((i << 8).into()), 24))
            .collect();
        let before: Vec<usize> = nets
            .iter()
            .map(|n| rendezvous(*n, members.iter().copied()).unwrap())
            .collect();
        for (i, m) in members.iter().enumerate() {
            let share = before.iter().filter(|&&b| b == i).count() as f64 / nets.len() as f64;
            let want = m.1 as f64 / total as f64;
            assert!((share - want).abs() < 0.015, "dc{i}: {share} vs {want}");
        }
        // Remove dc4: only its networks move.
        let mut fewer = members.clone();
        fewer[4].1 = 0;
        let mut moved = 0;
        for (n, &b) in nets.iter().zip(&before) {
            let after = rendezvous(*n, fewer.iter().copied()).unwrap();
            if after != b {
                assert_eq!(b, 4, "a network of another data center moved");
                moved += 1;
            }
        }
        let had = before.iter().filter(|&&b| b == 4).count();
        assert_eq!(moved, had);
    }
}
