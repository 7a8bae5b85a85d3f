//! A static interval index: which of n closed intervals overlap a half-open
//! query range, in O(log n + k) for k hits in the common case.
//!
//! Intervals are sorted by their start, and the sorted array is read as an
//! implicit balanced binary tree (the middle element of every sub-range is its
//! root). Each root stores the largest end in its sub-range, so a search skips
//! every sub-tree that ends before the query starts, and stops going right as
//! soon as a start passes the query's end.

use std::sync::Arc;

/// Intervals added since the static index was built, past which it is
/// rebuilt (so a commit costs O(1) amortized, not a rebuild).
const TAIL: usize = 1024;

/// The intervals of a series' live versions, kept current commit by commit
/// in amortized O(1): a static [`IntervalIndex`] shared between copies of
/// the index, the intervals added since (searched linearly), and a count of
/// the static entries whose versions are no longer live (filtered out by
/// the caller). Rebuilt once either side has grown past [`TAIL`] or half
/// the static entries are dead.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveIntervals {
    base: Arc<IntervalIndex>,
    dead: usize,
    tail: Vec<(i64, i64, usize)>,
}

impl LiveIntervals {
    /// An index of exactly `intervals`.
    pub(crate) fn new(intervals: impl IntoIterator<Item = (i64, i64, usize)>) -> Self {
        Self {
            base: Arc::new(IntervalIndex::new(intervals)),
            dead: 0,
            tail: Vec::new(),
        }
    }

    /// Adds the interval of a new live version.
    pub(crate) fn add(&mut self, start: i64, end: i64, id: usize) {
        self.tail.push((start, end, id));
    }

    /// Takes out the interval of a version that is no longer live.
    pub(crate) fn remove(&mut self, id: usize) {
        match self.tail.iter().position(|t| t.2 == id) {
            Some(at) => {
                self.tail.swap_remove(at);
            }
            None => self.dead += 1,
        }
    }

    /// Whether a rebuild is due.
    pub(crate) fn needs_rebuild(&self) -> bool {
        self.tail.len() > TAIL || self.dead > TAIL.max(self.base.len() / 2)
    }

    /// Ids of the intervals that meet `[start, last]`, in no particular
    /// order, among those `is_live` accepts.
    pub(crate) fn overlapping(
        &self,
        start: i64,
        last: i64,
        is_live: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let mut hits = self.base.overlapping(start, last);
        if self.dead > 0 {
            hits.retain(|&id| is_live(id));
        }
        hits.extend(
            self.tail
                .iter()
                .filter(|&&(s, e, _)| start <= last && s <= last && e >= start)
                .map(|t| t.2),
        );
        hits
    }
}

/// Closed intervals `[start, end]` with payloads `id`, sorted for overlap queries.
#[derive(Debug, Clone, Default)]
pub(crate) struct IntervalIndex {
    starts: Vec<i64>,
    ends: Vec<i64>,
    ids: Vec<usize>,
    /// For the root `mid` of each sub-range, the largest end in that sub-range.
    max_end: Vec<i64>,
}

impl IntervalIndex {
    /// Builds the index. Intervals with equal starts keep their given order.
    pub(crate) fn new(intervals: impl IntoIterator<Item = (i64, i64, usize)>) -> Self {
        let mut items: Vec<(i64, i64, usize)> = intervals.into_iter().collect();
        items.sort_by_key(|&(start, _, _)| start);
        let mut index = Self {
            starts: items.iter().map(|i| i.0).collect(),
            ends: items.iter().map(|i| i.1).collect(),
            ids: items.iter().map(|i| i.2).collect(),
            max_end: vec![i64::MIN; items.len()],
        };
        index.fill_max_end(0, items.len());
        index
    }

    fn fill_max_end(&mut self, lo: usize, hi: usize) -> i64 {
        if lo >= hi {
            return i64::MIN;
        }
        let mid = lo + (hi - lo) / 2;
        let max = self.ends[mid]
            .max(self.fill_max_end(lo, mid))
            .max(self.fill_max_end(mid + 1, hi));
        self.max_end[mid] = max;
        max
    }

    /// Number of intervals.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Ids of the intervals `[s, e]` that meet the closed range `[start, last]`
    /// (`s <= last && e >= start`), ordered by `s`.
    pub(crate) fn overlapping(&self, start: i64, last: i64) -> Vec<usize> {
        let mut out = Vec::new();
        if start <= last {
            self.visit(0, self.len(), start, last, &mut out);
        }
        out
    }

    fn visit(&self, lo: usize, hi: usize, start: i64, last: i64, out: &mut Vec<usize>) {
        if lo >= hi {
            return;
        }
        let mid = lo + (hi - lo) / 2;
        if self.max_end[mid] < start {
            return;
        }
        self.visit(lo, mid, start, last, out);
        if self.starts[mid] > last {
            return;
        }
        if self.ends[mid] >= start {
            out.push(self.ids[mid]);
        }
        self.visit(mid + 1, hi, start, last, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn finds_overlaps_in_start_order() {
        let index = IntervalIndex::new([(10, 20, 0), (0, 5, 1), (15, 100, 2), (30, 40, 3)]);
        assert_eq!(index.overlapping(18, 30), vec![0, 2, 3]);
        assert_eq!(index.overlapping(5, 5), vec![1]);
        assert_eq!(index.overlapping(6, 9), Vec::<usize>::new());
        assert_eq!(index.overlapping(41, 200), vec![2]);
        assert_eq!(index.overlapping(7, 6), Vec::<usize>::new());
    }

    #[test]
    fn agrees_with_a_linear_scan() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let n = rng.random_range(0..300);
            let intervals: Vec<(i64, i64, usize)> = (0..n)
                .map(|id| {
                    let s = rng.random_range(-1_000..1_000);
                    (s, s + rng.random_range(0..200), id)
                })
                .collect();
            let index = IntervalIndex::new(intervals.clone());
            for _ in 0..50 {
                let start = rng.random_range(-1_200..1_200);
                let last = start + rng.random_range(-1..400);
                let mut got = index.overlapping(start, last);
                got.sort_unstable();
                let want: Vec<usize> = intervals
                    .iter()
                    .filter(|(s, e, _)| start <= last && *s <= last && *e >= start)
                    .map(|i| i.2)
                    .collect();
                assert_eq!(got, want, "query [{start}, {last}]");
            }
        }
    }

    #[test]
    fn live_intervals_agree_with_a_linear_scan_through_adds_removes_and_rebuilds() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut all: Vec<(i64, i64, bool)> = Vec::new();
        let mut index = LiveIntervals::default();
        for step in 0..6_000 {
            if rng.random_range(0..4) == 0 && !all.is_empty() {
                let id = rng.random_range(0..all.len());
                if all[id].2 {
                    all[id].2 = false;
                    index.remove(id);
                }
            } else {
                let s = rng.random_range(-5_000..5_000);
                let e = s + rng.random_range(0..300);
                index.add(s, e, all.len());
                all.push((s, e, true));
            }
            if index.needs_rebuild() {
                index = LiveIntervals::new(
                    all.iter()
                        .enumerate()
                        .filter(|(_, t)| t.2)
                        .map(|(i, t)| (t.0, t.1, i)),
                );
            }
            if step % 50 == 0 {
                let start = rng.random_range(-5_500..5_500);
                let last = start + rng.random_range(-1..600);
                let mut got = index.overlapping(start, last, |id| all[id].2);
                got.sort_unstable();
                let want: Vec<usize> = (0..all.len())
                    .filter(|&i| {
                        let (s, e, live) = all[i];
                        live && start <= last && s <= last && e >= start
                    })
                    .collect();
                assert_eq!(got, want, "step {step}: [{start}, {last}]");
            }
        }
    }
}
