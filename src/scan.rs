//! [`SeriesScanExec`]: the scan node of one series.
//!
//! It wraps DataFusion's Parquet scan of the versions the oplog kept and
//! takes part in DataFusion's physical rewrites on its behalf: filter
//! pushdown (a `FilterExec`'s conjuncts, the dynamic filters of TopK and
//! hash joins), sort pushdown, limit pushdown and file repartitioning. The
//! filters it receives go on to the Parquet scan, which prunes files, row
//! groups and pages with them; [`crate::SeriesTimePruning`] then uses them to
//! prune versions through the oplog index as well.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::DataType;
use object_store::path::Path as ObjectPath;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ScalarValue, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column, DynamicFilterPhysicalExpr, Literal,
};
use datafusion::physical_expr::utils::{reassign_expr_columns, split_conjunction};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr_opt;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SortOrderPushdownResult,
};
use datafusion_datasource::compute_all_files_statistics;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use crate::error::Result;
use crate::pruning::groups::bounds_one_side;
use crate::pruning::versions::VersionPredicate;
use crate::pruning::{TimeRanges, physical_time_ranges};
use crate::reader::{Footers, RowGroupSpan, row_group_spans};
use crate::runs::Extreme;
use object_store::ObjectStore;

use crate::scope::StoreScope;
use crate::store::RequestCounter;
use crate::time::{
    floor_micros, format_micros, native_lower_bound, native_upper_bound, scalar_timestamp,
    timestamp_scalar, timestamp_unit,
};

/// What a [`SeriesScanExec`] reads: the versions of one series
/// ([`crate::SeriesTable`]) or of many (`series_union`), and which of them
/// filters pushed in later keep.
pub(crate) trait ScanSource: fmt::Debug + Send + Sync {
    /// The time column in the scan's schema.
    fn time_column(&self) -> &str;

    /// The time column's type.
    fn time_type(&self) -> &DataType;

    /// The files of the versions that may hold rows within `ranges` and
    /// meeting `predicate`, among those the scan was planned on.
    fn kept_paths(
        &self,
        ranges: &TimeRanges,
        predicate: &VersionPredicate,
    ) -> Result<HashSet<ObjectPath>>;

    /// The series read, as EXPLAIN shows them: `series=/a` or `series=k/n`.
    fn describe(&self) -> String;

    /// What reading `paths` (the files of versions within `ranges`) as
    /// they are for the newest (`Extreme::Max`) or oldest time of each
    /// value of `column` can leave out (see [`crate::pruning::groups`]).
    /// Nothing unless the source knows its versions' values.
    fn superseded_paths(
        &self,
        _paths: &HashSet<&str>,
        _ranges: &TimeRanges,
        _column: &str,
        _extreme: Extreme,
    ) -> Result<SupersededPaths> {
        Ok(SupersededPaths::default())
    }

    /// The store the files are read from.
    fn store(&self) -> Arc<dyn ObjectStore>;

    /// Where that store comes from, if another process can open it too.
    fn origin(&self) -> Option<crate::scope::StoreOrigin>;
}

/// What a scan for each group's newest (or oldest) time can leave out.
#[derive(Debug, Default)]
pub(crate) struct SupersededPaths {
    /// The files of versions that hold no group's newest (oldest) time.
    pub(crate) paths: HashSet<ObjectPath>,
    /// A time, µs, that every group's newest time is at or after (oldest at
    /// or before).
    pub(crate) bound: Option<i64>,
}

/// The scan of one series or of many: the version pruning of the oplog over
/// DataFusion's Parquet scan of the kept versions.
#[derive(Debug, Clone)]
pub struct SeriesScanExec {
    /// The Parquet scan of the kept versions.
    input: Arc<DataSourceExec>,
    source: Arc<dyn ScanSource>,
    /// The times the scan can still match.
    ranges: TimeRanges,
    kept: usize,
    total: usize,
    /// Filters DataFusion's filter pushdown handed to this scan, in terms of
    /// its output schema.
    pushed: Vec<Arc<dyn PhysicalExpr>>,
    /// Dynamic filters to prune versions with when a partition starts.
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    /// Filters, in terms of the output schema, that the kept versions
    /// were pruned by when the scan was planned: pushed in again, they
    /// prune nothing more (see [`Self::pruned_by`]).
    pruned_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The Parquet scan as the dynamic filters left it: built once per
    /// execution, by the first partition to start, and shared by all, so
    /// that DataFusion's sharing of files between partitions sees one scan.
    started: Arc<OnceCell<Arc<DataSourceExec>>>,
    /// Versions pruned at execution by dynamic filters.
    metrics: ExecutionPlanMetricsSet,
    /// The requests the Parquet scan made to the pond's store.
    requests: RequestCounter,
    /// The store, for tasks whose environment has not got it.
    scope: Arc<StoreScope>,
    /// The Parquet scan as the scan's child, once the plan is final and
    /// goes to a distributed engine (see [`Self::with_visible_input`]);
    /// `None` while DataFusion optimizes it.
    visible: Option<Arc<dyn ExecutionPlan>>,
    /// Rebuilt from a plan another process sent (see `Self::rebuilt`).
    rebuilt: bool,
    /// The footers the session has read, which place the cuts of
    /// [`Self::split_by_time`] at row groups.
    footers: Option<Footers>,
}

impl SeriesScanExec {
    /// A scan of `files` (the `kept` of `total` versions that meet `ranges`)
    /// in `groups`, one per output partition, configured by `config`.
    pub(crate) fn try_new(
        source: Arc<dyn ScanSource>,
        requests: RequestCounter,
        ranges: TimeRanges,
        kept: usize,
        total: usize,
        config: FileScanConfig,
        groups: Vec<Vec<PartitionedFile>>,
    ) -> DfResult<Self> {
        Self::over(
            data_source(config, groups)?,
            source,
            requests,
            ranges,
            (kept, total),
        )
    }

    /// A scan of `input`, the Parquet scan of the `kept` of `total`
    /// versions that meet `ranges`, with the store `source` names for tasks
    /// whose environment has not got it.
    fn over(
        input: Arc<DataSourceExec>,
        source: Arc<dyn ScanSource>,
        requests: RequestCounter,
        ranges: TimeRanges,
        (kept, total): (usize, usize),
    ) -> DfResult<Self> {
        let url = input
            .data_source()
            .downcast_ref::<FileScanConfig>()
            .map(|config| config.object_store_url.clone())
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(
                    "a series scan reads files".to_string(),
                )
            })?;
        Ok(Self {
            scope: StoreScope::new(url, source.store(), source.origin()),
            input,
            source,
            ranges,
            kept,
            total,
            pushed: Vec::new(),
            dynamic: Vec::new(),
            pruned_by: Vec::new(),
            started: Arc::default(),
            metrics: ExecutionPlanMetricsSet::new(),
            requests,
            visible: None,
            rebuilt: false,
            footers: None,
        })
    }

    /// The scan, splitting its files among partitions where `footers` (the
    /// session's metadata cache) says their row groups lie.
    pub(crate) fn with_footers(self, footers: Footers) -> Self {
        Self {
            footers: Some(footers),
            ..self
        }
    }

    /// Records that the kept versions were pruned by `filters`, which refer
    /// to the table's columns by name.
    ///
    /// DataFusion's filter pushdown hands the scan the filters of the
    /// `FilterExec` above it, which are usually these same filters: the
    /// versions they keep are the ones kept already, and building their
    /// `PruningPredicate` again cost a few dozen microseconds per query. A
    /// filter on a column the scan does not return cannot come back, and
    /// is left out.
    pub(crate) fn pruned_by(mut self, filters: &[Arc<dyn PhysicalExpr>]) -> Self {
        let schema = self.schema();
        self.pruned_by = filters
            .iter()
            .filter_map(|f| reassign_expr_columns(Arc::clone(f), &schema).ok())
            .collect();
        self
    }

    /// Versions read out of the series' total.
    pub fn versions(&self) -> (usize, usize) {
        (self.kept, self.total)
    }

    /// The scan as another process rebuilds it from a plan sent to it (see
    /// [`crate::cluster`]): the Parquet scan of exactly the versions the
    /// planner kept, read through `source`. Filters pushed in and dynamic
    /// filters are in the Parquet scan's predicate; the versions they
    /// pruned are gone from it already.
    #[cfg(feature = "cluster")]
    pub(crate) fn rebuilt(
        input: Arc<DataSourceExec>,
        source: Arc<dyn ScanSource>,
        ranges: TimeRanges,
        (kept, total): (usize, usize),
    ) -> DfResult<Self> {
        let scan = Self::over(
            input,
            source,
            RequestCounter::default(),
            ranges,
            (kept, total),
        )?;
        Ok(Self {
            rebuilt: true,
            ..scan
        }
        .with_visible_input())
    }

    /// The Parquet scan inside, as the oplog's pruning left it.
    #[cfg(feature = "cluster")]
    pub(crate) fn input(&self) -> &Arc<DataSourceExec> {
        &self.input
    }

    /// What the scan reads, and the times it can still match.
    #[cfg(feature = "cluster")]
    pub(crate) fn source(&self) -> (&Arc<dyn ScanSource>, &TimeRanges) {
        (&self.source, &self.ranges)
    }

    fn config(&self) -> &FileScanConfig {
        self.input
            .data_source()
            .downcast_ref::<FileScanConfig>()
            .expect("a series scan reads files")
    }

    fn with_input(&self, input: Arc<dyn ExecutionPlan>) -> Option<Self> {
        let input = Arc::new(input.downcast_ref::<DataSourceExec>()?.clone());
        Some(Self {
            visible: self
                .visible
                .as_ref()
                .map(|_| Arc::clone(&input) as Arc<dyn ExecutionPlan>),
            input,
            started: Arc::default(),
            ..self.clone()
        })
    }

    /// The scan with its Parquet scan as its child, for an engine that
    /// hands each task a share of a stage's partitions by rewriting the
    /// plan's file scans (Ballista's scheduler): the files of partitions
    /// another task reads are then gone from this task's scan. Only for a
    /// plan DataFusion has finished optimizing: its rules would otherwise
    /// change the Parquet scan behind the oplog's back.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn with_visible_input(self) -> Self {
        Self {
            visible: Some(Arc::clone(&self.input) as Arc<dyn ExecutionPlan>),
            ..self
        }
    }

    /// Whether the Parquet scan is the scan's child.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn input_is_visible(&self) -> bool {
        self.visible.is_some()
    }

    /// This scan with its versions pruned by the static filters pushed into
    /// it, and its dynamic filters armed to prune when execution starts; or
    /// `None` if that changes nothing.
    pub(crate) fn apply_pushed_filters(&self) -> DfResult<Option<Self>> {
        let (dynamic, fixed): (Vec<_>, Vec<_>) = self
            .pushed
            .iter()
            .filter(|f| !self.pruned_by.iter().any(|p| p == *f))
            .cloned()
            .partition(is_dynamic);
        let (time_type, ts) = (self.source.time_type(), self.source.time_column());
        let pushed = physical_time_ranges(&fixed, ts, time_type);
        let ranges = self.ranges.intersect(&pushed);
        let predicate = VersionPredicate::new(&fixed, &self.schema(), ts);
        if ranges == self.ranges && !predicate.can_prune() && dynamic.is_empty() {
            return Ok(None);
        }
        let mut scan = Self {
            pushed: Vec::new(),
            dynamic,
            started: Arc::default(),
            ..self.clone()
        };
        if ranges != self.ranges || predicate.can_prune() {
            // The scan holds only versions its own filters kept; these
            // filters prune among them.
            let (groups, dropped) = self.files_within(&pushed, &predicate)?;
            scan.kept = self.kept.saturating_sub(dropped);
            let config = self.config();
            let files = groups.into_iter().flatten().collect();
            scan.input = data_source(
                config.clone(),
                chunks(files, config.file_groups.len().max(1)),
            )?;
            scan.ranges = ranges;
        }
        // Even of one version the dynamic filters are kept: when the scan
        // starts, their values go to the Parquet scan's page pruning too
        // (see `settled_config`).
        Ok(Some(scan))
    }

    /// This scan without the versions that cannot hold the newest (for
    /// `Extreme::Max`) or oldest time of any value of the column `group`,
    /// by the time column `time`, and with the Parquet scan pruning the row
    /// groups and pages before (after) every value's newest (oldest) time,
    /// if it reads its versions' rows as they are, filtered at most by
    /// bounds on that side of the time column; or `None` if that leaves
    /// out nothing (see [`crate::pruning::groups`]).
    pub(crate) fn without_superseded(
        &self,
        group: &str,
        time: &str,
        extreme: Extreme,
    ) -> DfResult<Option<Self>> {
        let ts = self.source.time_column();
        let config = self.config();
        let one_sided = match (extreme, self.ranges.hull()) {
            (_, None) => false,
            (Extreme::Max, Some((first, _))) => {
                self.ranges == TimeRanges::between(first, crate::MAX_TIME)
            }
            (Extreme::Min, Some((_, last))) => {
                self.ranges == TimeRanges::between(crate::MIN_TIME, last)
            }
        };
        if time != ts
            || group == ts
            || !one_sided
            || !self.dynamic.is_empty()
            || config.limit.is_some()
            || (self.pushed.iter().cloned())
                .chain(config.file_source().filter())
                .any(|predicate| !bounds_one_side(&predicate, |c| c.name() == ts, extreme))
        {
            return Ok(None);
        }
        let paths: HashSet<&str> = (config.file_groups.iter().flat_map(|g| g.iter()))
            .map(|f| f.object_meta.location.as_ref())
            .collect();
        let SupersededPaths {
            paths: superseded,
            bound,
        } = (self.source).superseded_paths(&paths, &self.ranges, group, extreme)?;
        // A bound the scan has already (from a pass of the rule before)
        // is not added again.
        let filter = config.file_source().filter();
        let bound = bound
            .and_then(|bound| self.time_bound(bound, extreme))
            .filter(|bound| {
                !(filter.iter()).any(|f| split_conjunction(f).into_iter().any(|c| c == bound))
            });
        if superseded.is_empty() && bound.is_none() {
            return Ok(None);
        }
        let (groups, dropped) = self.files_where(|path| !superseded.contains(path));
        let mut config = config.clone();
        if let (Some(bound), Some(source)) =
            (bound, config.file_source().downcast_ref::<ParquetSource>())
        {
            let predicate = match filter {
                Some(filter) => Arc::new(BinaryExpr::new(filter, Operator::And, bound)),
                None => bound,
            };
            config = FileScanConfigBuilder::from(config.clone())
                .with_source(Arc::new(source.with_predicate(predicate)))
                .build();
        }
        Ok(Some(Self {
            input: data_source(config, groups)?,
            kept: self.kept.saturating_sub(dropped),
            started: Arc::default(),
            ..self.clone()
        }))
    }

    /// `ts >= bound` (`Extreme::Max`) or `ts <= bound` over the Parquet
    /// scan's table schema, in the time column's unit: a row is within it
    /// exactly when its time rounded down (up) to µs is.
    fn time_bound(&self, bound: i64, extreme: Extreme) -> Option<Arc<dyn PhysicalExpr>> {
        let ts = self.source.time_column();
        let time_type = self.source.time_type();
        let DataType::Timestamp(unit, _) = time_type else {
            return None;
        };
        let schema = self.config().file_source().table_schema().table_schema();
        let column = Arc::new(Column::new(ts, schema.index_of(ts).ok()?));
        let (native, op) = match extreme {
            Extreme::Max => (native_lower_bound(bound, *unit)?, Operator::GtEq),
            Extreme::Min => (native_upper_bound(bound, *unit)?, Operator::LtEq),
        };
        let literal = Arc::new(Literal::new(timestamp_scalar(native, time_type)));
        Some(Arc::new(BinaryExpr::new(column, op, literal)))
    }

    /// The stream of `partition` of the scan without the files of versions
    /// that the dynamic filters rule out, as they are when the first
    /// partition is polled. A hash join polls its probe side only once its
    /// build side is complete, so its filter is final by then.
    fn execute_pruned(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let scan = self.clone();
        let open = async move {
            let input = scan
                .started
                .get_or_try_init(|| async { scan.dynamically_pruned() })
                .await?;
            input.execute(partition, context)
        };
        let stream = futures::stream::once(open).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream.boxed(),
        )))
    }

    /// The Parquet scan without the versions the dynamic filters rule out
    /// now; each partition keeps its files in their order.
    fn dynamically_pruned(&self) -> DfResult<Arc<DataSourceExec>> {
        // A TopK's filter holds nothing yet when the scan starts (it
        // tightens as rows come, and the Parquet scan reads it as it opens
        // each file): the scan is left as it is. Building the pruning of
        // nothing cost the newest 5 minutes of the devops benchmark 10%.
        if self.dynamic.iter().all(holds_nothing_yet) {
            return Ok(Arc::clone(&self.input));
        }
        let ts = self.source.time_column();
        let ranges = physical_time_ranges(&self.dynamic, ts, self.source.time_type());
        let predicate = VersionPredicate::new(&self.dynamic, &self.schema(), ts);
        let settled = self.settled_config()?;
        if ranges.is_all() && !predicate.can_prune() {
            return match settled {
                Some(config) => data_source(config, self.file_groups()),
                None => Ok(Arc::clone(&self.input)),
            };
        }
        let (groups, dropped) = self.files_within(&ranges, &predicate)?;
        MetricBuilder::new(&self.metrics)
            .global_counter("versions_pruned_dynamic")
            .add(dropped);
        data_source(settled.unwrap_or_else(|| self.config().clone()), groups)
    }

    /// The Parquet scan's configuration with its predicate's dynamic
    /// filters also given as their values now, or `None` if it has none.
    ///
    /// DataFusion's page index pruning reads only the conjuncts of a
    /// predicate that name one column, and a hash join's dynamic filter on
    /// two key columns (`hostname`, `ts`) is one expression naming both: the
    /// probe side read every page of the row groups its bounds kept. Its
    /// value, once the build side is complete (as it is when the probe side
    /// starts), is a conjunction of bounds per column. A value is never
    /// wrong to filter by: a join's is final by then, and a TopK's only
    /// tightens, so the dynamic filters stay beside it for what comes later.
    fn settled_config(&self) -> DfResult<Option<FileScanConfig>> {
        let config = self.config();
        let (Some(source), Some(filter)) = (
            config.file_source().downcast_ref::<ParquetSource>(),
            config.file_source().filter(),
        ) else {
            return Ok(None);
        };
        let now = snapshot_physical_expr_opt(Arc::clone(&filter))?;
        if !now.transformed {
            return Ok(None);
        }
        let both = Arc::new(BinaryExpr::new(filter, Operator::And, now.data));
        let source = Arc::new(source.with_predicate(both));
        Ok(Some(
            FileScanConfigBuilder::from(config.clone())
                .with_source(source)
                .build(),
        ))
    }

    /// The Parquet scan with its files split among `partitions` by the
    /// bytes where the scan's time range lies, or `None` where DataFusion's
    /// split by size is as good or the only one that applies.
    ///
    /// DataFusion splits files into byte ranges of equal size, and a row
    /// group is read by the range its first page is in. A query of the
    /// last 12 hours of a day file wants the last row groups only, which
    /// all lie in the last range: one partition read every row
    /// (`output_rows_skew` 49%) and the other nothing. Where the files'
    /// rows are in time order, or in time buckets (as compaction writes
    /// them), the bytes of a time range are about where it lies between
    /// the file's first and last time; the cuts go there, so that each
    /// partition gets a share of those bytes. Every row group is still in
    /// exactly one range: only the balance depends on the estimate.
    fn split_by_time(
        &self,
        partitions: usize,
        config: &ConfigOptions,
    ) -> Option<Arc<DataSourceExec>> {
        let scan = self.config();
        let (first, last) = self.ranges.hull()?;
        if partitions < 2
            || !config.optimizer.repartition_file_scans
            || self.ranges.is_all()
            || self.input.properties().output_ordering().is_some()
        {
            return None;
        }
        if let Some(split) = self.split_at_row_groups(partitions, config) {
            return Some(split);
        }
        let ts = scan
            .file_schema()
            .index_of(self.source.time_column())
            .ok()?;
        // Each file's size and the part of its bytes the range is in.
        let mut files = Vec::new();
        for file in scan.file_groups.iter().flat_map(|g| g.iter()) {
            let bounds = file.statistics.as_ref()?.column_statistics.get(ts)?;
            let micros = |v: &Precision<ScalarValue>| v.get_value().and_then(scalar_micros);
            let (min, max) = (micros(&bounds.min_value)?, micros(&bounds.max_value)?);
            if file.range.is_some() || max < min {
                return None;
            }
            let size = file.object_meta.size as f64;
            let span = (max - min).max(1) as f64;
            let at = |t: i64| ((t.saturating_sub(min)) as f64 / span).clamp(0.0, 1.0) * size;
            files.push((file, at(first), at(last).max(at(first) + 1.0)));
        }
        let hot: f64 = files.iter().map(|(_, a, b)| b - a).sum();
        // Pieces of the range's bytes, up to a few per partition: a
        // partition that runs out of pieces takes its siblings' (DataFusion's
        // work stealing), which evens out what the estimate got wrong. But
        // none smaller than half `repartition_file_min_size` (about a row
        // group of a compacted file): a piece costs an opening of its file.
        let smallest = (config.optimizer.repartition_file_min_size / 2).max(1) as f64;
        let pieces = ((hot / smallest).ceil() as usize).min(partitions * PIECES_PER_PARTITION);
        if pieces < 2 {
            return None;
        }
        let share = hot / pieces as f64;
        let mut split: Vec<PartitionedFile> = Vec::new();
        let mut filled = 0.0;
        for (file, a, b) in files {
            let size = file.object_meta.size as i64;
            let mut start = 0_i64;
            let mut at = a;
            while at < b {
                let take = (share - filled).min(b - at);
                at += take;
                filled += take;
                if filled >= share - 0.5 {
                    filled = 0.0;
                    let cut = at as i64;
                    if at < b && start < cut && cut < size {
                        split.push(file.clone().with_range(start, cut));
                        start = cut;
                    }
                }
            }
            split.push(file.clone().with_range(start, size));
        }
        let groups = chunks(split, partitions).into_iter();
        // As DataFusion's own split: the scan's statistics stay the files'.
        let mut config = scan.clone();
        config.file_groups = groups.map(FileGroup::new).collect();
        Some(DataSourceExec::from_data_source(config))
    }

    /// The Parquet scan with its files split among `partitions` at the
    /// starts of row groups, by the bytes of the row groups whose times
    /// meet the scan's range; `None` unless the session's metadata cache
    /// holds every file's footer (as it does once a query has read them).
    ///
    /// The estimate of [`Self::split_by_time`] cuts where no row group
    /// starts: a piece with no row group of the range still costs an
    /// opening of its file (its predicate and page pruning set up), and
    /// the row groups' sizes decide the balance, not their times. Here
    /// each partition reads its consecutive share of the range's row
    /// groups, one byte range per file; a partition is given a share only
    /// if each share is at least half `repartition_file_min_size` (or if
    /// there are as many files to read), so a range of a few small row
    /// groups of one file stays in one. A row group outside the
    /// range goes with the piece before it (or the file's first), so every
    /// row group is still in exactly one piece.
    fn split_at_row_groups(
        &self,
        partitions: usize,
        config: &ConfigOptions,
    ) -> Option<Arc<DataSourceExec>> {
        let footers = self.footers.as_ref()?;
        let scan = self.config();
        let time = (
            self.source.time_column(),
            timestamp_unit(self.source.time_type())?,
        );
        let mut files = Vec::new();
        for file in scan.file_groups.iter().flat_map(|g| g.iter()) {
            if file.range.is_some() {
                return None;
            }
            let spans = row_group_spans(footers.get(file)?.as_ref(), time)?;
            // Byte ranges need the row groups in the order of their bytes.
            if spans.windows(2).any(|pair| pair[0].start >= pair[1].start) {
                return None;
            }
            files.push((file, spans));
        }
        // The bytes of a row group that may hold times in the range.
        let wanted = |span: &RowGroupSpan| match span.times {
            Some((min, max)) if !self.ranges.overlaps(min, max) => 0,
            _ => span.bytes.max(1),
        };
        let total: i64 = files.iter().flat_map(|(_, s)| s).map(wanted).sum();
        let smallest = (config.optimizer.repartition_file_min_size / 2).max(1) as i64;
        // As many partitions as shares of that size, or as files to read
        // (which DataFusion would spread over the partitions whole).
        let by_bytes = usize::try_from(total.saturating_add(smallest - 1) / smallest);
        let reading = (files.iter())
            .filter(|(_, spans)| spans.iter().any(|s| wanted(s) > 0))
            .count();
        let used = by_bytes
            .unwrap_or(partitions)
            .max(reading)
            .clamp(1, partitions);
        let share = total as f64 / used as f64;
        let mut groups = vec![Vec::new(); partitions];
        let mut before = 0_i64;
        for (file, spans) in files {
            // The partition and first byte of each piece of the file.
            let mut pieces: Vec<(usize, i64)> = Vec::new();
            for span in &spans {
                let bytes = wanted(span);
                if bytes == 0 {
                    continue;
                }
                let middle = (before as f64 + bytes as f64 / 2.0) / share;
                let partition = (middle as usize).min(used - 1);
                before += bytes;
                if pieces.last().is_none_or(|&(p, _)| p != partition) {
                    pieces.push((partition, span.start));
                }
            }
            let size = file.object_meta.size as i64;
            match pieces.as_mut_slice() {
                [] => groups[((before as f64 / share) as usize).min(used - 1)].push(file.clone()),
                [(partition, _)] => groups[*partition].push(file.clone()),
                [first, ..] => {
                    first.1 = 0;
                    for (i, &(partition, start)) in pieces.iter().enumerate() {
                        let end = pieces.get(i + 1).map_or(size, |next| next.1);
                        groups[partition].push(file.clone().with_range(start, end));
                    }
                }
            }
        }
        let mut config = scan.clone();
        config.file_groups = groups.into_iter().map(FileGroup::new).collect();
        Some(DataSourceExec::from_data_source(config))
    }

    /// The files of each partition of the Parquet scan.
    fn file_groups(&self) -> Vec<Vec<PartitionedFile>> {
        (self.config().file_groups.iter())
            .map(|group| group.iter().cloned().collect())
            .collect()
    }

    /// The scan's file groups, each in its order, without the files of
    /// versions that cannot meet `ranges` and `predicate` (see
    /// [`crate::pruning`]), which read filters pushed into the scan beside
    /// the ones it was planned with; and how many versions that dropped.
    fn files_within(
        &self,
        ranges: &TimeRanges,
        predicate: &VersionPredicate,
    ) -> DfResult<(Vec<Vec<PartitionedFile>>, usize)> {
        let keep = self.source.kept_paths(ranges, predicate)?;
        Ok(self.files_where(|path| keep.contains(path)))
    }

    /// The scan's file groups, each in its order (and each kept, empty or
    /// not), with only the files `keep` says; and how many files that
    /// dropped (a file split into pieces counts once).
    fn files_where(
        &self,
        keep: impl Fn(&ObjectPath) -> bool,
    ) -> (Vec<Vec<PartitionedFile>>, usize) {
        let mut dropped = HashSet::new();
        let groups = (self.config().file_groups.iter())
            .map(|group| {
                (group.iter())
                    .filter(|f| {
                        let kept = keep(&f.object_meta.location);
                        if !kept {
                            dropped.insert(&f.object_meta.location);
                        }
                        kept
                    })
                    .cloned()
                    .collect()
            })
            .collect();
        (groups, dropped.len())
    }
}

/// A timestamp's µs since the epoch, rounded down.
fn scalar_micros(value: &ScalarValue) -> Option<i64> {
    let (value, unit) = scalar_timestamp(value)?;
    floor_micros(value, unit)
}

/// How many pieces [`SeriesScanExec::split_by_time`] cuts a scan's time
/// range into per partition.
const PIECES_PER_PARTITION: usize = 2;

/// Whether the dynamic filter `expr` keeps every row as it is now.
fn holds_nothing_yet(expr: &Arc<dyn PhysicalExpr>) -> bool {
    snapshot_physical_expr_opt(Arc::clone(expr)).is_ok_and(|now| {
        now.data
            .downcast_ref::<Literal>()
            .is_some_and(|l| l.value() == &ScalarValue::Boolean(Some(true)))
    })
}

/// Whether `expr` holds a dynamic filter, whose value changes while the
/// query runs.
fn is_dynamic(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.exists(|e| Ok(e.is::<DynamicFilterPhysicalExpr>()))
        .unwrap_or(true)
}

/// Splits `files`, in order, into `n` groups of consecutive files (some
/// possibly empty: the number of partitions must not change after planning).
pub(crate) fn chunks(files: Vec<PartitionedFile>, n: usize) -> Vec<Vec<PartitionedFile>> {
    let per_group = files.len().div_ceil(n).max(1);
    let mut groups: Vec<Vec<PartitionedFile>> = Vec::with_capacity(n);
    let mut files = files.into_iter().peekable();
    while groups.len() < n {
        groups.push(files.by_ref().take(per_group).collect());
    }
    groups
}

/// `config` reading `groups`, with each group's statistics (summed from its
/// files') and the whole scan's, so that join planning and `count(*)` see
/// the oplog's row counts. A byte range of a file carries the whole file's
/// statistics; they only bound the range's rows, so they count as inexact.
fn data_source(
    config: FileScanConfig,
    groups: Vec<Vec<PartitionedFile>>,
) -> DfResult<Arc<DataSourceExec>> {
    let schema = Arc::clone(config.file_source().table_schema().table_schema());
    let groups = groups.into_iter().map(|group| {
        group
            .into_iter()
            .map(|mut file| {
                if file.range.is_some()
                    && let Some(statistics) = &file.statistics
                {
                    file.statistics = Some(Arc::new(statistics.as_ref().clone().to_inexact()));
                }
                file
            })
            .collect::<Vec<_>>()
    });
    // Empty groups (left by pruning) would make every sum unknown.
    let (full, empty): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .enumerate()
        .partition(|(_, g)| !g.is_empty());
    let (order, full): (Vec<usize>, Vec<FileGroup>) = full
        .into_iter()
        .map(|(i, g)| (i, FileGroup::new(g)))
        .unzip();
    let (full, statistics) = compute_all_files_statistics(full, Arc::clone(&schema), true, false)?;
    let mut nothing = Statistics::new_unknown(&schema);
    nothing.num_rows = Precision::Exact(0);
    nothing.total_byte_size = Precision::Exact(0);
    let nothing = Arc::new(nothing);
    let mut groups: Vec<(usize, FileGroup)> = order.into_iter().zip(full).collect();
    groups.extend(empty.into_iter().map(|(i, _)| {
        (
            i,
            FileGroup::new(Vec::new()).with_statistics(Arc::clone(&nothing)),
        )
    }));
    groups.sort_by_key(|(i, _)| *i);
    let groups: Vec<FileGroup> = groups.into_iter().map(|(_, g)| g).collect();
    let config = FileScanConfigBuilder::from(config)
        .with_file_groups(groups)
        .with_statistics(statistics)
        .build();
    Ok(DataSourceExec::from_data_source(config))
}

impl DisplayAs for SeriesScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = match self.ranges.hull() {
            None => "empty".to_string(),
            Some(_) if self.ranges.is_all() => "all".to_string(),
            Some(_) => self
                .ranges
                .ranges()
                .iter()
                .map(|&(a, b)| {
                    let show = |t: i64| match t {
                        crate::MIN_TIME => "-∞".to_string(),
                        crate::MAX_TIME => "∞".to_string(),
                        t => format_micros(t),
                    };
                    format!("[{}, {}]", show(a), show(b))
                })
                .collect::<Vec<_>>()
                .join(" ∪ "),
        };
        write!(
            f,
            "SeriesScanExec: {}, time={range}, versions={}/{}",
            self.source.describe(),
            self.kept,
            self.total
        )?;
        let schema = self.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        write!(f, ", projection=[{}]", names.join(", "))?;
        if let Some(limit) = self.input.fetch() {
            write!(f, ", limit={limit}")?;
        }
        if let Some(predicate) = self.config().file_source().filter() {
            write!(f, ", predicate={predicate}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for SeriesScanExec {
    fn name(&self) -> &str {
        "SeriesScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        self.input.apply_expressions(f)
    }

    /// A leaf: the Parquet scan inside is reached through the pushdown
    /// methods below, which keep the oplog's view of it in step. In a plan
    /// sent to a distributed engine, the Parquet scan is its child (see
    /// `with_visible_input`).
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.visible.iter().collect()
    }

    /// Nothing may come between this scan and its visible Parquet scan
    /// ([`Self::with_new_children`] refuses it): no repartition. (It does
    /// not claim to keep its input's order either, or sort pushdown would
    /// put a sort between them.)
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false; self.children().len()]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match (&self.visible, <[_; 1]>::try_from(children)) {
            (Some(_), Ok([input])) => match self.with_input(input) {
                Some(scan) => Ok(Arc::new(scan)),
                None => Err(datafusion::error::DataFusionError::Internal(
                    "a series scan's child must be a Parquet scan".to_string(),
                )),
            },
            _ => Ok(self),
        }
    }

    /// Keeps the filters for [`crate::SeriesTimePruning`] and hands them on
    /// to the Parquet scan.
    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let filters: Vec<_> = child_pushdown_result
            .parent_filters
            .iter()
            .map(|f| Arc::clone(&f.filter))
            .collect();
        if filters.is_empty() {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                Vec::new(),
            ));
        }
        let inner =
            self.input
                .handle_child_pushdown_result(phase, child_pushdown_result, config)?;
        let mut scan = match inner.updated_node {
            Some(input) => self.with_input(input).unwrap_or_else(|| self.clone()),
            None => self.clone(),
        };
        scan.pushed.extend(filters);
        Ok(FilterPushdownPropagation {
            filters: inner.filters,
            updated_node: Some(Arc::new(scan)),
        })
    }

    /// Reading the kept files newest first for `ORDER BY ts DESC` lets a
    /// TopK's dynamic filter skip the older ones.
    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
    ) -> DfResult<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        let result = self.input.try_pushdown_sort(order)?;
        Ok(
            match result.try_map(|input| self.with_input(input).ok_or(())) {
                Ok(result) => result.map(|scan| Arc::new(scan) as Arc<dyn ExecutionPlan>),
                Err(()) => SortOrderPushdownResult::Unsupported,
            },
        )
    }

    /// A fresh scan for another execution of the same plan: the Parquet
    /// scan inside is not reached by DataFusion's walk of the plan.
    fn reset_state(self: Arc<Self>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = Arc::clone(&self.input).reset_state()?;
        Ok(Arc::new(self.with_input(input).unwrap_or_else(|| Self {
            started: Arc::default(),
            ..(*self).clone()
        })))
    }

    fn with_preserve_order(&self, preserve_order: bool) -> Option<Arc<dyn ExecutionPlan>> {
        let input = self.input.with_preserve_order(preserve_order)?;
        Some(Arc::new(self.with_input(input)?))
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        config: &ConfigOptions,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        if let Some(input) = self.split_by_time(target_partitions, config) {
            return Ok(self
                .with_input(input)
                .map(|scan| Arc::new(scan) as Arc<dyn ExecutionPlan>));
        }
        let Some(input) = self.input.repartitioned(target_partitions, config)? else {
            return Ok(None);
        };
        Ok(self
            .with_input(input)
            .map(|scan| Arc::new(scan) as Arc<dyn ExecutionPlan>))
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        let input = self.input.with_fetch(limit)?;
        Some(Arc::new(self.with_input(input)?))
    }

    fn fetch(&self) -> Option<usize> {
        self.input.fetch()
    }

    /// The oplog's row counts and time bounds of the kept versions.
    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        self.input.statistics_from_inputs(&[], args)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let context = self.scope.context(context);
        if self.dynamic.is_empty() {
            self.input.execute(partition, context)
        } else {
            self.execute_pruned(partition, context)
        }
    }

    /// The versions pruned by the oplog, then the Parquet scan's own metrics
    /// (files, row groups and pages pruned, bytes scanned).
    fn metrics(&self) -> Option<MetricsSet> {
        let planned = ExecutionPlanMetricsSet::new();
        // A scan another process planned (a Ballista task's) leaves the
        // planner's counts to the plan's display: an engine that sums its
        // tasks' metrics would count them once per task.
        if !self.rebuilt {
            MetricBuilder::new(&planned)
                .global_counter("versions_total")
                .add(self.total);
            MetricBuilder::new(&planned)
                .global_counter("versions_pruned")
                .add(self.total.saturating_sub(self.kept));
        }
        // On object storage each request costs tens of milliseconds.
        let requests = self.requests.snapshot().data;
        for (name, n) in [
            ("store_get_requests", requests.gets),
            ("store_head_requests", requests.heads),
            ("store_list_requests", requests.lists),
        ] {
            MetricBuilder::new(&planned)
                .global_counter(name)
                .add(n as usize);
        }
        let mut set = planned.clone_inner();
        for metric in self.metrics.clone_inner().iter() {
            set.push(Arc::clone(metric));
        }
        // A visible Parquet scan shows its own.
        if self.visible.is_none() {
            for metric in self.input.metrics().iter().flat_map(|m| m.iter()) {
                set.push(Arc::clone(metric));
            }
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_filter_holds_nothing_until_it_is_given_a_value() {
        let ts: Arc<dyn PhysicalExpr> = Arc::new(Column::new("ts", 0));
        let always = Arc::new(Literal::new(ScalarValue::Boolean(Some(true))));
        let filter = Arc::new(DynamicFilterPhysicalExpr::new(
            vec![Arc::clone(&ts)],
            always,
        ));
        let pushed: Arc<dyn PhysicalExpr> = Arc::clone(&filter) as _;
        assert!(holds_nothing_yet(&pushed));
        let five = Arc::new(Literal::new(ScalarValue::Int64(Some(5))));
        filter
            .update(Arc::new(BinaryExpr::new(ts, Operator::Gt, five)))
            .unwrap();
        assert!(!holds_nothing_yet(&pushed));
    }

    /// A file split into byte ranges counts its rows once, as a bound.
    #[test]
    fn byte_ranges_of_a_file_do_not_add_up_its_rows() {
        use arrow::datatypes::{DataType, Field, Schema};
        use datafusion::datasource::physical_plan::ParquetSource;
        use datafusion::execution::object_store::ObjectStoreUrl;

        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let mut statistics = Statistics::new_unknown(&schema);
        statistics.num_rows = Precision::Exact(1_000);
        let statistics = Arc::new(statistics);
        let file = |range: Option<(i64, i64)>| {
            let mut file = PartitionedFile::new("data/a.parquet", 4_000);
            if let Some((start, end)) = range {
                file = file.with_range(start, end);
            }
            file.with_statistics(Arc::clone(&statistics))
        };
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::local_filesystem(),
            Arc::new(ParquetSource::new(Arc::clone(&schema))),
        )
        .build();
        let rows = |groups: Vec<Vec<PartitionedFile>>| {
            let scan = data_source(config.clone(), groups).unwrap();
            scan.data_source()
                .partition_statistics(None)
                .unwrap()
                .num_rows
        };
        assert_eq!(rows(vec![vec![file(None)]]), Precision::Exact(1_000));
        let halves = vec![
            vec![file(Some((0, 2_000)))],
            vec![file(Some((2_000, 4_000)))],
        ];
        assert!(!rows(halves).is_exact().unwrap_or(false));
    }
}
