//! [`Pond`]: a root location holding one oplog and the data files.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::compute::{sort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{Error, Result};
use crate::index::{FileInfo, OplogIndex, SeriesState};
use crate::oplog::{CommitOutcome, EntryType, Oplog, OplogEntry};
use crate::path::validate_series_path;
use crate::series::schema::{Existing, SchemaPlan, conform_batch, plan_schema};
use crate::series::writer::{WriteOptions, WrittenFile, remove_quietly, write_data_file};
use crate::series::{SchemaInfo, SeriesStream};
use crate::time::{now_micros, time_stats};

/// Settings of a [`Pond`] handle. The defaults suit most uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PondOptions {
    /// How many times an append tries to commit before giving up when other
    /// writers keep committing first.
    pub commit_attempts: u32,
    /// Compact the oplog's own files every this many commits (every commit
    /// adds one), so that opening the pond stays fast.
    pub compact_oplog_after: usize,
    /// Rows per Parquet row group in data files.
    pub row_group_rows: usize,
    /// Memory the sort of an out-of-order append may use before spilling to disk.
    pub sort_memory_bytes: usize,
}

impl Default for PondOptions {
    fn default() -> Self {
        let write = WriteOptions::default();
        Self {
            commit_attempts: 40,
            compact_oplog_after: 64,
            row_group_rows: write.row_group_rows,
            sort_memory_bytes: write.sort_memory,
        }
    }
}

impl PondOptions {
    /// Sets [`Self::commit_attempts`].
    pub fn with_commit_attempts(mut self, attempts: u32) -> Self {
        self.commit_attempts = attempts;
        self
    }

    /// Sets [`Self::compact_oplog_after`].
    pub fn with_compact_oplog_after(mut self, files: usize) -> Self {
        self.compact_oplog_after = files;
        self
    }

    /// Sets [`Self::row_group_rows`].
    pub fn with_row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows;
        self
    }

    /// Sets [`Self::sort_memory_bytes`].
    pub fn with_sort_memory_bytes(mut self, bytes: usize) -> Self {
        self.sort_memory_bytes = bytes;
        self
    }

    fn write_options(&self) -> WriteOptions {
        WriteOptions {
            row_group_rows: self.row_group_rows.max(1),
            sort_memory: self.sort_memory_bytes,
        }
    }
}

/// A summary of one series.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeriesInfo {
    /// The series path.
    pub path: String,
    /// The series' stable id.
    pub id: String,
    /// The name of its timestamp column.
    pub timestamp_column: String,
    /// Its current schema.
    pub schema: SchemaRef,
    /// Number of versions.
    pub versions: usize,
    /// Rows over all versions.
    pub rows: i64,
    /// Bytes of all data files.
    pub bytes: i64,
    /// Earliest event time, µs UTC, if there is any row.
    pub min_event_time: Option<i64>,
    /// Latest event time, µs UTC, if there is any row.
    pub max_event_time: Option<i64>,
    /// When the series was created, µs UTC.
    pub created_at: i64,
}

impl SeriesInfo {
    fn from_state(s: &SeriesState) -> Self {
        Self {
            path: s.path.clone(),
            id: s.id.clone(),
            timestamp_column: s.timestamp_column.clone(),
            schema: Arc::clone(&s.schema),
            versions: s.versions.len(),
            rows: s.row_count(),
            bytes: s.versions.iter().map(|v| v.size).sum(),
            min_event_time: s.versions.iter().map(|v| v.min_event_time).min(),
            max_event_time: s.versions.iter().map(|v| v.max_event_time).max(),
            created_at: s.created_at,
        }
    }
}

/// The result of a committed append.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendOutcome {
    /// The series path.
    pub series: String,
    /// The new version's number.
    pub version: i64,
    /// The data file, relative to the pond root.
    pub file_path: String,
    /// Rows written.
    pub row_count: i64,
    /// Smallest event time, µs UTC, rounded down.
    pub min_event_time: i64,
    /// Largest event time, µs UTC, rounded up.
    pub max_event_time: i64,
    /// The oplog (Delta) version of the commit.
    pub txn_seq: i64,
    /// How many commit attempts lost to other writers first.
    pub conflicts: u32,
}

/// An append whose data file is written but not committed: nothing of it is
/// visible until [`Pond::commit_append`]. Dropping it leaves an unreferenced
/// file, which [`Pond::check`] reports as garbage; [`Pond::abort_append`]
/// removes it.
#[derive(Debug)]
pub struct StagedAppend {
    series: String,
    series_id: String,
    version: i64,
    timestamp_column: String,
    /// The schema the file was written with.
    schema: SchemaRef,
    file: WrittenFile,
    file_uuid: String,
}

impl StagedAppend {
    /// The staged data file, relative to the pond root.
    pub fn file_path(&self) -> String {
        self.file.path.to_string()
    }

    /// Rows in the staged file.
    pub fn row_count(&self) -> i64 {
        self.file.row_count
    }
}

/// A pond: an oplog and the data files of every series, at one location.
///
/// A `Pond` is cheap to share (`Arc<Pond>`) between tasks: reads use an
/// immutable snapshot of the oplog index and never wait for writers, and
/// appends write their data file before taking the commit lock.
pub struct Pond {
    location: Url,
    store: Arc<dyn ObjectStore>,
    oplog: tokio::sync::Mutex<Oplog>,
    index: RwLock<Arc<OplogIndex>>,
    options: PondOptions,
}

impl std::fmt::Debug for Pond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pond")
            .field("location", &self.location.as_str())
            .finish()
    }
}

impl Pond {
    /// Creates an empty pond at a local path or URL. Fails if one exists.
    pub async fn create(location: &str) -> Result<Self> {
        Self::create_with_options(location, PondOptions::default()).await
    }

    /// Creates an empty pond with the given options.
    pub async fn create_with_options(location: &str, options: PondOptions) -> Result<Self> {
        let url = resolve_location(location, true)?;
        let oplog_url = oplog_url(&url)?;
        if let Ok(dir) = oplog_url.to_file_path() {
            std::fs::create_dir_all(dir)?;
        }
        if Oplog::open(&oplog_url).await?.is_some() {
            return Err(Error::PondExists {
                location: display_location(&url),
            });
        }
        let oplog = Oplog::create(&oplog_url).await.map_err(|e| match e {
            Error::Delta {
                source: deltalake::DeltaTableError::VersionAlreadyExists(_),
            } => Error::PondExists {
                location: display_location(&url),
            },
            other => other,
        })?;
        Self::from_parts(url, oplog, options).await
    }

    /// Opens the pond at a local path or URL.
    pub async fn open(location: &str) -> Result<Self> {
        Self::open_with_options(location, PondOptions::default()).await
    }

    /// Opens a pond with the given options.
    pub async fn open_with_options(location: &str, options: PondOptions) -> Result<Self> {
        let url = resolve_location(location, false)?;
        let Some(oplog) = Oplog::open(&oplog_url(&url)?).await? else {
            return Err(Error::NotAPond {
                location: display_location(&url),
                reason: "it has no oplog/ Delta table".into(),
            });
        };
        Self::from_parts(url, oplog, options).await
    }

    async fn from_parts(url: Url, oplog: Oplog, options: PondOptions) -> Result<Self> {
        let (store, prefix) = object_store::parse_url(&url)?;
        let store: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(store, prefix));
        let index = OplogIndex::build(oplog.read_all().await?, oplog.version())?;
        Ok(Self {
            location: url,
            store,
            oplog: tokio::sync::Mutex::new(oplog),
            index: RwLock::new(Arc::new(index)),
            options,
        })
    }

    /// The pond's root URL.
    pub fn location(&self) -> &Url {
        &self.location
    }

    /// The object store rooted at the pond: data file paths resolve against it.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The oplog (Delta) version the in-memory index reflects.
    pub fn oplog_version(&self) -> i64 {
        self.index().delta_version()
    }

    pub(crate) fn index(&self) -> Arc<OplogIndex> {
        Arc::clone(&self.index.read().expect("index lock poisoned"))
    }

    /// Reads the oplog commits made since the index was last refreshed (by
    /// this handle or any other writer) into the index. Only new commits are
    /// read; when nothing changed this costs one listing of the log.
    pub async fn refresh(&self) -> Result<()> {
        let mut oplog = self.oplog.lock().await;
        self.refresh_locked(&mut oplog).await.map(|_| ())
    }

    async fn refresh_locked(&self, oplog: &mut Oplog) -> Result<Arc<OplogIndex>> {
        let current = self.index();
        let from = current.delta_version();
        if !oplog.listing_due() {
            // The common case: probe for the next commit, O(1) in history.
            let (entries, latest) = oplog.read_commits_after(from).await?;
            if latest == from {
                return Ok(current);
            }
            let mut next = (*current).clone();
            next.apply(entries, latest)?;
            return Ok(self.install(next));
        }
        let latest = oplog.latest_version(from).await?;
        if latest <= from {
            return Ok(current);
        }
        let next = match oplog.read_commits(from, latest).await? {
            Some(entries) => {
                let mut next = (*current).clone();
                next.apply(entries, latest)?;
                next
            }
            None => {
                // Commits this handle has not seen were cleaned from the log:
                // start again from the newest snapshot.
                oplog.update_to(latest).await?;
                OplogIndex::build(oplog.read_all().await?, oplog.version())?
            }
        };
        Ok(self.install(next))
    }

    fn install(&self, index: OplogIndex) -> Arc<OplogIndex> {
        let index = Arc::new(index);
        *self.index.write().expect("index lock poisoned") = Arc::clone(&index);
        index
    }

    /// Every row of the oplog as of the newest commit, in commit order.
    pub async fn oplog_entries(&self) -> Result<Vec<OplogEntry>> {
        let mut oplog = self.oplog.lock().await;
        let index = self.refresh_locked(&mut oplog).await?;
        oplog.update_to(index.delta_version()).await?;
        let mut entries = oplog.read_all().await?;
        entries.sort_by_key(|e| (e.txn_seq, e.entry_type != EntryType::Create, e.version));
        Ok(entries)
    }

    /// Every series, ordered by path, as of the last refresh.
    pub fn list_series(&self) -> Vec<SeriesInfo> {
        self.index()
            .all_series()
            .map(|s| SeriesInfo::from_state(s))
            .collect()
    }

    /// One series, as of the last refresh.
    pub fn series_info(&self, path: &str) -> Result<SeriesInfo> {
        Ok(SeriesInfo::from_state(self.state(path)?.as_ref()))
    }

    /// Every version of a series in version order, as of the last refresh.
    pub fn versions(&self, path: &str) -> Result<Vec<FileInfo>> {
        Ok(self
            .state(path)?
            .versions
            .iter()
            .map(|v| v.as_ref().clone())
            .collect())
    }

    /// The versions of a series whose event-time bounds overlap `[start, end)`
    /// (µs UTC), ordered by their earliest event time. An in-memory lookup in
    /// O(log n + k) against the index as of the last refresh; no I/O.
    pub fn scan_time_range(&self, path: &str, start: i64, end: i64) -> Result<Vec<FileInfo>> {
        Ok(self.state(path)?.overlapping(start, end))
    }

    pub(crate) fn state(&self, path: &str) -> Result<Arc<SeriesState>> {
        validate_series_path(path)?;
        self.index()
            .series(path)
            .cloned()
            .ok_or_else(|| Error::UnknownSeries {
                path: path.to_string(),
            })
    }

    /// Streams the rows of `path` with `start <= time < end` (µs UTC), after a
    /// refresh.
    pub async fn read_time_range(&self, path: &str, start: i64, end: i64) -> Result<SeriesStream> {
        validate_series_path(path)?;
        self.refresh().await?;
        let state = self.state(path)?;
        let info = SchemaInfo {
            series: state.path.clone(),
            schema: Arc::clone(&state.schema),
            timestamp_column: state.timestamp_column.clone(),
        };
        Ok(SeriesStream::new(
            self.object_store(),
            info,
            state.versions.len(),
            state.overlapping(start, end),
            (start, end),
        ))
    }

    /// Creates a series with no versions yet: `schema` and its
    /// `timestamp_column` become the series' schema, as if a first append had
    /// had them. An error if the series exists.
    pub async fn create_series(
        &self,
        path: &str,
        schema: SchemaRef,
        timestamp_column: &str,
    ) -> Result<()> {
        validate_series_path(path)?;
        let plan = plan_schema(path, None, &schema, timestamp_column)?;
        let schema_json = schema_json(path, &plan.schema)?;
        let series_id = uuid::Uuid::new_v4().to_string();
        let attempts = self.options.commit_attempts.max(1);
        for attempt in 0..attempts {
            let mut oplog = self.oplog.lock().await;
            let index = self.refresh_locked(&mut oplog).await?;
            if index.series(path).is_some() {
                return Err(Error::SeriesExists {
                    path: path.to_string(),
                });
            }
            let txn_seq = index.delta_version() + 1;
            let entry = create_entry(
                path,
                &series_id,
                timestamp_column,
                Some(schema_json.clone()),
                txn_seq,
            );
            if let CommitOutcome::Committed(v) = oplog
                .commit(index.delta_version(), std::slice::from_ref(&entry))
                .await?
            {
                let mut next = (*index).clone();
                if next.apply(vec![entry], v).is_ok() {
                    self.install(next);
                }
                return Ok(());
            }
            drop(oplog);
            backoff(attempt).await;
        }
        Err(Error::CommitConflict {
            path: path.to_string(),
            attempts,
        })
    }

    /// Appends one in-memory batch as a new version (sorted first if needed).
    pub async fn append_batch(
        &self,
        path: &str,
        batch: &RecordBatch,
        timestamp_column: &str,
    ) -> Result<AppendOutcome> {
        validate_series_path(path)?;
        let batch = sort_batch(batch, timestamp_column, path)?;
        let schema = batch.schema();
        let input = futures::stream::iter([Ok(batch)]);
        self.append_stream(path, schema, input, timestamp_column)
            .await
    }

    /// Appends a stream of batches as ONE new version, in bounded memory.
    pub async fn append_stream<S>(
        &self,
        path: &str,
        schema: SchemaRef,
        input: S,
        timestamp_column: &str,
    ) -> Result<AppendOutcome>
    where
        S: Stream<Item = Result<RecordBatch>> + Send,
    {
        let staged = self
            .stage_append(path, schema, input, timestamp_column)
            .await?;
        self.commit_append(staged).await
    }

    /// Writes the data file of an append without committing it.
    pub async fn stage_append<S>(
        &self,
        path: &str,
        schema: SchemaRef,
        input: S,
        timestamp_column: &str,
    ) -> Result<StagedAppend>
    where
        S: Stream<Item = Result<RecordBatch>> + Send,
    {
        validate_series_path(path)?;
        self.refresh().await?;
        let index = self.index();
        let existing = index.series(path);
        let plan = plan_schema(
            path,
            existing.map(|s| existing_of(s)),
            &schema,
            timestamp_column,
        )?;
        let series_id = existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |s| s.id.clone());
        let version = existing.map_or(0, |s| s.last_version()) + 1;
        let file_uuid = uuid::Uuid::new_v4().to_string();
        let file_path = data_file_path(&series_id, version, &file_uuid);
        let target = Arc::clone(&plan.schema);
        let series = path.to_string();
        let input = input.map(move |b| b.and_then(|b| conform_batch(&b, &target, &series)));
        let file = write_data_file(
            &self.store,
            file_path,
            &plan.schema,
            timestamp_column,
            input,
            &self.options.write_options(),
            path,
        )
        .await?;
        Ok(StagedAppend {
            series: path.to_string(),
            series_id,
            version,
            timestamp_column: timestamp_column.to_string(),
            schema: plan.schema,
            file,
            file_uuid,
        })
    }

    /// Removes a staged append's data file.
    pub async fn abort_append(&self, staged: StagedAppend) {
        remove_quietly(&self.store, &staged.file.path).await;
    }

    /// Commits a staged append: one oplog commit makes the version visible.
    ///
    /// When another writer commits first, the append re-reads the log, checks
    /// its schema against the series as it now is, renumbers its version (and
    /// renames its file to match) and tries again, with jittered backoff, up to
    /// [`PondOptions::commit_attempts`] times. If it gives up or the schema no
    /// longer fits, the data file is removed and nothing is visible.
    pub async fn commit_append(&self, mut staged: StagedAppend) -> Result<AppendOutcome> {
        let attempts = self.options.commit_attempts.max(1);
        let mut failure = None;
        for attempt in 0..attempts {
            match self.try_commit(&mut staged, attempt).await {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => backoff(attempt).await,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // An error, or a "conflict", may still have landed our commit (the
        // commit file written before a later step failed, or a retried
        // request that had succeeded the first time). Look before cleaning
        // up; if we cannot look, keep the file: garbage is safer than a
        // committed version without its data.
        let failure = failure.unwrap_or(Error::CommitConflict {
            path: staged.series.clone(),
            attempts,
        });
        match self.find_landed(&staged, attempts).await {
            Ok(Some(outcome)) => Ok(outcome),
            Ok(None) => {
                remove_quietly(&self.store, &staged.file.path).await;
                Err(failure)
            }
            Err(e) => {
                tracing::warn!(error = %e, file = %staged.file.path, "cannot tell whether the append landed; keeping its file");
                Err(failure)
            }
        }
    }

    /// The outcome of `staged` if a commit referencing its file is in the oplog.
    async fn find_landed(
        &self,
        staged: &StagedAppend,
        conflicts: u32,
    ) -> Result<Option<AppendOutcome>> {
        let mut oplog = self.oplog.lock().await;
        let index = self.refresh_locked(&mut oplog).await?;
        Ok(landed(&index, staged, conflicts))
    }

    /// One commit attempt; `Ok(None)` if another writer got there first.
    async fn try_commit(
        &self,
        staged: &mut StagedAppend,
        conflicts: u32,
    ) -> Result<Option<AppendOutcome>> {
        let mut oplog = self.oplog.lock().await;
        let index = self.refresh_locked(&mut oplog).await?;
        if let Some(outcome) = landed(&index, staged, conflicts) {
            return Ok(Some(outcome));
        }
        let existing = index.series(&staged.series);

        // The series may have been created or extended since the file was staged.
        let plan = plan_schema(
            &staged.series,
            existing.map(|s| existing_of(s)),
            &staged.schema,
            &staged.timestamp_column,
        )?;
        let series_id = existing.map_or_else(|| staged.series_id.clone(), |s| s.id.clone());
        let version = existing.map_or(0, |s| s.last_version()) + 1;
        if series_id != staged.series_id || version != staged.version {
            let to = data_file_path(&series_id, version, &staged.file_uuid);
            if let Err(e) = self.store.rename(&staged.file.path, &to).await {
                // A store that renames by copy and delete may have copied.
                remove_quietly(&self.store, &to).await;
                return Err(e.into());
            }
            staged.file.path = to;
            staged.series_id = series_id;
            staged.version = version;
        }

        let txn_seq = index.delta_version() + 1;
        let entries = self.entries(staged, existing.is_none(), &plan, txn_seq)?;
        let CommitOutcome::Committed(delta_version) =
            oplog.commit(index.delta_version(), &entries).await?
        else {
            return Ok(None);
        };

        // Landed. Nothing below may fail the append.
        let mut next = (*index).clone();
        match next.apply(entries, delta_version) {
            Ok(()) => {
                self.install(next);
            }
            // The next refresh reads the commit from the log instead.
            Err(e) => tracing::warn!(error = %e, "could not index an own commit"),
        }
        // Every commit adds an oplog file; the writer whose commit lands on a
        // multiple of the interval compacts them. One that loses a race or
        // fails leaves it to the next multiple.
        let every = self.options.compact_oplog_after.max(2) as i64;
        if delta_version % every == 0
            && let Err(e) = oplog.compact(delta_version).await
        {
            tracing::warn!(error = %e, "oplog compaction failed");
        }
        Ok(Some(AppendOutcome {
            series: staged.series.clone(),
            version: staged.version,
            file_path: staged.file.path.to_string(),
            row_count: staged.file.row_count,
            min_event_time: staged.file.min_event_time,
            max_event_time: staged.file.max_event_time,
            txn_seq: delta_version,
            conflicts,
        }))
    }

    fn entries(
        &self,
        staged: &StagedAppend,
        create: bool,
        plan: &SchemaPlan,
        txn_seq: i64,
    ) -> Result<Vec<OplogEntry>> {
        let schema_json = schema_json(&staged.series, &plan.schema)?;
        let base = create_entry(
            &staged.series,
            &staged.series_id,
            &staged.timestamp_column,
            None,
            txn_seq,
        );
        let f = &staged.file;
        let append = OplogEntry {
            version: staged.version,
            entry_type: EntryType::Append,
            file_path: Some(f.path.to_string()),
            size: Some(f.size),
            row_count: Some(f.row_count),
            min_event_time: Some(f.min_event_time),
            max_event_time: Some(f.max_event_time),
            schema: (!create && plan.changed).then(|| schema_json.clone()),
            content_hash: Some(f.content_hash.clone()),
            ..base.clone()
        };
        Ok(if create {
            vec![
                OplogEntry {
                    schema: Some(schema_json),
                    ..base
                },
                append,
            ]
        } else {
            vec![append]
        })
    }

    /// Paths of every data file the oplog references.
    pub(crate) fn referenced_files(&self) -> HashSet<String> {
        self.index()
            .all_series()
            .flat_map(|s| s.versions.iter().map(|v| v.file_path.clone()))
            .collect()
    }
}

/// A `create` row: the series, its id and timestamp column, and its schema.
fn create_entry(
    series: &str,
    series_id: &str,
    timestamp_column: &str,
    schema: Option<String>,
    txn_seq: i64,
) -> OplogEntry {
    OplogEntry {
        series: series.to_string(),
        series_id: series_id.to_string(),
        version: 0,
        entry_type: EntryType::Create,
        file_path: None,
        size: None,
        row_count: None,
        min_event_time: None,
        max_event_time: None,
        timestamp_column: timestamp_column.to_string(),
        schema,
        content_hash: None,
        txn_seq,
        created_at: now_micros(),
        extended_attributes: None,
    }
}

/// A series schema as the JSON stored in the oplog.
fn schema_json(series: &str, schema: &SchemaRef) -> Result<String> {
    serde_json::to_string(schema.as_ref())
        .map_err(|e| Error::invalid_data(series, format!("schema cannot be serialized: {e}")))
}

/// The outcome of `staged` if `index` holds a version with its data file.
fn landed(index: &OplogIndex, staged: &StagedAppend, conflicts: u32) -> Option<AppendOutcome> {
    let path = staged.file.path.as_ref();
    let series = index.series(&staged.series)?;
    let v = series.versions.iter().rev().find(|v| v.file_path == path)?;
    Some(AppendOutcome {
        series: staged.series.clone(),
        version: v.version,
        file_path: v.file_path.clone(),
        row_count: v.row_count,
        min_event_time: v.min_event_time,
        max_event_time: v.max_event_time,
        txn_seq: v.txn_seq,
        conflicts,
    })
}

fn existing_of(s: &SeriesState) -> Existing<'_> {
    Existing {
        schema: s.schema.as_ref(),
        timestamp_column: &s.timestamp_column,
    }
}

fn data_file_path(series_id: &str, version: i64, uuid: &str) -> Path {
    Path::from(format!("data/{series_id}/{version}-{uuid}.parquet"))
}

/// Sorts a batch by its time column unless it is sorted already.
fn sort_batch(batch: &RecordBatch, timestamp_column: &str, path: &str) -> Result<RecordBatch> {
    let Some(column) = batch.column_by_name(timestamp_column) else {
        // Reported with the schema check, which names the columns.
        return Ok(batch.clone());
    };
    match time_stats(column.as_ref()) {
        Ok(Some(stats)) if !stats.sorted => {
            let indices = sort_to_indices(column, None, None)?;
            Ok(take_record_batch(batch, &indices)?)
        }
        Ok(_) => Ok(batch.clone()),
        Err(e) => Err(Error::invalid_data(
            path,
            format!("timestamp column {timestamp_column:?} {e}"),
        )),
    }
}

/// Sleeps before commit attempt `attempt + 1`: exponential with full jitter,
/// capped, so that racing writers spread out.
async fn backoff(attempt: u32) {
    let cap_ms = (5u64 << attempt.min(7)).min(500);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(cap_ms + 1)) as u64;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
}

/// A local path or URL as a directory URL (ending in `/`).
fn resolve_location(location: &str, create: bool) -> Result<Url> {
    let invalid = |reason: String| Error::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    if location.is_empty() {
        return Err(invalid("the location is empty".into()));
    }
    let mut url = if location.contains("://") {
        Url::parse(location).map_err(|e| invalid(e.to_string()))?
    } else {
        let path = std::path::Path::new(location);
        if create {
            std::fs::create_dir_all(path)?;
        }
        let path = std::fs::canonicalize(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotAPond {
                    location: location.to_string(),
                    reason: "it does not exist".into(),
                }
            } else {
                Error::from(e)
            }
        })?;
        if !path.is_dir() {
            return Err(Error::NotAPond {
                location: location.to_string(),
                reason: "it is not a directory".into(),
            });
        }
        Url::from_directory_path(&path).map_err(|()| invalid("not an absolute path".into()))?
    };
    if url.scheme() == "file" && !create {
        let path = url
            .to_file_path()
            .map_err(|()| invalid("not a local path".into()))?;
        if !path.is_dir() {
            return Err(Error::NotAPond {
                location: location.to_string(),
                reason: "it does not exist or is not a directory".into(),
            });
        }
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

fn oplog_url(root: &Url) -> Result<Url> {
    root.join("oplog/").map_err(|e| Error::InvalidLocation {
        location: root.to_string(),
        reason: e.to_string(),
    })
}

fn display_location(url: &Url) -> String {
    url.to_file_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|()| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_local_paths_to_directory_urls() {
        let dir = tempfile::tempdir().unwrap();
        let url = resolve_location(dir.path().to_str().unwrap(), false).unwrap();
        assert_eq!(url.scheme(), "file");
        assert!(url.path().ends_with('/'));
        assert_eq!(
            oplog_url(&url).unwrap().path(),
            format!("{}oplog/", url.path())
        );
    }

    #[test]
    fn missing_local_pond_is_not_a_pond() {
        let err = resolve_location("/definitely/not/here", false).unwrap_err();
        assert!(matches!(err, Error::NotAPond { .. }), "{err}");
    }

    #[test]
    fn an_append_whose_file_is_in_the_oplog_counts_as_landed() {
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        )]));
        let staged = StagedAppend {
            series: "/s".into(),
            series_id: "sid".into(),
            version: 1,
            timestamp_column: "ts".into(),
            schema: Arc::clone(&schema),
            file: WrittenFile {
                path: data_file_path("sid", 1, "u"),
                size: 10,
                row_count: 2,
                min_event_time: 5,
                max_event_time: 9,
                content_hash: "sha256:0".into(),
            },
            file_uuid: "u".into(),
        };
        let plan = SchemaPlan {
            schema,
            changed: true,
        };
        let pond_entries = |staged: &StagedAppend| {
            let json = serde_json::to_string(plan.schema.as_ref()).unwrap();
            let create = OplogEntry {
                series: staged.series.clone(),
                series_id: staged.series_id.clone(),
                version: 0,
                entry_type: EntryType::Create,
                file_path: None,
                size: None,
                row_count: None,
                min_event_time: None,
                max_event_time: None,
                timestamp_column: "ts".into(),
                schema: Some(json),
                content_hash: None,
                txn_seq: 1,
                created_at: 0,
                extended_attributes: None,
            };
            let append = OplogEntry {
                version: 1,
                entry_type: EntryType::Append,
                file_path: Some(staged.file.path.to_string()),
                size: Some(10),
                row_count: Some(2),
                min_event_time: Some(5),
                max_event_time: Some(9),
                schema: None,
                ..create.clone()
            };
            vec![create, append]
        };
        let empty = OplogIndex::default();
        assert!(landed(&empty, &staged, 0).is_none());
        let index = OplogIndex::build(pond_entries(&staged), 1).unwrap();
        let outcome = landed(&index, &staged, 3).unwrap();
        assert_eq!(
            (outcome.version, outcome.txn_seq, outcome.conflicts),
            (1, 1, 3)
        );
    }

    #[test]
    fn data_files_are_named_by_series_and_version() {
        assert_eq!(
            data_file_path("sid", 3, "u").as_ref(),
            "data/sid/3-u.parquet"
        );
    }
}
