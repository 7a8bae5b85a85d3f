//! Compaction: many small versions of a series rewritten as few large ones,
//! committed as one oplog transaction.
//!
//! A compaction reads a group of live versions (streaming, version by
//! version, in the series' current schema), writes their rows as one new
//! version sorted by time (DataFusion's spilling sort only if the inputs
//! overlap in time), and commits, in one Delta version, a `compact` row for
//! each new version and a `supersede` row for each input. From that commit
//! on, reads plan over the new versions; reads as of an earlier version see
//! the inputs, whose files stay until `vacuum` removes them.
//!
//! Safety, by the same protocol as appends: the new files are invisible
//! until the commit; a commit that loses to another writer re-reads the log,
//! checks that every input is still live (an append does not change that,
//! another compaction of the same versions does: then this one gives up and
//! deletes its files) and renumbers; a crash leaves unreferenced files,
//! which `check` reports and `vacuum` deletes. A compaction that writes for
//! longer than half of `PondOptions::commit_within` commits what it has
//! written so far, so that no file of it waits long enough for a vacuum to
//! take it for garbage; each such step is a transaction of its own.

use std::sync::Arc;

use object_store::ObjectStoreExt;

use super::Pond;
use super::append::{backoff, create_entry, data_file_path};
use crate::error::{Error, Result};
use crate::index::{FileInfo, OplogIndex, SeriesState, recorded_sort_key};
use crate::oplog::{CommitOutcome, EntryType, OplogEntry};
use crate::path::validate_series_path;
use crate::series::SchemaInfo;
use crate::series::SeriesStream;
use crate::series::writer::{WrittenFile, remove_quietly, write_data_file};
use crate::time::{MAX_TIME, MIN_TIME, now_micros};

/// Settings of a compaction. The defaults suit most uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactOptions {
    /// The size an output file aims at. Versions of at least half of it are
    /// left as they are.
    pub target_file_bytes: i64,
    /// At most this many bytes of input per call, to bound one call's work
    /// (at least one group is always compacted).
    pub max_input_bytes: i64,
    /// The time window of an output file, in µs, aligned to the Unix epoch
    /// (UTC): a group of versions is cut where a version starts a new
    /// window, so that a query over an hour of a year opens the files of
    /// one window, however the files are sorted inside. Only once the group
    /// holds an eighth of the target, though: a series with less data per
    /// window grows its files across windows. A group is never cut between
    /// versions that overlap in time, so a file reaches past its window
    /// where a version does. 0 (or less) for no windows.
    pub window_micros: i64,
}

/// The default [`CompactOptions::window_micros`]: one day.
const DEFAULT_WINDOW: i64 = 86_400_000_000;

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 * 1024 * 1024,
            max_input_bytes: i64::MAX,
            window_micros: DEFAULT_WINDOW,
        }
    }
}

impl CompactOptions {
    /// Sets [`Self::target_file_bytes`].
    pub fn with_target_file_bytes(mut self, bytes: i64) -> Self {
        self.target_file_bytes = bytes.max(1);
        self
    }

    /// Sets [`Self::max_input_bytes`].
    pub fn with_max_input_bytes(mut self, bytes: i64) -> Self {
        self.max_input_bytes = bytes.max(1);
        self
    }

    /// Sets [`Self::window_micros`].
    pub fn with_window_micros(mut self, micros: i64) -> Self {
        self.window_micros = micros;
        self
    }

    /// The bytes a group must hold before the start of a new window cuts
    /// it: an eighth of the target. A series with less than that per window
    /// (a reading a minute, a daily upload) grows its files across windows
    /// instead of keeping one small file per window forever.
    fn window_bytes(&self) -> i64 {
        (self.target_file_bytes / 8).max(1)
    }

    /// The window `t` falls in.
    fn window_of(&self, t: i64) -> i64 {
        if self.window_micros > 0 {
            t.div_euclid(self.window_micros)
        } else {
            0
        }
    }
}

/// What a compaction of one series did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactOutcome {
    /// The series path.
    pub series: String,
    /// Versions read and superseded.
    pub versions_read: usize,
    /// New versions written.
    pub versions_written: usize,
    /// Bytes of the versions read.
    pub bytes_read: i64,
    /// Bytes of the versions written.
    pub bytes_written: i64,
    /// The oplog version of the commit (of the last one, for a compaction
    /// long enough to commit in steps: see
    /// [`PondOptions::commit_within`](super::PondOptions::commit_within));
    /// `None` if there was nothing to do.
    pub txn_seq: Option<i64>,
}

/// What compacting one series came to, in [`Pond::compact_every_series`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SeriesCompaction {
    /// Compacted, or nothing to compact (`versions_read == 0`).
    Done(CompactOutcome),
    /// Another compaction of it landed first, and stands; no failure.
    Skipped,
    /// It failed; the other series were compacted all the same.
    Failed(Error),
}

/// Whether `v` is under half of `target`: a version compaction rewrites.
fn is_small(v: &FileInfo, target: i64) -> bool {
    v.size.saturating_mul(2) < target
}

/// The versions under half of `target`, which compaction rewrites, in
/// order of their earliest time.
fn small_versions<'a>(live: &[&'a FileInfo], target: i64) -> Vec<&'a FileInfo> {
    let mut small: Vec<&FileInfo> = live
        .iter()
        .copied()
        .filter(|v| is_small(v, target))
        .collect();
    small.sort_by_key(|v| (v.min_event_time, v.max_event_time, v.version));
    small
}

/// Groups of live versions to rewrite, each into one new version: small
/// versions (under half the target) in order of their earliest time, cut
/// into groups of about `target` bytes and at the start of each time
/// window (once a group holds an eighth of the target), but never between
/// versions that overlap in time, so that the new versions are disjoint in
/// time wherever the groups are. Groups of one version gain nothing and
/// are left out; after `max_input` bytes no further group is started.
pub(crate) fn plan_groups(live: &[&FileInfo], options: &CompactOptions) -> Vec<Vec<FileInfo>> {
    plan_groups_with_deletes(live, options, |_| false)
}

/// [`plan_groups`], where a version `deleted` says deletes apply to is
/// rewritten whatever its size, alone if it has no group, so that the
/// rows the deletes hide leave the disk.
pub(crate) fn plan_groups_with_deletes(
    live: &[&FileInfo],
    options: &CompactOptions,
    deleted: impl Fn(&FileInfo) -> bool,
) -> Vec<Vec<FileInfo>> {
    let target = options.target_file_bytes.max(1);
    let small = small_versions(live, target);
    let mut groups: Vec<Vec<FileInfo>> = Vec::new();
    let mut current: Vec<FileInfo> = Vec::new();
    let (mut bytes, mut latest) = (0i64, i64::MIN);
    let mut windows = Windows::new(options);
    for v in small {
        let overlaps = !current.is_empty() && v.min_event_time <= latest;
        let full = !overlaps && bytes.saturating_add(v.size) > target;
        let new_window = windows.cut_before(v, bytes, overlaps);
        if !current.is_empty() && (full || new_window) {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
            windows.restart(v);
        }
        bytes = bytes.saturating_add(v.size);
        latest = if current.is_empty() {
            v.max_event_time
        } else {
            latest.max(v.max_event_time)
        };
        current.push(v.clone());
    }
    groups.push(current);
    let large = live
        .iter()
        .filter(|v| !is_small(v, target) && deleted(v))
        .map(|v| vec![(*v).clone()]);
    groups.extend(large);
    let mut input = 0i64;
    groups
        .into_iter()
        .filter(|g| g.len() >= 2 || g.iter().any(&deleted))
        .take_while(|g| {
            let started = input < options.max_input_bytes;
            input = input.saturating_add(g.iter().map(|v| v.size).sum());
            started
        })
        .collect()
}

/// The group an automatic compaction after an append rewrites, if any.
/// The small live versions are cut into segments as [`plan_groups`] cuts
/// at time windows (see [`segments`]). First, size-tiered: the `k`
/// earliest of the lowest level that has `k` of them in one segment, with
/// later ones of that level that overlap them. Appends are level 0 and a
/// compaction's output is one level above its inputs, so each row is
/// rewritten about log_k(versions) times (as in an LSM tree) rather than at
/// every compaction. Otherwise, the earliest closed segment (every one but
/// the last) whose small versions can be merged (see [`finishing`]) is
/// rewritten as one file (its first group of about the target size), so
/// that a finished day ends as one or two files.
pub(crate) fn plan_auto(
    live: &[&FileInfo],
    k: usize,
    options: &CompactOptions,
) -> Option<Vec<FileInfo>> {
    if k < 2 {
        return None;
    }
    let small = small_versions(live, options.target_file_bytes.max(1));
    let segments = segments(&small, options);
    let top = small.iter().map(|v| v.level).max()?;
    let tiered = (0..=top).find_map(|level| {
        segments.iter().find_map(|segment| {
            let at_level: Vec<&FileInfo> = segment
                .iter()
                .copied()
                .filter(|v| v.level == level)
                .collect();
            if at_level.len() < k {
                return None;
            }
            let mut latest = at_level[..k].iter().map(|v| v.max_event_time).max()?;
            let mut group: Vec<FileInfo> = at_level[..k].iter().map(|v| (*v).clone()).collect();
            for v in &at_level[k..] {
                if v.min_event_time > latest {
                    break;
                }
                latest = latest.max(v.max_event_time);
                group.push((*v).clone());
            }
            Some(group)
        })
    });
    if tiered.is_some() {
        return tiered;
    }
    // Every segment but the last is closed.
    let (_open, closed) = segments.split_last()?;
    closed
        .iter()
        .find_map(|segment| plan_groups(&finishing(segment), options).into_iter().next())
}

/// `small` (ordered by earliest time) cut as [`plan_groups`] cuts at
/// windows: where a version starts a new window, once the part before holds
/// [`CompactOptions::window_bytes`] and the version overlaps none of it.
fn segments<'a, 'b>(
    small: &'b [&'a FileInfo],
    options: &CompactOptions,
) -> Vec<&'b [&'a FileInfo]> {
    let mut segments = Vec::new();
    let (mut start, mut bytes, mut latest) = (0, 0i64, i64::MIN);
    let mut windows = Windows::new(options);
    for (i, v) in small.iter().enumerate() {
        let overlaps = i > start && v.min_event_time <= latest;
        if windows.cut_before(v, bytes, overlaps) && i > start {
            segments.push(&small[start..i]);
            (start, bytes, latest) = (i, 0, i64::MIN);
        }
        bytes = bytes.saturating_add(v.size);
        latest = latest.max(v.max_event_time);
    }
    if start < small.len() {
        segments.push(&small[start..]);
    }
    segments
}

/// Where a run of versions, in order of their earliest time, is cut at
/// time windows: where a version starts a later window than the run's,
/// once the run holds [`CompactOptions::window_bytes`], and not before a
/// version that overlaps the run (then at the first after it that does
/// not). A run too small to cut where it crosses into a window belongs to
/// that window from then on, so that cuts fall on window boundaries, never
/// where a run happens to grow past the threshold.
struct Windows<'o> {
    options: &'o CompactOptions,
    /// The window the run belongs to.
    anchor: Option<i64>,
}

impl<'o> Windows<'o> {
    fn new(options: &'o CompactOptions) -> Self {
        Self {
            options,
            anchor: None,
        }
    }

    /// Whether to cut the run of `bytes` before `v`, which `overlaps` it
    /// or not.
    fn cut_before(&mut self, v: &FileInfo, bytes: i64, overlaps: bool) -> bool {
        let window = self.options.window_of(v.min_event_time);
        let anchor = *self.anchor.get_or_insert(window);
        let big = bytes >= self.options.window_bytes();
        if window == anchor || (overlaps && big) {
            return false;
        }
        self.anchor = Some(window);
        !overlaps && big
    }

    /// A new run starts with `v`.
    fn restart(&mut self, v: &FileInfo) {
        self.anchor = Some(self.options.window_of(v.min_event_time));
    }
}

/// Which of a closed window's small versions to rewrite: all of them if
/// the others together are at least as large as the largest, else all but
/// the largest. Rows that arrive late for a finished day are thus merged
/// among themselves, and the day's file is rewritten only once they weigh
/// as much as it does, not at every late append (which would rewrite up to
/// half the target per append).
fn finishing<'a>(window: &[&'a FileInfo]) -> Vec<&'a FileInfo> {
    let Some(largest) = window.iter().max_by_key(|v| (v.size, v.version)) else {
        return Vec::new();
    };
    let others: i64 = window.iter().map(|v| v.size).sum::<i64>() - largest.size;
    window
        .iter()
        .copied()
        .filter(|v| others >= largest.size || !std::ptr::eq(*v, *largest))
        .collect()
}

/// A new version written and not yet committed.
struct Output {
    inputs: Vec<FileInfo>,
    /// `None` when deletes left no row of the inputs: they are superseded
    /// by nothing.
    file: Option<WrittenFile>,
    version: i64,
    uuid: String,
    /// One more than the highest level among the inputs.
    level: u32,
    /// The highest precedence among the inputs.
    precedence: i64,
    /// The newest delete the rows were read through.
    deletes_applied: i64,
    /// The key the file was sorted by: the series' key when it was planned,
    /// whatever the key is by the time it commits.
    sort_key: Vec<String>,
    /// And the time buckets it clustered by the key within.
    sort_bucket: i64,
    /// When the file was written: see [`Pond::check_fresh`].
    written: super::Written,
}

/// The time buckets [`Pond::set_sort_key`] clusters rows by the key within:
/// an hour, µs.
pub const DEFAULT_SORT_BUCKET: i64 = 3_600_000_000;

/// How the data files of a series are compressed: Parquet's codec, for
/// every column. A series declares it with [`Pond::set_compression`]; the
/// files written from then on (appends and compactions) use it, those
/// written before keep theirs. Reads do not depend on it: each file names
/// its own codec.
///
/// zstd, the default, makes the smallest files. LZ4 reads faster for
/// larger files: on the devops benchmark's compacted days
/// (`docs/BENCHMARKS.md`), 1.30× the size and 0.74–0.99× the time of its
/// queries. A file whose writing started before a declaration commits
/// keeps the codec it started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// zstd at level 1 (Parquet's `ZSTD`).
    #[default]
    Zstd,
    /// LZ4 without framing (Parquet's `LZ4_RAW`).
    Lz4,
    /// Snappy, which every Parquet reader knows.
    Snappy,
    /// No compression.
    None,
}

impl Compression {
    /// Every codec, in the order `pond compact --help` lists them.
    pub const ALL: [Self; 4] = [Self::Zstd, Self::Lz4, Self::Snappy, Self::None];

    /// The name the oplog and the command line use: `zstd`, `lz4`,
    /// `snappy` or `none`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Lz4 => "lz4",
            Self::Snappy => "snappy",
            Self::None => "none",
        }
    }

    /// The codec as the Parquet writer takes it.
    pub(crate) fn parquet(self) -> parquet::basic::Compression {
        use parquet::basic::{Compression as Codec, ZstdLevel};
        match self {
            Self::Zstd => Codec::ZSTD(ZstdLevel::default()),
            Self::Lz4 => Codec::LZ4_RAW,
            Self::Snappy => Codec::SNAPPY,
            Self::None => Codec::UNCOMPRESSED,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown compression {text:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl Pond {
    /// Compacts one series with [`CompactOptions::default`]: see
    /// [`Pond::compact_with_options`].
    pub async fn compact(&self, path: &str) -> Result<CompactOutcome> {
        self.compact_with_options(path, &CompactOptions::default())
            .await
    }

    /// Compacts every series in turn with `options` (`pond compact`
    /// without a series), as the oplog lists them after a refresh, and
    /// hands each one's result to `each` as it goes. A series that fails
    /// does not hold up the rest, and one another compaction took first is
    /// skipped. Returns every series' result in that order; an error only
    /// if the series cannot be listed.
    pub async fn compact_every_series(
        &self,
        options: &CompactOptions,
        mut each: impl FnMut(&str, &SeriesCompaction),
    ) -> Result<Vec<(String, SeriesCompaction)>> {
        self.refresh().await?;
        let mut results = Vec::new();
        for path in self.series_paths() {
            let result = match self.compact_with_options(&path, options).await {
                Ok(done) => SeriesCompaction::Done(done),
                Err(Error::CompactionConflict { .. }) => SeriesCompaction::Skipped,
                Err(e) => SeriesCompaction::Failed(e),
            };
            each(&path, &result);
            results.push((path, result));
        }
        Ok(results)
    }

    /// Rewrites the small live versions of the series at `path` into few
    /// large ones (see [`CompactOptions`]) and commits them in one oplog
    /// transaction that supersedes the inputs (in several, each of the files
    /// written so far, if writing takes longer than half of
    /// [`PondOptions::commit_within`](super::PondOptions::commit_within):
    /// an error after some of them then leaves those in place). Reads
    /// answer the same before
    /// and after. Fails with [`Error::CompactionConflict`], changing nothing,
    /// if another compaction of the same versions lands first.
    pub async fn compact_with_options(
        &self,
        path: &str,
        options: &CompactOptions,
    ) -> Result<CompactOutcome> {
        validate_series_path(path)?;
        self.refresh().await?;
        let state = self.state(path)?;
        let live: Vec<&FileInfo> = state.live().map(Arc::as_ref).collect();
        // Versions under deletes are rewritten whatever their size: the
        // rows the deletes hide leave the disk (and vacuum can take the
        // old file), and reads no longer merge them.
        let deleted = |v: &FileInfo| state.deletes.iter().any(|d| d.applies_to(v));
        let groups = plan_groups_with_deletes(&live, options, deleted);
        self.rewrite(&state, groups).await
    }

    /// Declares the order compaction writes the files of the series at
    /// `path` in: [`Pond::set_sort_key_with_bucket`] with hour buckets
    /// ([`DEFAULT_SORT_BUCKET`]), or with the series' buckets as they are if
    /// `columns` is its sort key already (declaring a key again changes
    /// nothing).
    pub async fn set_sort_key(&self, path: &str, columns: &[&str]) -> Result<()> {
        self.declare_sort_key(path, columns, None).await
    }

    /// Declares the order compaction writes the files of the series at
    /// `path` in: by `columns`, then by the time column (added at the end if
    /// absent; it may only come last), within time buckets of
    /// `bucket_micros` (0: over the whole file). Clustering rows by the
    /// columns queries filter on (a host, a sensor) lets the Parquet scan
    /// skip row groups and pages by them too; the buckets keep the rows of
    /// one stretch of time together, so that queries over the newest
    /// minutes of every key read one bucket, not a page of every key. Only
    /// files sorted over the whole file tell DataFusion their order (an
    /// `ORDER BY` the key is then a merge, not a sort). Appends stay sorted
    /// by time; files compacted before keep their order. An empty key, or
    /// the time column alone, returns to time order.
    pub async fn set_sort_key_with_bucket(
        &self,
        path: &str,
        columns: &[&str],
        bucket_micros: i64,
    ) -> Result<()> {
        self.declare_sort_key(path, columns, Some(bucket_micros))
            .await
    }

    /// Commits a `configure` row with the sort key `columns` and the time
    /// buckets `bucket_micros` (`None`: the series' own if the key is
    /// unchanged, else [`DEFAULT_SORT_BUCKET`]), unless they are the
    /// series' already.
    async fn declare_sort_key(
        &self,
        path: &str,
        columns: &[&str],
        bucket_micros: Option<i64>,
    ) -> Result<()> {
        validate_series_path(path)?;
        if let Some(bucket) = bucket_micros.filter(|b| *b < 0) {
            return Err(Error::invalid_setting(
                path,
                format!("a sort key's time bucket cannot be negative ({bucket} µs)"),
            ));
        }
        self.commit_one_row(path, |index, txn_seq| {
            let state = index.series(path).ok_or_else(|| Error::UnknownSeries {
                path: path.to_string(),
            })?;
            let key = sort_key(state, columns)?;
            let bucket = match bucket_micros {
                _ if key.is_empty() => 0,
                Some(bucket) => bucket,
                None if key == state.sort_key => state.sort_bucket,
                None => DEFAULT_SORT_BUCKET,
            };
            if key == state.sort_key && bucket == state.sort_bucket {
                return Ok(None);
            }
            Ok(Some(configure_entry(
                state,
                &key,
                bucket,
                state.compression,
                txn_seq,
            )))
        })
        .await
    }

    /// Declares how the data files of the series at `path` are compressed
    /// from now on: the files of later appends and compactions. Files
    /// written before keep their codec (a compaction rewrites only versions
    /// under half its target size). Declaring the series' codec again
    /// changes nothing.
    pub async fn set_compression(&self, path: &str, compression: Compression) -> Result<()> {
        validate_series_path(path)?;
        self.commit_one_row(path, |index, txn_seq| {
            let state = index.series(path).ok_or_else(|| Error::UnknownSeries {
                path: path.to_string(),
            })?;
            if state.compression == compression {
                return Ok(None);
            }
            Ok(Some(configure_entry(
                state,
                &state.sort_key,
                state.sort_bucket,
                compression,
                txn_seq,
            )))
        })
        .await
    }

    /// After an append to `path`: compacts the lowest level that has
    /// [`PondOptions::auto_compact_versions`](super::PondOptions::auto_compact_versions)
    /// small versions (see `plan_auto`). Best effort: the append has landed
    /// whatever happens here, and losing to another compaction is normal.
    pub(crate) async fn auto_compact(&self, path: &str) {
        let k = self.options.auto_compact_versions;
        let Ok(state) = self.state(path) else {
            return;
        };
        let live: Vec<&FileInfo> = state.live().map(Arc::as_ref).collect();
        let Some(group) = plan_auto(&live, k, &self.options.auto_compact_options) else {
            return;
        };
        match self.rewrite(&state, vec![group]).await {
            Ok(_) | Err(Error::CompactionConflict { .. }) => {}
            Err(e) => tracing::warn!(series = path, error = %e, "automatic compaction failed"),
        }
    }

    /// Writes each group as one new version and commits them: all in one
    /// commit, unless writing them takes longer than half of
    /// `commit_within`, then in steps, each of the groups written so far.
    /// An error after a step has landed leaves that step in place (reads
    /// answer the same either way) and is returned.
    async fn rewrite(
        &self,
        state: &SeriesState,
        groups: Vec<Vec<FileInfo>>,
    ) -> Result<CompactOutcome> {
        let mut outcome = CompactOutcome {
            series: state.path.clone(),
            ..CompactOutcome::default()
        };
        let groups = if state.key.is_empty() {
            groups
        } else {
            keyed_groups(state, groups)
        };
        if groups.is_empty() {
            return Ok(outcome);
        }
        let mut outputs: Vec<Output> = Vec::new();
        let mut next = state.last_version() + 1;
        let total = groups.len();
        let step_after = (self.options.commit_step_after).unwrap_or(self.options.commit_within / 2);
        // The longest a group took to write: the next may take as long.
        let mut longest = std::time::Duration::ZERO;
        for (i, inputs) in groups.into_iter().enumerate() {
            let began = std::time::Instant::now();
            let written = self.write_group(state, inputs, next).await;
            longest = longest.max(began.elapsed());
            match written {
                Ok(output) if output.file.is_some() => {
                    next += 1;
                    outputs.push(output);
                }
                Ok(output) => outputs.push(output),
                Err(e) => {
                    self.remove_outputs(&outputs).await;
                    return Err(e);
                }
            }
            // A long compaction commits in steps, each before its oldest
            // file could be taken for garbage by a vacuum (see
            // `PondOptions::commit_within`): now, if writing one more group
            // could take it past half that age.
            let due = outputs
                .first()
                .is_some_and(|o| o.written.age() + longest >= step_after);
            if due || i + 1 == total {
                let committed = std::mem::take(&mut outputs);
                match self.commit_step(&state.path, committed, &mut outcome).await {
                    Ok(()) => {}
                    // Another compaction took the rest: what landed stands.
                    Err(Error::CompactionConflict { .. }) if outcome.txn_seq.is_some() => {
                        return Ok(outcome);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(outcome)
    }

    /// Commits `outputs` and counts them in `outcome`.
    async fn commit_step(
        &self,
        path: &str,
        mut outputs: Vec<Output>,
        outcome: &mut CompactOutcome,
    ) -> Result<()> {
        let txn_seq = self.commit_compaction(path, &mut outputs).await?;
        for o in &outputs {
            outcome.versions_read += o.inputs.len();
            outcome.bytes_read += o.inputs.iter().map(|v| v.size).sum::<i64>();
            outcome.bytes_written += o.file.as_ref().map_or(0, |f| f.size);
        }
        outcome.versions_written += outputs.iter().filter(|o| o.file.is_some()).count();
        outcome.txn_seq = Some(txn_seq);
        Ok(())
    }

    /// Writes the rows of `inputs` as one data file for `version`.
    async fn write_group(
        &self,
        state: &SeriesState,
        inputs: Vec<FileInfo>,
        version: i64,
    ) -> Result<Output> {
        let info = SchemaInfo {
            series: state.path.clone(),
            schema: Arc::clone(&state.schema),
            timestamp_column: state.timestamp_column.clone(),
            key: state.key.clone(),
        };
        let rows = SeriesStream::new(
            self.object_store(),
            info,
            inputs.len(),
            inputs.clone(),
            (MIN_TIME, MAX_TIME),
            state.deletes_as_of(None),
        );
        let deletes_applied = state.deletes.last().map_or(0, |d| d.version);
        let mut rows = futures::StreamExt::peekable(rows);
        let level = inputs
            .iter()
            .map(|v| v.level)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let precedence = inputs.iter().map(|v| v.precedence).max().unwrap_or(version);
        let uuid = uuid::Uuid::new_v4().to_string();
        let started = super::Written::now();
        // None when deletes removed every row.
        let file = match std::pin::Pin::new(&mut rows).peek().await {
            None => None,
            Some(_) => Some(
                write_data_file(
                    &self.store,
                    data_file_path(&state.id, version, &uuid),
                    &state.schema,
                    &state.timestamp_column,
                    &state.sort_key,
                    state.sort_bucket,
                    &[],
                    rows,
                    &self.options.write_options(state.compression),
                    &state.path,
                )
                .await?,
            ),
        };
        Ok(Output {
            inputs,
            file,
            version,
            uuid,
            level,
            precedence,
            deletes_applied,
            sort_key: state.sort_key.clone(),
            sort_bucket: state.sort_bucket,
            written: self.written_at(started),
        })
    }

    async fn remove_outputs(&self, outputs: &[Output]) {
        for file in outputs.iter().filter_map(|o| o.file.as_ref()) {
            remove_quietly(&self.store, &file.path).await;
        }
    }

    /// Commits the outputs, retrying past other writers; on failure, deletes
    /// them unless they landed after all.
    async fn commit_compaction(&self, path: &str, outputs: &mut [Output]) -> Result<i64> {
        let attempts = self.options.commit_attempts.max(1);
        let mut failure = None;
        for attempt in 0..attempts {
            match self.try_commit_compaction(path, outputs).await {
                Ok(Some(txn)) => return Ok(txn),
                Ok(None) => backoff(attempt).await,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let failure = failure.unwrap_or(Error::CommitConflict {
            path: path.to_string(),
            attempts,
        });
        // As for appends: a failed or conflicting request may have landed.
        let landed = {
            let mut oplog = self.oplog.lock().await;
            self.refresh_locked(&mut oplog)
                .await
                .map(|index| compaction_landed(&index, path, outputs))
        };
        match landed {
            Ok(Some(txn)) => Ok(txn),
            Ok(None) => {
                self.remove_outputs(outputs).await;
                Err(failure)
            }
            Err(e) => {
                tracing::warn!(error = %e, series = path, "cannot tell whether the compaction landed; keeping its files");
                Err(failure)
            }
        }
    }

    /// One commit attempt: `Ok(None)` if another writer committed first.
    async fn try_commit_compaction(
        &self,
        path: &str,
        outputs: &mut [Output],
    ) -> Result<Option<i64>> {
        let mut oplog = self.oplog.lock().await;
        let index = self.refresh_locked(&mut oplog).await?;
        if let Some(txn) = compaction_landed(&index, path, outputs) {
            return Ok(Some(txn));
        }
        let state = index.series(path).ok_or_else(|| Error::UnknownSeries {
            path: path.to_string(),
        })?;
        // Another compaction may have superseded an input since the plan.
        let still_live = outputs.iter().flat_map(|o| &o.inputs).all(|input| {
            state
                .versions
                .find(input.version)
                .is_some_and(|i| state.versions[i].is_live())
        });
        if !still_live {
            drop(oplog);
            self.remove_outputs(outputs).await;
            return Err(Error::CompactionConflict {
                path: path.to_string(),
            });
        }
        // A file that waited too long may have been vacuumed meanwhile.
        if let Some(e) = (outputs.iter().filter(|o| o.file.is_some()))
            .find_map(|o| self.check_fresh(path, o.written).err())
        {
            drop(oplog);
            self.remove_outputs(outputs).await;
            return Err(e);
        }
        // Appends may have taken the version numbers meanwhile.
        let written = outputs.iter_mut().filter(|o| o.file.is_some());
        for (version, o) in (state.last_version() + 1..).zip(written) {
            let Some(file) = o.file.as_mut() else {
                continue;
            };
            if o.version != version {
                let to = data_file_path(&state.id, version, &o.uuid);
                if let Err(e) = self.store.rename(&file.path, &to).await {
                    remove_quietly(&self.store, &to).await;
                    return Err(e.into());
                }
                file.path = to;
                o.version = version;
            }
        }
        let txn_seq = index.delta_version() + 1;
        let entries = compaction_entries(state, outputs, txn_seq);
        super::crash_point("compact-before-commit");
        let CommitOutcome::Committed(delta_version) =
            oplog.commit(index.delta_version(), &entries).await?
        else {
            return Ok(None);
        };
        super::crash_point("compact-after-commit");
        let mut next = (*index).clone();
        match next.apply(entries, delta_version) {
            Ok(()) => {
                self.install(next);
            }
            Err(e) => tracing::warn!(error = %e, "could not index an own commit"),
        }
        Ok(Some(delta_version))
    }
}

/// The groups of a keyed series that can be rewritten as one version each.
/// The new version wins over another live version where the group's
/// newest input did, so no live version that overlaps a group in time may
/// have a precedence between the group's lowest and highest: such a version
/// joins the group. And where a delete with a predicate applies to the
/// group, it may remove a key whose newest row is in the group: then every
/// older version that overlaps it joins too, or its row for that key would
/// win in the new version's place (the predicate, tested on that older row,
/// need not hold). A group that would then share a version with another is
/// left out.
fn keyed_groups(state: &SeriesState, groups: Vec<Vec<FileInfo>>) -> Vec<Vec<FileInfo>> {
    let mut closed: Vec<Vec<FileInfo>> = Vec::new();
    for mut group in groups {
        let (lo, hi) = group.iter().fold((i64::MAX, i64::MIN), |(lo, hi), v| {
            (lo.min(v.precedence), hi.max(v.precedence))
        });
        let joining = |group: &[FileInfo], lo: i64| {
            let downward = group.iter().any(|g| {
                state
                    .deletes
                    .iter()
                    .any(|d| d.predicate.is_some() && d.applies_to(g))
            });
            state
                .live()
                .find(|v| {
                    (v.precedence > lo || downward)
                        && v.precedence < hi
                        && group.iter().all(|g| g.version != v.version)
                        && group.iter().any(|g| {
                            g.min_event_time <= v.max_event_time
                                && v.min_event_time <= g.max_event_time
                        })
                })
                .map(|v| v.as_ref().clone())
        };
        let mut lo = lo;
        while let Some(v) = joining(&group, lo) {
            lo = lo.min(v.precedence);
            group.push(v);
        }
        let shared = closed
            .iter()
            .flatten()
            .any(|c| group.iter().any(|g| g.version == c.version));
        if !shared {
            group.sort_by_key(|v| (v.min_event_time, v.version));
            closed.push(group);
        }
    }
    closed
}

/// The rows of one compaction: a `compact` row per new version, a
/// `supersede` row per input.
fn compaction_entries(state: &SeriesState, outputs: &[Output], txn_seq: i64) -> Vec<OplogEntry> {
    let base = OplogEntry {
        series: state.path.clone(),
        series_id: state.id.clone(),
        version: 0,
        entry_type: EntryType::Compact,
        file_path: None,
        size: None,
        row_count: None,
        min_event_time: None,
        max_event_time: None,
        timestamp_column: state.timestamp_column.clone(),
        schema: None,
        content_hash: None,
        txn_seq,
        created_at: now_micros(),
        extended_attributes: None,
    };
    let mut entries = Vec::new();
    for o in outputs {
        let Some(f) = &o.file else {
            // Nothing left of the inputs: superseded by nothing.
            for input in &o.inputs {
                entries.push(OplogEntry {
                    version: input.version,
                    entry_type: EntryType::Supersede,
                    file_path: Some(input.file_path.clone()),
                    extended_attributes: Some(serde_json::json!({ "by": null }).to_string()),
                    ..base.clone()
                });
            }
            continue;
        };
        let replaces: Vec<i64> = o.inputs.iter().map(|v| v.version).collect();
        entries.push(OplogEntry {
            version: o.version,
            file_path: Some(f.path.to_string()),
            size: Some(f.size),
            row_count: Some(f.row_count),
            min_event_time: Some(f.min_event_time),
            max_event_time: Some(f.max_event_time),
            content_hash: Some(f.content_hash.clone()),
            extended_attributes: Some({
                let mut attributes = f.column_attributes();
                attributes.extend([
                    ("level".into(), o.level.into()),
                    ("precedence".into(), o.precedence.into()),
                    ("deletes_applied".into(), o.deletes_applied.into()),
                    ("replaces".into(), replaces.into()),
                    (
                        "sort_key".into(),
                        recorded_sort_key(&o.sort_key, o.sort_bucket).into(),
                    ),
                    ("sort_bucket".into(), o.sort_bucket.into()),
                ]);
                serde_json::Value::Object(attributes).to_string()
            }),
            ..base.clone()
        });
        for input in &o.inputs {
            entries.push(OplogEntry {
                version: input.version,
                entry_type: EntryType::Supersede,
                file_path: Some(input.file_path.clone()),
                extended_attributes: Some(serde_json::json!({ "by": o.version }).to_string()),
                ..base.clone()
            });
        }
    }
    entries
}

/// The sort key `columns` declare for `state`: checked against its schema,
/// with the time column last; empty for time order.
fn sort_key(state: &SeriesState, columns: &[&str]) -> Result<Vec<String>> {
    let ts = state.timestamp_column.as_str();
    let mut key: Vec<String> = Vec::new();
    for (i, &column) in columns.iter().enumerate() {
        let field = state.schema.field_with_name(column).map_err(|_| {
            let names: Vec<&str> = state
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            Error::invalid_setting(
                &state.path,
                format!(
                    "the sort key names no column {column:?} (the columns: {})",
                    names.join(", ")
                ),
            )
        })?;
        if column == ts && i + 1 != columns.len() {
            return Err(Error::invalid_setting(
                &state.path,
                format!("the time column {ts:?} can only come last in a sort key"),
            ));
        }
        if field.data_type().is_nested() {
            return Err(Error::invalid_setting(
                &state.path,
                format!(
                    "column {column:?} ({}) cannot be sorted by",
                    field.data_type()
                ),
            ));
        }
        if key.iter().any(|k| k == column) {
            return Err(Error::invalid_setting(
                &state.path,
                format!("column {column:?} is twice in the sort key"),
            ));
        }
        key.push(column.to_string());
    }
    if key.is_empty() || key == [ts] {
        return Ok(Vec::new());
    }
    if key.last().map(String::as_str) != Some(ts) {
        key.push(ts.to_string());
    }
    Ok(key)
}

/// The oplog version of the compaction if `index` holds its first output.
fn compaction_landed(index: &OplogIndex, path: &str, outputs: &[Output]) -> Option<i64> {
    let series = index.series(path)?;
    // A file is committed as the version its name carries.
    let Some((first, file)) = outputs
        .iter()
        .find_map(|o| o.file.as_ref().map(|file| (o, file)))
    else {
        // Only inputs deletes emptied: landed if they are all superseded
        // (by this compaction or another, which read the same nothing).
        let mut landed = None;
        for input in outputs.iter().flat_map(|o| &o.inputs) {
            let v = &series.versions[series.versions.find(input.version)?];
            landed = landed.max(Some(v.superseded_at?));
        }
        return landed;
    };
    let v = &series.versions[series.versions.find(first.version)?];
    (v.file_path == file.path.as_ref()).then_some(v.txn_seq)
}

/// A `configure` row: every setting of the series as it is to be, so that
/// a reader that knows only some of them (an older pond knows no
/// `compression`) still reads the others right.
fn configure_entry(
    state: &SeriesState,
    key: &[String],
    bucket: i64,
    compression: Compression,
    txn_seq: i64,
) -> OplogEntry {
    OplogEntry {
        entry_type: EntryType::Configure,
        extended_attributes: Some(
            serde_json::json!({
                "sort_key": recorded_sort_key(key, bucket),
                "sort_bucket": bucket,
                "compression": compression.name(),
            })
            .to_string(),
        ),
        ..create_entry(
            &state.path,
            &state.id,
            &state.timestamp_column,
            None,
            &[],
            txn_seq,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_compaction_commits_in_steps() {
        use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        const DAY: i64 = 86_400_000_000;
        let dir = tempfile::tempdir().unwrap();
        let mut options = crate::PondOptions::default().with_auto_compact_versions(0);
        // Every group is due at once: each commits on its own.
        options.commit_step_after = Some(std::time::Duration::ZERO);
        let pond = Pond::create_with_options(dir.path().to_str().unwrap(), options)
            .await
            .unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("v", DataType::Int64, false),
        ]));
        // Two versions a day for three days: a group a day.
        for version in 0..6i64 {
            let start = version / 2 * DAY + version % 2 * DAY / 2;
            let times: Vec<i64> = (0..10).map(|i| start + i).collect();
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(TimestampMicrosecondArray::from(times)),
                    Arc::new(Int64Array::from_iter_values(
                        version * 10..version * 10 + 10,
                    )),
                ],
            )
            .unwrap();
            pond.append_batch("/s", &batch, "ts").await.unwrap();
        }
        // Small files (under half the target), cut into a group a day.
        let options = CompactOptions::default().with_target_file_bytes(8_192);
        let outcome = pond.compact_with_options("/s", &options).await.unwrap();
        assert_eq!((outcome.versions_read, outcome.versions_written), (6, 3));
        let entries = pond.oplog_entries().await.unwrap();
        let steps: std::collections::BTreeSet<i64> = entries
            .iter()
            .filter(|e| e.entry_type == EntryType::Compact)
            .map(|e| e.txn_seq)
            .collect();
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert_eq!(outcome.txn_seq, steps.last().copied());
        let state = pond.state("/s").unwrap();
        let live: Vec<(i64, i64)> = state.live().map(|v| (v.version, v.row_count)).collect();
        assert_eq!(live, [(7, 20), (8, 20), (9, 20)]);
    }

    fn version(version: i64, min: i64, max: i64, size: i64) -> FileInfo {
        FileInfo {
            version,
            min_event_time: min,
            max_event_time: max,
            size,
            row_count: 1,
            ..FileInfo::default()
        }
    }

    fn plan(versions: &[FileInfo], target: i64) -> Vec<Vec<i64>> {
        let refs: Vec<&FileInfo> = versions.iter().collect();
        let options = CompactOptions::default().with_target_file_bytes(target);
        plan_groups(&refs, &options)
            .iter()
            .map(|g| g.iter().map(|v| v.version).collect())
            .collect()
    }

    #[test]
    fn groups_small_versions_by_time_up_to_the_target() {
        let versions: Vec<FileInfo> = (0..6)
            .map(|i| version(i + 1, i * 10, i * 10 + 9, 30))
            .collect();
        assert_eq!(plan(&versions, 100), [vec![1, 2, 3], vec![4, 5, 6]]);
        // Large versions stay; a group of one is left alone.
        let mut versions = versions;
        versions[3].size = 60;
        assert_eq!(plan(&versions, 100), [vec![1, 2, 3], vec![5, 6]]);
    }

    #[test]
    fn never_cuts_between_versions_that_overlap_in_time() {
        // A late delivery (4) overlaps 1 and 2: 1, 2 and 4 go together even
        // past the target, so the new versions stay disjoint in time.
        let versions = [
            version(1, 0, 9, 40),
            version(2, 10, 19, 40),
            version(3, 30, 39, 40),
            version(4, 5, 15, 40),
        ];
        assert_eq!(
            plan(&versions, 100),
            [vec![1, 4, 2], vec![3]].map(|g| g.to_vec())[..1]
        );
    }

    #[test]
    fn automatic_compaction_takes_the_lowest_level_with_enough_versions() {
        let mut versions: Vec<FileInfo> = (0..10)
            .map(|i| version(i + 1, i * 10, i * 10 + 9, 30))
            .collect();
        for v in &mut versions[..3] {
            v.level = 1;
        }
        let refs: Vec<&FileInfo> = versions.iter().collect();
        let group = |k| {
            plan_auto(&refs, k, &options(1_000))
                .map(|g| g.iter().map(|v| v.version).collect::<Vec<_>>())
        };
        assert_eq!(group(4), Some(vec![4, 5, 6, 7]), "level 0 first");
        assert_eq!(group(3), Some(vec![4, 5, 6]));
        assert_eq!(group(8), None);
        versions[9].level = 1;
        versions[8].level = 1;
        let refs: Vec<&FileInfo> = versions.iter().collect();
        assert_eq!(
            plan_auto(&refs, 5, &options(1_000)).map(|g| g.len()),
            Some(5),
            "level 1 has five"
        );
        assert_eq!(plan_auto(&refs, 0, &options(1_000)), None, "off");
    }

    fn options(target: i64) -> CompactOptions {
        CompactOptions::default()
            .with_target_file_bytes(target)
            .with_window_micros(100)
    }

    fn versions_of(groups: Option<Vec<FileInfo>>) -> Option<Vec<i64>> {
        groups.map(|g| g.iter().map(|v| v.version).collect())
    }

    #[test]
    fn groups_are_cut_at_each_time_window() {
        // Windows of 100 µs: 0..99, 100..199. Version 5 starts in the first
        // window and reaches into the second; version 6 overlaps it.
        let at = |size| {
            [
                version(1, 0, 9, size),
                version(2, 10, 19, size),
                version(3, 20, 29, size),
                version(4, 50, 59, size),
                version(5, 90, 105, size),
                version(6, 100, 109, size),
                version(7, 110, 119, size),
                version(8, 120, 129, size),
                version(9, 200, 209, size),
            ]
        };
        let plan = |versions: &[FileInfo]| -> Vec<Vec<i64>> {
            let refs: Vec<&FileInfo> = versions.iter().collect();
            plan_groups(&refs, &options(1_000))
                .iter()
                .map(|g| g.iter().map(|v| v.version).collect())
                .collect()
        };
        assert_eq!(plan(&at(130)), [vec![1, 2, 3, 4, 5, 6], vec![7, 8]]);
        // Sparse data (under an eighth of the target a window) is not cut.
        assert_eq!(plan(&at(10)), [(1..=9).collect::<Vec<_>>()]);
        // A run too small to cut when it enters window 1 is cut at the
        // start of window 2, not where it grows past the threshold (at 5).
        let versions = [
            version(1, 0, 9, 40),
            version(2, 10, 19, 40),
            version(3, 100, 109, 40),
            version(4, 110, 119, 40),
            version(5, 120, 129, 40),
            version(6, 130, 139, 40),
            version(7, 200, 209, 40),
            version(8, 210, 219, 40),
        ];
        assert_eq!(plan(&versions), [vec![1, 2, 3, 4, 5, 6], vec![7, 8]]);
    }

    #[test]
    fn automatic_compaction_stays_in_a_window_and_finishes_closed_ones() {
        // Three versions in window 0, two in window 1, one in window 2;
        // each window's versions weigh more than an eighth of the target.
        let mut versions = vec![
            version(1, 0, 9, 70),
            version(2, 10, 19, 70),
            version(3, 20, 29, 70),
            version(4, 100, 109, 70),
            version(5, 110, 119, 70),
            version(6, 200, 209, 70),
        ];
        let plan = |versions: &[FileInfo], k| {
            let refs: Vec<&FileInfo> = versions.iter().collect();
            versions_of(plan_auto(&refs, k, &options(1_000)))
        };
        assert_eq!(plan(&versions, 3), Some(vec![1, 2, 3]), "tiered first");
        // No window has four of a level: the closed windows are finished,
        // the earliest first; the open one (2) waits.
        assert_eq!(plan(&versions, 4), Some(vec![1, 2, 3]));
        versions.drain(..3);
        assert_eq!(plan(&versions, 4), Some(vec![4, 5]));
        versions.drain(..2);
        versions.push(version(7, 210, 219, 70));
        assert_eq!(plan(&versions, 4), None, "the open window waits");
        // Tiers never mix windows: two in each of two windows is not four.
        let versions = [
            version(1, 0, 9, 70),
            version(2, 10, 19, 70),
            version(3, 100, 109, 70),
            version(4, 110, 119, 70),
        ];
        assert_eq!(plan(&versions, 3), Some(vec![1, 2]), "window 0 is closed");
        assert_eq!(plan(&versions[2..], 2), Some(vec![3, 4]), "tiered");
        assert_eq!(plan(&versions[2..], 3), None);
        // Unless the data is sparse: then the windows are one segment.
        let sparse: Vec<FileInfo> = versions
            .iter()
            .map(|v| FileInfo {
                size: 10,
                ..v.clone()
            })
            .collect();
        assert_eq!(plan(&sparse, 4), Some(vec![1, 2, 3, 4]));
        assert_eq!(plan(&sparse, 5), None, "no closed window");

        // Late rows for a finished day: merged among themselves until
        // they weigh as much as the day's file, which is not rewritten at
        // every late append.
        let mut versions = vec![version(1, 0, 99, 300), version(9, 200, 209, 10)];
        versions[0].level = 1;
        assert_eq!(plan(&versions, 4), None);
        versions.push(version(10, 50, 51, 90));
        assert_eq!(plan(&versions, 4), None, "one late version");
        versions.push(version(11, 52, 53, 90));
        assert_eq!(plan(&versions, 4), Some(vec![10, 11]));
        versions.push(version(12, 54, 55, 120));
        assert_eq!(
            plan(&versions, 4),
            Some(vec![1, 10, 11, 12]),
            "300 of late rows"
        );
    }

    #[test]
    fn stops_starting_groups_after_the_input_budget() {
        let versions: Vec<FileInfo> = (0..8)
            .map(|i| version(i + 1, i * 10, i * 10 + 9, 30))
            .collect();
        let refs: Vec<&FileInfo> = versions.iter().collect();
        let options = CompactOptions::default()
            .with_target_file_bytes(70)
            .with_max_input_bytes(100);
        let groups = plan_groups(&refs, &options);
        assert_eq!(groups.len(), 2, "{groups:?}");
    }
}
