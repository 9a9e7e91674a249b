//! A small, self-contained writer for MaxMind DB (MMDB v2) files.
//!
//! Meridian's tests and benchmarks need GeoIP databases whose contents are
//! known exactly and which can be rebuilt byte-for-byte, so they are written
//! here rather than downloaded. The format is specified at
//! <https://maxmind.github.io/MaxMind-DB/>; this writer covers the subset
//! real GeoIP databases use:
//!
//! * **Search tree.** Either an IPv6 tree (`ip_version` 6) or an IPv4-only
//!   tree (`ip_version` 4, as the ip-location-db project ships). In an IPv6
//!   tree IPv4 networks live at `::/96` (`::a.b.c.d`), which is where readers,
//!   including the `maxminddb` crate, look IPv4 addresses up. Like MaxMind's
//!   own databases, an IPv6 tree also gets the aliases `::ffff:0:0/96`
//!   (IPv4-mapped) and `2002::/16` (6to4) pointing at that same subtree,
//!   unless disabled with [`Writer::ipv4_aliases`]. An alias is skipped when
//!   data inserted by the caller already occupies its place.
//! * **Record size.** 24, 28 or 32 bits, the smallest that can address every
//!   node and data record (or forced with [`Writer::record_size`]).
//! * **Data section.** Maps, UTF-8 strings, doubles, floats, uint16/32/64,
//!   arrays and booleans. Identical records are stored once (deduplicated by
//!   their encoded bytes); no pointers are used inside records.
//!
//! Insert semantics: **the last insert wins** for every address it covers. A
//! more specific network inserted after a larger one overrides just the
//! covered part; a larger network inserted after smaller ones replaces them.
//! Sibling networks that end up with identical data are merged, so a lookup
//! may report a shorter prefix than the one inserted (as MaxMind's writers
//! do). Host bits beyond the prefix length are ignored.
//!
//! Only the standard library is used (plus `ipnet`'s network type, which the
//! crate depends on anyway). Include the module from a test, example or
//! bench target with `#[path = ".../tests/support/mmdb.rs"] mod mmdb;`.

// Each target that includes this file uses a different part of it.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use ipnet::IpNet;

/// A value in the data section, mirroring the MMDB data types we need.
///
/// Map entries keep their insertion order: the format does not sort keys, and
/// a fixed order keeps the output (and the record deduplication) stable.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// `map` (type 7) with UTF-8 string keys.
    Map(Vec<(String, Value)>),
    /// `array` (type 11).
    Array(Vec<Value>),
    /// `utf8_string` (type 2).
    Str(String),
    /// `double` (type 3): GeoIP2 coordinates.
    F64(f64),
    /// `float` (type 15): ip-location-db coordinates.
    F32(f32),
    /// `uint16` (type 5).
    U16(u16),
    /// `uint32` (type 6).
    U32(u32),
    /// `uint64` (type 9).
    U64(u64),
    /// `boolean` (type 14).
    Bool(bool),
}

impl Value {
    /// Builds a map from `(key, value)` pairs, keeping their order.
    pub(crate) fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Self::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Self::F64(x)
    }
}

impl From<f32> for Value {
    fn from(x: f32) -> Self {
        Self::F32(x)
    }
}

impl From<u16> for Value {
    fn from(x: u16) -> Self {
        Self::U16(x)
    }
}

impl From<u32> for Value {
    fn from(x: u32) -> Self {
        Self::U32(x)
    }
}

impl From<u64> for Value {
    fn from(x: u64) -> Self {
        Self::U64(x)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Self::Array(items)
    }
}

/// Which search tree to build (the metadata's `ip_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpVersion {
    /// IPv4-only tree, 32 bits deep; IPv6 networks cannot be inserted.
    V4,
    /// IPv6 tree, 128 bits deep; IPv4 networks are stored at `::/96`.
    V6,
}

/// Handle to a record already stored in a [`Writer`]'s data section.
///
/// Interning a record once and inserting it by id avoids re-encoding it for
/// each of millions of networks when building large benchmark databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DataId(u32);

/// Builds an MMDB file in memory.
///
/// The tree is an arena of nodes, each holding two records. A record is
/// [`EMPTY`], a node index, or a data id tagged with [`DATA_FLAG`]; node 0 is
/// the root, which is never anyone's child, so index 0 can mean "empty".
pub(crate) struct Writer {
    database_type: String,
    ip_version: IpVersion,
    languages: Vec<String>,
    description: Vec<(String, String)>,
    ipv4_aliases: bool,
    record_size: Option<u16>,
    nodes: Vec<[u32; 2]>,
    records: Vec<Vec<u8>>,
    record_ids: HashMap<Vec<u8>, DataId>,
}

/// A record pointing nowhere: no data for that part of the address space.
const EMPTY: u32 = 0;
/// Tag that distinguishes data ids from node indexes inside a record.
const DATA_FLAG: u32 = 1 << 31;
/// Zero bytes between the search tree and the data section.
const DATA_SECTION_SEPARATOR: [u8; 16] = [0; 16];
/// Marks the start of the metadata map at the end of the file.
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// IPv6 networks that MaxMind databases alias to the IPv4 subtree at `::/96`.
const IPV4_ALIASES: [(u128, usize); 2] = [
    (0xffff_u128 << 32, 96),  // ::ffff:0:0/96, IPv4-mapped addresses
    (0x2002_u128 << 112, 16), // 2002::/16, 6to4
];

const TYPE_STRING: u8 = 2;
const TYPE_DOUBLE: u8 = 3;
const TYPE_UINT16: u8 = 5;
const TYPE_UINT32: u8 = 6;
const TYPE_MAP: u8 = 7;
const TYPE_UINT64: u8 = 9;
const TYPE_ARRAY: u8 = 11;
const TYPE_BOOLEAN: u8 = 14;
const TYPE_FLOAT: u8 = 15;

fn is_node(record: u32) -> bool {
    record != EMPTY && record & DATA_FLAG == 0
}

/// Bit `depth` (0 = most significant) of a left-aligned 128-bit key.
fn bit(key: u128, depth: usize) -> usize {
    ((key >> (127 - depth)) & 1) as usize
}

fn push_node(nodes: &mut Vec<[u32; 2]>, node: [u32; 2]) -> u32 {
    let index = u32::try_from(nodes.len())
        .ok()
        .filter(|&i| i < DATA_FLAG)
        .expect("search tree has too many nodes");
    nodes.push(node);
    index
}

impl Writer {
    /// Starts an empty database of the given `database_type` (e.g.
    /// `"GeoIP2-City"`), with `languages` `["en"]` and a generic English
    /// description.
    pub(crate) fn new(database_type: &str, ip_version: IpVersion) -> Self {
        Self {
            database_type: database_type.to_owned(),
            ip_version,
            languages: vec!["en".to_owned()],
            description: vec![(
                "en".to_owned(),
                format!("{database_type} (Meridian test data)"),
            )],
            ipv4_aliases: true,
            record_size: None,
            nodes: vec![[EMPTY; 2]],
            records: Vec::new(),
            record_ids: HashMap::new(),
        }
    }

    /// Sets the metadata `description` for `language`, replacing any previous one.
    pub(crate) fn description(mut self, language: &str, text: &str) -> Self {
        self.description.retain(|(lang, _)| lang != language);
        self.description
            .push((language.to_owned(), text.to_owned()));
        self
    }

    /// Sets the metadata `languages` list.
    pub(crate) fn languages(mut self, languages: &[&str]) -> Self {
        self.languages = languages.iter().map(|&l| l.to_owned()).collect();
        self
    }

    /// Whether an IPv6 tree gets the `::ffff:0:0/96` and `2002::/16` aliases
    /// of the IPv4 subtree (default: yes). ip-location-db's files, for one,
    /// are built without them.
    pub(crate) fn ipv4_aliases(mut self, enabled: bool) -> Self {
        self.ipv4_aliases = enabled;
        self
    }

    /// Forces a record size (24, 28 or 32) instead of the smallest that fits.
    ///
    /// # Panics
    ///
    /// Panics on other sizes; writing panics if the database needs more bits.
    pub(crate) fn record_size(mut self, bits: u16) -> Self {
        assert!(
            matches!(bits, 24 | 28 | 32),
            "record size must be 24, 28 or 32, not {bits}"
        );
        self.record_size = Some(bits);
        self
    }

    /// Stores `value` in the data section (once, however often it is
    /// interned) and returns its id for [`insert_id`](Self::insert_id).
    pub(crate) fn intern(&mut self, value: &Value) -> DataId {
        let mut bytes = Vec::new();
        encode(value, &mut bytes);
        if let Some(&id) = self.record_ids.get(&bytes) {
            return id;
        }
        let id = DataId(
            u32::try_from(self.records.len())
                .ok()
                .filter(|&i| i < DATA_FLAG)
                .expect("too many distinct data records"),
        );
        self.records.push(bytes.clone());
        self.record_ids.insert(bytes, id);
        id
    }

    /// Maps every address in `net` to `value` (see the module docs for how
    /// overlapping inserts combine).
    ///
    /// # Panics
    ///
    /// Panics if an IPv6 network is inserted into an IPv4-only tree.
    pub(crate) fn insert(&mut self, net: IpNet, value: &Value) {
        let id = self.intern(value);
        self.insert_id(net, id);
    }

    /// Like [`insert`](Self::insert), for a record interned earlier.
    ///
    /// # Panics
    ///
    /// Panics if an IPv6 network is inserted into an IPv4-only tree.
    pub(crate) fn insert_id(&mut self, net: IpNet, id: DataId) {
        let (key, prefix_len) = self.tree_key(net);
        self.set(key, prefix_len, DATA_FLAG | id.0);
    }

    /// The network's position in this tree: its address as a left-aligned
    /// 128-bit key, and the tree depth at which it ends.
    fn tree_key(&self, net: IpNet) -> (u128, usize) {
        match (net, self.ip_version) {
            (IpNet::V4(v4), IpVersion::V4) => (
                u128::from(u32::from(v4.addr())) << 96,
                usize::from(v4.prefix_len()),
            ),
            (IpNet::V4(v4), IpVersion::V6) => (
                u128::from(u32::from(v4.addr())),
                96 + usize::from(v4.prefix_len()),
            ),
            (IpNet::V6(v6), IpVersion::V6) => (u128::from(v6.addr()), usize::from(v6.prefix_len())),
            (IpNet::V6(v6), IpVersion::V4) => {
                panic!("cannot insert IPv6 network {v6} into an IPv4-only database")
            }
        }
    }

    /// Points the subtree for `prefix_len` bits of `key` at `record`, then
    /// merges nodes on the way back up whose two halves became identical.
    fn set(&mut self, key: u128, prefix_len: usize, record: u32) {
        if prefix_len == 0 {
            self.nodes[0] = [record; 2];
            return;
        }
        let mut path = [0_u32; 128];
        let mut node = 0_u32;
        for (depth, slot) in path.iter_mut().enumerate().take(prefix_len - 1) {
            *slot = node;
            let side = bit(key, depth);
            let child = self.nodes[node as usize][side];
            node = if is_node(child) {
                child
            } else {
                // Split a leaf: both halves keep what the whole had.
                let split = push_node(&mut self.nodes, [child; 2]);
                self.nodes[node as usize][side] = split;
                split
            };
        }
        let last = prefix_len - 1;
        path[last] = node;
        // Whatever was below (a smaller network or a whole subtree) is
        // replaced; unreachable nodes are simply never written out.
        self.nodes[node as usize][bit(key, last)] = record;
        for depth in (1..=last).rev() {
            let [left, right] = self.nodes[path[depth] as usize];
            if left != right || is_node(left) {
                break;
            }
            self.nodes[path[depth - 1] as usize][bit(key, depth - 1)] = left;
        }
    }

    /// The tree to write: the arena itself, or a copy with the IPv4 aliases
    /// grafted on (kept out of the arena so that later inserts cannot write
    /// through an alias into the IPv4 subtree).
    fn tree_with_aliases(&self) -> Cow<'_, [[u32; 2]]> {
        if self.ip_version != IpVersion::V6 || !self.ipv4_aliases {
            return Cow::Borrowed(&self.nodes);
        }
        let Some(ipv4_root) = self.record_at(0, 96).filter(|&r| r != EMPTY) else {
            return Cow::Borrowed(&self.nodes);
        };
        let mut nodes = self.nodes.clone();
        for (key, prefix_len) in IPV4_ALIASES {
            graft(&mut nodes, key, prefix_len, ipv4_root);
        }
        Cow::Owned(nodes)
    }

    /// The record found after `prefix_len` bits of `key`, or `None` if a leaf
    /// ends the path earlier.
    fn record_at(&self, key: u128, prefix_len: usize) -> Option<u32> {
        let mut node = 0_u32;
        for depth in 0..prefix_len - 1 {
            let child = self.nodes[node as usize][bit(key, depth)];
            if !is_node(child) {
                return None;
            }
            node = child;
        }
        Some(self.nodes[node as usize][bit(key, prefix_len - 1)])
    }

    /// Serializes the database; `build_epoch` is passed in (rather than read
    /// from the clock) so the output is reproducible.
    pub(crate) fn to_bytes(&self, build_epoch: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes, build_epoch)
            .expect("writing to a Vec cannot fail");
        bytes
    }

    /// Writes the database to `out`; see [`to_bytes`](Self::to_bytes).
    ///
    /// # Panics
    ///
    /// Panics if the database does not fit the chosen (or any) record size.
    pub(crate) fn write_to(&self, mut out: impl Write, build_epoch: u64) -> io::Result<()> {
        let nodes = self.tree_with_aliases();

        // Number the reachable nodes depth-first from the root (which must be
        // node 0), noting which data records are referenced. Aliases make the
        // tree a DAG, hence the "already numbered" check.
        let mut number = vec![u32::MAX; nodes.len()];
        let mut order: Vec<u32> = Vec::new();
        let mut used = vec![false; self.records.len()];
        let mut stack = vec![0_u32];
        while let Some(node) = stack.pop() {
            if number[node as usize] != u32::MAX {
                continue;
            }
            number[node as usize] = u32::try_from(order.len()).expect("node count fits in u32");
            order.push(node);
            for record in nodes[node as usize].into_iter().rev() {
                if is_node(record) {
                    stack.push(record);
                } else if record != EMPTY {
                    used[(record & !DATA_FLAG) as usize] = true;
                }
            }
        }
        let node_count = u32::try_from(order.len()).expect("node count fits in u32");

        let mut data = Vec::new();
        let mut offsets = vec![u32::MAX; self.records.len()];
        for (id, bytes) in self.records.iter().enumerate() {
            if used[id] {
                offsets[id] = u32::try_from(data.len()).expect("data section below 4 GiB");
                data.extend_from_slice(bytes);
            }
        }

        // Data records are addressed as node_count + 16 + offset.
        let separator = DATA_SECTION_SEPARATOR.len() as u64;
        let max_record = u64::from(node_count) + separator + data.len() as u64;
        let record_size = match self.record_size {
            Some(bits) => {
                assert!(
                    max_record < 1 << bits,
                    "database needs more than {bits}-bit records"
                );
                bits
            }
            None => smallest_record_size(max_record),
        };
        let resolve = |record: u32| -> u32 {
            if record == EMPTY {
                node_count
            } else if is_node(record) {
                number[record as usize]
            } else {
                node_count + separator as u32 + offsets[(record & !DATA_FLAG) as usize]
            }
        };

        let mut chunk = Vec::with_capacity(64 * 1024);
        for &node in &order {
            let [left, right] = nodes[node as usize].map(resolve);
            encode_node(&mut chunk, record_size, left, right);
            if chunk.len() >= 60 * 1024 {
                out.write_all(&chunk)?;
                chunk.clear();
            }
        }
        out.write_all(&chunk)?;
        out.write_all(&DATA_SECTION_SEPARATOR)?;
        out.write_all(&data)?;
        out.write_all(METADATA_MARKER)?;
        let mut metadata = Vec::new();
        encode(
            &self.metadata(build_epoch, node_count, record_size),
            &mut metadata,
        );
        out.write_all(&metadata)?;
        out.flush()
    }

    fn metadata(&self, build_epoch: u64, node_count: u32, record_size: u16) -> Value {
        let ip_version: u16 = match self.ip_version {
            IpVersion::V4 => 4,
            IpVersion::V6 => 6,
        };
        let languages = self
            .languages
            .iter()
            .map(|l| Value::from(l.as_str()))
            .collect();
        let description = self
            .description
            .iter()
            .map(|(lang, text)| (lang.as_str(), Value::from(text.as_str())));
        Value::map([
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(build_epoch)),
            ("database_type", Value::from(self.database_type.as_str())),
            ("description", Value::map(description)),
            ("ip_version", Value::U16(ip_version)),
            ("languages", Value::Array(languages)),
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U16(record_size)),
        ])
    }
}

/// Adds a path for `prefix_len` bits of `key` ending in `target`, but only
/// through empty space: data already on the path or at its end is kept.
fn graft(nodes: &mut Vec<[u32; 2]>, key: u128, prefix_len: usize, target: u32) {
    let mut node = 0_u32;
    for depth in 0..prefix_len - 1 {
        let side = bit(key, depth);
        let child = nodes[node as usize][side];
        node = if is_node(child) {
            child
        } else if child == EMPTY {
            let new = push_node(nodes, [EMPTY; 2]);
            nodes[node as usize][side] = new;
            new
        } else {
            return;
        };
    }
    let slot = &mut nodes[node as usize][bit(key, prefix_len - 1)];
    if *slot == EMPTY {
        *slot = target;
    }
}

/// The smallest record size able to hold `max_record`.
fn smallest_record_size(max_record: u64) -> u16 {
    [24, 28, 32]
        .into_iter()
        .find(|&bits| max_record < 1 << bits)
        .expect("database too large for 32-bit records")
}

/// Appends one node (two records) in the format's packed layout.
fn encode_node(out: &mut Vec<u8>, record_size: u16, left: u32, right: u32) {
    match record_size {
        24 => {
            out.extend_from_slice(&left.to_be_bytes()[1..]);
            out.extend_from_slice(&right.to_be_bytes()[1..]);
        }
        28 => {
            // The middle byte holds the top nibble of each record.
            out.extend_from_slice(&left.to_be_bytes()[1..]);
            out.push((((left >> 20) & 0xF0) | ((right >> 24) & 0x0F)) as u8);
            out.extend_from_slice(&right.to_be_bytes()[1..]);
        }
        32 => {
            out.extend_from_slice(&left.to_be_bytes());
            out.extend_from_slice(&right.to_be_bytes());
        }
        _ => unreachable!("record size is 24, 28 or 32"),
    }
}

/// Appends `value` in the data section encoding.
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Map(entries) => {
            encode_header(out, TYPE_MAP, entries.len());
            for (key, value) in entries {
                encode_str(out, key);
                encode(value, out);
            }
        }
        Value::Array(items) => {
            encode_header(out, TYPE_ARRAY, items.len());
            for item in items {
                encode(item, out);
            }
        }
        Value::Str(s) => encode_str(out, s),
        Value::F64(x) => {
            encode_header(out, TYPE_DOUBLE, 8);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::F32(x) => {
            encode_header(out, TYPE_FLOAT, 4);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::U16(x) => encode_uint(out, TYPE_UINT16, u64::from(*x)),
        Value::U32(x) => encode_uint(out, TYPE_UINT32, u64::from(*x)),
        Value::U64(x) => encode_uint(out, TYPE_UINT64, *x),
        // A boolean's value is its size field; there is no payload.
        Value::Bool(b) => encode_header(out, TYPE_BOOLEAN, usize::from(*b)),
    }
}

fn encode_str(out: &mut Vec<u8>, s: &str) {
    encode_header(out, TYPE_STRING, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Unsigned integers are big-endian without leading zero bytes (0 is empty).
fn encode_uint(out: &mut Vec<u8>, type_num: u8, x: u64) {
    let bytes = x.to_be_bytes();
    let payload = &bytes[(x.leading_zeros() / 8) as usize..];
    encode_header(out, type_num, payload.len());
    out.extend_from_slice(payload);
}

/// Control byte (type in the top 3 bits, or 0 plus an extended-type byte for
/// types above 7), then the size, spilling into 1 to 3 extra bytes.
fn encode_header(out: &mut Vec<u8>, type_num: u8, size: usize) {
    let (size_field, extra): (u8, &[u8]) = match size {
        0..29 => (size as u8, &[]),
        29..285 => (29, &[(size - 29) as u8]),
        285..65_821 => (30, &((size - 285) as u16).to_be_bytes()),
        65_821..16_843_037 => (31, &((size - 65_821) as u32).to_be_bytes()[1..]),
        _ => panic!("value of size {size} is too large for the MMDB format"),
    };
    if type_num <= 7 {
        out.push(type_num << 5 | size_field);
    } else {
        out.push(size_field);
        out.push(type_num - 7);
    }
    out.extend_from_slice(extra);
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use maxminddb::{Reader, geoip2};
    use serde::Deserialize;

    use super::*;

    const EPOCH: u64 = 1_700_000_000;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Reads `writer`'s output back, checking it with the reader's verifier.
    fn read(writer: &Writer) -> Reader<Vec<u8>> {
        let reader = Reader::from_source(writer.to_bytes(EPOCH)).unwrap();
        reader.verify().unwrap();
        reader
    }

    fn city(name: &str, country: &str, latitude: f64, longitude: f64) -> Value {
        let names = |s: &str| Value::map([("en", Value::from(s))]);
        Value::map([
            ("city", Value::map([("names", names(name))])),
            ("country", Value::map([("iso_code", Value::from(country))])),
            (
                "location",
                Value::map([
                    ("accuracy_radius", Value::U16(20)),
                    ("latitude", Value::F64(latitude)),
                    ("longitude", Value::F64(longitude)),
                ]),
            ),
            (
                "subdivisions",
                Value::Array(vec![Value::map([
                    ("iso_code", Value::from("XX")),
                    ("names", names("Somewhere")),
                ])]),
            ),
        ])
    }

    /// City name and network reported for a lookup, `None` without data.
    fn lookup(reader: &Reader<Vec<u8>>, addr: &str) -> Option<(String, String)> {
        let result = reader.lookup(ip(addr)).unwrap();
        let city = result.decode::<geoip2::City>().unwrap()?;
        let name = city.city.names.english.unwrap().to_owned();
        Some((name, result.network().unwrap().to_string()))
    }

    fn some(name: &str, network: &str) -> Option<(String, String)> {
        Some((name.to_owned(), network.to_owned()))
    }

    #[test]
    fn city_records_round_trip() {
        let mut writer = Writer::new("GeoIP2-City", IpVersion::V6);
        writer.insert(
            net("192.0.2.0/24"),
            &city("São Paulo", "BR", -23.5505, -46.6333),
        );
        writer.insert(
            net("2001:db8::/32"),
            &city("Sydney", "AU", -33.8688, 151.2093),
        );
        let reader = read(&writer);

        let record = reader.lookup(ip("192.0.2.7")).unwrap();
        let city: geoip2::City = record.decode().unwrap().unwrap();
        assert_eq!(city.city.names.english, Some("São Paulo"));
        assert_eq!(city.country.iso_code, Some("BR"));
        assert_eq!(city.location.latitude, Some(-23.5505));
        assert_eq!(city.location.longitude, Some(-46.6333));
        assert_eq!(city.location.accuracy_radius, Some(20));
        assert_eq!(city.subdivisions[0].iso_code, Some("XX"));
        assert_eq!(city.subdivisions[0].names.english, Some("Somewhere"));
        assert_eq!(
            lookup(&reader, "2001:db8:1::1"),
            some("Sydney", "2001:db8::/32")
        );
    }

    #[test]
    fn more_specific_insert_overrides_part_of_a_larger_network() {
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(net("10.0.0.0/8"), &city("Outer", "AA", 1.0, 1.0));
        writer.insert(net("10.1.0.0/16"), &city("Inner", "BB", 2.0, 2.0));
        let reader = read(&writer);
        assert_eq!(lookup(&reader, "10.1.2.3"), some("Inner", "10.1.0.0/16"));
        // The rest of the /8 keeps its data, split into the largest
        // networks that avoid the /16.
        assert_eq!(lookup(&reader, "10.0.0.1"), some("Outer", "10.0.0.0/16"));
        assert_eq!(lookup(&reader, "10.2.3.4"), some("Outer", "10.2.0.0/15"));
        assert_eq!(lookup(&reader, "10.200.0.1"), some("Outer", "10.128.0.0/9"));
    }

    #[test]
    fn larger_insert_replaces_smaller_networks() {
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(net("10.1.0.0/16"), &city("Inner", "BB", 2.0, 2.0));
        writer.insert(net("10.0.0.0/8"), &city("Outer", "AA", 1.0, 1.0));
        let reader = read(&writer);
        assert_eq!(lookup(&reader, "10.1.2.3"), some("Outer", "10.0.0.0/8"));
    }

    #[test]
    fn ipv4_lives_at_96_with_aliases_in_an_ipv6_tree() {
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(
            net("198.51.100.0/24"),
            &city("New York", "US", 40.7128, -74.006),
        );
        let reader = read(&writer);
        assert_eq!(
            lookup(&reader, "198.51.100.1"),
            some("New York", "198.51.100.0/24")
        );
        assert_eq!(
            lookup(&reader, "::198.51.100.1"),
            some("New York", "::c633:6400/120")
        );
        assert_eq!(
            lookup(&reader, "::ffff:198.51.100.1"),
            some("New York", "::ffff:198.51.100.0/120")
        );
        assert_eq!(
            lookup(&reader, "2002:c633:6401::1"),
            some("New York", "2002:c633:6400::/40")
        );
        // Iteration skips the aliases, so the network shows up once.
        let networks: Vec<String> = reader
            .networks(Default::default())
            .unwrap()
            .map(|r| r.unwrap().network().unwrap().to_string())
            .collect();
        assert_eq!(networks, ["198.51.100.0/24"]);

        let no_aliases = read(&writer.ipv4_aliases(false));
        assert!(lookup(&no_aliases, "198.51.100.1").is_some());
        assert_eq!(lookup(&no_aliases, "::ffff:198.51.100.1"), None);
        assert_eq!(lookup(&no_aliases, "2002:c633:6401::1"), None);
    }

    #[test]
    fn aliases_do_not_override_inserted_data() {
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(
            net("198.51.100.0/24"),
            &city("New York", "US", 40.7128, -74.006),
        );
        writer.insert(net("2002::/16"), &city("Six-to-four", "ZZ", 0.0, 0.0));
        let reader = read(&writer);
        assert_eq!(
            lookup(&reader, "2002:c633:6401::1"),
            some("Six-to-four", "2002::/16")
        );
        assert!(lookup(&reader, "::ffff:198.51.100.1").is_some());
    }

    #[test]
    fn ipv4_only_database() {
        let mut writer = Writer::new("city ipv4", IpVersion::V4);
        writer.insert(
            net("203.0.113.0/25"),
            &city("Singapore", "SG", 1.2897, 103.8501),
        );
        let reader = read(&writer);
        assert_eq!(reader.metadata().ip_version, 4);
        assert_eq!(
            lookup(&reader, "203.0.113.9"),
            some("Singapore", "203.0.113.0/25")
        );
        assert_eq!(lookup(&reader, "203.0.113.200"), None);
        assert!(reader.lookup(ip("2001:db8::1")).is_err());
    }

    #[test]
    #[should_panic(expected = "IPv4-only")]
    fn ipv6_network_in_an_ipv4_tree_panics() {
        Writer::new("Test", IpVersion::V4).insert(net("2001:db8::/32"), &Value::Bool(true));
    }

    #[test]
    fn unassigned_space_has_no_data() {
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(net("192.0.2.0/24"), &city("A", "AA", 0.0, 0.0));
        let reader = read(&writer);
        for addr in ["192.0.3.1", "127.0.0.1", "0.0.0.0", "::1", "2001:db8::1"] {
            let result = reader.lookup(ip(addr)).unwrap();
            assert!(!result.has_data(), "{addr} should have no data");
        }
        // An empty database is still a valid one.
        let empty = read(&Writer::new("Empty", IpVersion::V6));
        assert!(!empty.lookup(ip("192.0.2.1")).unwrap().has_data());
    }

    #[test]
    fn identical_records_are_stored_once() {
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(net("192.0.2.0/25"), &city("A", "AA", 0.0, 0.0));
        writer.insert(net("198.51.100.0/24"), &city("A", "AA", 0.0, 0.0));
        let id = writer.intern(&city("A", "AA", 0.0, 0.0));
        writer.insert_id(net("2001:db8::/32"), id);
        writer.insert(net("203.0.113.0/24"), &city("B", "BB", 0.0, 0.0));
        let reader = read(&writer);
        let offset = |addr| reader.lookup(ip(addr)).unwrap().offset().unwrap();
        assert_eq!(offset("192.0.2.1"), offset("198.51.100.1"));
        assert_eq!(offset("192.0.2.1"), offset("2001:db8::1"));
        assert_ne!(offset("192.0.2.1"), offset("203.0.113.1"));
    }

    #[test]
    fn unreferenced_records_are_not_written() {
        let mut a = Writer::new("Test", IpVersion::V6);
        a.insert(net("192.0.2.0/24"), &city("Lost", "AA", 0.0, 0.0));
        a.insert(net("192.0.2.0/24"), &city("Kept", "BB", 0.0, 0.0));
        let mut b = Writer::new("Test", IpVersion::V6);
        b.insert(net("192.0.2.0/24"), &city("Kept", "BB", 0.0, 0.0));
        assert_eq!(a.to_bytes(EPOCH), b.to_bytes(EPOCH));
    }

    #[test]
    fn siblings_with_the_same_data_merge() {
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(net("192.0.2.0/25"), &city("A", "AA", 0.0, 0.0));
        writer.insert(net("192.0.2.128/25"), &city("A", "AA", 0.0, 0.0));
        let reader = read(&writer);
        assert_eq!(lookup(&reader, "192.0.2.200"), some("A", "192.0.2.0/24"));
    }

    #[test]
    fn all_value_types_and_size_encodings_round_trip() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Record {
            text: String,
            empty: String,
            long: String,
            longer: String,
            longest: String,
            double: f64,
            // maxminddb decodes scalars strictly by type: an MMDB `float`
            // only decodes into f32, a `double` only into f64.
            float: f32,
            u16_zero: u16,
            u16_max: u16,
            u32_max: u32,
            u64_max: u64,
            u64_small: u64,
            yes: bool,
            no: bool,
            list: Vec<u32>,
            nested: std::collections::BTreeMap<String, Vec<String>>,
        }
        // Lengths at each size-encoding boundary: 28/29, 284/285, 65820/65821.
        let value = Value::map([
            ("text", Value::from("Zürich ✓")),
            ("empty", Value::from("")),
            ("long", Value::from("a".repeat(29))),
            ("longer", Value::from("b".repeat(285))),
            ("longest", Value::from("c".repeat(65_821))),
            ("double", Value::F64(-33.8688)),
            ("float", Value::F32(151.2093)),
            ("u16_zero", Value::U16(0)),
            ("u16_max", Value::U16(u16::MAX)),
            ("u32_max", Value::U32(u32::MAX)),
            ("u64_max", Value::U64(u64::MAX)),
            ("u64_small", Value::U64(300)),
            ("yes", Value::Bool(true)),
            ("no", Value::Bool(false)),
            ("list", Value::Array((0..40).map(Value::U32).collect())),
            (
                "nested",
                Value::map([("k", Value::Array(vec![Value::from("x".repeat(28))]))]),
            ),
        ]);
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(net("192.0.2.0/24"), &value);
        let reader = read(&writer);
        let record: Record = reader
            .lookup(ip("192.0.2.1"))
            .unwrap()
            .decode()
            .unwrap()
            .unwrap();
        assert_eq!(
            record,
            Record {
                text: "Zürich ✓".into(),
                empty: String::new(),
                long: "a".repeat(29),
                longer: "b".repeat(285),
                longest: "c".repeat(65_821),
                double: -33.8688,
                float: 151.2093,
                u16_zero: 0,
                u16_max: u16::MAX,
                u32_max: u32::MAX,
                u64_max: u64::MAX,
                u64_small: 300,
                yes: true,
                no: false,
                list: (0..40).collect(),
                nested: [("k".to_owned(), vec!["x".repeat(28)])].into(),
            }
        );
    }

    #[test]
    fn every_record_size_reads_back() {
        for bits in [24, 28, 32] {
            let mut writer = Writer::new("Test", IpVersion::V6).record_size(bits);
            writer.insert(net("10.0.0.0/8"), &city("Outer", "AA", 1.0, 1.0));
            writer.insert(net("10.1.0.0/16"), &city("Inner", "BB", 2.0, 2.0));
            writer.insert(net("2001:db8::/48"), &city("Six", "CC", 3.0, 3.0));
            let reader = read(&writer);
            assert_eq!(reader.metadata().record_size, bits);
            assert_eq!(lookup(&reader, "10.1.0.1"), some("Inner", "10.1.0.0/16"));
            assert_eq!(lookup(&reader, "10.9.0.1"), some("Outer", "10.8.0.0/13"));
            assert_eq!(lookup(&reader, "2001:db8::1"), some("Six", "2001:db8::/48"));
        }
    }

    #[test]
    fn record_size_is_the_smallest_that_fits() {
        assert_eq!(smallest_record_size(0), 24);
        assert_eq!(smallest_record_size((1 << 24) - 1), 24);
        assert_eq!(smallest_record_size(1 << 24), 28);
        assert_eq!(smallest_record_size((1 << 28) - 1), 28);
        assert_eq!(smallest_record_size(1 << 28), 32);
        let mut writer = Writer::new("Test", IpVersion::V6);
        writer.insert(net("192.0.2.0/24"), &Value::Bool(true));
        assert_eq!(read(&writer).metadata().record_size, 24);
    }

    #[test]
    fn node_packing_matches_the_spec() {
        // Example layouts from the MMDB specification's search tree section.
        let mut out = Vec::new();
        encode_node(&mut out, 24, 0x00AB_CDEF, 0x0012_3456);
        assert_eq!(out, [0xAB, 0xCD, 0xEF, 0x12, 0x34, 0x56]);
        out.clear();
        encode_node(&mut out, 28, 0x0123_4567, 0x089A_BCDE);
        assert_eq!(out, [0x23, 0x45, 0x67, 0x18, 0x9A, 0xBC, 0xDE]);
        out.clear();
        encode_node(&mut out, 32, 0x0102_0304, 0xA0B0_C0D0);
        assert_eq!(out, [1, 2, 3, 4, 0xA0, 0xB0, 0xC0, 0xD0]);
    }

    #[test]
    fn metadata_is_written() {
        let mut writer = Writer::new("GeoLite2-ASN", IpVersion::V6)
            .languages(&["en", "de"])
            .description("en", "English")
            .description("de", "Deutsch");
        writer.insert(net("192.0.2.0/24"), &Value::Bool(true));
        let reader = read(&writer);
        let metadata = reader.metadata();
        assert_eq!(metadata.database_type, "GeoLite2-ASN");
        assert_eq!(metadata.binary_format_major_version, 2);
        assert_eq!(metadata.binary_format_minor_version, 0);
        assert_eq!(metadata.build_epoch, EPOCH);
        assert_eq!(metadata.ip_version, 6);
        assert_eq!(metadata.languages, ["en", "de"]);
        assert_eq!(metadata.description["en"], "English");
        assert_eq!(metadata.description["de"], "Deutsch");
        // ::/96 path (96 nodes) + 8 bits to 192.0.0.0/8 ... + aliases.
        assert!(metadata.node_count > 96 + 24);
    }

    #[test]
    fn output_is_reproducible() {
        let build = || {
            let mut writer = Writer::new("Test", IpVersion::V6);
            writer.insert(net("192.0.2.0/24"), &city("A", "AA", 0.0, 0.0));
            writer.insert(net("2001:db8::/32"), &city("B", "BB", 0.0, 0.0));
            writer
        };
        assert_eq!(build().to_bytes(EPOCH), build().to_bytes(EPOCH));
        assert_ne!(build().to_bytes(EPOCH), build().to_bytes(EPOCH + 1));
    }
}
