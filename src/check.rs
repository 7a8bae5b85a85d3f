//! [`Pond::check`]: the data files against the oplog.

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::file::metadata::ParquetMetaDataReader;

use crate::error::Result;
use crate::pond::Pond;
use crate::series::writer::ContentHasher;

/// What is wrong with one referenced data file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file is gone.
    Missing,
    /// The file's size differs from the oplog's.
    SizeMismatch {
        /// Bytes according to the oplog.
        expected: i64,
        /// Bytes found.
        actual: i64,
    },
    /// The file's bytes hash differently from the oplog's `content_hash`.
    HashMismatch {
        /// The hash in the oplog.
        expected: String,
        /// The hash of the bytes found.
        actual: String,
    },
    /// The file's Parquet footer counts other rows than the oplog.
    RowCountMismatch {
        /// Rows according to the oplog.
        expected: i64,
        /// Rows in the footer.
        actual: i64,
    },
    /// The file is not readable Parquet.
    Unreadable(String),
}

/// A referenced data file that disagrees with the oplog: corruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// The series path.
    pub series: String,
    /// The version.
    pub version: i64,
    /// The data file, relative to the pond root.
    pub file_path: String,
    /// What is wrong.
    pub problem: Problem,
}

/// The result of [`Pond::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Referenced data files that were read and verified.
    pub files_checked: usize,
    /// Files under `data/` that no oplog entry references and that are older
    /// than the grace period: left behind by a write that failed or was
    /// killed before its commit. Never data; safe to delete.
    pub garbage: Vec<String>,
    /// Unreferenced files younger than the grace period: they may belong to
    /// an append still in progress, so they are not called garbage yet.
    pub pending: Vec<String>,
    /// Referenced files that are missing or disagree with the oplog.
    pub problems: Vec<FileProblem>,
}

impl CheckReport {
    /// Whether there is neither garbage nor corruption.
    pub fn is_clean(&self) -> bool {
        self.garbage.is_empty() && self.problems.is_empty()
    }
}

/// How many files are verified at once.
const CHECK_CONCURRENCY: usize = 8;

/// How old an unreferenced file must be before [`Pond::check`] calls it
/// garbage rather than part of an append in progress.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

impl Pond {
    /// Verifies every data file against the oplog: each referenced file must
    /// exist with the recorded size, content hash and row count, and every
    /// file under `data/` must be referenced. Reads every data file in full.
    /// Unreferenced files younger than [`DEFAULT_GRACE`] are reported as
    /// pending, not garbage.
    pub async fn check(&self) -> Result<CheckReport> {
        self.check_with_grace(DEFAULT_GRACE).await
    }

    /// [`Pond::check`] with another grace period for unreferenced files.
    pub async fn check_with_grace(&self, grace: Duration) -> Result<CheckReport> {
        let store = self.object_store();
        // List before refreshing: a file committed in between is then
        // referenced, never mistaken for garbage.
        let listed: Vec<ObjectMeta> = store.list(Some(&Path::from("data"))).try_collect().await?;
        self.refresh().await?;
        let referenced = self.referenced_files();
        let cutoff = crate::time::before_now(grace);
        let (mut garbage, mut pending) = (Vec::new(), Vec::new());
        for meta in listed {
            let path = meta.location.to_string();
            // Files pond did not name are not its to report or delete.
            if referenced.contains(&path) || !crate::pond::is_data_file(&path) {
                continue;
            }
            if meta.last_modified <= cutoff {
                garbage.push(path);
            } else {
                pending.push(path);
            }
        }
        garbage.sort();
        pending.sort();

        let versions: Vec<_> = self
            .series_paths()
            .into_iter()
            .flat_map(|path| {
                self.versions(&path)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|v| v.vacuumed_at.is_none())
                    .map(move |v| (path.clone(), v))
            })
            .collect();
        let files_checked = versions.len();
        let mut problems: Vec<FileProblem> = futures::stream::iter(versions)
            .map(|(series, v)| {
                let store = store.clone();
                async move {
                    let problem =
                        verify(&store, &v.file_path, v.size, &v.content_hash, v.row_count).await?;
                    Ok::<_, crate::Error>(problem.map(|problem| FileProblem {
                        series,
                        version: v.version,
                        file_path: v.file_path,
                        problem,
                    }))
                }
            })
            .buffer_unordered(CHECK_CONCURRENCY)
            .try_filter_map(|p| futures::future::ready(Ok(p)))
            .try_collect()
            .await?;
        // A vacuum elsewhere may have deleted superseded files since the
        // refresh above: those are gone by design, not missing.
        if problems.iter().any(|p| p.problem == Problem::Missing) {
            self.refresh().await?;
            problems.retain(|p| {
                p.problem != Problem::Missing
                    || !(self.versions(&p.series).unwrap_or_default().iter())
                        .any(|v| v.version == p.version && v.vacuumed_at.is_some())
            });
        }
        problems.sort_by(|a, b| (&a.series, a.version).cmp(&(&b.series, b.version)));
        Ok(CheckReport {
            files_checked,
            garbage,
            pending,
            problems,
        })
    }
}

async fn verify(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    file_path: &str,
    size: i64,
    hash: &str,
    rows: i64,
) -> Result<Option<Problem>> {
    let path = Path::from(file_path);
    // Streamed through the hash: a check holds a few chunks of each file,
    // not the file (compacted files are of 128 MiB, and checked 8 at once).
    let mut chunks = match store.get(&path).await {
        Ok(get) => get.into_stream(),
        Err(object_store::Error::NotFound { .. }) => return Ok(Some(Problem::Missing)),
        Err(e) => return Err(e.into()),
    };
    let mut hasher = ContentHasher::new();
    let mut tail = Tail::default();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        tail.push(chunk);
    }
    if tail.len as i64 != size {
        return Ok(Some(Problem::SizeMismatch {
            expected: size,
            actual: tail.len as i64,
        }));
    }
    let actual = hasher.finish();
    // An entry without a hash (not written by pond) cannot be compared.
    if !hash.is_empty() && actual != hash {
        return Ok(Some(Problem::HashMismatch {
            expected: hash.to_string(),
            actual,
        }));
    }
    // The footer: the file's last chunks, or the store's range of it if
    // the footer is longer than they hold.
    let bytes = match tail.footer() {
        Ok(footer) => footer,
        Err(need) => {
            let total = tail.len as u64;
            store
                .get_range(&path, total.saturating_sub(need as u64)..total)
                .await?
        }
    };
    match ParquetMetaDataReader::new().parse_and_finish(&bytes) {
        Ok(meta) => {
            let actual = meta.file_metadata().num_rows();
            Ok((actual != rows).then_some(Problem::RowCountMismatch {
                expected: rows,
                actual,
            }))
        }
        Err(e) => Ok(Some(Problem::Unreadable(e.to_string()))),
    }
}

/// A file's last bytes, kept as its chunks stream past.
#[derive(Default)]
struct Tail {
    /// The last chunks, at least [`TAIL_BYTES`] of them if the file has.
    chunks: std::collections::VecDeque<Bytes>,
    kept: usize,
    /// Every byte seen.
    len: usize,
}

/// How much of a file's end a check keeps: most footers fit.
const TAIL_BYTES: usize = 1 << 20;

impl Tail {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.kept += chunk.len();
        self.chunks.push_back(chunk);
        while self
            .chunks
            .front()
            .is_some_and(|c| self.kept - c.len() >= TAIL_BYTES)
        {
            let dropped = self.chunks.pop_front().expect("a chunk");
            self.kept -= dropped.len();
        }
    }

    fn bytes(&self) -> Bytes {
        let mut all = Vec::with_capacity(self.kept);
        for c in &self.chunks {
            all.extend_from_slice(c);
        }
        Bytes::from(all)
    }

    /// The footer and its 8-byte trailer, if the kept bytes hold them;
    /// else how many bytes of the file's end they take.
    fn footer(&self) -> std::result::Result<Bytes, usize> {
        let bytes = self.bytes();
        let need = footer_length(&bytes).unwrap_or(0) + 8;
        match bytes.len().checked_sub(need) {
            Some(start) => Ok(bytes.slice(start..)),
            None => Err(need),
        }
    }
}

/// The footer length a Parquet file's last 8 bytes give.
fn footer_length(bytes: &[u8]) -> Option<usize> {
    let trailer = bytes.len().checked_sub(8).map(|at| &bytes[at..])?;
    let len = u32::from_le_bytes(trailer[..4].try_into().ok()?);
    Some(len as usize)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use parquet::arrow::ArrowWriter;

    use super::*;

    /// The footer is found in the kept end of a file streamed in small
    /// chunks, and only the end is kept.
    #[test]
    fn the_tail_of_a_streamed_file_holds_its_footer() {
        let values = Int64Array::from_iter_values(0..200_000);
        let batch = RecordBatch::try_from_iter([("v", Arc::new(values) as _)]).unwrap();
        let mut file = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        assert!(file.len() > TAIL_BYTES, "{}", file.len());

        let mut tail = Tail::default();
        for chunk in file.chunks(64 * 1024) {
            tail.push(Bytes::copy_from_slice(chunk));
        }
        assert_eq!(tail.len, file.len());
        assert!(tail.kept < TAIL_BYTES + 64 * 1024, "{}", tail.kept);
        let footer = tail.footer().unwrap();
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&footer)
            .unwrap();
        assert_eq!(meta.file_metadata().num_rows(), 200_000);
    }
}
