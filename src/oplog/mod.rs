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
//! - **One commit, one Delta version.** A commit puts-if-absent the commit
//!   file of exactly the version after the snapshot it was planned on, so a
//!   commit that lands does so at that version or not at all. `txn_seq` is therefore known before the
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
use std::time::Duration;

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::logstore::get_actions;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore, Path, TableProperty};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use url::Url;

use crate::error::{Error, Result};

/// Delta versions between checkpoints. Delta's usual interval is 100, but
/// deltalake replays a commit file in about half a millisecond, so opening
/// a pond 50 commits past its checkpoint took 31 ms of a 49 ms `pond ls`; a
/// small checkpoint (one row per live oplog file) every 10 commits costs an
/// append little.
const CHECKPOINT_INTERVAL: i64 = 10;

/// How many Delta commits stay in the log behind the newest checkpoint
/// (see [`Oplog::trim_log`]).
const LOG_KEPT_COMMITS: i64 = 200;

/// How many oplog files may be read at once.
const READ_CONCURRENCY: usize = 16;

/// What became of a commit attempt.
#[derive(Debug)]
pub(crate) enum CommitOutcome {
    /// The entries are visible as of this Delta version.
    Committed(i64),
    /// Another writer committed first; nothing of this attempt is visible.
    Conflict,
}

/// How often a refresh lists the Delta log instead of probing for the next
/// commit. Probing is O(1) in the length of the history and notices a
/// trimmed log (see [`Oplog::read_commits_after`]); the occasional listing is
/// a backstop for stores that do not show a new file to every reader at once.
const LIST_INTERVAL: Duration = Duration::from_secs(600);

/// The Delta table behind the oplog.
pub(crate) struct Oplog {
    table: DeltaTable,
    last_listed: crate::pond::Written,
    /// The pond's location, if its store must show that it refuses a second
    /// create of one object before this handle commits (see
    /// [`crate::store::check_conditional_put`]).
    put_check: Option<String>,
    put_checked: tokio::sync::OnceCell<()>,
    /// The Delta log's folder, for a pond on a local disk: see
    /// [`read_log_file`].
    local_log: Option<std::path::PathBuf>,
    /// Where the table is and the store it is built on, to load it afresh.
    url: Url,
    backend: Backend,
}

/// The store the oplog's Delta table is built on: the one under `url` by
/// deltalake's own choice for local files, else `store` (the root of the
/// pond's bucket or in-memory store), which the pond's data files share.
pub(crate) type Backend = Option<(Arc<dyn ObjectStore>, Url)>;

fn table_builder(url: &Url, backend: &Backend) -> Result<DeltaTableBuilder> {
    let builder = DeltaTableBuilder::from_url(url.clone())?;
    Ok(match backend {
        Some((store, root)) => {
            crate::store::register_log_store(url);
            builder.with_storage_backend(Arc::clone(store), root.clone())
        }
        None => builder,
    })
}

impl Oplog {
    /// Creates an empty oplog at `url`.
    pub(crate) async fn create(url: &Url, backend: &Backend) -> Result<Self> {
        let table = table_builder(url, backend)?.build()?;
        let table = table
            .create()
            .with_table_name("pond_oplog")
            .with_comment("pond operation log: one row per series version")
            .with_columns(entry::delta_columns())
            // pond deletes the oplog files its merges replace itself (see
            // `trim_log`), so checkpoints need no tombstones: with Delta's
            // default week of them, every checkpoint would grow with the
            // number of appends ever merged.
            .with_configuration_property(
                TableProperty::DeletedFileRetentionDuration,
                Some("interval 0 seconds"),
            )
            .with_save_mode(SaveMode::ErrorIfExists)
            .await?;
        Ok(Self::new(table, url, backend))
    }

    fn new(table: DeltaTable, url: &Url, backend: &Backend) -> Self {
        let local_log = match backend {
            None if url.scheme() == "file" => url.to_file_path().ok().map(|p| p.join("_delta_log")),
            _ => None,
        };
        Self {
            table,
            last_listed: crate::pond::Written::now(),
            put_check: crate::store::needs_put_check(url).then(|| url.to_string()),
            put_checked: tokio::sync::OnceCell::new(),
            local_log,
            url: url.clone(),
            backend: backend.clone(),
        }
    }

    /// Opens the oplog at `url`; `Ok(None)` if there is no Delta table there.
    pub(crate) async fn open(url: &Url, backend: &Backend) -> Result<Option<Self>> {
        let mut table = table_builder(url, backend)?.build()?;
        if !table.verify_deltatable_existence().await? {
            return Ok(None);
        }
        table.load().await?;
        Ok(Some(Self::new(table, url, backend)))
    }

    /// The Delta version of the loaded snapshot.
    pub(crate) fn version(&self) -> i64 {
        self.table.version().map_or(-1, |v| v as i64)
    }

    /// Whether the next refresh should list the log (see [`LIST_INTERVAL`]),
    /// by the later of two clocks: the monotonic one stops while the machine
    /// sleeps, and a handle asleep for hours must not trust its old view of
    /// the log's checkpoints.
    pub(crate) fn listing_due(&self) -> bool {
        self.last_listed.age() >= LIST_INTERVAL
    }

    /// The newest committed Delta version, found by listing from `from`.
    pub(crate) async fn latest_version(&mut self, from: i64) -> Result<i64> {
        self.last_listed = crate::pond::Written::now();
        let log_store = self.table.log_store();
        match log_store.get_latest_version(from.max(0) as u64).await {
            Ok(latest) => Ok(latest as i64),
            // The log no longer holds the commits after `from`, or has a
            // hole behind a checkpoint (deltalake wants them contiguous):
            // the newest is the highest version listed.
            Err(e) => {
                tracing::debug!(error = %e, "finding the newest commit from {from} failed; listing");
                let store = log_store.object_store(None);
                let listed: Vec<object_store::ObjectMeta> =
                    store.list(Some(log_store.log_path())).try_collect().await?;
                listed
                    .iter()
                    .filter_map(|meta| meta.location.filename())
                    .filter_map(deltalake::logstore::extract_version_from_filename)
                    .max()
                    .map(|v| v as i64)
                    .ok_or_else(|| Error::invalid_oplog("oplog", "the Delta log holds no commit"))
            }
        }
    }

    /// Moves the loaded snapshot forward to `version`.
    pub(crate) async fn update_to(&mut self, version: i64) -> Result<()> {
        if version <= self.version() {
            return Ok(());
        }
        if let Err(e) = self.table.update_incremental(Some(version as u64)).await {
            // The commits after the loaded snapshot may have been trimmed
            // from the log: load `version` afresh, from its checkpoint.
            tracing::debug!(error = %e, "updating the oplog snapshot failed; loading it afresh");
            // On the same store: a builder from the URL alone would make a
            // new one (an empty one for `memory://`, one without the
            // pond's storage options for S3).
            let table = table_builder(&self.url, &self.backend)?
                .with_version(version as u64)
                .load()
                .await?;
            self.table = table;
        }
        Ok(())
    }

    /// The oplog data files of the loaded snapshot, with their sizes.
    fn snapshot_files(&self) -> Result<Vec<(Path, u64)>> {
        Ok(self
            .snapshot_files_with_rows()?
            .into_iter()
            .map(|(path, size, _)| (path, size))
            .collect())
    }

    /// The oplog data files of the loaded snapshot, with their sizes and
    /// row counts (0 where the commit recorded none).
    fn snapshot_files_with_rows(&self) -> Result<Vec<(Path, u64, usize)>> {
        Ok(self
            .table
            .snapshot()?
            .log_data()
            .iter()
            .map(|f| {
                let rows = f.num_records().unwrap_or(0);
                (f.object_store_path(), f.size() as u64, rows)
            })
            .collect())
    }

    /// Every entry in the loaded snapshot.
    pub(crate) async fn read_all(&self) -> Result<Vec<OplogEntry>> {
        self.read_files(self.snapshot_files()?).await
    }

    /// The entries added by commits `from + 1 ..= to`, in commit order, or
    /// `None` if one of those commits is no longer in the log (cleaned up), in
    /// which case the caller must reload from a snapshot.
    pub(crate) async fn read_commits(&self, from: i64, to: i64) -> Result<Option<Vec<OplogEntry>>> {
        let mut files = Vec::new();
        for version in (from + 1).max(0) as u64..=to.max(0) as u64 {
            let Some(bytes) = self.read_commit(version).await? else {
                return Ok(None);
            };
            files.extend(added_files(version, &bytes)?);
        }
        Ok(Some(self.read_files(files).await?))
    }

    /// The entries of the commits after `from`, read one by one until the
    /// next one does not exist, and the last version read (`from` if none);
    /// `None` if the log may hold commits past the last one read that the
    /// walk could not see (the newest checkpoint is past it: the commit
    /// after it was trimmed, before or during the walk), in which case the
    /// caller must reload from a snapshot. The log is only trimmed behind a
    /// checkpoint, so a missing next commit with no newer checkpoint means
    /// there is none yet.
    pub(crate) async fn read_commits_after(
        &self,
        from: i64,
    ) -> Result<Option<(Vec<OplogEntry>, i64)>> {
        let mut files = Vec::new();
        let mut last = from;
        while let Some(bytes) = self.read_commit((last + 1) as u64).await? {
            last += 1;
            files.extend(added_files(last as u64, &bytes)?);
        }
        if self.last_checkpoint().await? > last {
            return Ok(None);
        }
        Ok(Some((self.read_files(files).await?, last)))
    }

    /// The commit file of `version`, `None` if the log does not hold it.
    async fn read_commit(&self, version: u64) -> Result<Option<bytes::Bytes>> {
        if let Some(dir) = &self.local_log {
            return read_log_file(dir, &format!("{version:020}.json"));
        }
        Ok(self.table.log_store().read_commit_entry(version).await?)
    }

    /// The version of the newest checkpoint `_last_checkpoint` names, -1 if
    /// there is none.
    async fn last_checkpoint(&self) -> Result<i64> {
        let bytes = if let Some(dir) = &self.local_log {
            read_log_file(dir, "_last_checkpoint")?
        } else {
            let store = self.table.log_store().object_store(None);
            match store.get(&Path::from("_delta_log/_last_checkpoint")).await {
                Ok(found) => Some(found.bytes().await?),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        };
        let Some(bytes) = bytes else {
            return Ok(-1);
        };
        let hint: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid_oplog("_last_checkpoint", e.to_string()))?;
        Ok(hint["version"].as_i64().unwrap_or(-1))
    }

    async fn read_files(&self, files: Vec<(Path, u64)>) -> Result<Vec<OplogEntry>> {
        let store = self.table.object_store();
        let batches: Vec<Vec<OplogEntry>> = futures::stream::iter(files)
            .map(|(path, _)| read_entries(Arc::clone(&store), path))
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(batches.into_iter().flatten().collect())
    }

    /// Commits `entries` as Delta version `read_version + 1`, or reports a
    /// conflict if another writer took that version.
    ///
    /// The commit is Delta's protocol step itself: write the rows as a new
    /// Parquet file, then put-if-absent the commit file for exactly that
    /// version through the log store. Unlike deltalake's `write`, this lists
    /// nothing and replays nothing, so an append costs the same with ten or
    /// a hundred thousand commits behind it.
    ///
    /// An `Err` does not prove that nothing landed (a request can fail after
    /// it took effect); the caller looks before it cleans up.
    pub(crate) async fn commit(
        &mut self,
        read_version: i64,
        entries: &[OplogEntry],
    ) -> Result<CommitOutcome> {
        let store = self.table.object_store();
        let (path, size) = self.put_rows(&store, entries).await?;
        let add = Add {
            path: path.to_string(),
            size,
            modification_time: crate::time::now_micros() / 1_000,
            data_change: true,
            stats: Some(format!("{{\"numRecords\":{}}}", entries.len())),
            ..Add::default()
        };
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        let version = (read_version + 1) as u64;
        crate::pond::crash_point("oplog-before-commit");
        if self
            .land(vec![Action::Add(add)], operation, version, &path)
            .await?
        {
            Ok(CommitOutcome::Committed(version as i64))
        } else {
            Ok(CommitOutcome::Conflict)
        }
    }

    /// Commits `actions`, which add the oplog file `path`, as `version`:
    /// `Ok(true)` if they landed (then a checkpoint follows if one is due),
    /// `Ok(false)` if another writer got `version` first (then `path` is
    /// deleted).
    async fn land(
        &mut self,
        actions: Vec<Action>,
        operation: DeltaOperation,
        version: u64,
        path: &Path,
    ) -> Result<bool> {
        // A version at or behind the newest checkpoint existed once and may
        // have been trimmed since: the snapshot this commit was planned on
        // is stale, however put-if-absent would answer.
        // A commit file already there may be this commit's own, from a
        // request that took effect and was retried: then it landed. So may
        // the file of a request that failed (a timeout after the write):
        // then its error would make a caller retry what is done (a series
        // created twice is "exists").
        let landed = self.last_checkpoint().await? < version as i64
            && match self.put_commit(actions, operation, version).await {
                Ok(created) => created || self.commit_adds(version, path).await?,
                Err(e) => match self.commit_adds(version, path).await {
                    Ok(true) => true,
                    _ => return Err(e),
                },
            };
        if landed {
            self.checkpoint_if_due(version as i64).await;
        } else {
            crate::series::writer::remove_quietly(&self.table.object_store(), path).await;
        }
        Ok(landed)
    }

    /// Whether commit `version` adds the oplog file `path`.
    async fn commit_adds(&self, version: u64, path: &Path) -> Result<bool> {
        let Some(bytes) = self.table.log_store().read_commit_entry(version).await? else {
            return Ok(false);
        };
        Ok(get_actions(version, &bytes)?
            .iter()
            .any(|a| matches!(a, Action::Add(add) if add.path == path.as_ref())))
    }

    /// Writes rows as a new oplog data file; returns its path and size.
    async fn put_rows(
        &self,
        store: &Arc<dyn ObjectStore>,
        entries: &[OplogEntry],
    ) -> Result<(Path, i64)> {
        let bytes = write_parquet(&entries_to_batch(entries)?)?;
        let size = bytes.len() as i64;
        let path = Path::from(format!(
            "part-00000-{}-c000.snappy.parquet",
            uuid::Uuid::new_v4()
        ));
        store.put(&path, bytes.into()).await?;
        Ok((path, size))
    }

    /// Puts the commit file of `version` if it does not exist yet: `Ok(true)`
    /// if this call created it, `Ok(false)` if another writer had.
    async fn put_commit(
        &self,
        actions: Vec<Action>,
        operation: DeltaOperation,
        version: u64,
    ) -> Result<bool> {
        if let Some(location) = &self.put_check {
            self.put_checked
                .get_or_try_init(|| async {
                    let store = self.table.object_store();
                    crate::store::check_conditional_put(store.as_ref(), &Path::default(), location)
                        .await
                })
                .await?;
        }
        let log_store = self.table.log_store();
        let operation_id = uuid::Uuid::new_v4();
        // The builder serializes the commit (with its commitInfo) and, for
        // stores without conditional put, stages it as a temporary file.
        let prepared = CommitBuilder::from(commit_properties())
            .with_actions(actions)
            .with_operation_id(operation_id)
            .build(None, Arc::clone(&log_store), operation)
            .into_prepared_commit_future()
            .await?;
        let commit = prepared.commit_or_bytes().clone();
        match log_store
            .write_commit_entry(version, commit.clone(), operation_id)
            .await
        {
            Ok(()) => Ok(true),
            Err(TransactionError::VersionAlreadyExists(_)) => {
                if let Err(e) = log_store
                    .abort_commit_entry(version, commit, operation_id)
                    .await
                {
                    tracing::warn!(error = %e, "could not remove a staged commit file");
                }
                Ok(false)
            }
            Err(e) => Err(DeltaTableError::from(e).into()),
        }
    }

    /// Writes a Delta checkpoint every [`CHECKPOINT_INTERVAL`] versions, so
    /// that opening replays few commits, then trims the log behind it (see
    /// [`Oplog::trim_log`]). Best effort: the commit it follows has landed
    /// whatever happens here, and the next interval tries again.
    async fn checkpoint_if_due(&mut self, version: i64) {
        if version <= 0 || version % CHECKPOINT_INTERVAL != 0 {
            return;
        }
        let result = async {
            self.update_to(version).await?;
            deltalake::checkpoints::create_checkpoint(&self.table, None).await?;
            self.trim_log(version).await
        };
        if let Err(e) = result.await {
            tracing::warn!(version, error = %e, "oplog checkpoint failed");
        }
    }

    /// Keeps the oplog's own metadata proportionate to what readers need,
    /// with bounded work per checkpoint: the Delta commits more than
    /// [`LOG_KEPT_COMMITS`] behind `checkpoint` are deleted
    /// (deltalake's log cleanup, which never deletes past a checkpoint), and
    /// so are the oplog files that the last interval of them removed (the
    /// files merges replaced). A reader that far behind finds a commit or a
    /// file gone and reloads the snapshot instead (see `Pond::refresh`);
    /// stragglers of an interrupted trim are left to `pond vacuum`.
    async fn trim_log(&self, checkpoint: i64) -> Result<()> {
        let until = checkpoint - LOG_KEPT_COMMITS;
        if until <= 0 {
            return Ok(());
        }
        let log_store = self.table.log_store();
        let removed = self
            .removed_in((until - CHECKPOINT_INTERVAL).max(0), until)
            .await?;
        deltalake::protocol::checkpoints::cleanup_expired_logs_for(
            until as u64,
            log_store.as_ref(),
            crate::time::now_micros() / 1_000,
            None,
        )
        .await?;
        // Only once the commits that named them are gone: a reader of one
        // of those commits then reloads rather than failing on a file.
        let store = self.table.object_store();
        for (path, _) in removed {
            crate::series::writer::remove_quietly(&store, &path).await;
        }
        Ok(())
    }

    /// The files the commits `from..until` still in the log remove, each
    /// with when (ms since the epoch, if the commit says).
    async fn removed_in(&self, from: i64, until: i64) -> Result<Vec<(Path, Option<i64>)>> {
        let log_store = self.table.log_store();
        let commits: Vec<Option<bytes::Bytes>> = futures::stream::iter(from..until)
            .map(|v| {
                let log_store = Arc::clone(&log_store);
                async move { log_store.read_commit_entry(v as u64).await }
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        let mut removed = Vec::new();
        for (bytes, version) in commits.iter().zip(from..) {
            let Some(bytes) = bytes else { continue };
            for action in get_actions(version as u64, bytes)? {
                if let Action::Remove(remove) = action {
                    removed.push((Path::from(remove.path), remove.deletion_timestamp));
                }
            }
        }
        Ok(removed)
    }

    /// Deletes what no snapshot of the oplog newer than `cutoff_ms` (ms
    /// since the epoch) needs: Delta commits and checkpoints older than the
    /// cutoff and behind a checkpoint (deltalake's log cleanup, which keeps
    /// every version inside the retention), and oplog data files that are
    /// no longer in the current snapshot and older than the cutoff (those
    /// merges replaced; a reader following the log from before the merge
    /// falls back to reading the snapshot), by when a merge removed them
    /// where a commit in the log says so, else by their own age.
    pub(crate) async fn vacuum(&mut self, version: i64, cutoff_ms: i64) -> Result<OplogVacuum> {
        self.update_to(version).await?;
        // Before the log cleanup takes the commits that say so: a file
        // written long ago that a merge removed a moment ago stays for the
        // retention, as the snapshots before that merge need it.
        let first = (version - LOG_KEPT_COMMITS - CHECKPOINT_INTERVAL).max(0);
        let recently_removed: std::collections::HashSet<Path> =
            (self.removed_in(first, version + 1).await?.into_iter())
                .filter(|(_, at)| at.is_none_or(|at| at >= cutoff_ms))
                .map(|(path, _)| path)
                .collect();
        let log_files = deltalake::protocol::checkpoints::cleanup_expired_logs_for(
            version.max(0) as u64,
            self.table.log_store().as_ref(),
            cutoff_ms,
            None,
        )
        .await?;
        let active: std::collections::HashSet<Path> =
            self.snapshot_files()?.into_iter().map(|(p, _)| p).collect();
        let store = self.table.object_store();
        let listed: Vec<object_store::ObjectMeta> = store.list(None).try_collect().await?;
        let mut data_files = 0;
        for meta in listed {
            let name = meta.location.as_ref();
            let is_data = !name.starts_with("_delta_log") && name.ends_with(".parquet");
            if is_data
                && !active.contains(&meta.location)
                && !recently_removed.contains(&meta.location)
                && meta.last_modified.timestamp_millis() < cutoff_ms
            {
                match store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => data_files += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(OplogVacuum {
            log_files,
            data_files,
        })
    }

    /// Merges the oplog's own small files, tier by tier (rows unchanged,
    /// `dataChange = false`), so that opening the pond reads few files
    /// however many commits it has seen, and no merge rewrites the whole
    /// oplog: a file's tier is log16 of its row count, and the lowest tier
    /// holding [`OPLOG_FAN_IN`] files or more is merged into one file of a
    /// higher tier. Each row is rewritten about log16(rows) times.
    ///
    /// The rewrite commits only on the snapshot it read: deltalake's own
    /// `optimize` retries past concurrent commits, and its conflict checker
    /// lets two rewrites of the same files both land, which duplicates rows.
    /// `Ok(false)` means there was nothing to merge or another writer got in
    /// first; a later append tries again.
    pub(crate) async fn compact(&mut self, version: i64) -> Result<bool> {
        self.update_to(version).await?;
        let files = lowest_full_tier(self.snapshot_files_with_rows()?);
        if files.len() < 2 {
            return Ok(false);
        }
        let store = self.table.object_store();
        let entries = self.read_files(files.clone()).await?;
        let (path, size) = self.put_rows(&store, &entries).await?;
        let now_ms = crate::time::now_micros() / 1_000;
        let mut actions = vec![Action::Add(Add {
            path: path.to_string(),
            size,
            modification_time: now_ms,
            data_change: false,
            stats: Some(format!("{{\"numRecords\":{}}}", entries.len())),
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
        let next = (self.version() + 1) as u64;
        self.land(actions, operation, next, &path).await
    }
}

/// What [`Oplog::vacuum`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OplogVacuum {
    /// Delta log files (commits and checkpoints) before the newest
    /// checkpoint that no reader within the retention needs.
    pub(crate) log_files: usize,
    /// Oplog data files that merges replaced.
    pub(crate) data_files: usize,
}

/// How many oplog files of one tier are merged at once.
pub(crate) const OPLOG_FAN_IN: usize = 16;

/// The files of the lowest tier (log16 of the row count) that holds
/// [`OPLOG_FAN_IN`] files or more; none if no tier does.
fn lowest_full_tier(files: Vec<(Path, u64, usize)>) -> Vec<(Path, u64)> {
    let tier = |rows: usize| {
        let mut t = 0;
        let mut limit = OPLOG_FAN_IN;
        while rows >= limit && t < 16 {
            t += 1;
            limit = limit.saturating_mul(OPLOG_FAN_IN);
        }
        t
    };
    let mut by_tier: std::collections::BTreeMap<u32, Vec<(Path, u64)>> = Default::default();
    for (path, size, rows) in files {
        by_tier.entry(tier(rows)).or_default().push((path, size));
    }
    by_tier
        .into_values()
        .find(|files| files.len() >= OPLOG_FAN_IN)
        .unwrap_or_default()
}

/// How pond's commits are serialized: no retries, and none of deltalake's
/// post-commit work (pond writes the commit file itself and checkpoints
/// separately).
fn commit_properties() -> CommitProperties {
    CommitProperties::default()
        .with_max_retries(0)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false))
}

/// One oplog file's bytes: Snappy Parquet of the given rows.
///
/// Snappy, not zstd: these files are small, and the parquet crate creates a
/// zstd compressor and decompressor for every column chunk it reads, which
/// made up a sixth of opening a pond.
fn write_parquet(batch: &arrow::array::RecordBatch) -> Result<Vec<u8>> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
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

async fn read_entries(store: Arc<dyn ObjectStore>, path: Path) -> Result<Vec<OplogEntry>> {
    let location = format!("oplog/{path}");
    // One GET for the whole file: an oplog file is small and read whole,
    // and on object storage a request per column chunk costs more than
    // the bytes.
    let bytes = store.get(&path).await?.bytes().await?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| Error::parquet(&location, e))?
        .build()
        .map_err(|e| Error::parquet(&location, e))?;
    let mut entries = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::parquet(&location, e.into()))?;
        entries.extend(batch_to_entries(&batch, &location)?);
    }
    Ok(entries)
}

/// A file of a local pond's Delta log folder `dir`, read in place; `None`
/// if it does not exist.
///
/// Every query's refresh reads two such files (the probe for the next
/// commit and `_last_checkpoint`), one after the other. Through
/// `object_store` each read is a round trip to tokio's blocking pool,
/// about 0.2 ms with its thread asleep between queries: most of what a
/// query through the catalog cost beyond the same query on a table
/// registered directly. Read in place, a missing commit costs one failed
/// `open`, and `_last_checkpoint` is a few dozen bytes. Both are written
/// whole by a rename, as through the store, so either read sees a file
/// complete or not at all. The read blocks the task's thread: for
/// microseconds on a local disk, for a round trip on a network file
/// system mounted as one (catching up reads each missing commit so).
fn read_log_file(dir: &std::path::Path, name: &str) -> Result<Option<bytes::Bytes>> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(bytes.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::oplog::entry::EntryType;
    use crate::store::testing::Misbehaving;

    fn entry(version: i64) -> OplogEntry {
        OplogEntry {
            series: "/s".into(),
            series_id: "id".into(),
            version,
            entry_type: EntryType::Append,
            file_path: Some(format!("data/id/{version}.parquet")),
            size: Some(1),
            row_count: Some(1),
            min_event_time: Some(version),
            max_event_time: Some(version),
            timestamp_column: "ts".into(),
            schema: None,
            content_hash: None,
            txn_seq: 0,
            created_at: 0,
            extended_attributes: None,
        }
    }

    /// A store whose puts misbehave when told to, the URL of an oplog in
    /// it under `name`, and the backend that reaches it.
    fn misbehaving(name: &str) -> (Arc<Misbehaving>, Url, Backend) {
        let store = Arc::new(Misbehaving::default());
        let root = Url::parse(&format!("memory://{name}/")).unwrap();
        let url = root.join("oplog").unwrap();
        let backend: Backend = Some((Arc::clone(&store) as Arc<dyn ObjectStore>, root));
        (store, url, backend)
    }

    #[tokio::test]
    async fn a_merge_whose_commit_landed_on_a_retried_request_keeps_its_file() {
        let (store, url, backend) = misbehaving("retried");
        let mut oplog = Oplog::create(&url, &backend).await.unwrap();
        for v in 1..=OPLOG_FAN_IN as i64 {
            let read = oplog.version();
            let outcome = oplog.commit(read, &[entry(v)]).await.unwrap();
            assert!(
                matches!(outcome, CommitOutcome::Committed(_)),
                "{outcome:?}"
            );
            oplog.update_to(read + 1).await.unwrap();
        }
        store.retried_commit.store(true, Ordering::SeqCst);
        let version = oplog.version();
        assert!(oplog.compact(version).await.unwrap(), "the merge landed");
        // Every handle opened now reads every row: the merged file the
        // commit adds is there.
        let fresh = Oplog::open(&url, &backend).await.unwrap().unwrap();
        assert_eq!(fresh.version(), version + 1);
        let versions: Vec<i64> = fresh
            .read_all()
            .await
            .unwrap()
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(versions.len(), OPLOG_FAN_IN, "{versions:?}");
    }

    #[tokio::test]
    async fn a_commit_whose_request_failed_after_it_took_effect_has_landed() {
        let (store, url, backend) = misbehaving("failed");
        let mut oplog = Oplog::create(&url, &backend).await.unwrap();
        let read = oplog.version();
        store.failed_commit.store(true, Ordering::SeqCst);
        let outcome = oplog.commit(read, &[entry(1)]).await.unwrap();
        assert!(
            matches!(outcome, CommitOutcome::Committed(v) if v == read + 1),
            "{outcome:?}"
        );
        assert!(!store.failed_commit.load(Ordering::SeqCst), "the fault ran");
        let fresh = Oplog::open(&url, &backend).await.unwrap().unwrap();
        assert_eq!(fresh.read_all().await.unwrap().len(), 1);

        // A request that failed before it took effect is still an error.
        let read = fresh.version();
        store.refused_commit.store(true, Ordering::SeqCst);
        let mut oplog = fresh;
        let err = oplog.commit(read, &[entry(2)]).await.unwrap_err();
        assert!(err.to_string().contains("the request timed out"), "{err}");
    }

    #[test]
    fn merges_the_lowest_tier_that_is_full() {
        let files = |rows: &[usize]| -> Vec<(Path, u64, usize)> {
            rows.iter()
                .enumerate()
                .map(|(i, &r)| (Path::from(format!("f{i}")), 1, r))
                .collect()
        };
        // 15 one-row files are not enough; 16 are.
        assert!(lowest_full_tier(files(&[1; 15])).is_empty());
        assert_eq!(lowest_full_tier(files(&[1; 16])).len(), 16);
        // Tier 1 (16..256 rows) is merged only once it has 16 files, and
        // tier 0 first if both are full.
        let mut rows = vec![20; 16];
        rows.extend([1; 3]);
        let chosen = lowest_full_tier(files(&rows));
        assert_eq!(chosen.len(), 16);
        rows.extend([1; 13]);
        let chosen = lowest_full_tier(files(&rows));
        assert!(
            chosen.iter().all(|(p, _)| p.as_ref() >= "f16"),
            "{chosen:?}"
        );
    }
}
