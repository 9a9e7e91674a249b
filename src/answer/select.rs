//! The selection step at a GSLB name: which of the client's candidates, and which of
//! their addresses, go into the answer.
//!
//! One function, [`admit`], decides whether an address may be answered, from its word and
//! its data center's word in the [`HealthTable`]; [`choose`] walks the client's list with
//! it, fails open or falls back to the all-down policy, and `explain` prints the same
//! verdicts. Weighted spreading plugs in as one more step over the admitted candidates.
//!
//! At most [`MAX_ADDRESSES`] addresses per data center and family are considered: the set
//! chosen is a `u64` bit mask.

use smallvec::SmallVec;

use super::Client;
use crate::compile::{AllDownAnswer, Candidate, GslbNode};
use crate::family::Family;
use crate::geo::table::Decision;
use crate::health::{Admin, HealthTable, Word};
use crate::weigh::{self, ClientNet};
use crate::zone::model::Select;

pub use crate::zone::model::MAX_ADDRESSES;

// One bit per address in the `u64` masks below.
const _: () = assert!(MAX_ADDRESSES <= u64::BITS as usize);

/// Whether an address is in answers, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In: the probes say up (always, without a check).
    Up,
    /// In: an operator forced the address up.
    ForcedUp,
    /// In: an operator forced its data center up, and the address has no override.
    DatacenterForcedUp,
    /// Out: the probes say down.
    ProbeDown,
    /// Out: an operator took the address down or drained it.
    AddressOut(Admin),
    /// Out: an operator took its data center down or drained it.
    DatacenterOut(Admin),
}

impl Verdict {
    /// The address may be answered.
    pub fn is_in(self) -> bool {
        matches!(self, Self::Up | Self::ForcedUp | Self::DatacenterForcedUp)
    }

    /// An operator took it out: failing open keeps it out while anything else is left.
    pub fn operator_out(self) -> bool {
        matches!(self, Self::AddressOut(_) | Self::DatacenterOut(_))
    }
}

/// Decides one address from its data center's word and its own. The more specific
/// override wins: an address taken down or drained stays out even when its data center is
/// forced up; a data center taken out takes all its addresses with it.
#[inline]
pub fn admit(datacenter: Word, address: Word) -> Verdict {
    match (datacenter.admin(), address.admin()) {
        (dc, _) if dc.is_out() => Verdict::DatacenterOut(dc),
        (_, a) if a.is_out() => Verdict::AddressOut(a),
        (_, Admin::Up) => Verdict::ForcedUp,
        (Admin::Up, _) => Verdict::DatacenterForcedUp,
        _ if address.probe_up() => Verdict::Up,
        _ => Verdict::ProbeDown,
    }
}

/// The candidates (position, bit mask of addresses) that answer.
#[derive(Debug, Default)]
pub struct Pick {
    /// Chosen candidates, the weighted choice first, each with its addresses to answer.
    pub chosen: SmallVec<[(u8, u64); 4]>,
    /// Some candidate considered was down, partly down or flapping: answer at the short TTL.
    pub degraded: bool,
    /// Every candidate was down and the name fails open: these are answered as if up.
    pub failed_open: bool,
    /// The data center the client's weighted choice fell on was down: another answered
    /// first (a fail-over; shedding is not one).
    pub failed_over: bool,
    /// The choice hashed the client network: the answer holds for that prefix only, so the
    /// ECS scope must not be wider.
    pub hashed: Option<u8>,
}

/// What a GSLB name answers a client of one family.
#[derive(Debug)]
pub enum Choice<'s> {
    /// No candidate in the client's list has an address of the family: NODATA.
    NoFamily,
    /// These addresses.
    Addresses(Pick),
    /// Every candidate is down; the name's all-down policy answers (never fail-open,
    /// which is answered as [`Choice::Addresses`]).
    AllDown(&'s AllDownAnswer),
}

/// One candidate of a client's list considered for sharing its traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Position among the name's candidates.
    pub pos: u8,
    /// Its weight (0 is never a member: drained); at most [`MAX_WEIGHT`](crate::zone::model::MAX_WEIGHT).
    pub weight: u32,
    /// Its admitted addresses; 0 when it is down.
    pub mask: u64,
    /// Percent of its weight it keeps while its load signal says it is overloaded (100
    /// without a signal or below the threshold).
    pub keep: u8,
    /// At the head of the list (`spread`, `band`): its share is its own. Others only take
    /// the share of a down head, `spill` of them.
    pub head: bool,
}

/// The candidates of a client's list walked for one answer, in list order: the head that
/// shares the client's traffic, then as many more as spill and `max_datacenters` need.
#[derive(Debug, Default)]
pub struct Shares {
    /// Candidates with an address of the family and a weight, in list order.
    pub members: SmallVec<[Member; 8]>,
    /// Some member is down, partly down or flapping.
    pub degraded: bool,
    /// Some candidate of the list has an address of the family.
    pub had_family: bool,
    /// How many admitted candidates after the head take a down head's share.
    spill: usize,
}

impl Shares {
    /// The head members.
    pub fn head(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.head)
    }

    /// The members that take a down head's share: the first `spill` admitted after the
    /// head, or, when there are none, the head's admitted members.
    pub fn spill_targets(&self) -> impl Iterator<Item = &Member> {
        let after = self.members.iter().filter(|m| !m.head && m.mask != 0);
        let any_after = after.clone().next().is_some();
        let (after, head) = if any_after {
            (Some(after.take(self.spill)), None)
        } else {
            (None, Some(self.head().filter(|m| m.mask != 0)))
        };
        after
            .into_iter()
            .flatten()
            .chain(head.into_iter().flatten())
    }

    /// The members that take `h`'s share when it is down or shedding: the spill targets
    /// other than `h` itself.
    pub fn targets_of(&self, h: &Member) -> impl Iterator<Item = &Member> {
        let pos = h.pos;
        self.spill_targets().filter(move |t| t.pos != pos)
    }

    /// The weights spill targets take shares by: their weight as reduced by shedding, or
    /// their whole weight when every one of them sheds all.
    fn spill_weight(targets: &[&Member], m: &Member) -> u64 {
        if targets.iter().all(|t| t.keep == 0) {
            u64::from(m.weight)
        } else {
            u64::from(m.weight) * u64::from(m.keep)
        }
    }

    /// The long-run share of answers each member gets, by position: the head by weight;
    /// a down head's share, and the part an overloaded head sheds, split over the spill
    /// targets by theirs. A head with nobody to take its load sheds nothing.
    pub fn fractions(&self) -> SmallVec<[(u8, f64); 8]> {
        let mut out: SmallVec<[(u8, f64); 8]> = self.members.iter().map(|m| (m.pos, 0.0)).collect();
        let total: u64 = self.head().map(|m| u64::from(m.weight)).sum();
        if total == 0 {
            return out;
        }
        for h in self.head() {
            let share = f64::from(h.weight) / total as f64;
            let targets: SmallVec<[&Member; 8]> = self.targets_of(h).collect();
            let kept = match (h.mask, targets.is_empty()) {
                (0, _) => 0.0,
                (_, true) => share,
                _ => share * f64::from(h.keep) / 100.0,
            };
            let given = if h.mask == 0 && targets.is_empty() {
                0.0
            } else {
                share - kept
            };
            let tw: u64 = targets
                .iter()
                .map(|t| Self::spill_weight(&targets, t))
                .sum();
            for (i, m) in self.members.iter().enumerate() {
                if m.pos == h.pos {
                    out[i].1 += kept;
                }
                if tw > 0 && targets.iter().any(|t| t.pos == m.pos) {
                    out[i].1 += given * Self::spill_weight(&targets, m) as f64 / tw as f64;
                }
            }
        }
        out
    }
}

/// The client as selection sees it.
#[derive(Clone, Copy, Debug)]
pub struct ClientKey {
    /// The network a sticky name hashes.
    pub net: ClientNet,
    /// False for `explain`: rotation does not advance.
    answering: bool,
}

/// The network of `client` that `gslb` hashes when sticky: the configured prefix, cut to
/// the ECS source prefix when the client disclosed less.
pub fn client_key(gslb: &GslbNode, client: Client) -> ClientKey {
    let net = match gslb.select {
        Select::Sticky {
            v4_prefix,
            v6_prefix,
        } => {
            let p = if client.addr.to_canonical().is_ipv4() {
                v4_prefix
            } else {
                v6_prefix
            };
            ClientNet::new(client.addr, client.ecs_source.map_or(p, |s| s.min(p)))
        }
        // Rotation hashes nothing: no need to spend a hash on every query.
        Select::Rotate => ClientNet::UNUSED,
    };
    ClientKey {
        net,
        answering: true,
    }
}

/// Walks the client's list: the head (the first `spread` candidates, or all within the
/// band), each with its admitted addresses, then candidates after it while a down head's
/// share needs `spill` admitted ones or the answer needs `max_datacenters`.
pub fn shares(
    gslb: &GslbNode,
    health: &HealthTable,
    decision: &Decision<'_>,
    family: Family,
) -> Shares {
    let mut s = Shares {
        spill: gslb.spill,
        ..Shares::default()
    };
    let (mut heads, mut heads_down, mut after_up, mut up) = (0usize, 0usize, 0usize, 0usize);
    for (idx, &pos) in decision.list.iter().enumerate() {
        let c = &gslb.candidates[pos as usize];
        if c.family(family).records.is_empty() {
            continue;
        }
        s.had_family = true;
        if c.weight == 0 {
            continue;
        }
        let head = heads < gslb.spread || idx < usize::from(decision.near);
        if !head && (heads_down == 0 || after_up >= gslb.spill) && up >= gslb.max_datacenters {
            break;
        }
        let mask = admitted(c, health, family, &mut s.degraded);
        let keep = c.load.map_or(100, |id| health.keep(id));
        if head {
            heads += 1;
            // A shedding head needs somewhere to send its share, as a down one does.
            heads_down += usize::from(mask == 0 || keep < 100);
        } else if mask != 0 {
            after_up += 1;
        }
        up += usize::from(mask != 0);
        s.members.push(Member {
            pos,
            weight: c.weight,
            mask,
            keep,
            head,
        });
    }
    s
}

/// Walks the client's ordered list (see [`shares`]), chooses one data center by weight
/// (rotating or by the client network's hash), a down head's share going to the spill
/// targets, then fills the answer up to `max_datacenters` in list order, each with at most
/// `max_addresses` addresses chosen by weight. When every candidate of the family is out,
/// fails open or returns the policy.
pub fn choose<'s>(
    gslb: &'s GslbNode,
    health: &HealthTable,
    decision: &Decision<'_>,
    family: Family,
    client: ClientKey,
) -> Choice<'s> {
    choose_in(gslb, health, decision, family, client, true)
}

/// [`choose`] for `explain`: the same walk and verdicts, but nothing is counted and the
/// rotation does not advance (a rotating choice is the heaviest member instead).
pub fn choose_quietly<'s>(
    gslb: &'s GslbNode,
    health: &HealthTable,
    decision: &Decision<'_>,
    family: Family,
    client: ClientKey,
) -> Choice<'s> {
    choose_in(gslb, health, decision, family, client, false)
}

fn choose_in<'s>(
    gslb: &'s GslbNode,
    health: &HealthTable,
    decision: &Decision<'_>,
    family: Family,
    mut client: ClientKey,
    answering: bool,
) -> Choice<'s> {
    client.answering = answering;
    let s = shares(gslb, health, decision, family);
    if !s.had_family {
        return Choice::NoFamily;
    }
    let mut p = Pick {
        degraded: s.degraded,
        ..Pick::default()
    };
    if let Some(first) = pick_first(gslb, &s, client, &mut p) {
        let m = s.members[first];
        p.chosen
            .push((m.pos, addresses(gslb, m, family, client, &mut p.hashed)));
        for m in s
            .members
            .iter()
            .filter(|m| m.mask != 0 && m.pos != s.members[first].pos)
        {
            if p.chosen.len() >= gslb.max_datacenters {
                break;
            }
            p.chosen
                .push((m.pos, addresses(gslb, *m, family, client, &mut p.hashed)));
        }
        return Choice::Addresses(p);
    }
    if matches!(gslb.all_down, AllDownAnswer::FailOpen) {
        Choice::Addresses(fail_open(gslb, health, decision.list, family))
    } else {
        Choice::AllDown(&gslb.all_down)
    }
}

/// The member answered first: one of the head by weight; when it is down, or it sheds
/// this answer, one of the spill targets by weight. Two steps rather than one draw over
/// combined shares, so that a sticky client of a healthy head keeps it when another head
/// fails, and only the clients shed move when a site sheds.
fn pick_first(gslb: &GslbNode, s: &Shares, client: ClientKey, p: &mut Pick) -> Option<usize> {
    let hashed = &mut p.hashed;
    // The head is the start of the members (they are in list order).
    let heads = s.members.iter().take_while(|m| m.head).count();
    let h = weighted(gslb, s, &INDICES[..heads], client, hashed, Weigh::Whole)?;
    let m = s.members[h];
    if m.mask != 0 && m.keep >= 100 {
        return Some(h);
    }
    let targets: SmallVec<[usize; 8]> = s
        .targets_of(&m)
        .map(|t| s.members.iter().position(|x| x.pos == t.pos).unwrap_or(0))
        .collect();
    if m.mask != 0 && (targets.is_empty() || !sheds(gslb, &m, client, hashed)) {
        return Some(h);
    }
    p.failed_over = m.mask == 0;
    weighted(gslb, s, &targets, client, hashed, Weigh::Kept).or(Some(h).filter(|_| m.mask != 0))
}

/// `0, 1, 2, …`: the indices of the first members, as a slice without building one.
const INDICES: [usize; 256] = {
    let mut a = [0; 256];
    let mut i = 0;
    while i < 256 {
        a[i] = i;
        i += 1;
    }
    a
};

/// Whether the overloaded head `m` passes this answer on: in turn by its own rotation (it
/// keeps `keep` of every 100), or for a sticky name by the client network's hash, so that
/// the networks shed grow as the kept share falls and the others stay.
fn sheds(gslb: &GslbNode, m: &Member, client: ClientKey, hashed: &mut Option<u8>) -> bool {
    let keep = u64::from(m.keep);
    match gslb.select {
        Select::Rotate if !client.answering => keep == 0,
        Select::Rotate => {
            let slot = gslb.rotor + gslb.candidates.len() as u32 + 2 * u32::from(m.pos);
            weigh::rotate(&[(slot, keep), (slot + 1, 100 - keep)]) == Some(1)
        }
        Select::Sticky { .. } => {
            *hashed = Some(client.net.prefix);
            let key = gslb.candidates[m.pos as usize].key ^ SHED_SALT;
            weigh::percentile(client.net, key) >= keep
        }
    }
}

/// Mixed into a data center's key for the shedding draw, so that it is independent of the
/// rendezvous draw that chose the data center.
const SHED_SALT: u64 = 0x5bd1_e995_0f0f_3c3c;

/// Which weight a draw uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Weigh {
    /// The configured weight: the head shares by capacity, overload aside.
    Whole,
    /// The weight as reduced by shedding: spill prefers the sites with room.
    Kept,
}

/// One of `among` (indices into the members) by weight, as the name selects.
fn weighted(
    gslb: &GslbNode,
    s: &Shares,
    among: &[usize],
    client: ClientKey,
    hashed: &mut Option<u8>,
    weigh: Weigh,
) -> Option<usize> {
    let all_shed = among.iter().all(|&i| s.members[i].keep == 0);
    let weight = |i: usize| {
        let m = &s.members[i];
        match weigh {
            Weigh::Kept if !all_shed => u64::from(m.weight) * u64::from(m.keep),
            _ => u64::from(m.weight),
        }
    };
    match among {
        [] => None,
        [only] => Some(*only),
        _ => match gslb.select {
            Select::Rotate if !client.answering => {
                heaviest(among.iter().map(|&i| weight(i))).map(|k| among[k])
            }
            Select::Rotate => {
                let members: SmallVec<[(u32, u64); 8]> = among
                    .iter()
                    .map(|&i| (gslb.rotor + u32::from(s.members[i].pos), weight(i)))
                    .collect();
                weigh::rotate(&members).map(|k| among[k])
            }
            Select::Sticky { .. } => {
                *hashed = Some(client.net.prefix);
                let members = among
                    .iter()
                    .map(|&i| (gslb.candidates[s.members[i].pos as usize].key, weight(i)));
                weigh::rendezvous(client.net, members).map(|k| among[k])
            }
        },
    }
}

/// The addresses of `m` to answer: all admitted ones, or `max_addresses` of them chosen by
/// address weight.
fn addresses(
    gslb: &GslbNode,
    m: Member,
    family: Family,
    client: ClientKey,
    hashed: &mut Option<u8>,
) -> u64 {
    let n = gslb.max_addresses;
    if (m.mask.count_ones() as usize) <= n {
        return m.mask;
    }
    let f = gslb.candidates[m.pos as usize].family(family);
    let idx: SmallVec<[usize; 16]> = (0..f.weights.len().min(MAX_ADDRESSES))
        .filter(|&i| m.mask & (1 << i) != 0)
        .collect();
    let mut out = 0u64;
    match gslb.select {
        Select::Rotate if !client.answering => {
            let mut left: SmallVec<[usize; 16]> = idx.clone();
            for _ in 0..n {
                let Some(k) = heaviest(left.iter().map(|&i| u64::from(f.weights[i]))) else {
                    break;
                };
                out |= 1 << left.remove(k);
            }
        }
        Select::Rotate => {
            let members: SmallVec<[(u32, u64); 16]> = idx
                .iter()
                .map(|&i| (f.rotor + i as u32, u64::from(f.weights[i])))
                .collect();
            let picked = weigh::rotate_many(&members, n);
            for (k, &i) in idx.iter().enumerate() {
                if picked & (1 << k) != 0 {
                    out |= 1 << i;
                }
            }
        }
        Select::Sticky { .. } => {
            *hashed = Some(client.net.prefix);
            // The n highest rendezvous scores: a network keeps its addresses.
            let mut scored: SmallVec<[(f64, usize); 16]> = idx
                .iter()
                .map(|&i| {
                    (
                        weigh::score(client.net, f.keys[i], u64::from(f.weights[i])),
                        i,
                    )
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            for &(_, i) in scored.iter().take(n) {
                out |= 1 << i;
            }
        }
    }
    out
}

/// True when every candidate of the name that has the family is out: the state the
/// all-down log reports changes of.
pub fn all_down(gslb: &GslbNode, health: &HealthTable, family: Family) -> bool {
    let mut ignored = false;
    let mut any = false;
    for c in gslb.candidates.iter() {
        if c.family(family).records.is_empty() {
            continue;
        }
        any = true;
        if admitted(c, health, family, &mut ignored) != 0 {
            return false;
        }
    }
    any
}

/// The verdict of each address of `c` in `family`, in file order.
pub fn verdicts<'a>(
    c: &'a Candidate,
    health: &'a HealthTable,
    family: Family,
) -> impl Iterator<Item = Verdict> + 'a {
    let dc = health.word(c.slot);
    c.family(family)
        .slots
        .iter()
        .take(MAX_ADDRESSES)
        .map(move |&id| admit(dc, health.word(id)))
}

/// The admitted addresses of `c` as a bit mask; sets `degraded` when one is out, or
/// flapping under a data center not forced up.
fn admitted(c: &Candidate, health: &HealthTable, family: Family, degraded: &mut bool) -> u64 {
    let dc = health.word(c.slot);
    let mut m = 0u64;
    for (i, &id) in c
        .family(family)
        .slots
        .iter()
        .enumerate()
        .take(MAX_ADDRESSES)
    {
        let address = health.word(id);
        if admit(dc, address).is_in() {
            m |= 1 << i;
        } else {
            *degraded = true;
        }
        *degraded |= dc.admin() != Admin::Up && address.flapping();
    }
    m
}

/// Every candidate down: answer as if the probes said up. Addresses and data centers an
/// operator took out stay out, unless that leaves nothing: fail open never answers empty.
fn fail_open(gslb: &GslbNode, health: &HealthTable, list: &[u8], family: Family) -> Pick {
    let mut p = Pick {
        degraded: true,
        failed_open: true,
        ..Pick::default()
    };
    for honour_operators in [true, false] {
        for &pos in list {
            let c = &gslb.candidates[pos as usize];
            if honour_operators && c.weight == 0 {
                continue;
            }
            let mut mask = 0u64;
            for (i, v) in verdicts(c, health, family).enumerate() {
                if !honour_operators || !v.operator_out() {
                    mask |= 1 << i;
                }
            }
            if mask == 0 {
                continue;
            }
            p.chosen.push((pos, first_bits(mask, gslb.max_addresses)));
            if p.chosen.len() == gslb.max_datacenters {
                return p;
            }
        }
        if !p.chosen.is_empty() {
            return p;
        }
    }
    p
}

/// The index of the first largest weight.
fn heaviest(weights: impl Iterator<Item = u64>) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, w) in weights.enumerate() {
        if best.is_none_or(|(_, b)| w > b) {
            best = Some((i, w));
        }
    }
    best.map(|(i, _)| i)
}

/// Keeps the lowest `n` set bits of `mask`: the first `n` admitted addresses, in file order.
fn first_bits(mut mask: u64, n: usize) -> u64 {
    let mut out = 0;
    for _ in 0..n {
        if mask == 0 {
            break;
        }
        let low = mask & mask.wrapping_neg();
        out |= low;
        mask &= !low;
    }
    out
}

#[cfg(test)]
#[path = "select/tests.rs"]
mod tests;
