//! [`SeriesTable`]: one series as a DataFusion table, and its scan node.
//!
//! A scan asks the oplog index for the versions whose bounds meet the time
//! ranges of the query's filters ([`crate::pruning`]) and hands only those
//! files to DataFusion's Parquet scan, which then prunes row groups and pages
//! with the same filters.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, RecordBatchOptions, UInt64Array};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::datatypes::{Field, Schema};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue, Statistics, not_impl_err, plan_err};
use datafusion::datasource::file_format::parquet::transform_schema_to_view;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::expressions::col as physical_col;
use datafusion::physical_expr::{
    LexOrdering, PhysicalExpr, PhysicalSortExpr, create_physical_expr,
};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use datafusion::sql::unparser::expr_to_sql;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use crate::catalog::session_as_of;
use crate::error::{Error, Result};
use crate::index::{FileInfo, SeriesState, Tombstone};
use crate::lww::{MergedScan, read_segments};
use crate::pond::Pond;
use crate::pruning::groups::{Superseded, superseded};
use crate::pruning::versions::VersionPredicate;
use crate::pruning::{
    TimeRanges, exact_range, exact_time_range, physical_time_ranges, time_ranges,
};
use crate::reader::{CachedReaderFactory, Footers, rows_within};
use crate::runs::Extreme;
use crate::scan::{ScanSource, SeriesScanExec, SupersededPaths, chunks};
use crate::scope::{StoreOrigin, StoreScope};
use crate::series::schema::{cast_batch, unview_schema};
use crate::store::RequestCounter;
use crate::time::{scalar_timestamp, time_range_predicate, timestamp_unit};

/// The reads of a scan (see [`SeriesTable::split_reads`]): the versions
/// read as they are, the runs read merged, and the deletes they apply.
pub(crate) type Reads = (Vec<FileInfo>, Vec<Vec<FileInfo>>, Vec<Arc<Tombstone>>);

/// One series as a DataFusion [`TableProvider`].
#[derive(Debug, Clone)]
pub struct SeriesTable {
    pond: Arc<Pond>,
    path: String,
    /// The table's schema: the series' with string and binary columns as
    /// views, as DataFusion reads Parquet (which decodes them without
    /// copying; they compare and hash faster).
    schema: SchemaRef,
    /// The series' own schema, which appends are written in.
    stored: SchemaRef,
    timestamp_column: String,
    /// A keyed series' key (see [`crate::lww`]); empty if it keeps all rows.
    key: Vec<String>,
    /// The time column's type.
    time_type: DataType,
    /// Only rows with `start <= ts < end` (µs), as `series_range` reads.
    window: Option<(i64, i64)>,
    /// Only versions up to this one (time travel).
    max_version: Option<i64>,
    /// Only versions committed at or before this time (µs UTC, time travel
    /// by time; see [`crate::index::SeriesState::version_at`]).
    as_of_time: Option<i64>,
    /// The newest version of the series when a plan made in another
    /// process saw it (see [`Self::pinned_at`]): later ones are not read,
    /// whatever else the table reads as of.
    planned_version: Option<i64>,
    /// The series' state a scan planned on: the pushdowns and dynamic
    /// filters that prune its versions later (at optimization, when
    /// execution starts) choose among these, never among versions a
    /// compaction committed meanwhile, which would drop the files it
    /// superseded without reading the new ones.
    pinned: Option<Pinned>,
    /// Set when the catalog resolved the table for a statement, having
    /// read the oplog's new commits just before: see [`Resolved`].
    resolved: Option<Arc<Resolved>>,
}

/// A table the catalog resolved after refreshing the oplog. The first scan
/// planned from it within [`FRESH_AFTER_RESOLVING`] (the statement that
/// resolved it, planned straight away) plans on the index as it is instead
/// of refreshing again: a query reads the log once, not twice (each refresh
/// is two requests to the store, about 0.15 ms on a local disk). Every
/// other scan of it (the DataFrame or prepared statement run again, or run
/// later) refreshes. Either way a scan reads every commit made before its
/// statement began.
#[derive(Debug)]
struct Resolved {
    at: Instant,
    used: AtomicBool,
}

/// Why a table sent by another process (to a Ballista scheduler) is not
/// written to: the write would land with that process's handle, on the
/// series as it is there, not as the client planned it.
const WRITES_RUN_WHERE_PLANNED: &str = "INSERT and DELETE on a series run in the process \
     that planned them, not on a cluster: run them in a local session (as `pond sql --cluster` does)";

/// How long after the catalog resolved a table its first scan may skip its
/// own refresh.
const FRESH_AFTER_RESOLVING: Duration = Duration::from_millis(250);

/// A series state a scan is pinned to; shown by its size, not in full.
#[derive(Clone)]
struct Pinned(Arc<SeriesState>);

impl fmt::Debug for Pinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pinned({} live versions)", self.0.live_count())
    }
}

impl SeriesTable {
    /// The table of the series at `path`, with its current schema.
    pub fn try_new(pond: Arc<Pond>, path: &str) -> Result<Self> {
        // O(1) in the number of versions: a query resolves its tables anew.
        let info = pond.state(path)?;
        let time_type = info
            .schema
            .field_with_name(&info.timestamp_column)
            .ok()
            .map(|f| f.data_type().clone())
            .filter(|t| timestamp_unit(t).is_some())
            .ok_or_else(|| Error::invalid_oplog(path, "the timestamp column is not a timestamp"))?;
        Ok(Self {
            pond,
            path: info.path.clone(),
            schema: Arc::new(transform_schema_to_view(&info.schema)),
            stored: Arc::clone(&info.schema),
            timestamp_column: info.timestamp_column.clone(),
            key: info.key.clone(),
            time_type,
            window: None,
            max_version: None,
            as_of_time: None,
            planned_version: None,
            pinned: None,
            resolved: None,
        })
    }

    /// The table as the catalog resolves it: the oplog was read up to date
    /// at `refreshed` (taken before that refresh began).
    pub(crate) fn resolved_at(mut self, refreshed: Instant) -> Self {
        self.resolved = Some(Arc::new(Resolved {
            at: refreshed,
            used: AtomicBool::new(false),
        }));
        self
    }

    /// Restricts the table to rows with `start <= ts < end` (µs UTC;
    /// [`crate::MIN_TIME`] / [`crate::MAX_TIME`] for unbounded).
    pub fn with_time_range(mut self, start: i64, end: i64) -> Self {
        self.window = Some((start, end));
        self
    }

    /// Restricts the table to versions up to `version`: the series as it was
    /// when that version was the newest.
    pub fn with_max_version(mut self, version: i64) -> Self {
        self.max_version = Some(version);
        self
    }

    /// Restricts the table to the versions committed at or before `time`
    /// (µs UTC): the series as it was then. A version number given by
    /// [`Self::with_max_version`] takes precedence.
    pub fn with_as_of_time(mut self, time: i64) -> Self {
        self.as_of_time = Some(time);
        self
    }

    /// The microseconds `filter` selects if it is a comparison of the time
    /// column with a constant, which the scan applies itself (see
    /// [`crate::pruning::exact_time_range`]).
    fn exact_time_range(&self, filter: &Expr) -> Option<(i64, i64)> {
        exact_time_range(filter, &self.timestamp_column, &self.time_type)
    }

    /// `start <= ts AND ts < end` against literals of the column's own type,
    /// exact for every unit (see [`crate::time`]).
    fn window_predicate(&self, start: i64, end: i64) -> Option<Expr> {
        let field = self.schema.field_with_name(&self.timestamp_column).ok()?;
        time_range_predicate(field, start, end)
    }

    /// The pond the series is in.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn pond(&self) -> &Arc<Pond> {
        &self.pond
    }

    /// What restricts the read: the window, the version and the time to
    /// read as of (see [`Self::with_time_range`] and the two after it).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn restrictions(&self) -> (Option<(i64, i64)>, Option<i64>, Option<i64>) {
        (self.window, self.max_version, self.as_of_time)
    }

    /// The table pinned to the series as a plan made in another process
    /// saw it, when `last_version` was its newest version: scans read that
    /// state without refreshing. If the series changed since, versions
    /// after `last_version` are left out, and a version or time the read is
    /// as of (the table's or the session's `pond.as_of`) is read as of
    /// that, within them.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn pinned_at(mut self, last_version: i64) -> Result<Self> {
        let state = self.pond.state(&self.path)?;
        if state.last_version() != last_version {
            self.planned_version = Some(last_version);
        }
        self.pinned = Some(Pinned(state));
        Ok(self)
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn timestamp_column(&self) -> &str {
        &self.timestamp_column
    }

    /// The table's schema (see [`Self::schema`](TableProvider::schema)).
    pub(crate) fn table_schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The versions a scan must read, and how many the series has: the
    /// index's candidates for `ranges`, each kept or skipped by `predicate`
    /// (see [`crate::pruning`]).
    pub(crate) fn kept_versions(
        &self,
        ranges: &TimeRanges,
        predicate: &VersionPredicate,
    ) -> Result<(Vec<FileInfo>, usize)> {
        let state = self.read_state()?;
        if cfg!(debug_assertions) {
            self.check_ranges_hold(&state, predicate)?;
        }
        let (candidates, total) = self.candidates(&state, ranges);
        let keep = predicate.keeps(&candidates)?;
        let kept: Vec<FileInfo> = candidates
            .into_iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|(f, _)| f.clone())
            .collect();
        if let Some(gone) = kept.iter().find(|f| f.vacuumed_at.is_some()) {
            return Err(Error::VacuumedVersion {
                path: self.path.clone(),
                version: gone.version,
            });
        }
        Ok((kept, total))
    }

    /// The versions of `state` that may hold rows within `ranges` (of the
    /// series as the table reads it: now, or as of its version), in time
    /// order; and how many versions it reads in all.
    fn candidates<'s>(
        &self,
        state: &'s SeriesState,
        ranges: &TimeRanges,
    ) -> (Vec<&'s FileInfo>, usize) {
        let overlap = |f: &FileInfo| ranges.overlaps(f.min_event_time, f.max_event_time);
        match self.max_version {
            // Time travel: the versions as they were, superseded ones too.
            Some(version) => {
                let then = state.as_of(version);
                let total = then.len();
                let mut kept: Vec<&FileInfo> = (then.into_iter())
                    .map(|f| f.as_ref())
                    .filter(|f| overlap(f))
                    .collect();
                kept.sort_by_key(|f| (f.min_event_time, f.version));
                (kept, total)
            }
            None => {
                let total = state.live_count();
                let Some((first, last)) = ranges.hull() else {
                    return (Vec::new(), total);
                };
                let end = if last == crate::MAX_TIME {
                    last
                } else {
                    last + 1
                };
                let kept = (state.overlapping_shared(first, end).into_iter())
                    .map(|f| f.as_ref())
                    .filter(|f| overlap(f))
                    .collect();
                (kept, total)
            }
        }
    }

    /// Debug builds: the time ranges read from the filters must hold every
    /// version that DataFusion's `PruningPredicate` keeps, part by part (see
    /// [`VersionPredicate::check_ranges`]).
    fn check_ranges_hold(
        &self,
        state: &crate::index::SeriesState,
        predicate: &VersionPredicate,
    ) -> Result<()> {
        let all: Vec<&FileInfo> = state.versions.iter().map(|v| v.as_ref()).collect();
        predicate.check_ranges(&all).map_err(|bug| {
            Error::from(DataFusionError::Internal(format!(
                "{bug} in series {}",
                self.path
            )))
        })
    }

    /// The filters (of this table's columns) as a [`VersionPredicate`].
    /// Debug builds also check that `ranges`, read from the same filters,
    /// hold the ranges the physical reader finds in them, which
    /// [`VersionPredicate::check_ranges`] then checks against DataFusion.
    fn version_predicate(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        ranges: &TimeRanges,
    ) -> Result<VersionPredicate> {
        let Ok(df_schema) = DFSchema::try_from(Arc::clone(&self.schema)) else {
            return Ok(VersionPredicate::keep_all());
        };
        // A filter that cannot be planned here prunes nothing: leaving it
        // out keeps a superset.
        let physical: Vec<_> = filters
            .iter()
            .filter_map(|f| physical_expr(state, f.clone(), &df_schema).ok())
            .collect();
        if cfg!(debug_assertions) && physical.len() == filters.len() {
            let read = physical_time_ranges(&physical, &self.timestamp_column, &self.time_type);
            if !ranges.contains(&read) {
                return Err(Error::from(DataFusionError::Internal(format!(
                    "pruning bug: the time ranges {ranges:?} of the filters {filters:?} on {} \
                     leave out some of {read:?}, which the physical reader finds in them",
                    self.path
                ))));
            }
        }
        Ok(VersionPredicate::new(
            &physical,
            &self.schema,
            &self.timestamp_column,
        ))
    }
}

impl ScanSource for SeriesTable {
    fn time_column(&self) -> &str {
        &self.timestamp_column
    }

    fn time_type(&self) -> &DataType {
        &self.time_type
    }

    /// The files of the versions a scan must read (see [`Self::kept_versions`]).
    fn kept_paths(
        &self,
        ranges: &TimeRanges,
        predicate: &VersionPredicate,
    ) -> Result<HashSet<ObjectPath>> {
        let (kept, _) = self.kept_versions(ranges, predicate)?;
        Ok(kept
            .iter()
            .map(|f| ObjectPath::from(f.file_path.as_str()))
            .collect())
    }

    fn describe(&self) -> String {
        format!("series={}", self.path)
    }

    fn superseded_paths(
        &self,
        paths: &HashSet<&str>,
        ranges: &TimeRanges,
        column: &str,
        extreme: Extreme,
    ) -> Result<SupersededPaths> {
        let state = self.read_state()?;
        let (candidates, _) = self.candidates(&state, ranges);
        let read: Vec<&FileInfo> = (candidates.into_iter())
            .filter(|f| paths.contains(f.file_path.as_str()))
            .collect();
        let Superseded { versions, bound } = superseded(&read, column, extreme);
        Ok(SupersededPaths {
            paths: (versions.into_iter())
                .map(|f| ObjectPath::from(f.file_path.as_str()))
                .collect(),
            bound,
        })
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        self.pond.object_store()
    }

    fn origin(&self) -> Option<StoreOrigin> {
        Some(self.pond.origin())
    }
}

/// A Parquet source over `table_schema` with the session's Parquet options
/// (as `SET datafusion.execution.parquet.*` leaves them), reading through
/// `reader`.
pub(crate) fn parquet_source(
    state: &dyn Session,
    table_schema: TableSchema,
    reader: Arc<dyn ParquetFileReaderFactory>,
) -> ParquetSource {
    ParquetSource::new(table_schema)
        .with_table_parquet_options(state.default_table_options().parquet)
        .with_parquet_file_reader_factory(reader)
}

/// `expr` as a physical expression over `schema`, coerced as a session
/// would and planned by pond itself with the session's execution
/// properties. A session across datafusion-ffi would plan it on its side
/// and hand back an opaque expression that neither Parquet pruning nor
/// pond's own time analysis can read, and that crosses the boundary for
/// every batch it filters.
pub(crate) fn physical_expr(
    state: &dyn Session,
    expr: Expr,
    schema: &DFSchema,
) -> DfResult<Arc<dyn PhysicalExpr>> {
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .build(),
    );
    let expr = simplifier.coerce(expr, schema)?;
    create_physical_expr(
        &expr,
        schema,
        state.execution_props(),
        &PhysicalPlanningContext::default(),
    )
}

/// The object store URL under which a session finds a pond's files.
pub(crate) fn store_url(pond: &Pond) -> DfResult<ObjectStoreUrl> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pond.location().as_str().hash(&mut h);
    ObjectStoreUrl::parse(format!("pond-{:016x}://pond/", h.finish()))
}

#[async_trait]
impl TableProvider for SeriesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // A comparison of the time column with a constant is the scan's to
        // apply: rows of versions whose oplog bounds lie within it need no
        // filtering, and the scan filters the rest itself (see
        // `Self::plan_scan`). So a window of whole versions reads no time
        // column, and `count(*)` over it is the oplog's row counts. Other
        // filters only prune, and DataFusion keeps filtering rows by them.
        Ok((filters.iter())
            .map(|f| time_filter_pushdown(f, &self.timestamp_column, &self.time_type))
            .collect())
    }

    /// `INSERT INTO` appends the inserted rows as one new version.
    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return not_impl_err!("{insert_op} is not supported: a series is append-only");
        }
        if self.pinned.is_some() {
            return not_impl_err!("{}", WRITES_RUN_WHERE_PLANNED);
        }
        let sink = SeriesSink {
            pond: Arc::clone(&self.pond),
            path: self.path.clone(),
            schema: Arc::clone(&self.schema),
            stored: Arc::clone(&self.stored),
            timestamp_column: self.timestamp_column.clone(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    /// `DELETE FROM`: commits a delete of the rows the filters select (see
    /// [`Pond::delete`]) and returns how many of them the series held.
    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if self.pinned.is_some() {
            return not_impl_err!("{}", WRITES_RUN_WHERE_PLANNED);
        }
        if self.window.is_some() || self.max_version.is_some() || self.as_of_time.is_some() {
            return not_impl_err!("DELETE applies to a series table, not to a read of one");
        }
        if session_as_of(state)?.is_some() {
            return plan_err!(
                "DELETE changes the series as it is now, but this session reads it as of \
                 pond.as_of; SET pond.as_of = '' first"
            );
        }
        // Stored as SQL and read back at every read: `now()` and other
        // volatile parts are folded to what they are now.
        let df_schema = Arc::new(DFSchema::try_from(Arc::clone(&self.schema))?);
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_schema(df_schema)
                .with_current_time()
                .build(),
        );
        let filters: Vec<Expr> = filters
            .into_iter()
            .map(|f| simplifier.simplify(unqualified(f)))
            .collect::<DfResult<_>>()?;
        let ranges = time_ranges(&filters, &self.timestamp_column, &self.time_type);
        let count = match ranges.hull() {
            None => 0,
            Some(bounds) => {
                let deleted = self.count_matching(state, &filters).await?;
                let predicate = match conjunction(filters) {
                    Some(expr) => Some(expr_to_sql(&typed_timestamps(expr)?)?.to_string()),
                    None => None,
                };
                self.pond
                    .delete_between(&self.path, bounds, predicate.as_deref())
                    .await?;
                deleted
            }
        };
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(UInt64Array::from(vec![count]))],
        )?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            None,
        )?)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Every read plans on the oplog as of its own start, whenever the
        // table was resolved (a prepared statement, a DataFrame kept by an
        // embedding program): one probe of the log when nothing changed,
        // which the catalog made already if it resolved the table for this
        // statement. A table sent by another process comes pinned already
        // (see `Self::pinned_at`).
        let just_resolved = self.resolved.as_ref().is_some_and(|r| {
            r.at.elapsed() < FRESH_AFTER_RESOLVING && !r.used.swap(true, Ordering::SeqCst)
        });
        if self.pinned.is_none() && !just_resolved {
            self.pond.refresh().await?;
        }
        self.pinned(state)?
            .plan_scan(state, projection, filters, limit)
            .await
    }
}

impl SeriesTable {
    /// The table on the series' state as of the last refresh, which its
    /// scan then plans on; a time to read as of (the table's, else the
    /// session's `pond.as_of`) becomes a version once, on that state.
    pub(crate) fn pinned(&self, state: &dyn Session) -> DfResult<Self> {
        let pinned = match &self.pinned {
            Some(Pinned(pinned)) => Arc::clone(pinned),
            None => self.pond.state(&self.path)?,
        };
        let mut table = self.clone();
        if table.max_version.is_none() {
            let time = match table.as_of_time {
                Some(time) => Some(time),
                None => session_as_of(state)?,
            };
            table.max_version = time.map(|t| pinned.version_at(t));
        }
        if let Some(planned) = table.planned_version {
            table.max_version = Some(table.max_version.map_or(planned, |v| v.min(planned)));
        }
        table.pinned = Some(Pinned(pinned));
        Ok(table)
    }
}

/// `expr` with its columns unqualified (`fleet.cpu.v` becomes `v`), as a
/// delete's predicate is stored and read back.
pub(crate) fn unqualified(expr: Expr) -> Expr {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
    .expect("no error")
}

impl SeriesTable {
    /// How many rows of the series as it is now `filters` select.
    async fn count_matching(&self, state: &dyn Session, filters: &[Expr]) -> DfResult<u64> {
        let mut columns: Vec<usize> = vec![self.schema.index_of(&self.timestamp_column)?];
        for f in filters {
            for c in f.column_refs() {
                let i = self.schema.index_of(&c.name)?;
                if !columns.contains(&i) {
                    columns.push(i);
                }
            }
        }
        let mut plan = self.scan(state, Some(&columns), filters, None).await?;
        if let Some(predicate) = conjunction(filters.to_vec()) {
            let df_schema = DFSchema::try_from(plan.schema())?;
            let predicate = physical_expr(state, predicate, &df_schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }
        let mut rows = 0u64;
        let mut stream = execute_stream(plan, state.task_ctx())?;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows() as u64;
        }
        Ok(rows)
    }

    /// The state reads plan on: the one pinned by `scan`, else the newest.
    fn read_state(&self) -> Result<Arc<SeriesState>> {
        match &self.pinned {
            Some(Pinned(state)) => Ok(Arc::clone(state)),
            None => self.pond.state(&self.path),
        }
    }

    /// `kept` (the versions `filters` keep) split into those read as they
    /// are and the runs read through [`MergedScan`] (see
    /// [`read_segments`]), with the deletes the read applies. Of a keyed
    /// series, the runs are found among the versions that only the filters
    /// on key columns keep: a filter on another column must not drop a
    /// newer version whose row hides an older one's.
    fn split_reads(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        kept: Vec<FileInfo>,
    ) -> Result<Reads> {
        self.split_reads_by(kept, |table| {
            let on_key = table.key_filters(filters);
            let ranges = time_ranges(&on_key, &table.timestamp_column, &table.time_type);
            let predicate = table.version_predicate(state, &on_key, &ranges)?;
            Ok(table.kept_versions(&ranges, &predicate)?.0)
        })
    }

    /// [`Self::split_reads`] for a read whose filters on key columns keep
    /// the versions within `key_ranges`: as `series_union` reads a member,
    /// whose filters name the union's columns.
    pub(crate) fn split_reads_within(
        &self,
        key_ranges: &TimeRanges,
        kept: Vec<FileInfo>,
    ) -> Result<Reads> {
        self.split_reads_by(kept, |table| {
            Ok(table
                .kept_versions(key_ranges, &VersionPredicate::keep_all())?
                .0)
        })
    }

    /// `kept` split as [`Self::split_reads`] says, the runs of a keyed
    /// series found among the versions `on_key` returns.
    fn split_reads_by(
        &self,
        kept: Vec<FileInfo>,
        on_key: impl FnOnce(&Self) -> Result<Vec<FileInfo>>,
    ) -> Result<Reads> {
        let deletes = self.read_state()?.deletes_as_of(self.max_version);
        if self.key.is_empty() && deletes.is_empty() {
            return Ok((kept, Vec::new(), deletes));
        }
        let candidates = if self.key.is_empty() {
            kept.clone()
        } else {
            on_key(self)?
        };
        Ok(self.split_among(kept, &candidates, deletes))
    }

    /// `kept` without the versions of the runs that [`read_segments`] finds
    /// among `candidates`, and those runs.
    fn split_among(
        &self,
        kept: Vec<FileInfo>,
        candidates: &[FileInfo],
        deletes: Vec<Arc<Tombstone>>,
    ) -> Reads {
        let mut plain: HashSet<i64> = HashSet::new();
        let mut runs: Vec<Vec<FileInfo>> = Vec::new();
        for (segment, merge) in read_segments(candidates, !self.key.is_empty(), &deletes) {
            if merge {
                runs.push(segment);
            } else {
                plain.extend(segment.iter().map(|f| f.version));
            }
        }
        let singles = kept
            .into_iter()
            .filter(|f| plain.contains(&f.version))
            .collect();
        (singles, runs, deletes)
    }

    /// The filters that name only key columns: they keep or drop all rows
    /// of a key alike, so they may apply before the newest row of each key
    /// is chosen.
    fn key_filters(&self, filters: &[Expr]) -> Vec<Expr> {
        filters
            .iter()
            .filter(|f| f.column_refs().iter().all(|c| self.key.contains(&c.name)))
            .cloned()
            .collect()
    }

    /// The rows of `runs` in the columns `projection`: of a keyed series one
    /// per key, without the rows `deletes` remove. The filters on key
    /// columns prune their row groups and pages.
    pub(crate) fn merged_scan(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        (runs, deletes): (&[Vec<FileInfo>], &[Arc<Tombstone>]),
        url: ObjectStoreUrl,
        projection: &[usize],
        requests: &RequestCounter,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Rows of an unkeyed series stand alone: every filter may prune.
        let pruning = if self.key.is_empty() {
            filters.to_vec()
        } else {
            self.key_filters(filters)
        };
        let predicate = match conjunction(pruning) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(Arc::clone(&self.schema))?;
                physical_expr(state, expr, &df_schema).ok()
            }
            None => None,
        };
        let scan = MergedScan {
            scope: StoreScope::new(
                url.clone(),
                self.pond.object_store(),
                Some(self.pond.origin()),
            ),
            url,
            schema: &self.schema,
            timestamp_column: &self.timestamp_column,
            key: &self.key,
            projection,
            deletes,
            partitions: state.config().target_partitions().max(1),
        };
        let source = |table_schema| {
            let reader = CachedReaderFactory::new(
                requests.wrap(self.pond.object_store()),
                state.runtime_env(),
            );
            let source = parquet_source(state, table_schema, Arc::new(reader));
            match &predicate {
                Some(p) => source.with_predicate(Arc::clone(p)),
                None => source,
            }
        };
        scan.plan(runs, source, |expr, schema| {
            physical_expr(state, expr, schema)
        })
    }

    /// How many rows of the versions `kept` have a time from `first` to
    /// `last` µs, if that is known without reading a page: of each version
    /// with rows on both sides of a bound, the page index tells which rows
    /// are within (see [`rows_within`]). `None` otherwise.
    ///
    /// A scan that returns no column (`count(*)`) and whose filters are all
    /// within [`exact_range`] then returns only that many rows, which
    /// DataFusion's `AggregateStatistics` answers a count from. The
    /// metadata read is the one the scan would read, through the same cache.
    pub(crate) async fn rows_within(
        &self,
        state: &dyn Session,
        (first, last): (i64, i64),
        kept: &[FileInfo],
    ) -> DfResult<Option<u64>> {
        if first > last {
            return Ok(Some(0));
        }
        let Some(unit) = timestamp_unit(&self.time_type) else {
            return Ok(None);
        };
        let reader = CachedReaderFactory::new(self.pond.object_store(), state.runtime_env());
        let mut rows = 0_u64;
        let mut straddling = Vec::new();
        for f in kept {
            if last < f.min_event_time || f.max_event_time < first {
                continue;
            }
            if f.lies_within((first, last)) {
                let Ok(n) = u64::try_from(f.row_count) else {
                    return Ok(None);
                };
                rows += n;
            } else {
                straddling.extend(partitioned_files(
                    std::slice::from_ref(f),
                    &self.schema,
                    &self.timestamp_column,
                ));
            }
        }
        // Their footers as a scan reads them, a few at a time (from an
        // object store each is a request); the first that cannot tell ends
        // the count.
        let column = (self.timestamp_column.as_str(), unit);
        let reads: Vec<_> = (straddling.into_iter())
            .map(|file| {
                let reader = &reader;
                async move {
                    let metadata = reader.metadata(file).await?;
                    Ok::<_, DataFusionError>(rows_within(&metadata, column, (first, last)))
                }
            })
            .collect();
        let mut counts = futures::stream::iter(reads).buffered(FOOTERS_AT_ONCE);
        while let Some(counted) = counts.next().await {
            match counted? {
                Some(n) => rows += n,
                None => return Ok(None),
            }
        }
        Ok(Some(rows))
    }

    /// [`TableProvider::scan`] on the state `self` is pinned to.
    async fn plan_scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let window = self.window.and_then(|(s, e)| self.window_predicate(s, e));
        let asked = filters.len();
        let mut filters = filters.to_vec();
        filters.extend(window.clone());
        let ranges = time_ranges(&filters, &self.timestamp_column, &self.time_type);
        let predicate = self.version_predicate(state, &filters, &ranges)?;
        let (kept, total) = self.kept_versions(&ranges, &predicate)?;
        let (kept, runs, deletes) = self.split_reads(state, &filters, kept)?;
        // What the scan filters rows by itself: the window, and the filters
        // DataFusion left to it (`supports_filters_pushdown`, known again
        // here by their form alone, whatever the state was then), each only
        // if a version read, as it is or merged, has rows outside it. Later
        // pruning only drops versions, so this holds for whatever the scan
        // ends up reading.
        let within = |range: (i64, i64)| {
            (kept.iter().chain(runs.iter().flatten())).all(|f| f.lies_within(range))
        };
        let window_needed = self.window.is_some_and(|(start, end)| {
            end.checked_sub(1).is_none_or(|last| !within((start, last)))
        });
        let residual = conjunction(
            (window.clone().filter(|_| window_needed).into_iter()).chain(
                (filters[..asked].iter())
                    .filter(|f| self.exact_time_range(f).is_some_and(|r| !within(r)))
                    .cloned(),
            ),
        );
        // Where the files' row counts are not the answer (DataFusion takes
        // no statistics of no file), the page index may be.
        if (residual.is_some() || kept.is_empty())
            && projection.is_some_and(|columns| columns.is_empty())
            && runs.is_empty()
            && let Some(range) = exact_range(
                &filters[..asked],
                (&self.timestamp_column, &self.time_type),
                self.window,
            )
            && let Some(rows) = self.rows_within(state, range, &kept).await?
        {
            return rows_of_no_column(&self.schema, rows, limit, state.config().batch_size());
        }

        let url = store_url(&self.pond)?;
        state
            .runtime_env()
            .register_object_store(url.as_ref(), self.pond.object_store());
        let requests = RequestCounter::default();
        let reader =
            CachedReaderFactory::new(requests.wrap(self.pond.object_store()), state.runtime_env());
        let source = parquet_source(
            state,
            TableSchema::from(Arc::clone(&self.schema)),
            Arc::new(reader),
        );
        // DataFusion keeps the Inexact filters in a FilterExec above the
        // scan, and the scan its residual ones below; filter pushdown hands
        // them to the scan, which passes them on to the Parquet source for
        // row group and page pruning (see
        // `SeriesScanExec::handle_child_pushdown_result`).
        let partitions = state.config().target_partitions().max(1);
        let files = partitioned_files(&kept, &self.schema, &self.timestamp_column);
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let wanted = projection.cloned().unwrap_or(all);
        // The residual filter needs the time column even if the query does
        // not, and a limit counts only the rows it lets through.
        let ts_index = self.schema.index_of(&self.timestamp_column)?;
        let mut scanned = wanted.clone();
        if residual.is_some() && !scanned.contains(&ts_index) {
            scanned.push(ts_index);
        }
        let mut config = FileScanConfigBuilder::new(url.clone(), Arc::new(source))
            .with_projection_indices(Some(scanned.clone()))?
            .with_limit(if residual.is_some() { None } else { limit });
        // The order DataFusion may rely on. Appended files are sorted by
        // time: if the kept versions do not overlap in time, each group
        // (consecutive versions) is sorted as a whole and ORDER BY the time
        // column needs no sort. Files compacted with the same sort key are
        // each sorted by it: read one per partition, they make ORDER BY
        // that key a merge, not a sort. Files clustered by the key within
        // time buckets are in no order a query can name.
        let mut groups = partitions.min(kept.len()).max(1);
        let order: &[String] = match kept.first() {
            Some(first)
                if kept
                    .iter()
                    .all(|f| f.sort_key == first.sort_key && f.sort_bucket == 0) =>
            {
                &first.sort_key
            }
            _ => &[],
        };
        let ordering: Option<Vec<&str>> = if kept.iter().all(FileInfo::is_time_sorted) {
            disjoint(&kept).then(|| vec![self.timestamp_column.as_str()])
        } else if !order.is_empty() && kept.len() <= MAX_ORDERED_PARTITIONS {
            groups = kept.len();
            Some(order.iter().map(String::as_str).collect())
        } else {
            None
        };
        // Only an ordering on columns the scan returns means anything above
        // it (and only such a one survives being sent to another process:
        // datafusion-proto reads it against the returned columns).
        let ordering = ordering.map(|columns| -> Vec<&str> {
            columns
                .into_iter()
                .take_while(|c| self.schema.index_of(c).is_ok_and(|i| scanned.contains(&i)))
                .collect()
        });
        if let Some(columns) = ordering.filter(|c| !c.is_empty()) {
            let exprs = columns
                .iter()
                .map(|c| {
                    Ok(PhysicalSortExpr::new(
                        physical_col(c, &self.schema)?,
                        SortOptions::new(false, false),
                    ))
                })
                .collect::<DfResult<Vec<_>>>()?;
            config = config.with_output_ordering(LexOrdering::new(exprs).into_iter().collect());
        }
        let scan = SeriesScanExec::try_new(
            Arc::new(self.clone()) as Arc<dyn ScanSource>,
            requests.clone(),
            ranges,
            kept.len(),
            total,
            config.build(),
            chunks(files, groups),
        )?
        .pruned_by(predicate.filters())
        .with_footers(Footers::of(state.runtime_env()));
        let mut input: Arc<dyn ExecutionPlan> = Arc::new(scan);
        if !runs.is_empty() {
            // The merged runs' requests count on the scan beside them.
            let merged =
                self.merged_scan(state, &filters, (&runs, &deletes), url, &scanned, &requests)?;
            input = UnionExec::try_new(vec![input, merged])?;
        }
        filtered(state, input, residual, (&self.schema, &wanted), limit)
    }
}

/// How a table of pond takes `filter` (on its time column `column` of type
/// `data_type`): Exact if it is a comparison with a constant, which the
/// scan applies itself where a version it reads has rows outside it (see
/// [`filtered`]); Inexact otherwise, and DataFusion keeps filtering rows by
/// it.
pub(crate) fn time_filter_pushdown(
    filter: &Expr,
    column: &str,
    data_type: &DataType,
) -> TableProviderFilterPushDown {
    match exact_time_range(filter, column, data_type) {
        Some(_) => TableProviderFilterPushDown::Exact,
        None => TableProviderFilterPushDown::Inexact,
    }
}

/// The first `limit` of `rows` rows of none of `schema`'s columns: a scan
/// that returns no column, its rows counted from statistics (see
/// `SeriesTable::rows_within`). They come in batches of `batch_size`, or
/// of more where that would make over a thousand batches: rows of no
/// column take no memory, and a plan's batches are kept all at once.
pub(crate) fn rows_of_no_column(
    schema: &Schema,
    rows: u64,
    limit: Option<usize>,
    batch_size: usize,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(schema.project(&[])?);
    let rows = usize::try_from(rows)
        .map_err(|_| DataFusionError::Plan(format!("{rows} rows are more than a scan returns")))?;
    let rows = limit.map_or(rows, |limit| limit.min(rows));
    let size = batch_size
        .max(rows.div_ceil(MAX_BATCHES_OF_NO_COLUMN))
        .max(1);
    let batch = |n: usize| {
        RecordBatch::try_new_with_options(
            Arc::clone(&schema),
            Vec::new(),
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
    };
    let mut batches = vec![batch(size)?; rows / size];
    if !rows.is_multiple_of(size) {
        batches.push(batch(rows % size)?);
    }
    MemorySourceConfig::try_new_exec(&[batches], schema, None).map(|exec| exec as _)
}

/// How many footers `SeriesTable::rows_within` reads at once.
const FOOTERS_AT_ONCE: usize = 16;

/// At most how many batches [`rows_of_no_column`] makes.
const MAX_BATCHES_OF_NO_COLUMN: usize = 1_024;

/// `input` filtered by `residual` (the time filters a scan applies itself,
/// if any; see [`time_filter_pushdown`]), then its `columns` of `schema`,
/// then its first `limit` rows: a limit DataFusion gave the scan counts
/// only the rows the filter lets through.
pub(crate) fn filtered(
    state: &dyn Session,
    input: Arc<dyn ExecutionPlan>,
    residual: Option<Expr>,
    (schema, columns): (&Schema, &[usize]),
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let Some(residual) = residual else {
        return Ok(input);
    };
    let names: Vec<&str> = (columns.iter())
        .map(|&i| schema.field(i).name().as_str())
        .collect();
    let df_schema = DFSchema::try_from(input.schema())?;
    let predicate = physical_expr(state, unqualified(residual), &df_schema)?;
    let input: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(predicate, input)?);
    let schema = input.schema();
    let columns = (names.iter())
        .map(|name| Ok((physical_col(name, &schema)?, name.to_string())))
        .collect::<DfResult<Vec<_>>>()?;
    let input: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(columns, input)?);
    Ok(match limit {
        Some(limit) => Arc::new(GlobalLimitExec::new(
            Arc::new(CoalescePartitionsExec::new(input)),
            0,
            Some(limit),
        )),
        None => input,
    })
}

/// Appends everything written to it as one version of a series.
#[derive(Debug)]
struct SeriesSink {
    pond: Arc<Pond>,
    path: String,
    /// The table's schema, which the inserted rows come in.
    schema: SchemaRef,
    /// The series' own, which they are written in.
    stored: SchemaRef,
    timestamp_column: String,
}

impl DisplayAs for SeriesSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeriesSink: series={}", self.path)
    }
}

#[async_trait]
impl DataSink for SeriesSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let schema = unview_schema(&data.schema(), &self.stored);
        let target = Arc::clone(&schema);
        let input = data
            .map_err(Error::from)
            .and_then(move |batch| futures::future::ready(cast_batch(&batch, &target)));
        let outcome = self
            .pond
            .append_stream(&self.path, schema, input, &self.timestamp_column)
            .await?;
        Ok(outcome.row_count as u64)
    }
}

/// At most this many files clustered by a sort key are read one per
/// partition to keep their order; more are read like any others.
const MAX_ORDERED_PARTITIONS: usize = 64;

/// Whether the versions, ordered by their earliest time, do not overlap.
fn disjoint(files: &[FileInfo]) -> bool {
    files
        .windows(2)
        .all(|w| w[0].max_event_time < w[1].min_event_time)
}

/// The kept files, in time order, each with its row count, time bounds and
/// distinct counts as statistics.
fn partitioned_files(
    files: &[FileInfo],
    schema: &SchemaRef,
    timestamp_column: &str,
) -> Vec<PartitionedFile> {
    // The time column's type; bounds are built in its own zone (a cast from
    // a zone-less timestamp would read the instant as local time there).
    // Whole microseconds are exact in every unit but the nanosecond, where
    // the oplog rounds outwards; DataFusion prunes files only with exact
    // bounds.
    let ts =
        schema
            .index_of(timestamp_column)
            .ok()
            .and_then(|i| match schema.field(i).data_type() {
                t @ DataType::Timestamp(unit, zone) => {
                    Some((i, t.clone(), zone.clone(), *unit != TimeUnit::Nanosecond))
                }
                _ => None,
            });
    files
        .iter()
        .map(|f| {
            let mut stats = Statistics::new_unknown(schema);
            stats.num_rows = Precision::Exact(f.row_count as usize);
            // Estimates for the planner (group counts, join sides), which
            // DataFusion merges across files; never used to answer a query.
            for (name, n) in &f.distinct {
                if let Ok(i) = schema.index_of(name) {
                    stats.column_statistics[i].distinct_count = Precision::Inexact(*n as usize);
                }
            }
            stats.total_byte_size = Precision::Inexact(f.size as usize);
            if let Some((i, t, zone, exact)) = &ts {
                let bound = |us: i64| {
                    let value = ScalarValue::TimestampMicrosecond(Some(us), zone.clone())
                        .cast_to(t)
                        .ok()?;
                    Some(if *exact {
                        Precision::Exact(value)
                    } else {
                        Precision::Inexact(value)
                    })
                };
                let column = &mut stats.column_statistics[*i];
                column.null_count = Precision::Exact(0);
                if let (Some(min), Some(max)) = (bound(f.min_event_time), bound(f.max_event_time)) {
                    column.min_value = min;
                    column.max_value = max;
                }
            }
            PartitionedFile::new(f.file_path.clone(), f.size as u64)
                .with_statistics(Arc::new(stats))
        })
        .collect()
}

/// `expr` with its timestamp literals written so that the SQL a delete is
/// stored as reads back as the same instants, in every unit and zone.
///
/// DataFusion's unparser writes such a literal as `CAST('…' AS TIMESTAMP)`:
/// nanoseconds without a zone, which a column with a zone other than UTC
/// takes as that zone's wall-clock time (a bound moved by the offset), and
/// which cannot hold times after 2262. A literal compared with something
/// else (a column) is written instead as the instant in RFC 3339, UTC: the
/// comparison casts the text to the other side's type, as it did the text
/// the user wrote, and any pond reads it. Others, and instants beyond
/// nanoseconds, as `arrow_cast(value, 'Timestamp(unit, zone)')`, in the
/// form arrow has parsed longest.
fn typed_timestamps(expr: Expr) -> DfResult<Expr> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::{BinaryExpr, lit};
    expr.transform_down(|e| match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if crate::comparisons::is_comparison(op)
                && (rfc3339(&left).is_some() != rfc3339(&right).is_some()) =>
        {
            let text = |side: Box<Expr>| match rfc3339(&side) {
                Some(text) => Box::new(lit(text)),
                None => side,
            };
            let (left, right) = (text(left), text(right));
            Ok(Transformed::new(
                Expr::BinaryExpr(BinaryExpr { left, op, right }),
                true,
                TreeNodeRecursion::Continue,
            ))
        }
        Expr::Literal(value, metadata) => {
            let (Some((raw, unit)), DataType::Timestamp(_, zone)) =
                (scalar_timestamp(&value), value.data_type())
            else {
                return Ok(Transformed::no(Expr::Literal(value, metadata)));
            };
            let zone = match zone {
                Some(zone) => format!("Some(\"{zone}\")"),
                None => "None".to_string(),
            };
            let unit = match unit {
                TimeUnit::Second => "Second",
                TimeUnit::Millisecond => "Millisecond",
                TimeUnit::Microsecond => "Microsecond",
                TimeUnit::Nanosecond => "Nanosecond",
            };
            Ok(Transformed::yes(
                datafusion::functions::expr_fn::arrow_cast(
                    lit(raw),
                    lit(format!("Timestamp({unit}, {zone})")),
                ),
            ))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// The instant of a timestamp literal as RFC 3339 text in UTC, with as
/// many digits of the second as it holds, if it lies within nanoseconds'
/// range (arrow casts text to timestamps through them).
fn rfc3339(expr: &Expr) -> Option<String> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    let (raw, unit) = scalar_timestamp(value)?;
    let nanos = raw.checked_mul(crate::time::nanos_per(unit))?;
    Some(
        chrono::DateTime::from_timestamp_nanos(nanos)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}
