//! The in-memory index of the oplog: every series, its schema and its versions,
//! with an interval index over their event-time bounds.
//!
//! The index is immutable once built and shared behind an `Arc`; a refresh
//! applies the entries of new Delta commits to a copy, cloning only the series
//! they touch, and swaps it in. Readers (one per SQL statement, say) never wait
//! for a writer.

mod interval;
mod versions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::oplog::{EntryType, OplogEntry};
use crate::pond::Compression;
use crate::series::ColumnValues;
use crate::time::last_micro;
use interval::LiveIntervals;
pub(crate) use versions::Versions;

/// One version of a series, as recorded in the oplog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// The data file, relative to the pond root.
    pub file_path: String,
    /// The per-series version number (1, 2, 3, …).
    pub version: i64,
    /// Smallest event time in the file, µs UTC, rounded down.
    pub min_event_time: i64,
    /// Largest event time in the file, µs UTC, rounded up.
    pub max_event_time: i64,
    /// The name of the timestamp column.
    pub timestamp_column: String,
    /// Bytes of the data file.
    pub size: i64,
    /// Rows in the data file.
    pub row_count: i64,
    /// `sha256:<hex>` of the file's bytes.
    pub content_hash: String,
    /// The oplog (Delta) version that committed this version.
    pub txn_seq: i64,
    /// Wall-clock commit time, µs UTC.
    pub created_at: i64,
    /// `append`, or `compact` for a version written by compaction.
    pub entry_type: EntryType,
    /// 0 for an append; for a version written by compaction, one more than
    /// the highest level among the versions it replaced.
    pub level: u32,
    /// The oplog version of the compaction that superseded this version;
    /// reads of the series skip it from then on.
    pub superseded_at: Option<i64>,
    /// When that compaction was committed, µs UTC.
    pub superseded_time: Option<i64>,
    /// The oplog version of the vacuum that deleted this superseded
    /// version's data file.
    pub vacuumed_at: Option<i64>,
    /// The columns the file's rows are sorted by, when compaction clustered
    /// them by the series' sort key (the time column last); empty when they
    /// are sorted by time alone, as every append is.
    pub sort_key: Vec<String>,
    /// With a sort key: the length in µs of the time buckets the rows are
    /// clustered by it within (the file is sorted by the bucket of the time
    /// column, then by the key); 0 when the whole file is sorted by the key.
    pub sort_bucket: i64,
    /// Distinct counts of the file's low-cardinality columns, by name: the
    /// planner's estimate of how many groups a `GROUP BY` makes.
    pub distinct: Vec<(String, u64)>,
    /// Every value of the file's columns that record them (strings and
    /// integers without nulls, and few: see [`crate::series`]'s distinct
    /// counter).
    pub(crate) values: Option<Arc<RecordedValues>>,
    /// For a keyed series, whose rows win where live versions hold the same
    /// key: those of the version with the highest precedence. An append's
    /// is its version number; a compacted version takes the highest among
    /// the versions it replaced, so that it still loses to a later append
    /// that it did not replace.
    pub precedence: i64,
    /// The newest delete whose rows a compaction already left out of this
    /// version (0 for an append): older deletes no longer apply to it.
    pub deletes_applied: i64,
}

impl FileInfo {
    /// Whether reads of the series as it is now read this version.
    pub fn is_live(&self) -> bool {
        self.superseded_at.is_none()
    }

    /// Whether the file's rows are in time order.
    pub fn is_time_sorted(&self) -> bool {
        self.sort_key.is_empty()
    }

    /// Whether every row's time lies from `first` to `last` µs, both
    /// included, by the oplog's bounds.
    pub(crate) fn lies_within(&self, (first, last): (i64, i64)) -> bool {
        first <= self.min_event_time && self.max_event_time <= last
    }
}

/// A row's attributes but `values`, and whether it holds them.
struct WithoutValues {
    parsed: serde_json::Map<String, serde_json::Value>,
    values: bool,
}

impl<'de> serde::Deserialize<'de> for WithoutValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = WithoutValues;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WithoutValues, A::Error> {
                let mut out = WithoutValues {
                    parsed: serde_json::Map::new(),
                    values: false,
                };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "values" || key == "value_times" {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        out.values = true;
                    } else {
                        out.parsed.insert(key, map.next_value()?);
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The `values` of an oplog row (`{"column": [value, ...]}`) and their
/// `value_times`, parsed the first time a query asks for them. Parsed on
/// opening, the 432 versions of the devops benchmark (a hundred host names
/// and nine other tags each) took 12 ms longer to open, most of it
/// allocating and freeing strings.
#[derive(Debug, Default)]
pub(crate) struct RecordedValues {
    /// The row's whole `extended_attributes`.
    json: Box<str>,
    /// The version's `max_event_time - min_event_time`, which no time's
    /// offset exceeds (`None`: beyond `i64`, and no time is read).
    span: Option<i64>,
    parsed: OnceLock<Vec<(String, ValuesOf)>>,
}

/// One column's recorded values, and where recorded, their times.
#[derive(Debug)]
pub(crate) struct ValuesOf {
    pub(crate) values: ColumnValues,
    /// In the values' order: µs from the version's `min_event_time` to the
    /// value's first time (rounded up), and from its last time (rounded
    /// down) to the version's `max_event_time`.
    pub(crate) times: Option<(Vec<i64>, Vec<i64>)>,
}

impl RecordedValues {
    /// The values of `column`, if recorded.
    pub(crate) fn of(&self, column: &str) -> Option<&ColumnValues> {
        self.with_times(column).map(|v| &v.values)
    }

    /// The values of `column` and their times, if recorded.
    pub(crate) fn with_times(&self, column: &str) -> Option<&ValuesOf> {
        let parsed = self.parsed.get_or_init(|| {
            let mut attributes: HashMap<String, serde_json::Value> =
                serde_json::from_str(&self.json).unwrap_or_default();
            let Some(serde_json::Value::Object(columns)) = attributes.remove("values") else {
                return Vec::new();
            };
            let mut times = match attributes.remove("value_times") {
                Some(serde_json::Value::Object(times)) => times,
                _ => serde_json::Map::new(),
            };
            (columns.into_iter())
                .filter_map(|(name, values)| {
                    let values = ColumnValues::from_json(&values)?;
                    let times = times.remove(&name).and_then(|t| {
                        let offsets = |key: &str| -> Option<Vec<i64>> {
                            let offsets =
                                <Vec<i64> as serde::Deserialize>::deserialize(t.get(key)?).ok()?;
                            let span = self.span?;
                            (offsets.len() == values.len()
                                && offsets.iter().all(|o| (0..=span).contains(o)))
                            .then_some(offsets)
                        };
                        Some((offsets("first")?, offsets("last")?))
                    });
                    Some((name, ValuesOf { values, times }))
                })
                .collect()
        });
        (parsed.iter())
            .find(|(name, _)| name == column)
            .map(|(_, values)| values)
    }
}

#[cfg(test)]
impl RecordedValues {
    /// Values as an oplog row would record them.
    pub(crate) fn from_json(values: &serde_json::Value) -> Self {
        Self::from_attributes(&serde_json::json!({ "values": values }), 0)
    }

    /// Values and their times as an oplog row would record them, of a
    /// version spanning `span` µs.
    pub(crate) fn from_attributes(attributes: &serde_json::Value, span: i64) -> Self {
        Self {
            json: attributes.to_string().into(),
            span: Some(span),
            parsed: OnceLock::new(),
        }
    }
}

impl PartialEq for RecordedValues {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for RecordedValues {}

/// The first column of the `sort_key` an oplog row records for rows
/// clustered within time buckets: no column of any series, so that a pond
/// build older than buckets, which would take the key for the file's order,
/// declares no order (it stops at the first column it cannot read) and
/// refuses to compact by it.
pub(crate) const BUCKET_MARKER: &str = "__pond_bucket";

/// The `sort_key` an oplog row records for `key` applied within buckets of
/// `bucket` µs (0: over the whole file).
pub(crate) fn recorded_sort_key(key: &[String], bucket: i64) -> Vec<String> {
    let marker = (bucket > 0 && !key.is_empty()).then(|| BUCKET_MARKER.to_string());
    marker.into_iter().chain(key.iter().cloned()).collect()
}

/// A delete of a series (see [`EntryType::Delete`]): the rows of versions
/// of lower precedence in `min_event_time..=max_event_time` that
/// `predicate` holds for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tombstone {
    pub(crate) version: i64,
    pub(crate) txn_seq: i64,
    pub(crate) created_at: i64,
    pub(crate) min_event_time: i64,
    pub(crate) max_event_time: i64,
    /// A SQL predicate on the series' columns; `None` deletes every row in
    /// the time range.
    pub(crate) predicate: Option<String>,
}

impl Tombstone {
    /// Whether it may delete rows of `version`: rows written before it,
    /// that no compaction already deleted.
    pub(crate) fn applies_to(&self, version: &FileInfo) -> bool {
        self.version > version.precedence.max(version.deletes_applied)
            && self.min_event_time <= version.max_event_time
            && version.min_event_time <= self.max_event_time
    }

    /// Whether it deletes every row of `version`.
    pub(crate) fn deletes_all_of(&self, version: &FileInfo) -> bool {
        self.predicate.is_none()
            && self.applies_to(version)
            && self.min_event_time <= version.min_event_time
            && version.max_event_time <= self.max_event_time
    }
}

/// What the index knows of one series.
#[derive(Debug, Clone)]
pub(crate) struct SeriesState {
    pub(crate) path: String,
    pub(crate) id: String,
    pub(crate) timestamp_column: String,
    /// The current schema: the first append's, widened by later schema changes.
    pub(crate) schema: SchemaRef,
    pub(crate) created_at: i64,
    /// The declared sort key compaction clusters rows by (the time column
    /// last); empty for time order.
    pub(crate) sort_key: Vec<String>,
    /// The time buckets compaction clusters by the sort key within, µs (0:
    /// the whole file is sorted by the key).
    pub(crate) sort_bucket: i64,
    /// The codec the series' files are written with from now on.
    pub(crate) compression: Compression,
    /// The key of a keyed series (its columns as declared, the time column
    /// among them): reads return one row per key, the one of the version
    /// with the highest precedence. Empty for a series that keeps all rows.
    pub(crate) key: Vec<String>,
    /// Its deletes, in version order.
    pub(crate) deletes: Vec<Arc<Tombstone>>,
    /// Every version, superseded ones included, in version order. Shared, so
    /// that copying a series to apply a commit copies a chunk of pointers,
    /// not every version.
    pub(crate) versions: Versions,
    /// Over the live versions only.
    intervals: LiveIntervals,
    live_count: usize,
    /// A row arrived out of version order (only a faulty rewrite of the
    /// oplog does that): the versions are sorted again before use.
    unsorted: bool,
}

impl SeriesState {
    /// The versions that may hold rows in `[start, end)`, ordered by their
    /// smallest event time (then by version).
    pub(crate) fn overlapping(&self, start: i64, end: i64) -> Vec<FileInfo> {
        (self.overlapping_shared(start, end).into_iter())
            .map(|v| v.as_ref().clone())
            .collect()
    }

    /// [`Self::overlapping`], the index's own versions.
    pub(crate) fn overlapping_shared(&self, start: i64, end: i64) -> Vec<&Arc<FileInfo>> {
        let Some(last) = last_micro(end) else {
            return Vec::new();
        };
        let mut hits = self
            .intervals
            .overlapping(start, last, |i| self.versions[i].is_live());
        hits.sort_unstable_by_key(|&i| (self.versions[i].min_event_time, self.versions[i].version));
        hits.into_iter().map(|i| &self.versions[i]).collect()
    }

    /// The versions reads of the series as it is now read.
    pub(crate) fn live(&self) -> impl Iterator<Item = &Arc<FileInfo>> {
        self.versions.iter().filter(|v| v.is_live())
    }

    /// The versions reads of the series saw right after the commit that
    /// added `version`: those committed by then that no compaction committed
    /// by then had superseded. A compaction adds its new versions in one
    /// commit, so as of any of them the series holds all of them.
    ///
    /// As of the newest version (of data or a delete) or past it, the live
    /// versions: what came after is compactions that wrote no version (each
    /// of its inputs wholly deleted), whose answers are the same, and whose
    /// inputs `vacuum` may have removed already.
    pub(crate) fn as_of(&self, version: i64) -> Vec<&Arc<FileInfo>> {
        if version >= self.last_version() {
            return self.live().collect();
        }
        let end = self.versions.partition_point(|v| v.version <= version);
        let Some(txn) = end.checked_sub(1).map(|i| self.versions[i].txn_seq) else {
            return Vec::new();
        };
        self.versions
            .iter()
            .take_while(|v| v.txn_seq <= txn)
            .filter(|v| v.superseded_at.is_none_or(|s| s > txn))
            .collect()
    }

    /// The version to read the series as of `time` (µs UTC) with
    /// [`Self::as_of`]: the newest version of the newest commit (by Delta
    /// version) among those whose rows say they were made at or before
    /// `time` (`created_at`, the writer's clock), so that the read is the
    /// series as one commit left it; 0, which reads nothing, if none was.
    pub(crate) fn version_at(&self, time: i64) -> i64 {
        let commits = self
            .versions
            .iter()
            .map(|v| (v.created_at, v.txn_seq, v.version))
            .chain(
                self.deletes
                    .iter()
                    .map(|d| (d.created_at, d.txn_seq, d.version)),
            );
        let Some(txn) = commits
            .clone()
            .filter(|(created, _, _)| *created <= time)
            .map(|(_, txn, _)| txn)
            .max()
        else {
            return 0;
        };
        commits
            .filter(|(_, t, _)| *t <= txn)
            .map(|(_, _, version)| version)
            .max()
            .unwrap_or(0)
    }

    /// How many versions are live.
    pub(crate) fn live_count(&self) -> usize {
        self.live_count
    }

    /// The highest version number (of data or a delete), 0 if there is
    /// none.
    pub(crate) fn last_version(&self) -> i64 {
        let data = self.versions.last().map_or(0, |v| v.version);
        let deleted = self.deletes.last().map_or(0, |d| d.version);
        data.max(deleted)
    }

    /// The deletes reads as of `version` apply (all of them for `None`).
    pub(crate) fn deletes_as_of(&self, version: Option<i64>) -> Vec<Arc<Tombstone>> {
        self.deletes
            .iter()
            .filter(|d| version.is_none_or(|v| d.version <= v))
            .cloned()
            .collect()
    }

    /// Rows over the live versions.
    pub(crate) fn row_count(&self) -> i64 {
        self.live().map(|v| v.row_count).sum()
    }

    /// Adds a version committed after every version so far. An exact
    /// duplicate of the newest row (which only a faulty rewrite of the
    /// oplog could produce) counts once; two files for one version are an
    /// error.
    fn push_version(&mut self, info: FileInfo) -> Result<()> {
        if let Some(last) = self.versions.last() {
            if info.version == last.version {
                if info.file_path == last.file_path {
                    return Ok(());
                }
                return Err(self.two_files(info.version, &last.file_path, &info.file_path));
            }
            self.unsorted |= info.version < last.version;
        }
        if !self.unsorted {
            let id = self.versions.len();
            self.intervals
                .add(info.min_event_time, info.max_event_time, id);
        }
        self.live_count += usize::from(info.is_live());
        self.versions.push(Arc::new(info));
        Ok(())
    }

    /// Marks the version at `at` superseded by the compaction `entry`.
    fn supersede(&mut self, at: usize, txn_seq: i64, created_at: i64) {
        if self.versions[at].is_live() {
            self.live_count -= 1;
            self.intervals.remove(at);
        }
        let version = self.versions.make_mut(at);
        version.superseded_at = Some(txn_seq);
        version.superseded_time = Some(created_at);
        // Only reads as of an earlier version read it now: they do without
        // skipping by its values, and the index without keeping them.
        version.values = None;
    }

    /// After a commit's rows: sorts the versions if a row came out of
    /// order, and rebuilds the interval index when it is due (amortized
    /// O(1) per commit).
    fn finish(&mut self) -> Result<()> {
        if self.unsorted {
            return self.rebuild();
        }
        if self.intervals.needs_rebuild() {
            self.intervals = self.live_intervals();
        }
        Ok(())
    }

    fn live_intervals(&self) -> LiveIntervals {
        LiveIntervals::new(
            self.versions
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_live())
                .map(|(i, v)| (v.min_event_time, v.max_event_time, i)),
        )
    }

    /// Sorts the versions, drops exact duplicates of a row and rebuilds
    /// the interval index.
    fn rebuild(&mut self) -> Result<()> {
        let mut all: Vec<Arc<FileInfo>> = self.versions.iter().cloned().collect();
        all.sort_by_key(|v| v.version);
        let mut duplicate = None;
        all.dedup_by(|b, a| {
            if a.version != b.version {
                return false;
            }
            if a.file_path != b.file_path {
                duplicate = Some((a.version, a.file_path.clone(), b.file_path.clone()));
            }
            true
        });
        if let Some((version, a, b)) = duplicate {
            return Err(self.two_files(version, &a, &b));
        }
        self.live_count = all.iter().filter(|v| v.is_live()).count();
        self.versions = Versions::from_vec(all);
        self.intervals = self.live_intervals();
        self.unsorted = false;
        Ok(())
    }

    fn two_files(&self, version: i64, a: &str, b: &str) -> Error {
        Error::invalid_oplog(
            "oplog",
            format!(
                "version {version} of {} has two files: {a} and {b}",
                self.path
            ),
        )
    }
}

/// The whole oplog, in memory, as of one Delta version.
#[derive(Debug, Clone, Default)]
pub(crate) struct OplogIndex {
    delta_version: i64,
    series: BTreeMap<String, Arc<SeriesState>>,
}

impl OplogIndex {
    /// An index of `entries`, which are all rows of the oplog at `delta_version`.
    pub(crate) fn build(entries: Vec<OplogEntry>, delta_version: i64) -> Result<Self> {
        let mut index = Self::default();
        index.apply(entries, delta_version)?;
        Ok(index)
    }

    /// The Delta version this index reflects.
    pub(crate) fn delta_version(&self) -> i64 {
        self.delta_version
    }

    /// The series at `path`.
    pub(crate) fn series(&self, path: &str) -> Option<&Arc<SeriesState>> {
        self.series.get(path)
    }

    /// Every series, by path.
    pub(crate) fn all_series(&self) -> impl Iterator<Item = &Arc<SeriesState>> {
        self.series.values()
    }

    /// Adds the rows of the commits after this index's version up to
    /// `delta_version`.
    pub(crate) fn apply(&mut self, mut entries: Vec<OplogEntry>, delta_version: i64) -> Result<()> {
        // Rows of one commit, or of a compacted file, come in any order; a
        // series' create precedes its first append within a commit.
        entries.sort_by_key(|e| (e.txn_seq, e.entry_type != EntryType::Create, e.version));
        let mut touched: Vec<String> = Vec::new();
        for entry in entries {
            self.apply_one(entry, &mut touched)?;
        }
        for path in touched {
            if let Some(series) = self.series.get_mut(&path) {
                Arc::make_mut(series).finish()?;
            }
        }
        self.delta_version = delta_version;
        Ok(())
    }

    /// The series at `path`, to change; an error if a row names a series
    /// that was never created.
    fn series_mut(&mut self, path: &str, location: &str) -> Result<&mut SeriesState> {
        let series = self.series.get_mut(path).ok_or_else(|| {
            Error::invalid_oplog(location, format!("a row for {path} before its create"))
        })?;
        Ok(Arc::make_mut(series))
    }

    fn apply_one(&mut self, entry: OplogEntry, touched: &mut Vec<String>) -> Result<()> {
        let location = format!("oplog version {}", entry.txn_seq);
        let schema = entry
            .schema
            .as_deref()
            .map(|json| {
                serde_json::from_str::<Schema>(json)
                    .map(Arc::new)
                    .map_err(|e| {
                        Error::invalid_oplog(
                            &location,
                            format!("schema of {} is not valid JSON: {e}", entry.series),
                        )
                    })
            })
            .transpose()?;
        match entry.entry_type {
            EntryType::Create => {
                if let Some(existing) = self.series.get(&entry.series) {
                    if existing.id == entry.series_id {
                        return Ok(());
                    }
                    return Err(Error::invalid_oplog(
                        location,
                        format!("series {} is created twice", entry.series),
                    ));
                }
                let schema = schema.ok_or_else(|| {
                    Error::invalid_oplog(
                        &location,
                        format!("create of {} has no schema", entry.series),
                    )
                })?;
                let key = Attributes::of(&entry).strings("key");
                let state = SeriesState {
                    path: entry.series.clone(),
                    id: entry.series_id,
                    timestamp_column: entry.timestamp_column,
                    schema,
                    created_at: entry.created_at,
                    sort_key: Vec::new(),
                    sort_bucket: 0,
                    compression: Compression::default(),
                    key,
                    deletes: Vec::new(),
                    versions: Versions::default(),
                    intervals: LiveIntervals::default(),
                    live_count: 0,
                    unsorted: false,
                };
                self.series.insert(entry.series, Arc::new(state));
            }
            EntryType::Append | EntryType::Compact => {
                let missing = |what: &str| {
                    Error::invalid_oplog(
                        &location,
                        format!(
                            "{} {} of {} has no {what}",
                            entry.entry_type, entry.version, entry.series
                        ),
                    )
                };
                let attributes = Attributes::of(&entry);
                let info = FileInfo {
                    file_path: entry
                        .file_path
                        .clone()
                        .ok_or_else(|| missing("file_path"))?,
                    version: entry.version,
                    min_event_time: entry
                        .min_event_time
                        .ok_or_else(|| missing("min_event_time"))?,
                    max_event_time: entry
                        .max_event_time
                        .ok_or_else(|| missing("max_event_time"))?,
                    timestamp_column: entry.timestamp_column.clone(),
                    size: entry.size.ok_or_else(|| missing("size"))?,
                    row_count: entry.row_count.ok_or_else(|| missing("row_count"))?,
                    content_hash: entry.content_hash.clone().unwrap_or_default(),
                    txn_seq: entry.txn_seq,
                    created_at: entry.created_at,
                    entry_type: entry.entry_type,
                    level: attributes
                        .get("level")
                        .and_then(|l| l.as_u64())
                        .map_or(0, |l| u32::try_from(l).unwrap_or(u32::MAX)),
                    superseded_at: None,
                    superseded_time: None,
                    vacuumed_at: None,
                    sort_key: attributes.sort_key(),
                    sort_bucket: attributes.sort_bucket(),
                    distinct: attributes.distinct(),
                    values: attributes.values(
                        (entry.max_event_time.zip(entry.min_event_time))
                            .and_then(|(max, min)| max.checked_sub(min)),
                    ),
                    precedence: attributes
                        .get("precedence")
                        .and_then(|p| p.as_i64())
                        .unwrap_or(entry.version),
                    deletes_applied: attributes
                        .get("deletes_applied")
                        .and_then(|p| p.as_i64())
                        .unwrap_or(0),
                };
                let series = self.series_mut(&entry.series, &location)?;
                if let Some(schema) = schema {
                    series.schema = schema;
                }
                series.push_version(info)?;
                if !touched.contains(&entry.series) {
                    touched.push(entry.series);
                }
            }
            EntryType::Configure => {
                let attributes = Attributes::of(&entry);
                let series = self.series_mut(&entry.series, &location)?;
                series.sort_key = attributes.sort_key();
                series.sort_bucket = attributes.sort_bucket();
                // A row without it (an older build's) leaves it as it was.
                if let Some(compression) = attributes.compression() {
                    series.compression = compression;
                }
            }
            EntryType::Delete => {
                let predicate = Attributes::of(&entry)
                    .get("where")
                    .and_then(|w| w.as_str())
                    .map(str::to_string);
                let tombstone = Tombstone {
                    version: entry.version,
                    txn_seq: entry.txn_seq,
                    created_at: entry.created_at,
                    min_event_time: entry.min_event_time.unwrap_or(crate::MIN_TIME),
                    max_event_time: entry.max_event_time.unwrap_or(crate::MAX_TIME),
                    predicate,
                };
                let series = self.series_mut(&entry.series, &location)?;
                if series
                    .deletes
                    .iter()
                    .all(|d| d.version != tombstone.version)
                {
                    series.deletes.push(Arc::new(tombstone));
                    series.deletes.sort_by_key(|d| d.version);
                }
            }
            EntryType::Supersede | EntryType::Vacuum => {
                let series = self.series_mut(&entry.series, &location)?;
                // Versions are pushed in commit order, and a compaction or
                // vacuum names versions committed before it.
                if series.unsorted {
                    series.rebuild()?;
                }
                let Some(at) = series.versions.find(entry.version) else {
                    return Err(Error::invalid_oplog(
                        location,
                        format!(
                            "{} of version {} of {}, which does not exist",
                            entry.entry_type, entry.version, entry.series
                        ),
                    ));
                };
                if entry.entry_type == EntryType::Supersede {
                    series.supersede(at, entry.txn_seq, entry.created_at);
                } else {
                    series.versions.make_mut(at).vacuumed_at = Some(entry.txn_seq);
                }
                if !touched.contains(&entry.series) {
                    touched.push(entry.series);
                }
            }
        }
        Ok(())
    }
}

/// A row's `extended_attributes`, parsed once but for its `values`: an
/// `append` row's are hundreds of strings, which opening a pond does not
/// parse (see [`RecordedValues`]).
#[derive(Default)]
struct Attributes<'a> {
    parsed: serde_json::Map<String, serde_json::Value>,
    /// The whole text, if it holds `values`.
    with_values: Option<&'a str>,
}

impl<'a> Attributes<'a> {
    fn of(entry: &'a OplogEntry) -> Self {
        let Some(json) = entry.extended_attributes.as_deref() else {
            return Self::default();
        };
        let Ok(WithoutValues { parsed, values }) = serde_json::from_str(json) else {
            return Self::default();
        };
        Self {
            parsed,
            with_values: values.then_some(json),
        }
    }

    fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.parsed.get(name)
    }

    /// The `sort_key` a `compact` or `configure` row records (empty: time
    /// order), without the [`BUCKET_MARKER`] of a bucketed one.
    fn sort_key(&self) -> Vec<String> {
        let mut key = self.strings("sort_key");
        if key.first().is_some_and(|c| c == BUCKET_MARKER) {
            key.remove(0);
        }
        key
    }

    /// The `sort_bucket` a `compact` or `configure` row records, µs (0 if
    /// absent: rows before it were sorted by the key over the whole file).
    fn sort_bucket(&self) -> i64 {
        self.get("sort_bucket")
            .and_then(|b| b.as_i64())
            .unwrap_or(0)
    }

    /// The `compression` a `configure` row records, if it records one this
    /// build knows: rows of older builds record none (a series starts with
    /// zstd, which was all there was), a newer build's codec is left to
    /// builds that know it.
    fn compression(&self) -> Option<Compression> {
        self.get("compression")
            .and_then(|c| c.as_str())
            .and_then(|c| c.parse().ok())
    }

    /// A list of names (empty if absent).
    fn strings(&self, name: &str) -> Vec<String> {
        self.get(name)
            .and_then(|key| serde_json::from_value(key.clone()).ok())
            .unwrap_or_default()
    }

    /// The `values` an `append` or `compact` row records, unparsed, of a
    /// version whose times span `span` µs (`None`: beyond `i64`).
    fn values(&self, span: Option<i64>) -> Option<Arc<RecordedValues>> {
        Some(Arc::new(RecordedValues {
            json: self.with_values?.into(),
            span,
            parsed: OnceLock::new(),
        }))
    }

    /// The `distinct` counts an `append` or `compact` row records, as
    /// `{"column": count}`.
    fn distinct(&self) -> Vec<(String, u64)> {
        let Some(serde_json::Value::Object(counts)) = self.get("distinct") else {
            return Vec::new();
        };
        counts
            .iter()
            .filter_map(|(name, n)| Some((name.clone(), n.as_u64()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, TimeUnit};

    #[test]
    fn value_times_beyond_the_versions_bounds_are_not_read() {
        let attributes = |first: i64, last: i64| {
            serde_json::json!({
                "values": { "host": ["a", "b"] },
                "value_times": { "host": { "first": [0, first], "last": [last, 0] } },
            })
        };
        let read = |first, last, span| {
            let values = RecordedValues::from_attributes(&attributes(first, last), span);
            values.with_times("host").unwrap().times.clone()
        };
        assert_eq!(read(7, 10, 10), Some((vec![0, 7], vec![10, 0])));
        // An offset past the span, or negative: the values alone.
        assert_eq!(read(11, 10, 10), None);
        assert_eq!(read(0, -1, 10), None);
        let values = RecordedValues {
            span: None,
            ..RecordedValues::from_attributes(&attributes(1, 1), 10)
        };
        assert_eq!(values.with_times("host").unwrap().times, None);
        assert!(values.of("host").is_some());
    }

    fn schema_json() -> String {
        let schema = Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        )]);
        serde_json::to_string(&schema).unwrap()
    }

    fn entry(kind: EntryType, version: i64, min: i64, max: i64, txn: i64) -> OplogEntry {
        OplogEntry {
            series: "/s".into(),
            series_id: "id".into(),
            version,
            entry_type: kind,
            file_path: Some(format!("data/id/{version}.parquet")),
            size: Some(1),
            row_count: Some(1),
            min_event_time: Some(min),
            max_event_time: Some(max),
            timestamp_column: "ts".into(),
            schema: (kind == EntryType::Create).then(schema_json),
            content_hash: None,
            txn_seq: txn,
            created_at: 0,
            extended_attributes: None,
        }
    }

    #[test]
    fn applies_entries_in_commit_order_whatever_their_file_order() {
        let entries = vec![
            entry(EntryType::Append, 2, 50, 60, 2),
            entry(EntryType::Append, 1, 0, 10, 1),
            entry(EntryType::Create, 0, 0, 0, 1),
        ];
        let index = OplogIndex::build(entries, 2).unwrap();
        let s = index.series("/s").unwrap();
        assert_eq!(s.last_version(), 2);
        let hits: Vec<i64> = s.overlapping(5, 55).iter().map(|f| f.version).collect();
        assert_eq!(hits, vec![1, 2]);
        let hits: Vec<i64> = s.overlapping(11, 50).iter().map(|f| f.version).collect();
        assert!(hits.is_empty());
    }

    #[test]
    fn identical_rows_count_once_and_conflicting_rows_are_an_error() {
        let append = entry(EntryType::Append, 1, 0, 10, 1);
        let entries = vec![
            entry(EntryType::Create, 0, 0, 0, 1),
            append.clone(),
            append.clone(),
        ];
        let index = OplogIndex::build(entries, 1).unwrap();
        assert_eq!(index.series("/s").unwrap().versions.len(), 1);

        let mut other = append.clone();
        other.file_path = Some("data/id/other.parquet".into());
        let entries = vec![entry(EntryType::Create, 0, 0, 0, 1), append, other];
        let err = OplogIndex::build(entries, 1).unwrap_err().to_string();
        assert!(err.contains("two files"), "{err}");
    }

    /// A `configure` row of an older build (a sort key, no codec) keeps the
    /// codec a newer one declared; one with a codec this build does not
    /// know changes nothing either.
    #[test]
    fn a_configure_row_without_a_codec_keeps_the_series_codec() {
        let configure = |txn: i64, attributes: serde_json::Value| OplogEntry {
            file_path: None,
            extended_attributes: Some(attributes.to_string()),
            ..entry(EntryType::Configure, 0, 0, 0, txn)
        };
        let codec = |entries: Vec<OplogEntry>| {
            let s = OplogIndex::build(entries, 9).unwrap();
            let s = s.series("/s").unwrap();
            (s.compression, s.sort_key.clone())
        };
        let lz4 = serde_json::json!({"sort_key": [], "sort_bucket": 0, "compression": "lz4"});
        let older = serde_json::json!({"sort_key": ["host", "ts"], "sort_bucket": 0});
        let newer = serde_json::json!({"sort_key": [], "sort_bucket": 0, "compression": "brotli"});
        let key = vec!["host".to_string(), "ts".to_string()];
        assert_eq!(
            codec(vec![entry(EntryType::Create, 0, 0, 0, 1)]),
            (Compression::Zstd, vec![])
        );
        assert_eq!(
            codec(vec![
                entry(EntryType::Create, 0, 0, 0, 1),
                configure(2, lz4.clone()),
                configure(3, older),
            ]),
            (Compression::Lz4, key)
        );
        assert_eq!(
            codec(vec![
                entry(EntryType::Create, 0, 0, 0, 1),
                configure(2, lz4),
                configure(3, newer),
            ]),
            (Compression::Lz4, vec![])
        );
    }

    #[test]
    fn append_without_create_is_invalid() {
        let err = OplogIndex::build(vec![entry(EntryType::Append, 1, 0, 1, 1)], 1).unwrap_err();
        assert!(err.to_string().contains("before its create"), "{err}");
    }

    #[test]
    fn compaction_supersedes_versions_for_reads_now_not_as_of_before() {
        let mut compact = entry(EntryType::Compact, 3, 0, 60, 3);
        compact.file_path = Some("data/id/3.parquet".into());
        let supersede = |v| OplogEntry {
            file_path: Some(format!("data/id/{v}.parquet")),
            ..entry(EntryType::Supersede, v, 0, 0, 3)
        };
        let entries = vec![
            entry(EntryType::Create, 0, 0, 0, 1),
            entry(EntryType::Append, 1, 0, 10, 1),
            entry(EntryType::Append, 2, 50, 60, 2),
            compact,
            supersede(1),
            supersede(2),
            entry(EntryType::Append, 4, 70, 80, 4),
        ];
        let index = OplogIndex::build(entries, 4).unwrap();
        let s = index.series("/s").unwrap();
        let live: Vec<i64> = s.live().map(|v| v.version).collect();
        assert_eq!(live, [3, 4]);
        let hits: Vec<i64> = s.overlapping(5, 55).iter().map(|f| f.version).collect();
        assert_eq!(hits, [3], "the index holds live versions only");
        let as_of = |v| -> Vec<i64> { s.as_of(v).iter().map(|f| f.version).collect() };
        assert_eq!(as_of(2), [1, 2], "before the compaction");
        assert_eq!(as_of(3), [3]);
        assert_eq!(as_of(4), [3, 4]);
        assert_eq!(as_of(9), [3, 4], "past the newest: the live versions");
        assert!(as_of(0).is_empty());
        assert_eq!(s.last_version(), 4);
    }

    #[test]
    fn as_of_a_time_is_the_newest_commit_made_by_then() {
        // Commit 2's writer had a clock behind: as of a time between its
        // row's and commit 1's, the series is as commit 2 left it (which
        // holds commit 1's version too), never commit 2 without commit 1.
        let at = |mut e: OplogEntry, t| {
            e.created_at = t;
            e
        };
        let entries = vec![
            at(entry(EntryType::Create, 0, 0, 0, 1), 100),
            at(entry(EntryType::Append, 1, 0, 10, 1), 100),
            at(entry(EntryType::Append, 2, 20, 30, 2), 50),
            at(entry(EntryType::Append, 3, 40, 50, 3), 200),
        ];
        let index = OplogIndex::build(entries, 3).unwrap();
        let s = index.series("/s").unwrap();
        assert_eq!(s.version_at(10), 0, "before every commit");
        assert_eq!(s.version_at(60), 2);
        assert_eq!(s.version_at(150), 2);
        assert_eq!(s.version_at(200), 3);
        assert_eq!(s.version_at(i64::MAX), 3);
    }

    #[test]
    fn as_of_one_new_version_of_a_compaction_holds_all_of_them() {
        let output = |v, min, max| OplogEntry {
            file_path: Some(format!("data/id/{v}.parquet")),
            ..entry(EntryType::Compact, v, min, max, 3)
        };
        let entries = vec![
            entry(EntryType::Create, 0, 0, 0, 1),
            entry(EntryType::Append, 1, 0, 10, 1),
            entry(EntryType::Append, 2, 50, 60, 2),
            output(3, 0, 10),
            output(4, 50, 60),
            entry(EntryType::Supersede, 1, 0, 0, 3),
            entry(EntryType::Supersede, 2, 0, 0, 3),
        ];
        let index = OplogIndex::build(entries, 3).unwrap();
        let s = index.series("/s").unwrap();
        let as_of = |v| -> Vec<i64> { s.as_of(v).iter().map(|f| f.version).collect() };
        assert_eq!(as_of(3), [3, 4]);
        assert_eq!(as_of(2), [1, 2]);
    }

    #[test]
    fn superseding_an_unknown_version_is_invalid() {
        let entries = vec![
            entry(EntryType::Create, 0, 0, 0, 1),
            entry(EntryType::Supersede, 7, 0, 0, 2),
        ];
        let err = OplogIndex::build(entries, 2).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
