//! The oplog: a Delta Lake table of [`OplogEntry`] rows at `<pond>/oplog`.
//!
//! # Invariants
//!
//! - **Atomic visibility.** A version of a series exists exactly when a
//!   committed Delta version holds its `append` row. The data file is written
//!   completely before that commit; a crash before the commit leaves an
//!   unreferenced file, which is garbage and never data (see
//!   [`Pond::check`](crate::Pond::check)). Readers never list the data
//!   directory.
//! - **One commit, one Delta version.** pond commits with deltalake's retries
//!   turned off, so a commit that lands does so at exactly the version after
//!   the snapshot it was planned on. `txn_seq` is therefore known before the
//!   commit, and version numbers per series are decided against a snapshot
//!   that no other commit has overtaken: they stay unique and gapless. A writer
//!   that loses the race re-reads the log, renumbers and tries again.
//! - **Who writes.** Any number of pond processes may append at once; the
//!   object store's put-if-absent on `_delta_log/<version>.json` arbitrates.
//!   Maintenance (compaction of the oplog's own small files, checkpoints)
//!   rewrites rows without changing them (`dataChange = false`), so readers that
//!   follow the log incrementally skip it.
//! - **Readable by anyone.** The table is a plain Delta table with no partition
//!   columns and no table features beyond the defaults.

mod entry;

pub use entry::{EntryType, OplogEntry, oplog_schema};
pub(crate) use entry::{batch_to_entries, entries_to_batch};

use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitProperties, TransactionError};
use deltalake::logstore::get_actions;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore, Path};
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use url::Url;

use crate::error::{Error, Result};
use crate::io::parquet_reader;

/// How many oplog files may be read at once.
const READ_CONCURRENCY: usize = 16;

/// What became of a commit attempt.
pub(crate) enum CommitOutcome {
    /// The entries are visible as of this Delta version.
    Committed(i64),
    /// Another writer committed first; nothing of this attempt is visible.
    Conflict,
}

/// How often a refresh lists the Delta log instead of probing for the next
/// commit. Probing is O(1) in the length of the history, but cannot tell that
/// the commit after the index's version was cleaned from the log (Delta
/// removes commits older than its log retention, 30 days by default, behind a
/// checkpoint); an occasional listing can.
const LIST_INTERVAL: Duration = Duration::from_secs(600);

/// The Delta table behind the oplog.
pub(crate) struct Oplog {
    table: DeltaTable,
    last_listed: Instant,
}

impl Oplog {
    /// Creates an empty oplog at `url`.
    pub(crate) async fn create(url: &Url) -> Result<Self> {
        let table = DeltaTableBuilder::from_url(url.clone())?.build()?;
        let table = table
            .create()
            .with_table_name("pond_oplog")
            .with_comment("pond operation log: one row per series version")
            .with_columns(entry::delta_columns())
            .with_save_mode(SaveMode::ErrorIfExists)
            .await?;
        Ok(Self::new(table))
    }

    fn new(table: DeltaTable) -> Self {
        Self {
            table,
            last_listed: Instant::now(),
        }
    }

    /// Opens the oplog at `url`; `Ok(None)` if there is no Delta table there.
    pub(crate) async fn open(url: &Url) -> Result<Option<Self>> {
        let mut table = DeltaTableBuilder::from_url(url.clone())?.build()?;
        if !table.verify_deltatable_existence().await? {
            return Ok(None);
        }
        table.load().await?;
        Ok(Some(Self::new(table)))
    }

    /// The Delta version of the loaded snapshot.
    pub(crate) fn version(&self) -> i64 {
        self.table.version().map_or(-1, |v| v as i64)
    }

    /// Whether the next refresh should list the log (see [`LIST_INTERVAL`]).
    pub(crate) fn listing_due(&self) -> bool {
        self.last_listed.elapsed() >= LIST_INTERVAL
    }

    /// The newest committed Delta version, found by listing from `from`.
    pub(crate) async fn latest_version(&mut self, from: i64) -> Result<i64> {
        self.last_listed = Instant::now();
        let latest = self
            .table
            .log_store()
            .get_latest_version(from.max(0) as u64)
            .await?;
        Ok(latest as i64)
    }

    /// Moves the loaded snapshot forward to `version`.
    pub(crate) async fn update_to(&mut self, version: i64) -> Result<()> {
        if version > self.version() {
            self.table.update_incremental(Some(version as u64)).await?;
        }
        Ok(())
    }

    /// Number of data files in the loaded snapshot.
    pub(crate) fn file_count(&self) -> Result<usize> {
        Ok(self.table.snapshot()?.log_data().num_files())
    }

    /// Every entry in the loaded snapshot.
    pub(crate) async fn read_all(&self) -> Result<Vec<OplogEntry>> {
        let files: Vec<(Path, u64)> = self
            .table
            .snapshot()?
            .log_data()
            .iter()
            .map(|f| (f.object_store_path(), f.size() as u64))
            .collect();
        self.read_files(files).await
    }

    /// The entries added by commits `from + 1 ..= to`, in commit order, or
    /// `None` if one of those commits is no longer in the log (cleaned up), in
    /// which case the caller must reload from a snapshot.
    pub(crate) async fn read_commits(&self, from: i64, to: i64) -> Result<Option<Vec<OplogEntry>>> {
        let log_store = self.table.log_store();
        let mut files = Vec::new();
        for version in (from + 1).max(0) as u64..=to.max(0) as u64 {
            let Some(bytes) = log_store.read_commit_entry(version).await? else {
                return Ok(None);
            };
            files.extend(added_files(version, &bytes)?);
        }
        Ok(Some(self.read_files(files).await?))
    }

    /// The entries of the commits after `from`, read one by one until the
    /// next one does not exist, and the last version read (`from` if none).
    pub(crate) async fn read_commits_after(&self, from: i64) -> Result<(Vec<OplogEntry>, i64)> {
        let log_store = self.table.log_store();
        let mut files = Vec::new();
        let mut last = from;
        while let Some(bytes) = log_store.read_commit_entry((last + 1) as u64).await? {
            last += 1;
            files.extend(added_files(last as u64, &bytes)?);
        }
        Ok((self.read_files(files).await?, last))
    }

    async fn read_files(&self, files: Vec<(Path, u64)>) -> Result<Vec<OplogEntry>> {
        let store = self.table.object_store();
        let batches: Vec<Vec<OplogEntry>> = futures::stream::iter(files)
            .map(|(path, size)| read_entries(Arc::clone(&store), path, size))
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(batches.into_iter().flatten().collect())
    }

    /// Commits `entries` as the Delta version after the loaded snapshot, or
    /// reports a conflict if another writer took that version.
    pub(crate) async fn commit(&mut self, entries: &[OplogEntry]) -> Result<CommitOutcome> {
        let batch = entries_to_batch(entries)?;
        let result = self
            .table
            .clone()
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match result {
            Ok(table) => {
                self.table = table;
                Ok(CommitOutcome::Committed(self.version()))
            }
            Err(e) if is_conflict(&e) => Ok(CommitOutcome::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites the oplog's small files into one (rows unchanged), so that
    /// opening the pond reads few files however many commits it has seen.
    ///
    /// The rewrite commits only if no other commit came between the snapshot
    /// it read and its own: two rewrites of the same files by racing writers
    /// would otherwise both land and duplicate rows. `Ok(false)` means another
    /// writer got in first; the next append tries again.
    pub(crate) async fn compact(&mut self) -> Result<bool> {
        let result = self
            .table
            .clone()
            .optimize()
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match result {
            Ok((table, _metrics)) => {
                self.table = table;
                Ok(true)
            }
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The oplog files a commit added with new rows. Rewrites by maintenance
/// (`dataChange = false`) carry rows already seen.
fn added_files(version: u64, commit: &bytes::Bytes) -> Result<Vec<(Path, u64)>> {
    let mut files = Vec::new();
    for action in get_actions(version, commit)? {
        if let Action::Add(add) = action
            && add.data_change
        {
            let path = Path::parse(&add.path).map_err(object_store::Error::from)?;
            files.push((path, add.size as u64));
        }
    }
    Ok(files)
}

/// Whether a failed write lost the race for its Delta version.
fn is_conflict(err: &DeltaTableError) -> bool {
    matches!(
        err,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
                    | TransactionError::CommitConflict(_)
                    | TransactionError::VersionAlreadyExists(_)
            }
    )
}

async fn read_entries(
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
) -> Result<Vec<OplogEntry>> {
    let location = format!("oplog/{path}");
    let reader = parquet_reader(store, path.as_ref(), size)?;
    let stream = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| Error::parquet(&location, e))?
        .build()
        .map_err(|e| Error::parquet(&location, e))?;
    let batches: Vec<_> = stream
        .try_collect()
        .await
        .map_err(|e| Error::parquet(&location, e))?;
    let mut entries = Vec::new();
    for batch in &batches {
        entries.extend(batch_to_entries(batch, &location)?);
    }
    Ok(entries)
}
