//! The health table: one small atomic word per address slot and per data center, read by
//! index on the query path.
//!
//! ```text
//!  probe loop ── TargetHealth::record ─┐                 ┌─▶ words[HealthId] ◀── answer::select
//!  operator ──── Overrides::set ───────┴─▶ HealthTable ──┘   (one relaxed load per address)
//! ```
//!
//! The compiler asks for a [`HealthId`] per (check, address) an answer may hold and per
//! data center, and stores the ids in the snapshot; a query then does one load per address
//! and one per data center through the snapshot's one pointer to the table, whatever the
//! number of overrides, checks or reloads. Writers are rare (a probe state change, an
//! operator command) and take the index lock; readers never do.
//!
//! The table outlives snapshots, so state survives reloads: the same (check, address) or
//! (zone, data center) gets the same slot again. Slots are never reused for another key,
//! which keeps a query on an old snapshot from reading a stranger's state; the table has a
//! fixed capacity, and a load that would exceed it fails with [`TableFull`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use thiserror::Error;

use super::Check;
use super::admin::{Admin, OverrideKey};

/// Index of one slot of the [`HealthTable`].
///
/// Why not `usize`: it says which table it indexes, and half the size keeps candidate
/// tables small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HealthId(u32);

/// The table has no free slot (see the module docs).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error(
    "the health table is full ({capacity} slots for (check, address) pairs and data centers \
     seen since start); restart the server to start a fresh table"
)]
pub struct TableFull {
    /// Slots the table has.
    pub capacity: usize,
}

/// The state of one slot: probe result, flapping, and the operator's override.
///
/// Why a byte of bits rather than separate atomics: the query path decides an address from
/// one load, and all the bits in it were written together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Word(u8);

const PROBE_DOWN: u8 = 1 << 0;
const FLAPPING: u8 = 1 << 1;
const ADMIN_SHIFT: u32 = 2;
const ADMIN_MASK: u8 = 0b11 << ADMIN_SHIFT;

impl Word {
    /// A word with the given parts (for tests and synthetic health).
    pub fn new(probe_up: bool, flapping: bool, admin: Admin) -> Self {
        let mut w = admin.code() << ADMIN_SHIFT;
        if !probe_up {
            w |= PROBE_DOWN;
        }
        if flapping {
            w |= FLAPPING;
        }
        Self(w)
    }

    /// The probes' verdict; always up for an address without a check and for a data center.
    #[inline]
    pub fn probe_up(self) -> bool {
        self.0 & PROBE_DOWN == 0
    }

    /// The probe state has been changing too often.
    #[inline]
    pub fn flapping(self) -> bool {
        self.0 & FLAPPING != 0
    }

    /// The operator's override.
    #[inline]
    pub fn admin(self) -> Admin {
        Admin::from_code((self.0 & ADMIN_MASK) >> ADMIN_SHIFT)
    }
}

/// Every slot's word, and the writers' index of which slot is whose.
pub struct HealthTable {
    words: Box<[AtomicU8]>,
    /// Percent of its weight each data center with a load signal keeps, by [`LoadId`]
    /// (100 = not shedding). A separate, small table: most data centers have no signal.
    keep: Box<[AtomicU8]>,
    index: Mutex<Index>,
    /// Set when the node joins a fleet: from then on the fleet's verdicts write the probe
    /// bits ([`Self::set_probe`]) and a target's own results do not
    /// ([`Self::set_local_probe`]).
    fleet_decides: AtomicBool,
}

/// Index of a data center's load slot (see [`HealthTable::keep`]).
///
/// Why not `usize`: it indexes the small load table, not the slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoadId(u16);

#[derive(Default)]
struct Index {
    used: u32,
    addresses: HashMap<(Option<Check>, IpAddr), HealthId>,
    by_ip: HashMap<IpAddr, Vec<HealthId>>,
    datacenters: HashMap<(String, String), HealthId>,
    loads: HashMap<(String, String), LoadId>,
    /// The overrides in force (never [`Admin::None`]), so new slots start with them.
    admins: BTreeMap<OverrideKey, Admin>,
    /// Who set an override, when and why, as [`super::OverrideMeta::describe`] says it.
    notes: BTreeMap<OverrideKey, String>,
}

impl HealthTable {
    /// Slots of a server's table: about a million (check, address) pairs and data
    /// centers, one byte each.
    pub const DEFAULT_CAPACITY: usize = 1 << 20;

    /// Data centers with a load signal, over every zone, since start.
    pub const LOAD_CAPACITY: usize = 4096;

    /// An empty table of `capacity` slots.
    pub fn new(capacity: usize) -> Arc<Self> {
        let capacity = capacity.min(u32::MAX as usize);
        Arc::new(Self {
            words: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            keep: (0..Self::LOAD_CAPACITY)
                .map(|_| AtomicU8::new(100))
                .collect(),
            index: Mutex::default(),
            fleet_decides: AtomicBool::new(false),
        })
    }

    /// The word of `id`: one relaxed load. Relaxed because each word is read on its own and
    /// a change that lands a moment later is as good as one a moment earlier.
    #[inline]
    pub fn word(&self, id: HealthId) -> Word {
        Word(self.words[id.0 as usize].load(Ordering::Relaxed))
    }

    /// Percent of its weight the data center of `id` keeps: one relaxed load.
    #[inline]
    pub fn keep(&self, id: LoadId) -> u8 {
        self.keep[usize::from(id.0)].load(Ordering::Relaxed)
    }

    /// Sets the percent of its weight the data center of `id` keeps (at most 100).
    pub fn set_keep(&self, id: LoadId, percent: u8) {
        self.keep[usize::from(id.0)].store(percent.min(100), Ordering::Relaxed);
    }

    /// The load slot of data center `datacenter` of zone `zone`: the same on every reload.
    pub fn load_slot(&self, zone: &str, datacenter: &str) -> Result<LoadId, TableFull> {
        let mut index = self.lock();
        let key = (zone.to_owned(), datacenter.to_owned());
        if let Some(&id) = index.loads.get(&key) {
            return Ok(id);
        }
        let id = index.loads.len();
        if id >= self.keep.len() {
            return Err(TableFull {
                capacity: self.keep.len(),
            });
        }
        let id = LoadId(id as u16);
        index.loads.insert(key, id);
        Ok(id)
    }

    /// The slot of an address as checked by `check` (`None`: not probed), created with the
    /// address's override on first use.
    pub fn address_slot(&self, check: Option<&Check>, ip: IpAddr) -> Result<HealthId, TableFull> {
        let mut index = self.lock();
        let key = (check.cloned(), ip);
        if let Some(&id) = index.addresses.get(&key) {
            return Ok(id);
        }
        let admin = index.admin(&OverrideKey::Address { address: ip });
        let id = self.allocate(&mut index, Word::new(true, false, admin))?;
        index.addresses.insert(key, id);
        index.by_ip.entry(ip).or_default().push(id);
        Ok(id)
    }

    /// The slot of data center `datacenter` of zone `zone` (absolute origin).
    pub fn datacenter_slot(&self, zone: &str, datacenter: &str) -> Result<HealthId, TableFull> {
        let mut index = self.lock();
        let key = (zone.to_owned(), datacenter.to_owned());
        if let Some(&id) = index.datacenters.get(&key) {
            return Ok(id);
        }
        let admin = index.admin(&OverrideKey::Datacenter {
            zone: key.0.clone(),
            datacenter: key.1.clone(),
        });
        let id = self.allocate(&mut index, Word::new(true, false, admin))?;
        index.datacenters.insert(key, id);
        Ok(id)
    }

    fn allocate(&self, index: &mut Index, word: Word) -> Result<HealthId, TableFull> {
        let id = index.used as usize;
        if id >= self.words.len() {
            return Err(TableFull {
                capacity: self.words.len(),
            });
        }
        index.used += 1;
        self.words[id].store(word.0, Ordering::Relaxed);
        Ok(HealthId(id as u32))
    }

    /// Hands the probe bits to the fleet: local results stop writing them. Once, when the
    /// node starts in a fleet.
    pub fn hand_probes_to_fleet(&self) {
        self.fleet_decides.store(true, Ordering::Relaxed);
    }

    /// Whether the fleet decides the probe bits.
    pub fn fleet_decides(&self) -> bool {
        self.fleet_decides.load(Ordering::Relaxed)
    }

    /// Stores this node's own probe result for `id`, unless the fleet decides.
    pub fn set_local_probe(&self, id: HealthId, up: bool, flapping: bool) {
        if !self.fleet_decides() {
            self.set_probe(id, up, flapping);
        }
    }

    /// Stores the probes' state of `id`, keeping its override.
    pub fn set_probe(&self, id: HealthId, up: bool, flapping: bool) {
        let probe = Word::new(up, flapping, Admin::None).0;
        self.update(id, |w| (w & ADMIN_MASK) | probe);
    }

    /// Sets (or with [`Admin::None`] clears) the override of `key` on every slot it
    /// covers, now and created later; returns the one it replaces.
    pub fn set_admin(&self, key: &OverrideKey, admin: Admin) -> Admin {
        let mut index = self.lock();
        let old = if admin == Admin::None {
            index.admins.remove(key)
        } else {
            index.admins.insert(key.clone(), admin)
        }
        .unwrap_or(Admin::None);
        let bits = admin.code() << ADMIN_SHIFT;
        let apply = |id: HealthId| self.update(id, |w| (w & !ADMIN_MASK) | bits);
        match key {
            OverrideKey::Address { address } => {
                for &id in index.by_ip.get(address).into_iter().flatten() {
                    apply(id);
                }
            }
            OverrideKey::Datacenter { zone, datacenter } => {
                if let Some(&id) = index.datacenters.get(&(zone.clone(), datacenter.clone())) {
                    apply(id);
                }
            }
        }
        old
    }

    /// The override of `key`.
    pub fn admin(&self, key: &OverrideKey) -> Admin {
        self.lock().admin(key)
    }

    /// Every override in force, sorted.
    pub fn admins(&self) -> Vec<(OverrideKey, Admin)> {
        self.lock()
            .admins
            .iter()
            .map(|(k, a)| (k.clone(), *a))
            .collect()
    }

    /// Sets (or with `None` removes) what is said about the override of `key`.
    pub fn set_note(&self, key: &OverrideKey, note: Option<String>) {
        let mut index = self.lock();
        match note {
            Some(n) => index.notes.insert(key.clone(), n),
            None => index.notes.remove(key),
        };
    }

    /// What is said about the override in force on slot `id` (who, when, why), if any:
    /// for `explain` and the status page, which know slots rather than keys.
    pub fn note_of(&self, id: HealthId) -> Option<String> {
        let index = self.lock();
        index.admins.keys().find_map(|key| {
            let covers = match key {
                OverrideKey::Address { address } => index
                    .by_ip
                    .get(address)
                    .is_some_and(|ids| ids.contains(&id)),
                OverrideKey::Datacenter { zone, datacenter } => {
                    index.datacenters.get(&(zone.clone(), datacenter.clone())) == Some(&id)
                }
            };
            if covers {
                index.notes.get(key).cloned()
            } else {
                None
            }
        })
    }

    /// Slots handed out so far.
    pub fn in_use(&self) -> usize {
        self.lock().used as usize
    }

    fn update(&self, id: HealthId, f: impl Fn(u8) -> u8) {
        // Writers hold the index lock or own the slot's probe bits; the loop only guards
        // against a probe write and an override write crossing.
        let _ = self.words[id.0 as usize]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(f(w)));
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // Every update leaves the index consistent; a panic elsewhere cannot break it.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Index {
    fn admin(&self, key: &OverrideKey) -> Admin {
        self.admins.get(key).copied().unwrap_or(Admin::None)
    }
}

impl std::fmt::Debug for HealthTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthTable")
            .field("capacity", &self.words.len())
            .field("in_use", &self.in_use())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_word_keeps_its_parts_apart() {
        for admin in [Admin::None, Admin::Up, Admin::Down, Admin::Drain] {
            for up in [true, false] {
                for flapping in [true, false] {
                    let w = Word::new(up, flapping, admin);
                    assert_eq!(
                        (w.probe_up(), w.flapping(), w.admin()),
                        (up, flapping, admin)
                    );
                }
            }
        }
    }

    #[test]
    fn probe_and_override_writes_keep_each_other() {
        let t = HealthTable::new(8);
        let id = t.address_slot(None, ip("192.0.2.1")).unwrap();
        assert_eq!(t.word(id), Word::new(true, false, Admin::None));
        t.set_probe(id, false, true);
        let key = OverrideKey::Address {
            address: ip("192.0.2.1"),
        };
        assert_eq!(t.set_admin(&key, Admin::Drain), Admin::None);
        assert_eq!(t.word(id), Word::new(false, true, Admin::Drain));
        t.set_probe(id, true, false);
        assert_eq!(t.word(id), Word::new(true, false, Admin::Drain));
        assert_eq!(t.set_admin(&key, Admin::None), Admin::Drain);
        assert_eq!(t.word(id), Word::new(true, false, Admin::None));
        assert!(t.admins().is_empty());
    }

    #[test]
    fn an_address_override_covers_every_check_of_the_address_and_later_slots() {
        let t = HealthTable::new(8);
        let key = OverrideKey::Address {
            address: ip("192.0.2.1"),
        };
        let before = t.address_slot(None, ip("192.0.2.1")).unwrap();
        let other = t.address_slot(None, ip("192.0.2.2")).unwrap();
        t.set_admin(&key, Admin::Down);
        let dc = t.datacenter_slot("example.com.", "ams").unwrap();
        let check = Check {
            kind: crate::health::CheckKind::Tcp { port: 80 },
            interval: std::time::Duration::from_secs(1),
            timeout: std::time::Duration::from_millis(500),
            rise: 1,
            fall: 1,
            jitter: std::time::Duration::ZERO,
            initial: crate::health::InitialState::Up,
        };
        let after = t.address_slot(Some(&check), ip("192.0.2.1")).unwrap();
        assert_ne!(before, after);
        assert_eq!(t.word(before).admin(), Admin::Down);
        assert_eq!(t.word(after).admin(), Admin::Down);
        assert_eq!(t.word(other).admin(), Admin::None);
        assert_eq!(t.word(dc).admin(), Admin::None);
    }

    #[test]
    fn the_same_key_gets_the_same_slot_and_a_full_table_says_so() {
        let t = HealthTable::new(2);
        let a = t.datacenter_slot("example.com.", "ams").unwrap();
        assert_eq!(t.datacenter_slot("example.com.", "ams").unwrap(), a);
        t.datacenter_slot("example.com.", "nyc").unwrap();
        let e = t.datacenter_slot("example.com.", "sin").unwrap_err();
        assert_eq!(e, TableFull { capacity: 2 });
        assert!(e.to_string().contains("restart"), "{e}");
    }
}
