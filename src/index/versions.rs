//! The versions of one series, in version order, as a persistent vector:
//! fixed-size chunks shared between copies of the index, so that applying a
//! commit copies one chunk and the chunk pointers, not every version.

use std::ops::Index;
use std::sync::Arc;

use super::FileInfo;

/// Versions per chunk.
const CHUNK: usize = 1024;

/// A vector of versions whose copies share all but the chunks they change.
#[derive(Debug, Clone, Default)]
pub(crate) struct Versions {
    /// All full but the last.
    chunks: Vec<Arc<Vec<Arc<FileInfo>>>>,
    len: usize,
}

impl Versions {
    /// Number of versions.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The versions in order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<FileInfo>> + Clone {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// The newest version.
    pub(crate) fn last(&self) -> Option<&Arc<FileInfo>> {
        self.chunks.last().and_then(|chunk| chunk.last())
    }

    /// Adds a version at the end.
    pub(crate) fn push(&mut self, version: Arc<FileInfo>) {
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        let last = self.chunks.last_mut().expect("a chunk was just ensured");
        Arc::make_mut(last).push(version);
        self.len += 1;
    }

    /// The version at `i`, to change (copied first if shared).
    pub(crate) fn make_mut(&mut self, i: usize) -> &mut FileInfo {
        let chunk = Arc::make_mut(&mut self.chunks[i / CHUNK]);
        Arc::make_mut(&mut chunk[i % CHUNK])
    }

    /// The first index whose version does not satisfy `pred`, for a `pred`
    /// that holds for a prefix of the versions (as `slice::partition_point`).
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(&FileInfo) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self[mid]) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The index of the version numbered `version`.
    pub(crate) fn find(&self, version: i64) -> Option<usize> {
        let i = self.partition_point(|v| v.version < version);
        (i < self.len && self[i].version == version).then_some(i)
    }

    /// Replaces every version (after a rebuild in another order).
    pub(crate) fn from_vec(all: Vec<Arc<FileInfo>>) -> Self {
        let mut versions = Self::default();
        for v in all {
            versions.push(v);
        }
        versions
    }
}

impl Index<usize> for Versions {
    type Output = Arc<FileInfo>;

    fn index(&self, i: usize) -> &Arc<FileInfo> {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(v: i64) -> Arc<FileInfo> {
        Arc::new(FileInfo {
            version: v,
            ..FileInfo::default()
        })
    }

    #[test]
    fn copies_share_untouched_chunks_and_see_only_their_own_changes() {
        let mut a = Versions::default();
        for v in 1..=2_500 {
            a.push(version(v));
        }
        let b = a.clone();
        a.push(version(2_501));
        a.make_mut(5).row_count = 7;
        assert_eq!((a.len(), b.len()), (2_501, 2_500));
        assert_eq!((a[5].row_count, b[5].row_count), (7, 0));
        assert!(Arc::ptr_eq(&a.chunks[1], &b.chunks[1]), "chunk 1 is shared");
        assert_eq!(a.iter().next_back().unwrap().version, 2_501);
        assert_eq!(a.iter().map(|v| v.version).sum::<i64>(), 2_501 * 2_502 / 2);
        assert_eq!(a.find(1_500), Some(1_499));
        assert_eq!(a.find(0), None);
        assert_eq!(a.find(9_999), None);
        assert_eq!(a.partition_point(|v| v.version <= 1_024), 1_024);
        assert_eq!(a.last().unwrap().version, 2_501);
    }
}
