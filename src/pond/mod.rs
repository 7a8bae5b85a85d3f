//! [`Pond`]: a root location holding one oplog and the data files.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arrow::datatypes::SchemaRef;
use object_store::ObjectStore;
use object_store::prefix::PrefixStore;
use url::Url;

use crate::error::{Error, Result};
use crate::index::{FileInfo, OplogIndex, SeriesState};
use crate::oplog::{EntryType, Oplog, OplogEntry};
use crate::path::validate_series_path;
use crate::series::writer::WriteOptions;
use crate::series::{SchemaInfo, SeriesStream};

mod append;
mod compact;
mod delete;
mod vacuum;

pub(crate) use append::is_data_file;
pub use append::{AppendOptions, AppendOutcome, StagedAppend};
pub use compact::{
    CompactOptions, CompactOutcome, Compression, DEFAULT_SORT_BUCKET, SeriesCompaction,
};
pub use delete::DeleteOutcome;
pub use vacuum::{VacuumOptions, VacuumOutcome};

/// Settings of a [`Pond`] handle. The defaults suit most uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PondOptions {
    /// How many times an append tries to commit before giving up when other
    /// writers keep committing first.
    pub commit_attempts: u32,
    /// Every this many commits (each adds one small file to the oplog), the
    /// append that lands merges the oplog's smallest files, 16 of one size
    /// tier at a time, so that opening the pond stays fast without ever
    /// rewriting the whole oplog.
    pub compact_oplog_after: usize,
    /// Rows per Parquet row group in data files.
    pub row_group_rows: usize,
    /// Memory the sort of an out-of-order append may use before spilling to disk.
    pub sort_memory_bytes: usize,
    /// After an append, compact a series once this many small versions of
    /// one level have gathered (0: never on its own; `compact` still works).
    pub auto_compact_versions: usize,
    /// The target size and time window automatic compaction writes with.
    pub auto_compact_options: CompactOptions,
    /// How long a data file written by an append or a compaction may wait
    /// for its commit. A vacuum deletes an unreferenced file only once it is
    /// older than the vacuum's grace ([`DEFAULT_GRACE`](crate::DEFAULT_GRACE),
    /// an hour, unless lowered), counted from before it reads the oplog, so
    /// a file committed sooner than that is never taken for garbage. A
    /// commit past this limit gives up ([`Error::StaleWrite`]); a compaction
    /// commits what it has written once the oldest of it is half this old.
    /// The default, half an hour, leaves the other half for clocks that
    /// disagree; keep it under every vacuum's grace (and above zero: at
    /// zero no write commits). On object stores a file counts from the
    /// start of its write (S3 dates an upload by its start), so an append
    /// that streams for longer than this gives up too.
    pub commit_within: std::time::Duration,
    /// After how long a compaction commits what it has written (tests set
    /// it; `None`: half of `commit_within`).
    pub(crate) commit_step_after: Option<std::time::Duration>,
    /// Options of the pond's object store, which win over the environment:
    /// for `s3://` the names object_store's `AmazonS3ConfigKey` parses,
    /// such as `aws_access_key_id`, `aws_endpoint_url`, `aws_allow_http`
    /// (as in the README's *Ponds on S3*).
    pub storage_options: HashMap<String, String>,
}

impl Default for PondOptions {
    fn default() -> Self {
        let write = WriteOptions::default();
        Self {
            commit_attempts: 40,
            compact_oplog_after: crate::oplog::OPLOG_FAN_IN,
            row_group_rows: write.row_group_rows,
            sort_memory_bytes: write.sort_memory,
            auto_compact_versions: 8,
            auto_compact_options: CompactOptions::default(),
            commit_within: crate::check::DEFAULT_GRACE / 2,
            commit_step_after: None,
            storage_options: HashMap::new(),
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

    /// Sets [`Self::auto_compact_options`].
    pub fn with_auto_compact_options(mut self, options: CompactOptions) -> Self {
        self.auto_compact_options = options;
        self
    }

    /// Sets [`Self::auto_compact_versions`].
    pub fn with_auto_compact_versions(mut self, versions: usize) -> Self {
        self.auto_compact_versions = versions;
        self
    }

    /// Sets [`Self::commit_within`].
    pub fn with_commit_within(mut self, within: std::time::Duration) -> Self {
        self.commit_within = within;
        self
    }

    /// Adds one of [`Self::storage_options`].
    pub fn with_storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// Sets [`Self::sort_memory_bytes`].
    pub fn with_sort_memory_bytes(mut self, bytes: usize) -> Self {
        self.sort_memory_bytes = bytes;
        self
    }

    /// The settings of a file written for a series compressed by
    /// `compression`.
    fn write_options(&self, compression: Compression) -> WriteOptions {
        WriteOptions {
            row_group_rows: self.row_group_rows.max(1),
            sort_memory: self.sort_memory_bytes,
            compression,
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
    /// Number of live versions: those reads of the series read.
    pub versions: usize,
    /// Rows the live versions' files hold, from the oplog: for a keyed
    /// series or one with deletes, more than a read returns until a
    /// compaction applies them.
    pub rows: i64,
    /// Bytes of the live versions' data files.
    pub bytes: i64,
    /// Earliest event time, µs UTC, if there is any row.
    pub min_event_time: Option<i64>,
    /// Latest event time, µs UTC, if there is any row.
    pub max_event_time: Option<i64>,
    /// When the series was created, µs UTC.
    pub created_at: i64,
    /// The key of a keyed series (the time column among it): reads return
    /// one row per key. Empty if the series keeps every row.
    pub key: Vec<String>,
    /// The order compaction clusters rows by; empty for time order.
    pub sort_key: Vec<String>,
    /// The time buckets (µs) compaction clusters by the sort key within; 0
    /// for the whole file.
    pub sort_bucket: i64,
    /// How its data files are written compressed from now on.
    pub compression: Compression,
}

impl SeriesInfo {
    fn from_state(s: &SeriesState) -> Self {
        Self {
            path: s.path.clone(),
            id: s.id.clone(),
            timestamp_column: s.timestamp_column.clone(),
            schema: Arc::clone(&s.schema),
            versions: s.live_count(),
            rows: s.row_count(),
            bytes: s.live().map(|v| v.size).sum(),
            min_event_time: s.live().map(|v| v.min_event_time).min(),
            max_event_time: s.live().map(|v| v.max_event_time).max(),
            created_at: s.created_at,
            key: s.key.clone(),
            sort_key: s.sort_key.clone(),
            sort_bucket: s.sort_bucket,
            compression: s.compression,
        }
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
    requests: crate::store::RequestCounter,
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
        Self::create_at(url.clone(), options)
            .await
            .map_err(|e| crate::store::explain(&url, e))
    }

    async fn create_at(url: Url, options: PondOptions) -> Result<Self> {
        let oplog_url = oplog_url(&url)?;
        if let Ok(dir) = oplog_url.to_file_path() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::InvalidLocation {
                location: display_location(&url),
                reason: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let (root, prefix) = crate::store::root_store(&url, &options.storage_options)?;
        let requests = crate::store::RequestCounter::new(&prefix);
        let root = requests.wrap(root);
        let backend = backend(&url, &root)?;
        if Oplog::open(&oplog_url, &backend).await?.is_some() {
            return Err(Error::PondExists {
                location: display_location(&url),
            });
        }
        if crate::store::needs_put_check(&url) {
            crate::store::check_conditional_put(root.as_ref(), &prefix, url.as_str()).await?;
        }
        let oplog = Oplog::create(&oplog_url, &backend)
            .await
            .map_err(|e| match e {
                Error::Delta {
                    source: deltalake::DeltaTableError::VersionAlreadyExists(_),
                } => Error::PondExists {
                    location: display_location(&url),
                },
                other => other,
            })?;
        Self::from_parts(url, (root, prefix, requests), oplog, options).await
    }

    /// Opens the pond at a local path or URL.
    pub async fn open(location: &str) -> Result<Self> {
        Self::open_with_options(location, PondOptions::default()).await
    }

    /// Opens a pond with the given options.
    pub async fn open_with_options(location: &str, options: PondOptions) -> Result<Self> {
        let url = resolve_location(location, false)?;
        Self::open_at(url.clone(), options)
            .await
            .map_err(|e| crate::store::explain(&url, e))
    }

    async fn open_at(url: Url, options: PondOptions) -> Result<Self> {
        let (root, prefix) = crate::store::root_store(&url, &options.storage_options)?;
        let requests = crate::store::RequestCounter::new(&prefix);
        let root = requests.wrap(root);
        let backend = backend(&url, &root)?;
        let Some(oplog) = Oplog::open(&oplog_url(&url)?, &backend).await? else {
            return Err(Error::NotAPond {
                location: display_location(&url),
                reason: "it has no oplog/ Delta table".into(),
            });
        };
        Self::from_parts(url, (root, prefix, requests), oplog, options).await
    }

    async fn from_parts(
        url: Url,
        (root, prefix, requests): (
            Arc<dyn ObjectStore>,
            object_store::path::Path,
            crate::store::RequestCounter,
        ),
        oplog: Oplog,
        options: PondOptions,
    ) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(root, prefix));
        let index = OplogIndex::build(oplog.read_all().await?, oplog.version())?;
        Ok(Self {
            location: url,
            store,
            oplog: tokio::sync::Mutex::new(oplog),
            index: RwLock::new(Arc::new(index)),
            options,
            requests,
        })
    }

    /// The requests this handle made to its store since it was opened, by
    /// part of the pond: on object storage each costs tens of milliseconds,
    /// so reads are planned to need few (see [`crate::StoreRequests`]).
    pub fn store_requests(&self) -> crate::StoreRequests {
        self.requests.snapshot()
    }

    /// The pond's root URL.
    pub fn location(&self) -> &Url {
        &self.location
    }

    /// The object store rooted at the pond: data file paths resolve against it.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Where the pond's store comes from, for another process to open it.
    pub(crate) fn origin(&self) -> crate::scope::StoreOrigin {
        crate::scope::StoreOrigin {
            location: self.location.to_string(),
            storage_options: self
                .options
                .storage_options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The store rooted at the pond `origin` names, opened without reading
    /// its oplog: what a Ballista executor reads data files with.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn open_store(origin: &crate::scope::StoreOrigin) -> Result<Arc<dyn ObjectStore>> {
        let url = resolve_location(&origin.location, false)?;
        let options: HashMap<String, String> = origin.storage_options.clone().into_iter().collect();
        let (root, prefix) = crate::store::root_store(&url, &options)?;
        Ok(Arc::new(PrefixStore::new(root, prefix)))
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
            // A handle far behind may find a commit's oplog file merged and
            // deleted, or the commits themselves trimmed from the log: then
            // it reads the snapshot instead.
            match oplog.read_commits_after(from).await {
                Ok(Some((_, latest))) if latest == from => return Ok(current),
                Ok(Some((entries, latest))) => {
                    let mut next = (*current).clone();
                    next.apply(entries, latest)?;
                    return Ok(self.install(next));
                }
                gone_or_failed => {
                    if let Err(e) = gone_or_failed {
                        tracing::debug!(error = %e, "reading new commits failed; reloading the oplog");
                    }
                    let latest = oplog.latest_version(from).await?;
                    return Ok(self.install(reload(oplog, latest).await?));
                }
            }
        }
        let latest = oplog.latest_version(from).await?;
        if latest <= from {
            return Ok(current);
        }
        // A commit trimmed, or an oplog file deleted, since the listing:
        // reload from the snapshot, as for a missing commit.
        let read = oplog.read_commits(from, latest).await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "reading new commits failed; reloading the oplog");
            None
        });
        let next = match read {
            Some(entries) => {
                let mut next = (*current).clone();
                next.apply(entries, latest)?;
                next
            }
            None => {
                // Commits this handle has not seen were cleaned from the log:
                // start again from the newest snapshot.
                reload(oplog, latest).await?
            }
        };
        Ok(self.install(next))
    }

    /// The moment a data file whose write began at `started` and has just
    /// ended counts as written from, by the time its store gives it: the
    /// end for local files (written aside, then renamed) and memory, the
    /// start for object stores (S3 dates a multipart upload by its start).
    pub(crate) fn written_at(&self, started: Written) -> Written {
        match self.location.scheme() {
            "file" | "memory" => Written::now(),
            _ => started,
        }
    }

    /// `Err(StaleWrite)` if a data file of `path` written at `written`
    /// has waited for its commit longer than
    /// [`PondOptions::commit_within`].
    pub(crate) fn check_fresh(&self, path: &str, written: Written) -> Result<()> {
        let waited = written.age();
        if waited < self.options.commit_within {
            return Ok(());
        }
        Err(Error::StaleWrite {
            path: path.to_string(),
            waited_secs: waited.as_secs(),
            limit_secs: self.options.commit_within.as_secs(),
        })
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
        self.list_series_where(|_| true)
    }

    /// The series whose path `keep` accepts, ordered by path, as of the
    /// last refresh: only theirs are summed up over their versions.
    pub fn list_series_where(&self, keep: impl Fn(&str) -> bool) -> Vec<SeriesInfo> {
        (self.index().all_series())
            .filter(|s| keep(&s.path))
            .map(|s| SeriesInfo::from_state(s))
            .collect()
    }

    /// Every series' path, ordered, as of the last refresh: what
    /// [`Pond::list_series`] lists without the summaries it adds up over
    /// each series' versions.
    pub fn series_paths(&self) -> Vec<String> {
        (self.index().all_series())
            .map(|s| s.path.clone())
            .collect()
    }

    /// One series, as of the last refresh.
    pub fn series_info(&self, path: &str) -> Result<SeriesInfo> {
        Ok(SeriesInfo::from_state(self.state(path)?.as_ref()))
    }

    /// Every version of a series in version order, superseded ones
    /// included ([`FileInfo::is_live`]), as of the last refresh.
    pub fn versions(&self, path: &str) -> Result<Vec<FileInfo>> {
        Ok(self
            .state(path)?
            .versions
            .iter()
            .map(|v| v.as_ref().clone())
            .collect())
    }

    /// The live versions of a series whose event-time bounds overlap
    /// `[start, end)` (µs UTC), ordered by their earliest event time. An in-memory lookup in
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
            key: state.key.clone(),
        };
        Ok(SeriesStream::new(
            self.object_store(),
            info,
            state.live_count(),
            state.overlapping(start, end),
            (start, end),
            state.deletes_as_of(None),
        ))
    }
}

/// The store deltalake builds the oplog on (see [`crate::oplog::Backend`]):
/// its own for local files, else the root of the pond's store, which the
/// pond's data files share.
fn backend(url: &Url, root: &Arc<dyn ObjectStore>) -> Result<crate::oplog::Backend> {
    if url.scheme() == "file" {
        return Ok(None);
    }
    let mut root_url = url.clone();
    root_url.set_path("/");
    let store = crate::store::WholeCheckpoints::new(Arc::clone(root));
    Ok(Some((Arc::new(store), root_url)))
}

/// The index of the oplog's snapshot at `latest`, read whole: for a handle
/// that can no longer follow the log commit by commit.
async fn reload(oplog: &mut Oplog, latest: i64) -> Result<OplogIndex> {
    oplog.update_to(latest).await?;
    OplogIndex::build(oplog.read_all().await?, oplog.version())
}

/// A moment by two clocks: the monotonic one stops while the machine
/// sleeps, the wall clock may be set back; an age is the larger of the two.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    instant: std::time::Instant,
    wall: std::time::SystemTime,
}

impl Written {
    pub(crate) fn now() -> Self {
        Self {
            instant: std::time::Instant::now(),
            wall: std::time::SystemTime::now(),
        }
    }

    pub(crate) fn age(&self) -> std::time::Duration {
        let wall = self.wall.elapsed().unwrap_or_default();
        self.instant.elapsed().max(wall)
    }
}

/// Debug builds (tests): aborts the process at `point` if the environment
/// variable `POND_CRASH_AT` names it, so that a test can kill a writer at
/// exactly that step. Release builds have no such points.
#[cfg(debug_assertions)]
pub(crate) fn crash_point(point: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT
        .get_or_init(|| std::env::var("POND_CRASH_AT").ok())
        .as_deref()
        == Some(point)
    {
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
pub(crate) fn crash_point(_point: &str) {}

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
        let url = Url::parse(location).map_err(|e| invalid(e.to_string()))?;
        // Neither names a place: `s3://b/p#1` and `s3://b/p#2` would be one
        // pond under two names.
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "a pond's URL has no query or fragment ('?' or '#'; in a local path they \
                 are plain characters)"
                    .into(),
            ));
        }
        url
    } else {
        let path = std::path::Path::new(location);
        if create {
            std::fs::create_dir_all(path).map_err(|e| {
                let reason = if path.is_file() {
                    "it is a file (pass --pond or set $POND to choose another place)".to_string()
                } else {
                    format!("cannot create the directory: {e}")
                };
                invalid(reason)
            })?;
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
    fn a_url_with_a_query_or_fragment_is_refused() {
        for location in ["s3://b/p#1", "s3://b/p?x=1", "memory://m/p#a"] {
            let err = resolve_location(location, false).unwrap_err();
            assert!(
                matches!(err, Error::InvalidLocation { .. }),
                "{location}: {err}"
            );
        }
        assert!(resolve_location("s3://b/p", false).is_ok());
    }

    #[test]
    fn missing_local_pond_is_not_a_pond() {
        let err = resolve_location("/definitely/not/here", false).unwrap_err();
        assert!(matches!(err, Error::NotAPond { .. }), "{err}");
    }
}
