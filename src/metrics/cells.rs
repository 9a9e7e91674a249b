//! Counters the query path writes: one row of cells per thread, summed when scraped.
//!
//! A counter shared by all threads is a cache line every core writes on every query; under
//! load that line moves between cores on each increment. Here each thread writes only its
//! own cells (a relaxed load and store, no locked instruction), and a scrape reads every
//! thread's row and adds them up. A scrape never blocks a query: it only loads.
//!
//! Cells are addressed by [`Slot`], handed out at compile time ([`super::slot`]) and
//! never reused, so a slot means the same series in every thread and across reloads.
//! Rows grow in chunks the first time a thread touches a chunk, so memory follows the slots
//! a thread actually counts, not every slot there is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::Slot;

/// Cells per chunk: 32 KiB of counters, allocated together.
const CHUNK: usize = 4096;
/// Chunks per row: with [`CHUNK`], room for 16 M slots (a slot past that is not counted).
const CHUNKS: usize = 4096;

/// One thread's counters.
struct Row {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

impl Row {
    fn new() -> Self {
        Self {
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The cell of `slot`, allocating its chunk the first time; `None` past the last slot.
    #[inline]
    fn cell(&self, slot: Slot) -> Option<&AtomicU64> {
        let i = slot.0 as usize;
        let chunk = self.chunks.get(i / CHUNK)?;
        let cells = chunk.get_or_init(|| (0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        Some(&cells[i % CHUNK])
    }

    /// The count in `slot`, without allocating.
    fn read(&self, slot: Slot) -> u64 {
        let i = slot.0 as usize;
        self.chunks
            .get(i / CHUNK)
            .and_then(OnceLock::get)
            .map_or(0, |cells| cells[i % CHUNK].load(Ordering::Relaxed))
    }
}

/// Every row ever made. Rows outlive their threads, so counts of a thread that ended stay
/// in the totals.
static ROWS: Mutex<Vec<Arc<Row>>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: Arc<Row> = {
        let row = Arc::new(Row::new());
        ROWS.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(row.clone());
        row
    };
}

/// This thread's counters, for adding several counts with one thread-local lookup.
pub struct Cells<'a>(&'a Row);

impl Cells<'_> {
    /// Adds `n` to `slot`. A load and a store, not an atomic add: only this thread writes
    /// the cell, and the scrape only reads it.
    #[inline]
    pub fn add(&self, slot: Slot, n: u64) {
        if let Some(c) = self.0.cell(slot) {
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }
}

/// Runs `f` with this thread's counters.
#[inline]
pub fn with<R>(f: impl FnOnce(&Cells<'_>) -> R) -> R {
    MINE.with(|row| f(&Cells(row)))
}

/// The total of `slot` over every thread.
pub fn total(slot: Slot) -> u64 {
    let rows = ROWS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    rows.iter().map(|r| r.read(slot)).sum()
}

/// The totals of many slots, taking the list of rows once.
pub fn totals(slots: impl IntoIterator<Item = Slot>) -> Vec<u64> {
    let rows = ROWS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    slots
        .into_iter()
        .map(|s| rows.iter().map(|r| r.read(s)).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_over_threads_and_outlive_them() {
        // Slots far from those the other tests of this process use.
        let a = Slot(3 * CHUNK as u32 + 7);
        let b = Slot(9 * CHUNK as u32);
        let before = (total(a), total(b));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        with(|c| {
                            c.add(a, 1);
                            c.add(b, 2);
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // The threads have ended; their rows still count.
        assert_eq!(total(a) - before.0, 4000);
        assert_eq!(totals([a, b])[1] - before.1, 8000);
    }

    #[test]
    fn a_slot_past_the_last_is_ignored() {
        let far = Slot((CHUNK * CHUNKS) as u32 + 1);
        with(|c| c.add(far, 1));
        assert_eq!(total(far), 0);
    }
}
