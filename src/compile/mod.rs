//! Validated zones → [`Snapshot`]: the immutable lookup structure the query path reads.
//!
//! Everything a query needs is decided here, once per load: names become keys into hash
//! tables of lowercase wire names, empty non-terminals become nodes, each node knows the
//! delegation above it, each NS/MX/SRV set carries its additional-section addresses, and
//! every record is a ready [`Record`]. A query then only hashes byte slices and borrows.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use std::sync::Arc;

use std::net::IpAddr;

use std::collections::HashSet;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use smallvec::SmallVec;

use self::index::NameIndex;
use crate::answer::Entries;
use crate::family::Family;
use crate::geo::db::{BasePartition, GeoDb};
use crate::geo::decision::{CompiledPolicy, Rule, build_table};
use crate::geo::table::GeoTable;
use crate::geo::unlocated::Unlocated;
use crate::health::load::LoadKey;
use crate::health::{
    HealthId, HealthSources, HealthTable, Key, LoadId, LoadState, TableFull, TargetHealth,
};
use crate::metrics::{self, Series, Slot};
use crate::name_key::{NameKey, key_of, wildcard_of};
use crate::weigh;
use crate::zone::model::{AllDown, Datacenter, DcAddress, DcIdx, Fallback, Gslb, Policy, Select};
use crate::zone::{Node, Zone};

/// Index of a node within its zone.
///
/// Why not `usize`: it says which table it indexes, and is half the size in tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeId(u32);

/// A set of a zone's nodes, one bit each.
#[derive(Debug)]
struct NodeSet(Box<[u64]>);

impl NodeSet {
    fn new(nodes: usize) -> Self {
        Self(vec![0; nodes.div_ceil(64)].into_boxed_slice())
    }

    fn insert(&mut self, id: NodeId) {
        self.0[id.0 as usize / 64] |= 1 << (id.0 % 64);
    }

    fn contains(&self, id: NodeId) -> bool {
        self.0
            .get(id.0 as usize / 64)
            .is_some_and(|w| w & (1 << (id.0 % 64)) != 0)
    }
}

/// One compiled generation of every served zone.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one on every successful load; shown in logs and `explain`.
    pub generation: u64,
    zones: Vec<CompiledZone>,
    /// Keyed by lowercase wire names; FxHash because the keys are fixed at load (nothing a
    /// client sends can shape the table) and hashing is on every query.
    zone_index: FxHashMap<Box<[u8]>, usize>,
    /// Bit n set when some zone's apex has n labels (n < 128, as a name has at most 127):
    /// only suffixes that long can be a zone, so the others are never hashed.
    zone_depths: u128,
    /// The databases the geo tables were compiled from, kept for `explain`.
    pub geo: Arc<GeoDb>,
    /// The addresses the databases cannot place, for counting GeoIP misses.
    pub unlocated: Unlocated,
    /// Health and overrides of every address and data center, by the ids stored in the
    /// candidates. Shared with every other snapshot, so state survives reloads.
    pub health: Arc<HealthTable>,
    /// Every (check, address) this snapshot reads, so probes nothing uses can stop.
    pub health_keys: HashSet<Key>,
    /// Every data center with a load signal, so signals nothing uses can stop.
    pub load_keys: HashSet<LoadKey>,
}

/// One zone, compiled.
#[derive(Debug)]
pub struct CompiledZone {
    /// The apex.
    pub origin: Name,
    /// Labels in the apex name.
    pub apex_labels: usize,
    nodes: Vec<CompiledNode>,
    index: NameIndex,
    /// The nodes with a wildcard child (`*.` and their name), so a name that does not
    /// exist costs no wildcard lookup under an encloser that has none.
    wildcard_parents: NodeSet,
    /// The SOA record with its own TTL, for SOA queries.
    pub soa: Box<[Record]>,
    /// The SOA record with the negative TTL (min of SOA TTL and MINIMUM, RFC 2308 §5).
    pub negative_soa: Box<[Record]>,
    /// The names of both SOA records in wire form, for the fast writer.
    pub soa_names: SoaNames,
    /// The first of its `meridian_queries_total` cells.
    pub queries_metric: Slot,
}

/// One owner name, compiled.
#[derive(Debug)]
pub struct CompiledNode {
    /// Owner name as written (lowercased).
    pub name: Name,
    /// Record sets (empty for an empty non-terminal).
    pub rrsets: Box<[CompiledRrset]>,
    /// The highest delegation point at or above this node, if any (never the apex).
    pub cut: Option<NodeId>,
    /// For GSLB names: how A/AAAA answers are chosen.
    pub gslb: Option<Box<GslbNode>>,
}

/// A GSLB name, compiled: the geo table of its policy and each candidate's answers.
#[derive(Debug)]
pub struct GslbNode {
    /// Address → ordered candidate positions, with the ECS scope. Shared by names with
    /// the same policy and candidates.
    pub table: Arc<GeoTable>,
    /// The policy the table was built from, for `explain`.
    pub policy: Arc<CompiledPolicy>,
    /// Candidates, in the order written.
    pub candidates: Box<[Candidate]>,
    /// By [`Family::index`]: some candidate has an address of the family. When none has,
    /// NODATA holds for every client.
    pub serves: [bool; 2],
    /// Data centers per answer.
    pub max_datacenters: usize,
    /// What to answer when every candidate is down.
    pub all_down: AllDownAnswer,
    /// Addresses per data center and family in one answer.
    pub max_addresses: usize,
    /// Its `meridian_all_down_answers_total` cell.
    pub all_down_metric: Slot,
    /// Its `meridian_failover_answers_total` cell.
    pub failover_metric: Slot,
    /// How one data center is chosen among those sharing a client.
    pub select: Select,
    /// Data centers at the head of a client's list that share its traffic.
    pub spread: usize,
    /// Healthy candidates after the head that take a down data center's share.
    pub spill: usize,
    /// First index of this name's data centers in the per-thread rotation state: one slot
    /// per candidate for choosing it, then two per candidate for its shedding turn.
    pub rotor: u32,
}

/// The all-down policy of a name, with its records ready.
#[derive(Debug)]
pub enum AllDownAnswer {
    /// Answer from the candidates as if all were up.
    FailOpen,
    /// SERVFAIL.
    ServFail,
    /// NOERROR, no records.
    NoData,
    /// Fixed addresses, at the short TTL.
    Records {
        /// IPv4 records.
        a: Box<[Record]>,
        /// IPv6 records.
        aaaa: Box<[Record]>,
    },
    /// A CNAME, at the short TTL; followed inside the zone like any other.
    Cname(CompiledRrset),
}

/// One candidate data center of a GSLB name, with its ready answers and health.
#[derive(Debug)]
pub struct Candidate {
    /// Data center id.
    pub datacenter: String,
    /// Relative capacity among the data centers sharing a client; 0 is drained.
    pub weight: u32,
    /// A hash of the data center id: its identity in rendezvous hashing, the same across
    /// restarts and reloads.
    pub key: u64,
    /// Its slot in the table's load column, when it reports load: the share it keeps.
    pub load: Option<LoadId>,
    /// Its load signal's last read, for `explain`.
    pub load_state: Option<Arc<LoadState>>,
    /// The data center's slot in the health table (its override).
    pub slot: HealthId,
    /// Its `meridian_answers_total` cell for this name.
    pub answers_metric: Slot,
    /// IPv4 answers.
    pub a: FamilyAnswers,
    /// IPv6 answers.
    pub aaaa: FamilyAnswers,
}

/// The addresses of one family of a candidate, as records at both TTLs, with where each
/// address's health is (same index).
#[derive(Debug, Default)]
pub struct FamilyAnswers {
    /// Records at the name's TTL.
    pub records: Box<[Record]>,
    /// The same records at the name's `min_ttl`, for answers while candidates are unhealthy.
    pub short: Box<[Record]>,
    /// Each address's slot in the health table: probe state and override.
    pub slots: Box<[HealthId]>,
    /// Each address's probe, for `explain`'s detail; `None` when it has no check.
    pub checks: Box<[Option<Arc<TargetHealth>>]>,
    /// Each address's weight within the data center.
    pub weights: Box<[u32]>,
    /// A hash of each address: its identity in rendezvous hashing.
    pub keys: Box<[u64]>,
    /// First index of these addresses in the per-thread rotation state.
    pub rotor: u32,
}

impl Candidate {
    /// The answers of one address family.
    pub fn family(&self, family: Family) -> &FamilyAnswers {
        match family {
            Family::V4 => &self.a,
            Family::V6 => &self.aaaa,
        }
    }
}

/// Records of one name and type, with what goes beside them.
#[derive(Debug)]
pub struct CompiledRrset {
    /// Record type.
    pub rtype: RecordType,
    /// The records.
    pub data: RrData,
    /// Addresses of in-zone NS/MX/SRV targets, for the additional section.
    pub additional: Box<[Record]>,
    /// For a CNAME: the target's key, so the chain can be followed without allocating.
    pub cname_target: Option<Box<[u8]>>,
}

/// How an RRset's records are held.
#[derive(Debug)]
pub enum RrData {
    /// As hickory-proto records: every type but static addresses.
    Records(Box<[Record]>),
    /// A or AAAA records of one owner as their TTL and RDATA, back to back (4 or 16 bytes
    /// each; one or two addresses need no allocation). A big zone is mostly these: a
    /// `Record` is 272 bytes, and the owner is the node's name already.
    Addresses {
        /// The TTL.
        ttl: u32,
        /// Each record's RDATA.
        rdata: SmallVec<[u8; 16]>,
    },
}

impl CompiledRrset {
    /// The records as answer entries; `owner` is the node's name.
    pub fn entries<'s>(&'s self, owner: &'s Name) -> Entries<'s> {
        match &self.data {
            RrData::Records(r) => Entries::Records(r.iter()),
            RrData::Addresses { ttl, rdata } => {
                let width = if self.rtype == RecordType::AAAA {
                    16
                } else {
                    4
                };
                Entries::Addresses(owner, *ttl, rdata.chunks_exact(width))
            }
        }
    }

    /// The first record held whole (a CNAME's, for its target).
    pub fn first_record(&self) -> Option<&Record> {
        match &self.data {
            RrData::Records(r) => r.first(),
            RrData::Addresses { .. } => None,
        }
    }
}

/// Where a name led inside a zone.
#[derive(Debug, Clone, Copy)]
pub enum Found {
    /// The name exists (possibly as an empty non-terminal).
    Node(NodeId),
    /// The name does not exist but a wildcard covers it.
    Wildcard(NodeId),
    /// The name is at or below a delegation point.
    Delegated(NodeId),
    /// The name does not exist.
    NxDomain,
}

impl Snapshot {
    /// Compiles validated zones (see [`crate::zone::validate`]) with the geo data of `geo`
    /// (`base` is its partition, computed once per load).
    pub fn compile(
        zones: &[Zone],
        geo: Arc<GeoDb>,
        base: &BasePartition,
        health: &HealthSources,
        generation: u64,
    ) -> Result<Self, TableFull> {
        let unlocated = Unlocated::new(base);
        let mut ctx = Ctx {
            tables: TableCache::default(),
            health,
            unlocated: &unlocated,
            keys: HashSet::new(),
            load_keys: HashSet::new(),
            rotors: 0,
        };
        let compiled: Vec<CompiledZone> = zones
            .iter()
            .map(|z| CompiledZone::compile(z, base, &mut ctx))
            .collect::<Result<_, _>>()?;
        let zone_index = compiled
            .iter()
            .enumerate()
            .map(|(i, z)| (key_of(&z.origin), i))
            .collect();
        let zone_depths = compiled
            .iter()
            .fold(0u128, |bits, z| bits | 1 << z.apex_labels.min(127));
        let Ctx {
            keys, load_keys, ..
        } = ctx;
        Ok(Self {
            generation,
            zones: compiled,
            zone_index,
            zone_depths,
            geo,
            unlocated,
            health: health.table().clone(),
            health_keys: keys,
            load_keys,
        })
    }

    /// The most specific served zone containing `key`.
    pub fn find_zone(&self, key: &NameKey) -> Option<&CompiledZone> {
        self.find_zone_from(key, 0)
    }

    /// The most specific served zone strictly above `key`'s own name: the parent side of
    /// a zone cut, which holds the DS records.
    pub fn find_parent_zone(&self, key: &NameKey) -> Option<&CompiledZone> {
        self.find_zone_from(key, 1)
    }

    /// Tries `key`'s suffixes from `first_skip` labels removed, longest first.
    fn find_zone_from(&self, key: &NameKey, first_skip: usize) -> Option<&CompiledZone> {
        let labels = key.labels();
        (first_skip..=labels)
            .filter(|&skip| self.zone_depths & (1 << (labels - skip)) != 0)
            .find_map(|skip| {
                self.zone_index
                    .get(key.suffix(skip))
                    .map(|&i| &self.zones[i])
            })
    }

    /// Zones (origins) that declare a data center with this id.
    pub fn datacenter_zones(&self, id: &str) -> Vec<String> {
        self.zones
            .iter()
            .filter(|z| {
                z.gslb_nodes()
                    .any(|g| g.candidates.iter().any(|c| c.datacenter == id))
            })
            .map(|z| z.origin.to_string())
            .collect()
    }

    /// Every address any GSLB name can answer.
    pub fn datacenter_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.zones.iter().flat_map(|z| {
            z.gslb_nodes().flat_map(|g| {
                g.candidates.iter().flat_map(|c| {
                    c.a.records
                        .iter()
                        .chain(c.aaaa.records.iter())
                        .filter_map(|r| match &r.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                            _ => None,
                        })
                })
            })
        })
    }

    /// Every zone, in load order.
    pub fn zones(&self) -> &[CompiledZone] {
        &self.zones
    }
}

impl CompiledZone {
    fn compile(zone: &Zone, base: &BasePartition, ctx: &mut Ctx<'_>) -> Result<Self, TableFull> {
        let origin = zone.origin.clone();
        let apex_labels = origin.num_labels() as usize;

        // All names with data, plus their ancestors up to the apex (empty non-terminals).
        let mut by_name: BTreeMap<Name, Option<&Node>> = BTreeMap::new();
        for node in &zone.nodes {
            by_name.insert(node.name.clone(), Some(node));
            let mut parent = node.name.base_name();
            while parent.num_labels() as usize > apex_labels {
                by_name.entry(parent.clone()).or_insert(None);
                parent = parent.base_name();
            }
        }
        by_name.entry(origin.clone()).or_insert(None);

        let ids: HashMap<Name, NodeId> = by_name
            .keys()
            .enumerate()
            .map(|(i, n)| (n.clone(), NodeId(i as u32)))
            .collect();
        let model: HashMap<&Name, &Node> = zone.nodes.iter().map(|n| (&n.name, n)).collect();
        let mut wildcard_parents = NodeSet::new(ids.len());
        for name in by_name.keys().filter(|n| n.is_wildcard()) {
            // Every ancestor up to the apex is a node, so the parent has an id.
            if let Some(&parent) = ids.get(&name.base_name()) {
                wildcard_parents.insert(parent);
            }
        }

        let is_cut = |name: &Name| {
            *name != origin
                && model
                    .get(name)
                    .is_some_and(|n| n.rrset(RecordType::NS).is_some())
        };
        let addresses_of = |target: &Name| -> Vec<Record> {
            let Some(node) = model.get(target) else {
                return Vec::new();
            };
            [RecordType::A, RecordType::AAAA]
                .iter()
                .filter_map(|t| node.rrset(*t))
                .flat_map(|rs| {
                    rs.data
                        .iter()
                        .map(|d| Record::from_rdata(node.name.clone(), rs.ttl.secs(), d.clone()))
                })
                .collect()
        };

        let mut nodes = Vec::with_capacity(by_name.len());
        for (name, node) in &by_name {
            // The highest cut on the path apex → name decides: a referral there hides all below.
            let mut cut = None;
            let labels = name.num_labels() as usize;
            for depth in (apex_labels + 1)..=labels {
                let ancestor = name.trim_to(depth);
                if is_cut(&ancestor) {
                    cut = ids.get(&ancestor).copied();
                    break;
                }
            }
            let rrsets = node
                .map(|n| {
                    n.rrsets
                        .iter()
                        .map(|rs| {
                            let data = match rs.rtype {
                                RecordType::A | RecordType::AAAA => RrData::Addresses {
                                    ttl: rs.ttl.secs(),
                                    rdata: rs
                                        .data
                                        .iter()
                                        .flat_map(|d| match d {
                                            RData::A(a) => a.0.octets().to_vec(),
                                            RData::AAAA(a) => a.0.octets().to_vec(),
                                            _ => Vec::new(),
                                        })
                                        .collect(),
                                },
                                _ => RrData::Records(
                                    rs.data
                                        .iter()
                                        .map(|d| {
                                            Record::from_rdata(
                                                name.clone(),
                                                rs.ttl.secs(),
                                                d.clone(),
                                            )
                                        })
                                        .collect(),
                                ),
                            };
                            let targets: Vec<&Name> = rs
                                .data
                                .iter()
                                .filter_map(|d| match d {
                                    RData::NS(ns) => Some(&ns.0),
                                    RData::MX(mx) => Some(&mx.exchange),
                                    RData::SRV(srv) => Some(&srv.target),
                                    _ => None,
                                })
                                .collect();
                            let mut additional: Vec<Record> = Vec::new();
                            for t in targets {
                                for r in addresses_of(t) {
                                    if !additional.contains(&r) {
                                        additional.push(r);
                                    }
                                }
                            }
                            let cname_target = rs.data.iter().find_map(|d| match d {
                                RData::CNAME(c) => Some(key_of(&c.0)),
                                _ => None,
                            });
                            CompiledRrset {
                                rtype: rs.rtype,
                                data,
                                additional: additional.into_boxed_slice(),
                                cname_target,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let gslb = match node.and_then(|n| n.gslb.as_ref()) {
                Some(g) => Some(Box::new(compile_gslb(zone, name, g, base, ctx)?)),
                None => None,
            };
            nodes.push(CompiledNode {
                name: name.clone(),
                rrsets,
                cut,
                gslb,
            });
        }

        let index = NameIndex::new(&nodes);
        let soa_rdata = RData::SOA(zone.soa.clone());
        let negative_ttl = negative_ttl(&zone.soa, zone.soa_ttl.secs());
        Ok(Self {
            soa: Box::new([Record::from_rdata(
                origin.clone(),
                zone.soa_ttl.secs(),
                soa_rdata.clone(),
            )]),
            negative_soa: Box::new([Record::from_rdata(origin.clone(), negative_ttl, soa_rdata)]),
            soa_names: SoaNames {
                owner: WireName::new(&origin),
                mname: WireName::new(&zone.soa.mname),
                rname: WireName::new(&zone.soa.rname),
            },
            queries_metric: metrics::slot(Series::Queries {
                zone: origin.to_string().into(),
            }),
            origin,
            apex_labels,
            nodes,
            index,
            wildcard_parents,
        })
    }

    /// The node with id `id`.
    pub fn node(&self, id: NodeId) -> &CompiledNode {
        &self.nodes[id.0 as usize]
    }

    /// The GSLB names of the zone.
    pub fn gslb_nodes(&self) -> impl Iterator<Item = &GslbNode> {
        self.nodes.iter().filter_map(|n| n.gslb.as_deref())
    }

    /// The GSLB names of the zone, with their names.
    pub fn gslb_names(&self) -> impl Iterator<Item = (&Name, &GslbNode)> {
        self.nodes
            .iter()
            .filter_map(|n| n.gslb.as_deref().map(|g| (&n.name, g)))
    }

    /// Every owner name of the zone (empty non-terminals too).
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.nodes.iter().map(|n| &n.name)
    }

    /// Number of nodes (names with data plus empty non-terminals).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Finds `key` (which must be inside this zone) by RFC 1034 §4.3.2 and RFC 4592:
    /// exact match, else the closest encloser's wildcard, minding delegations on the way.
    pub fn find(&self, key: &NameKey) -> Found {
        if let Some(id) = self.index.get(key.full(), &self.nodes) {
            return match self.node(id).cut {
                Some(cut) => Found::Delegated(cut),
                None => Found::Node(id),
            };
        }
        // Closest encloser: the longest existing ancestor. The apex always exists.
        let below_apex = key.labels().saturating_sub(self.apex_labels);
        for skip in 1..=below_apex {
            let suffix = key.suffix(skip);
            let Some(id) = self.index.get(suffix, &self.nodes) else {
                continue;
            };
            if let Some(cut) = self.node(id).cut {
                return Found::Delegated(cut);
            }
            if !self.wildcard_parents.contains(id) {
                return Found::NxDomain;
            }
            let mut buf = [0u8; 257];
            if let Some(n) = wildcard_of(suffix, &mut buf) {
                if let Some(w) = self.index.get(&buf[..n], &self.nodes) {
                    return Found::Wildcard(w);
                }
            }
            return Found::NxDomain;
        }
        Found::NxDomain
    }
}

impl CompiledNode {
    /// The record set of `rtype`, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&CompiledRrset> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }
}

/// Geo tables built so far in this load, so names with the same policy share one.
#[derive(Default)]
struct TableCache(Vec<(Arc<CompiledPolicy>, Arc<GeoTable>)>);

/// State of one compilation.
struct Ctx<'h> {
    tables: TableCache,
    health: &'h HealthSources,
    /// Where the databases place no one (tables mark the ranges that hold such addresses).
    unlocated: &'h Unlocated,
    keys: HashSet<Key>,
    /// Every (zone, data center) with a load signal.
    load_keys: HashSet<LoadKey>,
    /// Next free index of the per-thread rotation state (see [`crate::weigh`]).
    rotors: u32,
}

fn compile_gslb(
    zone: &Zone,
    name: &Name,
    g: &Gslb,
    base: &BasePartition,
    ctx: &mut Ctx<'_>,
) -> Result<GslbNode, TableFull> {
    let tables = &mut ctx.tables;
    let datacenters: &[Datacenter] = &zone.datacenters;
    // Data center indices → positions among the candidates (at most MAX_CANDIDATES).
    let positions = |list: &[DcIdx]| -> Vec<u8> {
        list.iter()
            .filter_map(|dc| g.candidates.iter().position(|c| c == dc))
            .map(|p| p as u8)
            .collect()
    };
    let mut networks: Vec<(ipnet::IpNet, Vec<u8>)> = zone
        .network_overrides
        .iter()
        .map(|(n, l)| (*n, positions(l)))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let rule = match &g.policy {
        Policy::Nearest => Rule::Nearest,
        Policy::Map(m) => {
            networks.extend(m.network.iter().map(|(n, l)| (*n, positions(l))));
            Rule::Map {
                asn: m.asn.iter().map(|(a, l)| (*a, positions(l))).collect(),
                subdivision: m
                    .subdivision
                    .iter()
                    .map(|(s, l)| (Box::from(s.as_str()), positions(l)))
                    .collect(),
                country: m.country.iter().map(|(c, l)| (*c, positions(l))).collect(),
                continent: m
                    .continent
                    .iter()
                    .map(|(c, l)| (*c, positions(l)))
                    .collect(),
                default: match &m.default {
                    Fallback::Nearest => None,
                    Fallback::List(l) => Some(positions(l)),
                },
            }
        }
    };
    let policy = CompiledPolicy::new(
        g.candidates
            .iter()
            .map(|&c| datacenters[c].location)
            .collect(),
        rule,
        networks,
        g.band_km,
    );
    let (policy, table) = match tables.0.iter().find(|(p, _)| **p == policy) {
        Some((p, t)) => (p.clone(), t.clone()),
        None => {
            let table = Arc::new(build_table(base, ctx.unlocated, &policy));
            let policy = Arc::new(policy);
            tables.0.push((policy.clone(), table.clone()));
            (policy, table)
        }
    };
    let (ttl, short_ttl) = (g.ttl.secs(), g.min_ttl.secs());
    let zone_name = zone.origin.to_string();
    // Per data center: one slot for choosing it, two for its shedding turn.
    let rotor = ctx.rotors;
    ctx.rotors += 3 * g.candidates.len() as u32;
    let mut family = |dc: &Datacenter, v6: bool| -> Result<FamilyAnswers, TableFull> {
        let addrs: Vec<&DcAddress> = dc
            .addresses
            .iter()
            .filter(|a| a.ip.is_ipv6() == v6)
            .collect();
        let rotor = ctx.rotors;
        ctx.rotors += addrs.len() as u32;
        let mut slots = Vec::with_capacity(addrs.len());
        let mut checks = Vec::with_capacity(addrs.len());
        for a in &addrs {
            let check = match &a.check {
                Some(check) => {
                    ctx.keys.insert((check.clone(), a.ip));
                    Some(ctx.health.registry.target(check, a.ip)?)
                }
                None => None,
            };
            slots.push(match check.as_ref().and_then(|c| c.slot()) {
                Some(id) => id,
                None => ctx.health.table().address_slot(None, a.ip)?,
            });
            checks.push(check);
        }
        Ok(FamilyAnswers {
            records: addrs
                .iter()
                .map(|a| address_record(name, a.ip, ttl))
                .collect(),
            short: addrs
                .iter()
                .map(|a| address_record(name, a.ip, short_ttl))
                .collect(),
            slots: slots.into(),
            checks: checks.into(),
            weights: addrs.iter().map(|a| a.weight).collect(),
            keys: addrs
                .iter()
                .map(|a| {
                    weigh::stable_hash(&match a.ip {
                        IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
                        IpAddr::V6(ip) => ip.octets(),
                    })
                })
                .collect(),
            rotor,
        })
    };
    let mut candidates = Vec::with_capacity(g.candidates.len());
    for &c in &g.candidates {
        let dc = &datacenters[c];
        let load_state = match &dc.load {
            Some(signal) => {
                ctx.load_keys.insert((zone_name.clone(), dc.id.clone()));
                Some(ctx.health.loads.signal(&zone_name, &dc.id, signal)?)
            }
            None => None,
        };
        candidates.push(Candidate {
            datacenter: dc.id.clone(),
            weight: dc.weight,
            key: weigh::stable_hash(dc.id.as_bytes()),
            load: load_state.as_ref().map(|l| l.id),
            load_state,
            slot: ctx.health.table().datacenter_slot(&zone_name, &dc.id)?,
            answers_metric: metrics::slot(Series::Answers {
                zone: zone_name.as_str().into(),
                name: name.to_string().into(),
                datacenter: dc.id.as_str().into(),
            }),
            a: family(dc, false)?,
            aaaa: family(dc, true)?,
        });
    }
    let candidates: Box<[Candidate]> = candidates.into();
    let serves = Family::ALL.map(|f| candidates.iter().any(|c| !c.family(f).records.is_empty()));
    let short = |ip: &IpAddr| address_record(name, *ip, short_ttl);
    let all_down = match &g.all_down {
        AllDown::FailOpen => AllDownAnswer::FailOpen,
        AllDown::ServFail => AllDownAnswer::ServFail,
        AllDown::NoData => AllDownAnswer::NoData,
        AllDown::Addresses(ips) => AllDownAnswer::Records {
            a: ips.iter().filter(|i| i.is_ipv4()).map(short).collect(),
            aaaa: ips.iter().filter(|i| i.is_ipv6()).map(short).collect(),
        },
        AllDown::Cname(target) => AllDownAnswer::Cname(CompiledRrset {
            rtype: RecordType::CNAME,
            data: RrData::Records(Box::new([Record::from_rdata(
                name.clone(),
                short_ttl,
                RData::CNAME(CNAME(target.clone())),
            )])),
            additional: Box::new([]),
            cname_target: Some(key_of(target)),
        }),
    };
    Ok(GslbNode {
        table,
        policy,
        candidates,
        serves,
        max_datacenters: g.max_datacenters,
        max_addresses: g.max_addresses.unwrap_or(usize::MAX),
        all_down,
        all_down_metric: metrics::slot(Series::AllDown {
            zone: zone_name.as_str().into(),
            name: name.to_string().into(),
            policy: g.all_down.name(),
        }),
        failover_metric: metrics::slot(Series::Failover {
            zone: zone_name.as_str().into(),
            name: name.to_string().into(),
        }),
        select: g.select,
        spread: g.spread,
        spill: g.spill,
        rotor,
    })
}

/// The A or AAAA record of `ip` at `name`.
fn address_record(name: &Name, ip: IpAddr, ttl: u32) -> Record {
    let data = match ip {
        IpAddr::V4(ip) => RData::A(A(ip)),
        IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
    };
    Record::from_rdata(name.clone(), ttl, data)
}

/// RFC 2308 §5: negative answers are cached for min(SOA TTL, SOA MINIMUM).
fn negative_ttl(soa: &SOA, soa_ttl: u32) -> u32 {
    soa.minimum.min(soa_ttl)
}

mod index;
mod wire_name;

pub use wire_name::{LABELS_MAX, SoaNames, WIRE_MAX, WireName, write_wire};

#[cfg(test)]
mod tests;

/// In-crate tests of the layers above: a snapshot compiled from zone text, no GeoIP data.
#[cfg(test)]
pub(crate) mod test_zone {
    use super::*;
    use crate::diag::Diagnostics;

    /// The apex every test zone needs: origin, SOA, NS and the name server's address.
    const HEAD: &str = r#"
origin = "example.com"
[soa]
primary = "ns1"
contact = "hostmaster"
serial = 1
[names."@"]
ns = "ns1"
[names.ns1]
a = "192.0.2.53"
"#;

    /// `example.com` with `body` after [`HEAD`], compiled with `health`.
    pub(crate) fn snapshot(body: &str, health: &HealthSources) -> Snapshot {
        zones(&[&format!("{HEAD}{body}")], health)
    }

    /// Whole zone files (each with its own origin and SOA), compiled together with `health`.
    pub(crate) fn zones(texts: &[&str], health: &HealthSources) -> Snapshot {
        let mut diags = Diagnostics::new();
        let zones: Vec<Zone> = texts
            .iter()
            .map(|text| {
                crate::zone::validate_zone(std::path::Path::new("z.toml"), text, &mut diags)
                    .unwrap_or_else(|| panic!("{}", diags.render()))
            })
            .collect();
        let (geo, base) = GeoDb::load(&[], None, Vec::new()).unwrap();
        Snapshot::compile(&zones, Arc::new(geo), &base, health, 1).unwrap()
    }
}
