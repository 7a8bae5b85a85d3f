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

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::logstore::get_actions;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore, Path};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use url::Url;

use crate::error::{Error, Result};
use crate::io::parquet_reader;

/// Delta versions between checkpoints (Delta's usual interval).
const CHECKPOINT_INTERVAL: i64 = 100;

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
    ///
    /// An `Err` does not prove that nothing landed (the commit file may be
    /// written before a later step fails); the caller looks before it cleans up.
    pub(crate) async fn commit(&mut self, entries: &[OplogEntry]) -> Result<CommitOutcome> {
        let batch = entries_to_batch(entries)?;
        let result = self
            .table
            .clone()
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(commit_properties())
            .await;
        match result {
            Ok(table) => {
                self.table = table;
                self.checkpoint_if_due().await;
                Ok(CommitOutcome::Committed(self.version()))
            }
            Err(e) if is_conflict(&e) => Ok(CommitOutcome::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a Delta checkpoint every [`CHECKPOINT_INTERVAL`] versions, so
    /// that opening replays few commits. Best effort: the commit it follows
    /// has landed whatever happens here, and the next interval tries again.
    async fn checkpoint_if_due(&self) {
        let version = self.version();
        if version > 0
            && version % CHECKPOINT_INTERVAL == 0
            && let Err(e) = deltalake::checkpoints::create_checkpoint(&self.table, None).await
        {
            tracing::warn!(version, error = %e, "oplog checkpoint failed");
        }
    }

    /// Rewrites the oplog's files into one (rows unchanged, `dataChange =
    /// false`), so that opening the pond reads few files however many commits
    /// it has seen.
    ///
    /// The rewrite commits only on the snapshot it read: deltalake's own
    /// `optimize` retries past concurrent commits, and its conflict checker
    /// lets two rewrites of the same files both land, which duplicates rows.
    /// `Ok(false)` means another writer got in first; a later append tries
    /// again.
    pub(crate) async fn compact(&mut self) -> Result<bool> {
        let snapshot = self.table.snapshot()?;
        let files: Vec<(Path, u64)> = snapshot
            .log_data()
            .iter()
            .map(|f| (f.object_store_path(), f.size() as u64))
            .collect();
        if files.len() < 2 {
            return Ok(false);
        }
        let entries = self.read_files(files.clone()).await?;
        let bytes = write_parquet(&entries_to_batch(&entries)?)?;
        let size = bytes.len() as i64;
        let path = Path::from(format!(
            "part-00000-{}-c000.compacted.zstd.parquet",
            uuid::Uuid::new_v4()
        ));
        let store = self.table.object_store();
        store.put(&path, bytes.into()).await?;

        let now_ms = crate::time::now_micros() / 1_000;
        let mut actions = vec![Action::Add(Add {
            path: path.to_string(),
            size,
            modification_time: now_ms,
            data_change: false,
            ..Add::default()
        })];
        actions.extend(files.iter().map(|(p, size)| {
            Action::Remove(Remove {
                path: p.to_string(),
                data_change: false,
                deletion_timestamp: Some(now_ms),
                extended_file_metadata: Some(true),
                partition_values: Some(Default::default()),
                size: Some(*size as i64),
                ..Remove::default()
            })
        }));
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size: size,
        };
        let result = CommitBuilder::from(commit_properties())
            .with_actions(actions)
            .build(Some(snapshot), self.table.log_store(), operation)
            .await;
        match result {
            Ok(_) => {
                self.table.update_incremental(None).await?;
                self.checkpoint_if_due().await;
                Ok(true)
            }
            Err(e) if is_conflict(&e) => {
                crate::series::writer::remove_quietly(&store, &path).await;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Every pond commit: lands on the snapshot it was planned on or fails, and
/// runs no post-commit work that could fail after it landed.
fn commit_properties() -> CommitProperties {
    CommitProperties::default()
        .with_max_retries(0)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false))
}

/// One oplog file's bytes: zstd Parquet of the given rows.
fn write_parquet(batch: &arrow::array::RecordBatch) -> Result<Vec<u8>> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
        .map_err(|e| Error::parquet("oplog compaction", e))?;
    writer
        .write(batch)
        .map_err(|e| Error::parquet("oplog compaction", e))?;
    writer
        .close()
        .map_err(|e| Error::parquet("oplog compaction", e))?;
    Ok(out)
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
