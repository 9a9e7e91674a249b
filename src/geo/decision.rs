//! How a GSLB policy orders its candidates for one client location, and the compilation of
//! that decision over every address into a [`GeoTable`].
//!
//! Precedence of a map, most specific first: network rule, AS number, subdivision,
//! country, continent, default. `nearest` sorts by great-circle distance; a client with no
//! known location gets the candidates in the order written.

use std::fmt;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::db::BasePartition;
use super::partition::Partition;
use super::table::{GeoTable, ListId, Ranked};
use super::unlocated::Unlocated;
use super::{Code, Coord, Location};
use crate::family::Family;

/// A policy with its lists as candidate positions, ready to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledPolicy {
    /// Each candidate's location (positions as in the GSLB name). Private: `units` is
    /// worked out from it.
    coords: Vec<Option<Coord>>,
    /// The rule.
    pub rule: Rule,
    /// Network rules (zone overrides first, then the name's own; later wins on a tie).
    pub networks: Vec<(IpNet, Vec<u8>)>,
    /// Candidates within this many km of the nearest count as equally near (`band`).
    pub band_km: Option<f64>,
    /// Each candidate's point on the unit sphere, for [`Self::distances`].
    units: Vec<Option<[f64; 3]>>,
}

/// The ordering rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Nearest first.
    Nearest,
    /// A geography map.
    Map {
        /// AS number rules.
        asn: Vec<(u32, Vec<u8>)>,
        /// Subdivision rules (`CC-SUB`).
        subdivision: Vec<(Box<str>, Vec<u8>)>,
        /// Country rules.
        country: Vec<(Code, Vec<u8>)>,
        /// Continent rules.
        continent: Vec<(Code, Vec<u8>)>,
        /// Fallback list; `None` means nearest.
        default: Option<Vec<u8>>,
    },
}

/// Why a client got its list, for `explain`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// A network rule or zone override matched.
    Network(IpNet),
    /// An AS number rule matched.
    Asn(u32),
    /// A subdivision rule matched.
    Subdivision(Box<str>),
    /// A country rule matched.
    Country(Code),
    /// A continent rule matched.
    Continent(Code),
    /// No rule matched; the map's default list.
    Default,
    /// Ordered by distance from the client's location.
    Nearest(Coord),
    /// The client's location is unknown; candidates in the order written.
    Unknown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Network(n) => write!(f, "network rule {n}"),
            Reason::Asn(a) => write!(f, "AS number rule AS{a}"),
            Reason::Subdivision(s) => write!(f, "subdivision rule {s}"),
            Reason::Country(c) => write!(f, "country rule {c}"),
            Reason::Continent(c) => write!(f, "continent rule {c}"),
            Reason::Default => f.write_str("no rule matched: the map's default"),
            Reason::Nearest(c) => write!(f, "nearest to {:.4}, {:.4}", c.lat, c.lon),
            Reason::Unknown => {
                f.write_str("client location unknown: candidates in the order written")
            }
        }
    }
}

impl CompiledPolicy {
    /// A policy over candidates at `coords`.
    pub fn new(
        coords: Vec<Option<Coord>>,
        rule: Rule,
        networks: Vec<(IpNet, Vec<u8>)>,
        band_km: Option<f64>,
    ) -> Self {
        let units = coords.iter().map(|c| c.map(|c| c.unit())).collect();
        Self {
            coords,
            rule,
            networks,
            band_km,
            units,
        }
    }

    /// Each candidate's location (positions as in the GSLB name).
    pub fn coords(&self) -> &[Option<Coord>] {
        &self.coords
    }

    /// Great-circle distance from `client` to each candidate (infinite where a candidate
    /// has no location). From the chord between points on the unit sphere: the client's
    /// point costs four sines and cosines, each candidate's was worked out once, and a city
    /// database has hundreds of thousands of locations to decide at load.
    pub fn distances(&self, client: Coord) -> smallvec::SmallVec<[f64; 16]> {
        let u = client.unit();
        self.units
            .iter()
            .map(|v| match v {
                Some(v) => arc_km(&u, v),
                None => f64::INFINITY,
            })
            .collect()
    }
    /// Orders the candidates for a client at `loc` in AS `asn` (0 = unknown). Network
    /// rules are not consulted here: they are laid over the table by address.
    pub fn decide(&self, loc: &Location, asn: u32) -> (Vec<u8>, Reason) {
        match &self.rule {
            Rule::Nearest => self.nearest(loc),
            Rule::Map {
                asn: asn_rules,
                subdivision,
                country,
                continent,
                default,
            } => {
                let hit = (asn != 0)
                    .then(|| asn_rules.iter().find(|(a, _)| *a == asn))
                    .flatten()
                    .map(|(a, l)| (l.clone(), Reason::Asn(*a)))
                    .or_else(|| {
                        let sub = loc.subdivision.as_deref()?;
                        subdivision
                            .iter()
                            .find(|(s, _)| &**s == sub)
                            .map(|(s, l)| (l.clone(), Reason::Subdivision(s.clone())))
                    })
                    .or_else(|| {
                        let c = loc.country?;
                        country
                            .iter()
                            .find(|(k, _)| *k == c)
                            .map(|(k, l)| (l.clone(), Reason::Country(*k)))
                    })
                    .or_else(|| {
                        let c = loc.continent?;
                        continent
                            .iter()
                            .find(|(k, _)| *k == c)
                            .map(|(k, l)| (l.clone(), Reason::Continent(*k)))
                    });
                match (hit, default) {
                    (Some(h), _) => h,
                    (None, Some(list)) => (list.clone(), Reason::Default),
                    (None, None) => self.nearest(loc),
                }
            }
        }
    }

    fn nearest(&self, loc: &Location) -> (Vec<u8>, Reason) {
        let mut order: Vec<u8> = (0..self.coords.len() as u8).collect();
        let Some(client) = loc.coord else {
            return (order, Reason::Unknown);
        };
        let dist = self.distances(client);
        // Stable: equal distances keep the written order.
        order.sort_by(|a, b| dist[*a as usize].total_cmp(&dist[*b as usize]));
        (order, Reason::Nearest(client))
    }

    /// How many candidates at the head of `order` are as near as the first, by `band`: 1
    /// without a band, for an unknown location, and for lists not ordered by distance.
    pub fn near(&self, loc: &Location, order: &[u8], reason: &Reason) -> u8 {
        let (Some(band), Some(client), Reason::Nearest(_)) = (self.band_km, loc.coord, reason)
        else {
            return 1;
        };
        let dist = self.distances(client);
        let Some(&first) = order.first() else {
            return 1;
        };
        let limit = dist[first as usize] + band;
        order
            .iter()
            .take_while(|&&i| dist[i as usize] <= limit)
            .count()
            .max(1) as u8
    }

    /// The network rule covering `ip`, if any (longest prefix, later entry on a tie).
    pub fn network_rule(&self, ip: std::net::IpAddr) -> Option<&(IpNet, Vec<u8>)> {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n.contains(&ip))
            .max_by_key(|(i, (n, _))| (n.prefix_len(), *i))
            .map(|(_, r)| r)
    }
}

/// Great-circle distance in km between two points on the unit sphere.
fn arc_km(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
    2.0 * super::EARTH_RADIUS_KM * (chord / 2.0).min(1.0).asin()
}

/// Compiles `policy` over every address: each range of `base` gets the list its location
/// decides, network rules are laid over by address, and neighbours with one list merge.
/// The two families are compiled on two threads (each is millions of ranges in a city
/// database), then their lists are merged into one set.
pub fn build_table(
    base: &BasePartition,
    unlocated: &Unlocated,
    policy: &CompiledPolicy,
) -> GeoTable {
    let nets: Vec<(IpNet, usize)> = policy
        .networks
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, i))
        .collect();
    let (n4, n6) = Partition::from_networks(&nets);
    let family = |part: &Partition<(u32, u32)>, rules: &Partition<Option<usize>>, f: Family| {
        let mut lists = Lists::default();
        let v = compile_family(base, part, rules, policy, &mut lists);
        let unplaced = v.overlaps(unlocated.partition(f), |u| *u);
        (v, unplaced, lists)
    };
    let ((v4, u4, mut lists), (v6, u6, lists6)) = std::thread::scope(|s| {
        let v6 = s.spawn(|| family(&base.v6, &n6, Family::V6));
        let v4 = family(&base.v4, &n4, Family::V4);
        (v4, v6.join().expect("the IPv6 table compiles"))
    });
    // The IPv6 ids, renumbered into the IPv4 side's set.
    let renumber: Vec<ListId> = lists6
        .lists
        .into_iter()
        .map(|r| lists.intern(r.order.into_vec(), r.near))
        .collect();
    let v6 = v6.derive(|id| renumber[*id as usize]);
    GeoTable::new((v4, u4), (v6, u6), lists.lists)
}

/// Candidate lists, each stored once, by id.
#[derive(Default)]
struct Lists {
    lists: Vec<Ranked>,
    ids: FxHashMap<(Vec<u8>, u8), ListId>,
}

impl Lists {
    fn intern(&mut self, order: Vec<u8>, near: u8) -> ListId {
        let lists = &mut self.lists;
        *self
            .ids
            .entry((order, near))
            .or_insert_with_key(|(order, near)| {
                lists.push(Ranked {
                    order: order.clone().into_boxed_slice(),
                    near: *near,
                });
                (lists.len() - 1) as ListId
            })
    }
}

/// One family's ranges → list ids: network rules (`rules`: index into the policy's
/// networks) over the locations' decisions.
fn compile_family(
    base: &BasePartition,
    part: &Partition<(u32, u32)>,
    rules: &Partition<Option<usize>>,
    policy: &CompiledPolicy,
    lists: &mut Lists,
) -> Partition<ListId> {
    let forced: Vec<ListId> = policy
        .networks
        .iter()
        .map(|(_, l)| lists.intern(l.clone(), 1))
        .collect();
    // Each location is decided once. Without AS number rules the AS number cannot change
    // the list, so the memo is a plain array by location id (millions of ranges, a few
    // hundred thousand locations in a city database); with them, a map by both.
    let asn_rules = matches!(&policy.rule, Rule::Map { asn, .. } if !asn.is_empty());
    let mut by_location: Vec<ListId> = vec![ListId::MAX; base.locations.len()];
    let mut by_both: FxHashMap<(u32, u32), ListId> = FxHashMap::default();
    part.zip(rules, |(loc, asn), rule| {
        if let Some(i) = rule {
            return forced[i];
        }
        let mut compute = || {
            let location = &base.locations[loc as usize];
            let (list, reason) = policy.decide(location, asn);
            let near = policy.near(location, &list, &reason);
            lists.intern(list, near)
        };
        if asn_rules {
            *by_both.entry((loc, asn)).or_insert_with(compute)
        } else {
            let slot = &mut by_location[loc as usize];
            if *slot == ListId::MAX {
                *slot = compute();
            }
            *slot
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> Code {
        Code::parse(s).unwrap()
    }

    fn loc(country: &str, continent: &str, sub: Option<&str>) -> Location {
        Location {
            country: Some(code(country)),
            continent: Some(code(continent)),
            subdivision: sub.map(Box::from),
            ..Location::default()
        }
    }

    fn map_policy() -> CompiledPolicy {
        CompiledPolicy::new(
            vec![None, None, None],
            Rule::Map {
                asn: vec![(64500, vec![2])],
                subdivision: vec![(Box::from("US-CA"), vec![1, 0])],
                country: vec![(code("US"), vec![0, 1])],
                continent: vec![(code("NA"), vec![1]), (code("EU"), vec![2, 0])],
                default: Some(vec![0]),
            },
            vec![],
            None,
        )
    }

    #[test]
    fn chord_distances_agree_with_haversine() {
        let grid: Vec<Coord> = (-9..=9)
            .flat_map(|a| {
                (-18..=18).map(move |o| Coord {
                    lat: f64::from(a) * 9.99,
                    lon: f64::from(o) * 9.99,
                })
            })
            .collect();
        let sites = [grid[0], grid[100], grid[333], grid[grid.len() - 1]];
        let p = CompiledPolicy::new(
            sites.iter().map(|c| Some(*c)).chain([None]).collect(),
            Rule::Nearest,
            vec![],
            None,
        );
        for client in &grid {
            let d = p.distances(*client);
            for (site, got) in sites.iter().zip(&d) {
                let want = client.distance_km(site);
                assert!(
                    (got - want).abs() < 1e-6,
                    "{client:?} → {site:?}: {got} vs {want}"
                );
            }
            assert_eq!(d[4], f64::INFINITY);
        }
    }

    #[test]
    fn the_most_specific_map_rule_wins() {
        let p = map_policy();
        let us_ca = loc("US", "NA", Some("US-CA"));
        assert_eq!(p.decide(&us_ca, 64500), (vec![2], Reason::Asn(64500)));
        assert_eq!(
            p.decide(&us_ca, 0),
            (vec![1, 0], Reason::Subdivision(Box::from("US-CA")))
        );
        assert_eq!(
            p.decide(&loc("US", "NA", Some("US-NY")), 0),
            (vec![0, 1], Reason::Country(code("US")))
        );
        assert_eq!(
            p.decide(&loc("CA", "NA", None), 0),
            (vec![1], Reason::Continent(code("NA")))
        );
        assert_eq!(
            p.decide(&loc("BR", "SA", None), 0),
            (vec![0], Reason::Default)
        );
        assert_eq!(
            p.decide(&Location::default(), 0),
            (vec![0], Reason::Default)
        );
    }

    #[test]
    fn nearest_orders_by_distance_and_unknown_keeps_written_order() {
        let ams = Coord {
            lat: 52.37,
            lon: 4.90,
        };
        let nyc = Coord {
            lat: 40.71,
            lon: -74.01,
        };
        let sin = Coord {
            lat: 1.35,
            lon: 103.82,
        };
        let p = CompiledPolicy::new(
            vec![Some(ams), Some(nyc), Some(sin)],
            Rule::Nearest,
            vec![],
            None,
        );
        let sao_paulo = Location {
            coord: Some(Coord {
                lat: -23.55,
                lon: -46.63,
            }),
            ..Location::default()
        };
        assert_eq!(p.decide(&sao_paulo, 0).0, vec![1, 0, 2]);
        let sydney = Location {
            coord: Some(Coord {
                lat: -33.87,
                lon: 151.21,
            }),
            ..Location::default()
        };
        assert_eq!(p.decide(&sydney, 0).0, vec![2, 1, 0]);
        assert_eq!(
            p.decide(&Location::default(), 0),
            (vec![0, 1, 2], Reason::Unknown)
        );
    }

    #[test]
    fn map_default_nearest_falls_back_to_distance() {
        let map = map_policy();
        let coords = [0.0, 90.0, 180.0].map(|lon| Some(Coord { lat: 0.0, lon }));
        let mut p = CompiledPolicy::new(coords.to_vec(), map.rule, vec![], None);
        if let Rule::Map { default, .. } = &mut p.rule {
            *default = None;
        }
        let near_third = Location {
            coord: Some(Coord {
                lat: 0.0,
                lon: 170.0,
            }),
            ..Location::default()
        };
        assert_eq!(p.decide(&near_third, 0).0, vec![2, 1, 0]);
    }

    #[test]
    fn network_rules_beat_locations_and_tables_merge_neighbours() {
        let us = loc("US", "NA", None);
        let base = BasePartition {
            v4: Partition::from_sorted(
                Family::V4,
                vec![(0, 99, 1u32), (100, 199, 1u32), (200, 299, 2u32)],
            )
            .derive(|v| (v.unwrap_or(0), 0)),
            v6: Partition::uniform(Family::V6, (0, 0)),
            locations: vec![Location::default(), us.clone(), loc("FR", "EU", None)],
        };
        let mut p = map_policy();
        p.networks = vec![("0.0.0.128/25".parse().unwrap(), vec![2])];
        let t = build_table(&base, &Unlocated::new(&base), &p);
        let at = |n: u32| t.lookup(std::net::IpAddr::V4(n.into()));
        assert_eq!(at(5).list, &[0, 1]); // US
        assert_eq!(at(130).list, &[2]); // network rule
        assert_eq!(at(270).list, &[2, 0]); // EU
        assert_eq!(at(5000).list, &[0]); // unknown: default
        // 0..=127 is one US range after merging 0-99 and 100-127: scope /25.
        assert_eq!(at(5).scope, 25);
        assert!(!t.is_uniform());
        // Only the range holding unknown space sends a lookup on to the unlocated set.
        assert!(at(5000).maybe_unlocated);
        assert!(!at(5).maybe_unlocated);
        assert!(!at(270).maybe_unlocated);
    }
}
