//! [`TimeRanges`]: sets of microseconds, as closed intervals.

use crate::time::{MAX_TIME, MIN_TIME};

/// A set of microseconds: sorted, disjoint, non-adjacent closed intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRanges {
    ranges: Vec<(i64, i64)>,
}

impl TimeRanges {
    /// Every time.
    pub fn all() -> Self {
        Self {
            ranges: vec![(MIN_TIME, MAX_TIME)],
        }
    }

    /// No time at all: a predicate that matches nothing.
    pub fn none() -> Self {
        Self { ranges: Vec::new() }
    }

    /// The closed interval `[first, last]`; empty if `first > last`.
    pub fn between(first: i64, last: i64) -> Self {
        if first > last {
            Self::none()
        } else {
            Self {
                ranges: vec![(first, last)],
            }
        }
    }

    /// The half-open range `[start, end)` of the API; `end == MAX_TIME` is unbounded.
    pub fn half_open(start: i64, end: i64) -> Self {
        crate::time::last_micro(end).map_or_else(Self::none, |last| Self::between(start, last))
    }

    /// Whether this is every time.
    pub fn is_all(&self) -> bool {
        self.ranges == [(MIN_TIME, MAX_TIME)]
    }

    /// Whether no time is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The closed intervals, in order.
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }

    /// The smallest closed interval holding the whole set.
    pub fn hull(&self) -> Option<(i64, i64)> {
        Some((self.ranges.first()?.0, self.ranges.last()?.1))
    }

    /// Whether the set meets the closed interval `[min, max]`.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        // The first range that does not end before `min` decides.
        let i = self.ranges.partition_point(|&(_, last)| last < min);
        self.ranges.get(i).is_some_and(|&(first, _)| first <= max)
    }

    /// Whether every time of `other` is in this set.
    pub fn contains(&self, other: &Self) -> bool {
        other.intersect(self) == *other
    }

    /// Times in both sets.
    pub fn intersect(&self, other: &Self) -> Self {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let (first, last) = (a.0.max(b.0), a.1.min(b.1));
            if first <= last {
                out.push((first, last));
            }
            if a.1 < b.1 { i += 1 } else { j += 1 }
        }
        Self { ranges: out }
    }

    /// Times in either set.
    pub fn union(&self, other: &Self) -> Self {
        let mut all: Vec<(i64, i64)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(all.len());
        for (first, last) in all {
            match out.last_mut() {
                Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
                _ => out.push((first, last)),
            }
        }
        Self { ranges: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_checks_closed_bounds() {
        let r = TimeRanges::between(10, 20).union(&TimeRanges::between(30, 40));
        assert!(r.overlaps(20, 25) && r.overlaps(25, 30) && r.overlaps(0, 100));
        assert!(!r.overlaps(21, 29) && !r.overlaps(41, 50) && !r.overlaps(0, 9));
        assert_eq!(
            TimeRanges::between(1, 5).union(&TimeRanges::between(6, 8)),
            TimeRanges::between(1, 8),
            "adjacent ranges merge"
        );
    }
}
