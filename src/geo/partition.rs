//! A partition of one address family into ranges, each with a value.
//!
//! Every address belongs to exactly one range (the first starts at 0, each runs until the
//! next one starts), so a lookup always finds a value. Building blocks for the compiled
//! GeoIP tables: databases and override networks become partitions, partitions are
//! combined range by range with [`Partition::zip`] in one linear pass, and neighbouring
//! ranges with equal values are merged as they are produced.

use ipnet::IpNet;

use crate::family::Family;

/// Ranges covering a whole family, each with a value.
#[derive(Clone, Debug)]
pub struct Partition<V> {
    family: Family,
    starts: Vec<u128>,
    values: Vec<V>,
    /// Optional lookup index by the top [`JUMP_BITS`] bits: `jump[b]` is the first range
    /// starting at or after block `b`. Turns a binary search over millions of ranges (a
    /// cache miss per step) into one over the few ranges of one block.
    jump: Option<Box<[u32]>>,
}

/// Bits of the address the lookup index splits on (a /16 for IPv4).
const JUMP_BITS: u32 = 16;

impl<V> Partition<V> {
    /// One range, the whole family.
    pub fn uniform(family: Family, value: V) -> Self {
        Self {
            family,
            starts: vec![0],
            values: vec![value],
            jump: None,
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Always false: a partition covers its family with at least one range.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Index of the range holding `key`.
    #[inline]
    pub fn index_of(&self, key: u128) -> usize {
        match &self.jump {
            Some(jump) => {
                let shift = u32::from(self.family.bits()) - JUMP_BITS;
                let b = (key >> shift) as usize;
                let (lo, hi) = (jump[b] as usize, jump[b + 1] as usize);
                // starts[0] is 0, so some range at or before `lo` holds the key.
                lo + self.starts[lo..hi].partition_point(|&s| s <= key) - 1
            }
            None => self.starts.partition_point(|&s| s <= key) - 1,
        }
    }

    /// Builds the lookup index (for tables read on the query path).
    pub fn build_index(&mut self) {
        let shift = u32::from(self.family.bits()) - JUMP_BITS;
        let blocks = 1usize << JUMP_BITS;
        let mut jump = Vec::with_capacity(blocks + 1);
        let mut i = 0usize;
        for b in 0..blocks {
            let block_start = (b as u128) << shift;
            while i < self.starts.len() && self.starts[i] < block_start {
                i += 1;
            }
            jump.push(i as u32);
        }
        jump.push(self.starts.len() as u32);
        self.jump = Some(jump.into_boxed_slice());
    }

    /// First and last key of range `i`.
    pub fn bounds(&self, i: usize) -> (u128, u128) {
        let end = match self.starts.get(i + 1) {
            Some(next) => next - 1,
            None => self.family.max(),
        };
        (self.starts[i], end)
    }

    /// The value of range `i`.
    pub fn value(&self, i: usize) -> &V {
        &self.values[i]
    }

    /// Ranges as (first, last, value).
    pub fn iter(&self) -> impl Iterator<Item = (u128, u128, &V)> {
        (0..self.len()).map(|i| {
            let (s, e) = self.bounds(i);
            (s, e, &self.values[i])
        })
    }
}

impl<V> Partition<V> {
    /// A partition with the same boundaries valued `f(value)`, neighbours that become
    /// equal merged as it is built (so it is never larger than it needs to be).
    pub fn derive<X: PartialEq>(&self, mut f: impl FnMut(&V) -> X) -> Partition<X> {
        let mut out = Partition {
            family: self.family,
            starts: Vec::new(),
            values: Vec::new(),
            jump: None,
        };
        for (start, value) in self.starts.iter().zip(&self.values) {
            out.push(*start, f(value));
        }
        out.starts.shrink_to_fit();
        out.values.shrink_to_fit();
        out
    }
}

impl Partition<u32> {
    /// The same ranges with `flag` or-ed into the values where `set` says so.
    pub fn with_flags(mut self, set: &[bool], flag: u32) -> Self {
        for (v, s) in self.values.iter_mut().zip(set) {
            if *s {
                *v |= flag;
            }
        }
        self
    }
}

impl<V> Partition<V> {
    /// For each range, whether any address in it has a value in `other` for which `pred`
    /// holds.
    pub fn overlaps<W>(&self, other: &Partition<W>, pred: impl Fn(&W) -> bool) -> Vec<bool> {
        debug_assert_eq!(self.family, other.family);
        let mut out = Vec::with_capacity(self.len());
        let mut j = 0;
        for i in 0..self.len() {
            let (start, end) = self.bounds(i);
            // The first range of `other` that reaches into this one.
            while other.bounds(j).1 < start {
                j += 1;
            }
            let mut k = j;
            let mut hit = false;
            while k < other.len() && other.starts[k] <= end {
                if pred(&other.values[k]) {
                    hit = true;
                    break;
                }
                k += 1;
            }
            out.push(hit);
        }
        out
    }
}

impl<V: PartialEq> Partition<V> {
    /// Merges neighbouring ranges with equal values.
    pub fn coalesce(&mut self) {
        let mut w = 0;
        for r in 1..self.starts.len() {
            if self.values[r] != self.values[w] {
                w += 1;
                self.starts.swap(w, r);
                self.values.swap(w, r);
            }
        }
        self.starts.truncate(w + 1);
        self.values.truncate(w + 1);
        self.jump = None;
    }

    fn push(&mut self, start: u128, value: V) {
        if let Some(last) = self.starts.last() {
            if *last == start {
                // A later range at the same start replaces the earlier one.
                self.starts.pop();
                self.values.pop();
                return self.push(start, value);
            }
        }
        if self.values.last() == Some(&value) {
            return;
        }
        self.starts.push(start);
        self.values.push(value);
    }
}

impl<T: Clone + PartialEq> Partition<Option<T>> {
    /// From ranges sorted by start that do not overlap; gaps are `None`.
    pub fn from_sorted(family: Family, ranges: Vec<(u128, u128, T)>) -> Self {
        let mut p = SortedRanges::with_capacity(family, ranges.len() * 2);
        for (s, e, v) in ranges {
            p.add(s, e, Some(v))
                .expect("ranges sorted and not overlapping");
        }
        p.finish()
    }
}

/// A range given to [`SortedRanges::add`] that starts before the previous one ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfOrder;

/// Builds a partition from ranges given in address order (a database walk), merging
/// neighbours with one value as they come, so it never holds more than the result. Gaps
/// between ranges get `T::default()`.
#[derive(Debug)]
pub struct SortedRanges<T> {
    p: Partition<T>,
    /// The first address no range has covered yet; `None` once the family's end is reached.
    next: Option<u128>,
}

impl<T: Clone + PartialEq + Default> SortedRanges<T> {
    /// Nothing covered yet, room for `ranges` ranges (reserved, not touched: pages a walk
    /// never fills cost no memory).
    pub fn with_capacity(family: Family, ranges: usize) -> Self {
        let mut p = Partition {
            family,
            starts: Vec::with_capacity(ranges.max(1)),
            values: Vec::with_capacity(ranges.max(1)),
            jump: None,
        };
        p.starts.push(0);
        p.values.push(T::default());
        Self { p, next: Some(0) }
    }

    /// Gives `[start, end]` the value `v`. `Err` when the range starts before the end of
    /// the previous one.
    pub fn add(&mut self, start: u128, end: u128, v: T) -> Result<(), OutOfOrder> {
        match self.next {
            Some(next) if start >= next && end >= start => {}
            _ => return Err(OutOfOrder),
        }
        self.p.push(start, v);
        self.next = (end < self.p.family.max()).then(|| end + 1);
        if let Some(after) = self.next {
            self.p.push(after, T::default());
        }
        Ok(())
    }

    /// The partition.
    pub fn finish(mut self) -> Partition<T> {
        self.p.starts.shrink_to_fit();
        self.p.values.shrink_to_fit();
        self.p
    }
}

impl<T: Copy + PartialEq> Partition<Option<T>> {
    /// From CIDR networks that may nest: the longest prefix holding an address decides it;
    /// for the same network written twice, the later entry wins. Returns (IPv4, IPv6).
    pub fn from_networks(nets: &[(IpNet, T)]) -> (Self, Self) {
        let build = |family: Family, want_v4: bool| {
            let mut ranges: Vec<(u128, u128, usize)> = nets
                .iter()
                .enumerate()
                .filter(|(_, (n, _))| matches!(n, IpNet::V4(_)) == want_v4)
                .map(|(i, (n, _))| {
                    let (s, e) = Family::range_of(n);
                    (s, e, i)
                })
                .collect();
            // Outer networks first, then inner ones; equal networks in input order.
            ranges.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
            let mut p = Partition::uniform(family, None);
            let mut stack: Vec<(u128, T)> = Vec::new();
            let close_until = |p: &mut Self, stack: &mut Vec<(u128, T)>, before: Option<u128>| {
                while let Some(&(end, _)) = stack.last() {
                    if before.is_some_and(|b| end >= b) {
                        break;
                    }
                    stack.pop();
                    if end < family.max() {
                        p.push(end + 1, stack.last().map(|x| x.1));
                    }
                }
            };
            for (s, e, i) in ranges {
                close_until(&mut p, &mut stack, Some(s));
                p.push(s, Some(nets[i].1));
                stack.push((e, nets[i].1));
            }
            close_until(&mut p, &mut stack, None);
            p
        };
        (build(Family::V4, true), build(Family::V6, false))
    }
}

impl<V> Partition<V> {
    /// Combines two partitions of the same family range by range: the result has a range
    /// boundary wherever either input has one, valued `f(a, b)`; equal neighbours merge.
    pub fn zip<W, X: PartialEq>(
        &self,
        other: &Partition<W>,
        mut f: impl FnMut(V, W) -> X,
    ) -> Partition<X>
    where
        V: Clone,
        W: Clone,
    {
        debug_assert_eq!(self.family, other.family);
        let mut out = Partition {
            family: self.family,
            starts: Vec::with_capacity(self.len().max(other.len())),
            values: Vec::with_capacity(self.len().max(other.len())),
            jump: None,
        };
        let (mut i, mut j) = (0, 0);
        loop {
            let start = self.starts[i].max(other.starts[j]);
            out.push(start, f(self.values[i].clone(), other.values[j].clone()));
            let next_i = self.starts.get(i + 1).copied();
            let next_j = other.starts.get(j + 1).copied();
            match (next_i, next_j) {
                (None, None) => break,
                (Some(a), Some(b)) if a == b => {
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a < b => i += 1,
                (Some(_), None) => i += 1,
                _ => j += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> u128 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128
    }

    fn at<V: Copy>(p: &Partition<V>, key: u128) -> V {
        *p.value(p.index_of(key))
    }

    #[test]
    fn nested_networks_longest_prefix_wins() {
        let (p4, p6) = Partition::from_networks(&[
            (net("10.0.0.0/8"), 1),
            (net("10.1.0.0/16"), 2),
            (net("10.1.2.0/24"), 3),
            (net("10.200.0.0/16"), 4),
            (net("2001:db8::/32"), 6),
        ]);
        assert_eq!(at(&p4, v4("9.255.255.255")), None);
        assert_eq!(at(&p4, v4("10.0.0.1")), Some(1));
        assert_eq!(at(&p4, v4("10.1.0.1")), Some(2));
        assert_eq!(at(&p4, v4("10.1.2.200")), Some(3));
        assert_eq!(at(&p4, v4("10.1.3.0")), Some(2));
        assert_eq!(at(&p4, v4("10.2.0.0")), Some(1));
        assert_eq!(at(&p4, v4("10.200.9.9")), Some(4));
        assert_eq!(at(&p4, v4("10.255.255.255")), Some(1));
        assert_eq!(at(&p4, v4("11.0.0.0")), None);
        assert_eq!(at(&p6, 0x2001_0db8_0000_0000_0000_0000_0000_0001), Some(6));
        assert_eq!(at(&p6, 0x2001_0db9_0000_0000_0000_0000_0000_0000), None);
    }

    #[test]
    fn networks_reaching_the_top_of_the_space() {
        let (p4, _) = Partition::from_networks(&[(net("0.0.0.0/0"), 1), (net("255.0.0.0/8"), 2)]);
        assert_eq!(at(&p4, 0), Some(1));
        assert_eq!(at(&p4, u32::MAX as u128), Some(2));
        assert_eq!(p4.len(), 2);
    }

    #[test]
    fn zip_splits_at_both_boundaries_and_merges_equal_neighbours() {
        let a = Partition::from_sorted(Family::V4, vec![(10, 19, 'a'), (20, 29, 'b')]);
        let b = Partition::from_sorted(Family::V4, vec![(15, 24, 'x')]);
        let z = a.zip(&b, |a, b| (a, b));
        let got: Vec<_> = z.iter().map(|(s, e, v)| (s, e, *v)).collect();
        assert_eq!(
            got,
            vec![
                (0, 9, (None, None)),
                (10, 14, (Some('a'), None)),
                (15, 19, (Some('a'), Some('x'))),
                (20, 24, (Some('b'), Some('x'))),
                (25, 29, (Some('b'), None)),
                (30, u32::MAX as u128, (None, None)),
            ]
        );
        // Only presence matters here: neighbours that agree merge.
        let merged = a.zip(&b, |a, _| a.is_some());
        assert_eq!(merged.len(), 3);
    }

    #[test]
    fn sorted_ranges_refuse_overlap_and_disorder() {
        let mut r = SortedRanges::with_capacity(Family::V4, 4);
        r.add(10, 19, 1u8).unwrap();
        assert!(r.add(15, 30, 2).is_err(), "overlaps the previous range");
        assert!(r.add(5, 8, 2).is_err(), "before the previous range");
        r.add(20, u32::MAX as u128, 2).unwrap();
        assert!(r.add(0, 0, 3).is_err(), "the family is covered to its end");
        let p = r.finish();
        let got: Vec<_> = p.iter().map(|(s, e, v)| (s, e, *v)).collect();
        assert_eq!(got, vec![(0, 9, 0), (10, 19, 1), (20, u32::MAX as u128, 2)]);
    }

    #[test]
    fn adjacent_ranges_with_one_value_merge() {
        let mut p = Partition::from_sorted(Family::V4, vec![(0, 9, 1), (10, 19, 1), (20, 29, 2)]);
        p.coalesce();
        assert_eq!(p.len(), 3); // [0,19]=1, [20,29]=2, rest None
        assert_eq!(p.bounds(0), (0, 19));
    }

    #[test]
    fn the_lookup_index_agrees_with_binary_search() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut ranges = Vec::new();
        let mut start = 0u128;
        while start < u32::MAX as u128 - 1_000_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            start += 1 + (x % 500_000) as u128;
            ranges.push((start, start + (x % 1000) as u128, (x % 7) as u8));
            start += 1000;
        }
        let plain = Partition::from_sorted(Family::V4, ranges);
        let mut indexed = plain.clone();
        indexed.build_index();
        for k in (0..u32::MAX as u128)
            .step_by(9_973)
            .chain([0, u32::MAX as u128])
        {
            assert_eq!(plain.index_of(k), indexed.index_of(k), "key {k}");
        }
        let mut v6 = Partition::from_networks(&[("2001:db8::/32".parse().unwrap(), 1u8)]).1;
        v6.build_index();
        assert_eq!(*v6.value(v6.index_of(0x2001_0db8 << 96)), Some(1));
        assert_eq!(*v6.value(v6.index_of(u128::MAX)), None);
    }
}
