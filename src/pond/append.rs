//! Appends: a data file staged outside the oplog, then committed as the
//! series' next version, with retries against other writers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::array::RecordBatch;
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::Pond;
use super::compact::Compression;
use crate::error::{Error, Result};
use crate::index::{OplogIndex, SeriesState};
use crate::oplog::{CommitOutcome, EntryType, OplogEntry};
use crate::path::{validate_new_series_path, validate_series_path};
use crate::series::schema::{Existing, SchemaPlan, conform_batch, plan_schema};
use crate::series::writer::{WrittenFile, remove_quietly, write_data_file};
use crate::time::{now_micros, time_stats};

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

/// How an append treats its rows. The default suits most appends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendOptions {
    /// The key of the series, fixed by the append that creates it: reads
    /// return one row per key (the time column is always part of it), the
    /// one of the newest version holding it. A later append may name the
    /// same key or none; another key is an error.
    pub key: Option<Vec<String>>,
}

impl AppendOptions {
    /// Declares the series keyed by `columns` (the time column is added if
    /// they do not name it).
    pub fn with_key<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.key = Some(columns.into_iter().map(Into::into).collect());
        self
    }
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
    /// The key the file holds each of once: the series' (empty: unkeyed).
    key: Vec<String>,
    file: WrittenFile,
    file_uuid: String,
    /// When the file was written: see [`Pond::check_fresh`].
    written: super::Written,
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

impl Pond {
    /// Creates a series with no versions yet: `schema` and its
    /// `timestamp_column` become the series' schema, as if a first append had
    /// had them. An error if the series exists.
    pub async fn create_series(
        &self,
        path: &str,
        schema: SchemaRef,
        timestamp_column: &str,
    ) -> Result<()> {
        self.create_series_with_options(path, schema, timestamp_column, &AppendOptions::default())
            .await
    }

    /// [`Self::create_series`], with the key of `options`.
    pub async fn create_series_with_options(
        &self,
        path: &str,
        schema: SchemaRef,
        timestamp_column: &str,
        options: &AppendOptions,
    ) -> Result<()> {
        validate_new_series_path(path)?;
        let plan = plan_schema(path, None, &schema, timestamp_column)?;
        let key = declared_key(path, &plan.schema, timestamp_column, options)?;
        let schema_json = schema_json(path, &plan.schema)?;
        let series_id = uuid::Uuid::new_v4().to_string();
        self.commit_one_row(path, |index, txn_seq| {
            if index.series(path).is_some() {
                return Err(Error::SeriesExists {
                    path: path.to_string(),
                });
            }
            Ok(Some(create_entry(
                path,
                &series_id,
                timestamp_column,
                Some(schema_json.clone()),
                &key,
                txn_seq,
            )))
        })
        .await
    }

    /// Commits the one row that `plan` makes of the oplog as it is now
    /// (given the index and the row's `txn_seq`), retrying on a fresh read
    /// after a conflict; `plan` returning `None` means nothing to commit.
    pub(super) async fn commit_one_row(
        &self,
        path: &str,
        mut plan: impl FnMut(&OplogIndex, i64) -> Result<Option<OplogEntry>>,
    ) -> Result<()> {
        let attempts = self.options.commit_attempts.max(1);
        for attempt in 0..attempts {
            let mut oplog = self.oplog.lock().await;
            let index = self.refresh_locked(&mut oplog).await?;
            let Some(entry) = plan(&index, index.delta_version() + 1)? else {
                return Ok(());
            };
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
        self.append_batch_with_options(path, batch, timestamp_column, &AppendOptions::default())
            .await
    }

    /// [`Self::append_batch`] with `options`.
    pub async fn append_batch_with_options(
        &self,
        path: &str,
        batch: &RecordBatch,
        timestamp_column: &str,
        options: &AppendOptions,
    ) -> Result<AppendOutcome> {
        validate_series_path(path)?;
        let batch = sort_batch(batch, timestamp_column, path)?;
        let schema = batch.schema();
        let input = futures::stream::iter([Ok(batch)]);
        self.append_stream_with_options(path, schema, input, timestamp_column, options)
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
        let options = AppendOptions::default();
        self.append_stream_with_options(path, schema, input, timestamp_column, &options)
            .await
    }

    /// [`Self::append_stream`] with `options`.
    pub async fn append_stream_with_options<S>(
        &self,
        path: &str,
        schema: SchemaRef,
        input: S,
        timestamp_column: &str,
        options: &AppendOptions,
    ) -> Result<AppendOutcome>
    where
        S: Stream<Item = Result<RecordBatch>> + Send,
    {
        let staged = self
            .stage_append_with_options(path, schema, input, timestamp_column, options)
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
        let options = AppendOptions::default();
        self.stage_append_with_options(path, schema, input, timestamp_column, &options)
            .await
    }

    /// [`Self::stage_append`] with `options`.
    pub async fn stage_append_with_options<S>(
        &self,
        path: &str,
        schema: SchemaRef,
        input: S,
        timestamp_column: &str,
        options: &AppendOptions,
    ) -> Result<StagedAppend>
    where
        S: Stream<Item = Result<RecordBatch>> + Send,
    {
        validate_series_path(path)?;
        self.refresh().await?;
        let index = self.index();
        let existing = index.series(path);
        if existing.is_none() {
            validate_new_series_path(path)?;
        }
        let plan = plan_schema(
            path,
            existing.map(|s| existing_of(s)),
            &schema,
            timestamp_column,
        )?;
        let key = match existing {
            Some(series) => {
                check_key(series, options)?;
                series.key.clone()
            }
            None => declared_key(path, &plan.schema, timestamp_column, options)?,
        };
        let series_id = existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |s| s.id.clone());
        let version = existing.map_or(0, |s| s.last_version()) + 1;
        let file_uuid = uuid::Uuid::new_v4().to_string();
        let file_path = data_file_path(&series_id, version, &file_uuid);
        let started = super::Written::now();
        let target = Arc::clone(&plan.schema);
        let series = path.to_string();
        let input = input.map(move |b| b.and_then(|b| conform_batch(&b, &target, &series)));
        let file = write_data_file(
            &self.store,
            file_path,
            &plan.schema,
            timestamp_column,
            &[],
            0,
            &key,
            input,
            &self
                .options
                .write_options(existing.map_or_else(Compression::default, |s| s.compression)),
            path,
        )
        .await?;
        Ok(StagedAppend {
            series: path.to_string(),
            series_id,
            version,
            timestamp_column: timestamp_column.to_string(),
            schema: plan.schema,
            key,
            file,
            file_uuid,
            written: self.written_at(started),
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
    /// [`PondOptions::commit_attempts`](super::PondOptions::commit_attempts) times. If it gives up or the schema no
    /// longer fits, the data file is removed and nothing is visible.
    pub async fn commit_append(&self, mut staged: StagedAppend) -> Result<AppendOutcome> {
        let attempts = self.options.commit_attempts.max(1);
        let mut failure = None;
        super::crash_point("append-before-commit");
        for attempt in 0..attempts {
            match self.try_commit(&mut staged, attempt).await {
                Ok(Some(outcome)) => {
                    super::crash_point("append-after-commit");
                    self.auto_compact(&outcome.series).await;
                    return Ok(outcome);
                }
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
        // A file that waited too long may have been vacuumed meanwhile.
        self.check_fresh(&staged.series, staged.written)?;
        let existing = index.series(&staged.series);

        // The series may have been created or extended since the file was staged.
        let plan = plan_schema(
            &staged.series,
            existing.map(|s| existing_of(s)),
            &staged.schema,
            &staged.timestamp_column,
        )?;
        // Another writer may have created the series meanwhile, with
        // another key than the file was written for.
        if let Some(series) = existing
            && series.key != staged.key
        {
            return Err(Error::invalid_data(
                &staged.series,
                format!(
                    "the series was created meanwhile with {}, not {}; append again",
                    describe_key(&series.key),
                    describe_key(&staged.key)
                ),
            ));
        }
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
        // multiple of the interval merges the smallest of them. One that
        // loses a race or fails leaves it to the next multiple.
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
            &staged.key,
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
            extended_attributes: Some(f.column_attributes())
                .filter(|a| !a.is_empty())
                .map(|a| serde_json::Value::Object(a).to_string()),
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

    /// Paths of every data file the oplog references (superseded versions'
    /// too, until vacuum deletes them).
    pub(crate) fn referenced_files(&self) -> HashSet<String> {
        self.index()
            .all_series()
            .flat_map(|s| {
                s.versions
                    .iter()
                    .filter(|v| v.vacuumed_at.is_none())
                    .map(|v| v.file_path.clone())
            })
            .collect()
    }
}

/// A `create` row: the series, its id and timestamp column, its schema and
/// key.
pub(super) fn create_entry(
    series: &str,
    series_id: &str,
    timestamp_column: &str,
    schema: Option<String>,
    key: &[String],
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
        extended_attributes: (!key.is_empty())
            .then(|| serde_json::json!({ "key": key }).to_string()),
    }
}

/// The key `options` declare for a new series of `schema`: columns that
/// exist, each once, not nested, with the time column added last if they
/// leave it out; empty for none.
fn declared_key(
    path: &str,
    schema: &SchemaRef,
    timestamp_column: &str,
    options: &AppendOptions,
) -> Result<Vec<String>> {
    let Some(columns) = &options.key else {
        return Ok(Vec::new());
    };
    let mut key: Vec<String> = Vec::new();
    for column in columns {
        let field = schema.field_with_name(column).map_err(|_| {
            Error::invalid_data(path, format!("the key names no column {column:?}"))
        })?;
        if field.data_type().is_nested() {
            return Err(Error::invalid_data(
                path,
                format!(
                    "column {column:?} ({}) cannot be part of a key",
                    field.data_type()
                ),
            ));
        }
        if field.data_type().is_floating() {
            // 0.0 and -0.0 are one value to SQL and two to a sort; so are
            // NaNs of other bits.
            return Err(Error::invalid_data(
                path,
                format!(
                    "column {column:?} ({}) cannot be part of a key: floating-point values \
                     are no identities (0.0 = -0.0, NaN)",
                    field.data_type()
                ),
            ));
        }
        if key.contains(column) {
            return Err(Error::invalid_data(
                path,
                format!("the key names {column:?} twice"),
            ));
        }
        key.push(column.clone());
    }
    if !key.iter().any(|k| k == timestamp_column) {
        key.push(timestamp_column.to_string());
    }
    Ok(key)
}

/// An error unless the key `options` name, if any, is `series`' key.
fn check_key(series: &SeriesState, options: &AppendOptions) -> Result<()> {
    let Some(columns) = &options.key else {
        return Ok(());
    };
    let mut named: Vec<&str> = columns.iter().map(String::as_str).collect();
    if !named.contains(&series.timestamp_column.as_str()) {
        named.push(&series.timestamp_column);
    }
    let mut have: Vec<&str> = series.key.iter().map(String::as_str).collect();
    named.sort_unstable();
    have.sort_unstable();
    if named == have {
        return Ok(());
    }
    let reason = if series.key.is_empty() {
        "the series was created without a key, and only its first append can declare one"
            .to_string()
    } else {
        format!(
            "the series is keyed by ({}), fixed by its first append; this append names ({})",
            series.key.join(", "),
            named.join(", ")
        )
    };
    Err(Error::invalid_data(&series.path, reason))
}

/// `key (a, b)`, or `no key`.
fn describe_key(key: &[String]) -> String {
    if key.is_empty() {
        "no key".to_string()
    } else {
        format!("key ({})", key.join(", "))
    }
}

/// A series schema as the JSON stored in the oplog.
fn schema_json(series: &str, schema: &SchemaRef) -> Result<String> {
    serde_json::to_string(schema.as_ref())
        .map_err(|e| Error::invalid_data(series, format!("schema cannot be serialized: {e}")))
}

/// The outcome of `staged` if `index` holds a version with its data file.
fn landed(index: &OplogIndex, staged: &StagedAppend, conflicts: u32) -> Option<AppendOutcome> {
    // A staged file is committed as the version its name carries.
    let series = index.series(&staged.series)?;
    let v = &series.versions[series.versions.find(staged.version)?];
    if v.file_path != staged.file.path.as_ref() {
        return None;
    }
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

pub(super) fn data_file_path(series_id: &str, version: i64, uuid: &str) -> Path {
    Path::from(format!("data/{series_id}/{version}-{uuid}.parquet"))
}

/// Whether `path` (from the pond's root) is a name pond gives its data
/// files: [`data_file_path`]'s, or that with the `.sorted` of a second
/// pass. Vacuum and check leave any other file under `data/` alone: it is
/// not pond's to delete.
pub(crate) fn is_data_file(path: &str) -> bool {
    let is_uuid = |s: &str| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let Some(rest) = path.strip_prefix("data/") else {
        return false;
    };
    let Some((series, name)) = rest.split_once('/') else {
        return false;
    };
    let name = name.strip_suffix(".sorted").unwrap_or(name);
    let Some((version, uuid)) = name
        .strip_suffix(".parquet")
        .and_then(|n| n.split_once('-'))
    else {
        return false;
    };
    is_uuid(series)
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && is_uuid(uuid)
}

/// Sorts a batch by its time column unless it is sorted already.
fn sort_batch(batch: &RecordBatch, timestamp_column: &str, path: &str) -> Result<RecordBatch> {
    let Some(column) = batch.column_by_name(timestamp_column) else {
        // Reported with the schema check, which names the columns.
        return Ok(batch.clone());
    };
    match time_stats(column.as_ref()) {
        Ok(Some(stats)) if !stats.sorted => {
            // Stable: rows of one instant keep their order, so that of a
            // keyed series' rows the last one given for a key still wins.
            let times = arrow::compute::cast(column, &arrow::datatypes::DataType::Int64)?;
            let times = times.as_primitive::<arrow::datatypes::Int64Type>();
            let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
            order.sort_by_key(|&i| times.value(i as usize));
            let indices = arrow::array::UInt32Array::from(order);
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
pub(super) async fn backoff(attempt: u32) {
    let cap_ms = (5u64 << attempt.min(7)).min(500);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(cap_ms + 1)) as u64;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

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
            schema,
            key: Vec::new(),
            file: WrittenFile {
                path: data_file_path("sid", 1, "u"),
                size: 10,
                row_count: 2,
                min_event_time: 5,
                max_event_time: 9,
                content_hash: "sha256:0".into(),
                distinct: Vec::new(),
                values: Vec::new(),
            },
            file_uuid: "u".into(),
            written: crate::pond::Written::now(),
        };
        let pond_entries = |staged: &StagedAppend| {
            let json = schema_json(&staged.series, &staged.schema).unwrap();
            let create = create_entry(&staged.series, &staged.series_id, "ts", Some(json), &[], 1);
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
