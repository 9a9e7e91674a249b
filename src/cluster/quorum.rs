//! How a fleet turns its nodes' probe verdicts into one, and which nodes probe what. Pure:
//! the same inputs give the same answer on every node, which is what lets nodes that see
//! the same etcd state agree without talking to each other.

use std::fmt;
use std::net::IpAddr;

use crate::health::Check;

/// The rule that turns votes into a verdict (`[cluster] quorum`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quorum {
    /// Down when more than half of the votes say down. A tie keeps the target up: one
    /// node's bad path to a site must not take the site out of every node's answers.
    #[default]
    Majority,
    /// Each region decides by majority of its votes, then the regions do by majority.
    /// For fleets with several nodes per region, so one region's many nodes do not
    /// outvote the others.
    RegionMajority,
    /// Down when any vote says down: the cautious rule.
    Any,
    /// Down only when every vote says down: the available rule.
    All,
}

impl Quorum {
    /// `majority`, `region_majority`, `any`, `all`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "majority" => Some(Self::Majority),
            "region_majority" => Some(Self::RegionMajority),
            "any" => Some(Self::Any),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    /// The verdict on one target from `votes`: `None` when there are none.
    pub fn decide(self, votes: &[Vote<'_>]) -> Option<bool> {
        if votes.is_empty() {
            return None;
        }
        let down = votes.iter().filter(|v| !v.up).count();
        let up = match self {
            Self::Majority => down * 2 <= votes.len(),
            Self::Any => down == 0,
            Self::All => down < votes.len(),
            Self::RegionMajority => {
                let mut regions: Vec<&str> = votes.iter().map(|v| v.region).collect();
                regions.sort_unstable();
                regions.dedup();
                let regions_down = regions
                    .iter()
                    .filter(|r| {
                        let in_region: Vec<Vote<'_>> =
                            votes.iter().filter(|v| v.region == **r).copied().collect();
                        Self::Majority.decide(&in_region) == Some(false)
                    })
                    .count();
                regions_down * 2 <= regions.len()
            }
        };
        Some(up)
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Majority => "majority",
            Self::RegionMajority => "region_majority",
            Self::Any => "any",
            Self::All => "all",
        })
    }
}

/// One node's verdict on one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote<'a> {
    /// The node's region.
    pub region: &'a str,
    /// What its probes say.
    pub up: bool,
}

/// The name of a target in etcd, the same on every node of one version:
/// `192.0.2.10-3f2a…`, the address (for people reading keys) and a hash of the whole check.
pub fn target_id(check: &Check, addr: IpAddr) -> String {
    let text = format!("{check:?}");
    let addr = match addr {
        IpAddr::V4(a) => a.to_string(),
        // `:` is legal in etcd keys, but keys read better without it.
        IpAddr::V6(a) => a.to_string().replace(':', "_"),
    };
    format!("{addr}-{:016x}", stable_hash(text.as_bytes()))
}

/// The `k` nodes (of `nodes`) that probe target `id`, by rendezvous hashing: each node
/// scores every target, the top `k` scores win. When a node leaves, only its targets move;
/// when one joins, it takes about its share. `k` = 0 or ≥ the fleet: every node.
pub fn probers<'a>(id: &str, nodes: &[&'a str], k: usize) -> Vec<&'a str> {
    if k == 0 || k >= nodes.len() {
        return nodes.to_vec();
    }
    let mut scored: Vec<(u64, &str)> = nodes
        .iter()
        .map(|n| {
            let mut key = Vec::with_capacity(n.len() + 1 + id.len());
            key.extend_from_slice(n.as_bytes());
            key.push(0);
            key.extend_from_slice(id.as_bytes());
            (stable_hash(&key), *n)
        })
        .collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.into_iter().take(k).map(|(_, n)| n).collect()
}

/// FNV-1a with a final mix: the same on every machine and build, unlike the std hasher.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finalizer: FNV's low bits alone spread poorly across similar keys.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn votes<'a>(v: &[(&'a str, bool)]) -> Vec<Vote<'a>> {
        v.iter().map(|&(region, up)| Vote { region, up }).collect()
    }

    #[test]
    fn majority_ties_keep_the_target_up() {
        let q = Quorum::Majority;
        assert_eq!(q.decide(&[]), None);
        assert_eq!(q.decide(&votes(&[("eu", false)])), Some(false));
        assert_eq!(q.decide(&votes(&[("eu", true), ("us", false)])), Some(true));
        assert_eq!(
            q.decide(&votes(&[("eu", false), ("us", false), ("ap", true)])),
            Some(false)
        );
        assert_eq!(
            q.decide(&votes(&[("eu", true), ("us", false), ("ap", true)])),
            Some(true)
        );
    }

    #[test]
    fn any_and_all_are_the_two_extremes() {
        let one_down = votes(&[("eu", true), ("us", false), ("ap", true)]);
        assert_eq!(Quorum::Any.decide(&one_down), Some(false));
        assert_eq!(Quorum::All.decide(&one_down), Some(true));
        let all_down = votes(&[("eu", false), ("us", false)]);
        assert_eq!(Quorum::All.decide(&all_down), Some(false));
    }

    #[test]
    fn region_majority_counts_regions_not_nodes() {
        // Three eu nodes say down, one us and one ap node say up: by nodes that is down,
        // by regions only one of three is down.
        let v = votes(&[
            ("eu", false),
            ("eu", false),
            ("eu", false),
            ("us", true),
            ("ap", true),
        ]);
        assert_eq!(Quorum::Majority.decide(&v), Some(false));
        assert_eq!(Quorum::RegionMajority.decide(&v), Some(true));
        let v = votes(&[("eu", false), ("us", false), ("us", true), ("ap", false)]);
        // eu down, us tied (up), ap down: two of three regions down.
        assert_eq!(Quorum::RegionMajority.decide(&v), Some(false));
    }

    #[test]
    fn rendezvous_moves_only_the_leaving_nodes_targets() {
        let all = ["ns1", "ns2", "ns3", "ns4"];
        let without_ns3 = ["ns1", "ns2", "ns4"];
        let mut moved = 0;
        let mut load = std::collections::HashMap::new();
        for i in 0..400 {
            let id = format!("192.0.2.{}-{i:x}", i % 250);
            let before = probers(&id, &all, 2);
            assert_eq!(before.len(), 2);
            for n in &before {
                *load.entry(*n).or_insert(0) += 1;
            }
            let after = probers(&id, &without_ns3, 2);
            if !before.contains(&"ns3") {
                assert_eq!(before, after, "{id}: moved though ns3 did not probe it");
            } else {
                moved += 1;
                assert!(after.iter().all(|n| *n != "ns3"));
            }
        }
        // Each of 4 nodes takes about half of 400 targets (2 probers each).
        for (n, l) in load {
            assert!((120..=280).contains(&l), "{n} probes {l} of 400");
        }
        assert!((100..=300).contains(&moved), "{moved}");
        assert_eq!(probers("x", &all, 0).len(), 4);
        assert_eq!(probers("x", &all, 9).len(), 4);
    }

    #[test]
    fn target_ids_are_stable_and_tell_checks_apart() {
        use crate::health::{CheckKind, InitialState};
        use std::time::Duration;
        let check = |port| Check {
            kind: CheckKind::Tcp { port },
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            jitter: Duration::ZERO,
            initial: InitialState::Up,
        };
        let a: IpAddr = "192.0.2.10".parse().unwrap();
        let id = target_id(&check(80), a);
        assert!(id.starts_with("192.0.2.10-"), "{id}");
        assert_eq!(id, target_id(&check(80), a));
        assert_ne!(id, target_id(&check(81), a));
        let v6 = target_id(&check(80), "2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("2001_db8__1-"), "{v6}");
        // Pinned: a change here splits a fleet running two versions.
        assert_eq!(stable_hash(b"meridian"), stable_hash(b"meridian"));
        assert_ne!(stable_hash(b"ns1\0a"), stable_hash(b"ns2\0a"));
    }
}
