//! Owner name → node, looked up by the lowercase wire form of a name (see
//! [`crate::name_key`]) without holding the names a second time.
//!
//! A map from key bytes to node would keep a copy of every owner name beside the node that
//! already holds it: in a zone of 100,000 names that is about a fifth of the memory. The
//! table here holds only node ids, filed under the hash of their key; a probe compares the
//! key with the node's own name, label by label.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hickory_proto::rr::Name;
use rustc_hash::FxBuildHasher;

use super::{CompiledNode, NodeId};

/// Node ids by the hash of their owner's key.
#[derive(Debug, Default)]
pub(super) struct NameIndex {
    table: HashTable<NodeId>,
    /// Every node's name is lowercase (as the zone loader makes them), so a probe compares
    /// bytes as they are; otherwise it folds case.
    lowercase: bool,
}

impl NameIndex {
    /// Files every node under its name.
    pub(super) fn new(nodes: &[CompiledNode]) -> Self {
        let mut table = HashTable::with_capacity(nodes.len());
        let rehash = |id: &NodeId| hash_name(&nodes[id.0 as usize].name);
        for (i, node) in nodes.iter().enumerate() {
            table.insert_unique(hash_name(&node.name), NodeId(i as u32), rehash);
        }
        let lowercase = nodes
            .iter()
            .all(|n| n.name.iter().all(|l| !l.iter().any(u8::is_ascii_uppercase)));
        Self { table, lowercase }
    }

    /// The node whose name has the lowercase wire form `key`.
    #[inline]
    pub(super) fn get(&self, key: &[u8], nodes: &[CompiledNode]) -> Option<NodeId> {
        self.table
            .find(FxBuildHasher.hash_one(key), |id| {
                is_key_of(&nodes[id.0 as usize].name, key, self.lowercase)
            })
            .copied()
    }
}

/// The hash of `name`'s lowercase wire form, as [`NameIndex::get`] hashes a key: the bytes
/// are made on the stack.
fn hash_name(name: &Name) -> u64 {
    let key = crate::name_key::NameKey::new(name);
    FxBuildHasher.hash_one(key.as_ref().map_or(&[0u8][..], |k| k.full()))
}

/// Whether `key` is `name` in lowercase wire form; `lowercase` when `name` is known to be.
fn is_key_of(name: &Name, key: &[u8], lowercase: bool) -> bool {
    let mut rest = key;
    for label in name.iter() {
        let Some((&len, tail)) = rest.split_first() else {
            return false;
        };
        let len = len as usize;
        if len != label.len() || tail.len() < len {
            return false;
        }
        let same = if lowercase {
            tail[..len] == *label
        } else {
            tail[..len].eq_ignore_ascii_case(label)
        };
        if !same {
            return false;
        }
        rest = &tail[len..];
    }
    rest == [0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name_key::key_of;

    #[test]
    fn keys_match_their_names_only() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let www = name("www.example.com.");
        for lowercase in [true, false] {
            let is_key_of = |name: &Name, key: &[u8]| is_key_of(name, key, lowercase);
            assert!(is_key_of(&www, &key_of(&www)));
            assert!(!is_key_of(&www, &key_of(&name("ww.example.com."))));
            assert!(!is_key_of(&www, &key_of(&name("example.com."))));
            assert!(!is_key_of(&name("example.com."), &key_of(&www)));
            assert!(!is_key_of(&www, b"\x03www\x07example\x03com"));
            assert!(is_key_of(&Name::root(), &[0]));
        }
        assert!(is_key_of(&name("WWW.Example.COM."), &key_of(&www), false));
        assert_eq!(hash_name(&www), FxBuildHasher.hash_one(&*key_of(&www)));
    }
}
