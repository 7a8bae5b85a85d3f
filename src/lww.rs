//! Last writer wins: the rows of a keyed series, one per key.
//!
//! Every version of a keyed series holds each key at most once (an append
//! keeps the last of the rows it is given for a key). Where live versions
//! overlap in time they may hold the same key, and the row of the version
//! with the highest precedence wins. Only such overlapping versions are
//! merged: [`overlap_segments`] splits the versions a read keeps into runs
//! that overlap no other, [`merged_scan`] reads each run of several versions
//! with the version's precedence beside every row, orders them by key and
//! newest first, and [`LastWriterWinsExec`] keeps the first row of each key.

use std::fmt;
use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{SortOptions, cast, take_record_batch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, ScalarValue, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, lit};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::expressions::{Column, col};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{
    Distribution, EquivalenceProperties, LexOrdering, OrderingRequirements, PhysicalExpr,
    PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, replace_children_if_necessary,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};

use crate::index::{FileInfo, Tombstone};
use crate::scope::{ScopedExec, StoreScope};
use crate::time::time_range_predicate;

/// The column a merged scan adds: each row's version precedence.
pub(crate) const PRECEDENCE_COLUMN: &str = "__pond_precedence";

/// `files` (ordered by earliest time) cut into runs in time order: a
/// version that overlaps no other is a run of its own, versions that
/// overlap (directly or through others) form one run.
pub(crate) fn overlap_segments(files: &[FileInfo]) -> Vec<Vec<FileInfo>> {
    let mut files: Vec<&FileInfo> = files.iter().collect();
    files.sort_by_key(|f| (f.min_event_time, f.version));
    let mut segments: Vec<Vec<FileInfo>> = Vec::new();
    let mut latest = i64::MIN;
    for f in files {
        match segments.last_mut() {
            Some(run) if f.min_event_time <= latest => run.push(f.clone()),
            _ => segments.push(vec![f.clone()]),
        }
        latest = latest.max(f.max_event_time);
    }
    segments
}

/// How a read of `files` goes, in time order: runs of versions, each
/// either read as it is (`false`: one version that no delete touches and,
/// of a keyed series, that overlaps no other) or through [`MergedScan`]
/// (`true`). Versions that a delete removes whole are left out.
pub(crate) fn read_segments(
    files: &[FileInfo],
    keyed: bool,
    deletes: &[Arc<Tombstone>],
) -> Vec<(Vec<FileInfo>, bool)> {
    let files: Vec<FileInfo> = files
        .iter()
        .filter(|f| !deletes.iter().any(|d| d.deletes_all_of(f)))
        .cloned()
        .collect();
    let segments = if keyed {
        overlap_segments(&files)
    } else {
        let mut files = files;
        files.sort_by_key(|f| (f.min_event_time, f.version));
        files.into_iter().map(|f| vec![f]).collect()
    };
    segments
        .into_iter()
        .map(|run| {
            let merge =
                run.len() > 1 || run.iter().any(|f| deletes.iter().any(|d| d.applies_to(f)));
            (run, merge)
        })
        .collect()
}

/// What a merged scan reads and how.
pub(crate) struct MergedScan<'a> {
    pub(crate) url: ObjectStoreUrl,
    /// The store behind `url`, for tasks whose environment has not got it.
    pub(crate) scope: Arc<StoreScope>,
    /// The table's columns, which the files are read in.
    pub(crate) schema: &'a SchemaRef,
    pub(crate) timestamp_column: &'a str,
    /// The series' key (the time column among it); empty for none.
    pub(crate) key: &'a [String],
    /// Columns of `schema` to return, in order.
    pub(crate) projection: &'a [usize],
    /// The deletes to apply.
    pub(crate) deletes: &'a [Arc<Tombstone>],
    /// How many partitions the runs may be read in.
    pub(crate) partitions: usize,
}

impl MergedScan<'_> {
    /// The rows of `runs` in `projection`'s columns: of a keyed series, one
    /// per key, and ordered by time; without the rows the deletes remove.
    /// `source` makes the Parquet source for the table schema it is given
    /// (the series' columns, then the precedence as a partition column);
    /// `physical` plans an expression on a schema.
    pub(crate) fn plan(
        &self,
        runs: &[Vec<FileInfo>],
        source: impl Fn(TableSchema) -> ParquetSource,
        physical: impl Fn(Expr, &DFSchema) -> DfResult<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let precedence = Arc::new(Field::new(PRECEDENCE_COLUMN, DataType::Int64, false));
        let table_schema = TableSchema::builder(Arc::clone(self.schema))
            .with_table_partition_cols(vec![precedence])
            .build();
        let precedence_index = self.schema.fields().len();
        let merge = !self.key.is_empty() && runs.iter().any(|r| r.len() > 1);
        let table_df = DFSchema::try_from(Arc::clone(self.schema))?;
        let predicates = self
            .deletes
            .iter()
            .map(|d| {
                d.predicate
                    .as_deref()
                    .map(|sql| read_predicate(sql, &table_df))
                    .transpose()
            })
            .collect::<DfResult<Vec<Option<Expr>>>>()?;

        // The requested columns, then the key columns and the columns of
        // the deletes' predicates they lack, then the precedence.
        let mut scanned = self.projection.to_vec();
        let mut needed: Vec<String> = Vec::new();
        if merge {
            needed.extend(self.key.iter().cloned());
        }
        if !self.deletes.is_empty() {
            needed.push(self.timestamp_column.to_string());
        }
        for p in predicates.iter().flatten() {
            needed.extend(p.column_refs().iter().map(|c| c.name.clone()));
        }
        for name in needed {
            let i = self.schema.index_of(&name)?;
            if !scanned.contains(&i) {
                scanned.push(i);
            }
        }
        scanned.push(precedence_index);

        let partitioned = |files: &[&FileInfo]| -> Vec<PartitionedFile> {
            files
                .iter()
                .map(|f| {
                    let mut file = PartitionedFile::new(f.file_path.clone(), f.size as u64);
                    file.partition_values = vec![ScalarValue::Int64(Some(f.precedence))];
                    file
                })
                .collect()
        };
        let scan = |groups: Vec<Vec<PartitionedFile>>| -> DfResult<DataSourceExec> {
            let config = FileScanConfigBuilder::new(
                self.url.clone(),
                Arc::new(source(table_schema.clone())),
            )
            .with_projection_indices(Some(scanned.clone()))?
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect());
            Ok(DataSourceExec::new(Arc::new(config.build())))
        };
        let files: Vec<&FileInfo> = runs.iter().flatten().collect();
        let mut plan: Arc<dyn ExecutionPlan> = if merge {
            // Runs are disjoint in time, so no key is in two: each share of
            // them is merged on its own, side by side.
            let mut branches = Vec::new();
            for share in shares(runs, self.partitions) {
                let files: Vec<&FileInfo> = share.iter().flat_map(|r| r.iter()).collect();
                let merged = (files.len(), share.len());
                let scan = scan(vec![partitioned(&files)])?;
                branches.push(self.newest_per_key(scan, &files, merged)?);
            }
            UnionExec::try_new(branches)?
        } else {
            let all = partitioned(&files);
            let per = all.len().div_ceil(self.partitions.max(1)).max(1);
            let scan = scan(all.chunks(per).map(<[_]>::to_vec).collect())?;
            Arc::new(ScopedExec::new(Arc::new(scan), Arc::clone(&self.scope)))
        };
        // After the newest row of each key is chosen: a delete removes the
        // key if the row it saw then (of lower precedence) is in its range
        // and meets its predicate.
        if !self.deletes.is_empty() {
            let df_schema = DFSchema::try_from(plan.schema())?;
            let ts = plan
                .schema()
                .field_with_name(self.timestamp_column)?
                .clone();
            let kept = self
                .deletes
                .iter()
                .zip(predicates)
                .map(|(d, predicate)| deleted(d, &ts, predicate).is_not_true())
                .reduce(Expr::and)
                .expect("at least one delete");
            let kept = physical(kept, &df_schema)?;
            plan = Arc::new(FilterExec::try_new(kept, plan)?);
        }
        let schema = plan.schema();
        let columns = (0..self.projection.len())
            .map(|i| {
                let name = schema.field(i).name();
                Ok((col(name, &schema)?, name.clone()))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(columns, plan)?))
    }

    /// Of each key, the row of the highest precedence: the files' rows
    /// merged in time order (each file is in time order, unless clustered
    /// by a sort key: then they are sorted), then [`LastWriterWinsExec`].
    fn newest_per_key(
        &self,
        scan: DataSourceExec,
        files: &[&FileInfo],
        merged: (usize, usize),
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let time_sorted = files.iter().all(|f| f.is_time_sorted());
        let scan_schema = scan.schema();
        let time = scan_schema.index_of(self.timestamp_column)?;
        let by_time = LexOrdering::new([PhysicalSortExpr::new(
            col(self.timestamp_column, &scan_schema)?,
            ascending(),
        )])
        .expect("one");
        let ordered: Arc<dyn ExecutionPlan> = if time_sorted {
            let config = scan
                .data_source()
                .downcast_ref::<FileScanConfig>()
                .expect("a file scan")
                .clone();
            let files: Vec<FileGroup> = config
                .file_groups
                .iter()
                .flat_map(|g| g.iter().cloned())
                .map(|f| FileGroup::new(vec![f]))
                .collect();
            // The files' order is in the table's columns, not the scan's
            // projected ones.
            let file_order = LexOrdering::new([PhysicalSortExpr::new(
                col(
                    self.timestamp_column,
                    config.file_source().table_schema().table_schema(),
                )?,
                ascending(),
            )])
            .expect("one");
            let config = FileScanConfigBuilder::from(config)
                .with_file_groups(files)
                .with_output_ordering(vec![file_order])
                .build();
            Arc::new(SortPreservingMergeExec::new(
                by_time,
                DataSourceExec::from_data_source(config),
            ))
        } else {
            Arc::new(SortExec::new(by_time, Arc::new(scan)))
        };
        let key: Vec<usize> = self
            .key
            .iter()
            .filter(|k| k.as_str() != self.timestamp_column)
            .map(|name| scan_schema.index_of(name))
            .collect::<Result<_, _>>()?;
        let rank = scan_schema.index_of(PRECEDENCE_COLUMN)?;
        let keep = scan_schema.fields().len();
        let exec = LastWriterWinsExec::try_new(ordered, (time, key, rank), keep, merged)?
            .with_scope(Arc::clone(&self.scope));
        Ok(Arc::new(exec.with_estimates(files)))
    }
}

/// `runs` dealt into at most `n` shares of about equal bytes, each run
/// whole.
fn shares(runs: &[Vec<FileInfo>], n: usize) -> Vec<Vec<&Vec<FileInfo>>> {
    let bytes = |run: &Vec<FileInfo>| run.iter().map(|f| f.size).sum::<i64>();
    let mut by_size: Vec<&Vec<FileInfo>> = runs.iter().collect();
    by_size.sort_by_key(|run| std::cmp::Reverse(bytes(run)));
    let mut shares: Vec<(i64, Vec<&Vec<FileInfo>>)> =
        vec![(0, Vec::new()); n.clamp(1, runs.len().max(1))];
    for run in by_size {
        let lightest = shares
            .iter_mut()
            .min_by_key(|(total, _)| *total)
            .expect("one share at least");
        lightest.0 += bytes(run);
        lightest.1.push(run);
    }
    shares
        .into_iter()
        .filter(|(_, share)| !share.is_empty())
        .map(|(_, share)| share)
        .collect()
}

/// Whether delete `d` removes a row: it was written before `d` (by
/// precedence), lies in `d`'s time range on the time column `ts` (compared
/// in its own unit, as `series_range`'s window), and meets `d`'s predicate.
fn deleted(d: &Tombstone, ts: &Field, predicate: Option<Expr>) -> Expr {
    let end = match d.max_event_time {
        crate::MAX_TIME => crate::MAX_TIME,
        last => last.saturating_add(1),
    };
    let mut conditions = vec![datafusion::prelude::col(PRECEDENCE_COLUMN).lt(lit(d.version))];
    conditions.extend(time_range_predicate(ts, d.min_event_time, end));
    conditions.extend(predicate);
    conditions
        .into_iter()
        .reduce(Expr::and)
        .expect("one at least")
}

/// Of each key, the row of the highest rank. The input comes in time order
/// (one partition); the key is the time column and `key`'s columns, so the
/// rows of a key are among those of one instant, and only those are held
/// at once. The rank is a column of `Int64`: a version's precedence, or a
/// row's position in what an append was given. Returns the first `keep`
/// columns.
#[derive(Debug)]
pub struct LastWriterWinsExec {
    input: Arc<dyn ExecutionPlan>,
    /// The time column, in the input.
    time: usize,
    /// The other key columns, in the input.
    key: Vec<usize>,
    /// The rank column, in the input.
    rank: usize,
    /// The output is the input's first `keep` columns.
    keep: usize,
    schema: SchemaRef,
    /// Versions merged, and in how many runs.
    versions: usize,
    runs: usize,
    /// What the planner may assume of the output (see
    /// [`Self::with_estimates`]).
    statistics: Arc<Statistics>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// The store its input reads, for tasks whose environment has not got
    /// it (see [`StoreScope`]).
    scope: Option<Arc<StoreScope>>,
}

impl LastWriterWinsExec {
    /// Over `input`, in order of the time column `time`, with the other key
    /// columns `key` and the rank column `rank`, returning the first `keep`
    /// columns; `(versions, runs)` says what it merges.
    pub(crate) fn try_new(
        input: Arc<dyn ExecutionPlan>,
        (time, key, rank): (usize, Vec<usize>, usize),
        keep: usize,
        (versions, runs): (usize, usize),
    ) -> DfResult<Self> {
        let input_schema = input.schema();
        let fields: Vec<Field> = input_schema.fields()[..keep]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            input_schema.metadata().clone(),
        ));
        let properties = Self::properties_of(&input, &schema, keep);
        let statistics = Arc::new(Statistics::new_unknown(&schema));
        Ok(Self {
            input,
            time,
            key,
            rank,
            keep,
            schema,
            versions,
            runs,
            statistics,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
            scope: None,
        })
    }

    /// With estimates from the oplog of the versions merged: at most their
    /// rows, and the distinct counts they record. Without them DataFusion
    /// knows nothing of this side of a join, and plans it as if it were
    /// large (a repartitioned hash join, which cannot prune versions with
    /// its dynamic filter).
    pub(crate) fn with_estimates(mut self, files: &[&FileInfo]) -> Self {
        let mut statistics = Statistics::new_unknown(&self.schema);
        let rows: i64 = files.iter().map(|f| f.row_count).sum();
        statistics.num_rows = Precision::Inexact(rows.max(0) as usize);
        statistics.total_byte_size =
            Precision::Inexact(files.iter().map(|f| f.size.max(0) as usize).sum());
        for (i, field) in self.schema.fields().iter().enumerate() {
            let distinct = files
                .iter()
                .filter_map(|f| f.distinct.iter().find(|(n, _)| n == field.name()))
                .map(|(_, n)| *n as usize)
                .max();
            if let Some(n) = distinct {
                statistics.column_statistics[i].distinct_count = Precision::Inexact(n);
            }
        }
        self.statistics = Arc::new(statistics);
        self
    }

    /// Rows come out in the order they go in (it only leaves rows out), as
    /// far as that order is on the columns returned (the first `keep`, at
    /// the same positions).
    fn properties_of(
        input: &Arc<dyn ExecutionPlan>,
        schema: &SchemaRef,
        keep: usize,
    ) -> PlanProperties {
        let mut equivalence = EquivalenceProperties::new(Arc::clone(schema));
        if let Some(order) = input.properties().output_ordering() {
            let kept: Vec<PhysicalSortExpr> = order
                .iter()
                .take_while(|e| {
                    e.expr
                        .downcast_ref::<Column>()
                        .is_some_and(|c| c.index() < keep)
                })
                .cloned()
                .collect();
            equivalence.add_ordering(kept);
        }
        PlanProperties::new(
            equivalence,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
    }

    fn with_input(&self, input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Self::properties_of(&input, &self.schema, self.keep);
        Self {
            input,
            key: self.key.clone(),
            schema: Arc::clone(&self.schema),
            statistics: Arc::clone(&self.statistics),
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
            scope: self.scope.clone(),
            ..*self
        }
    }

    /// What [`Self::try_new`] was given, and the scope: for the codec that
    /// sends the node to another process ([`crate::cluster`]).
    #[cfg(feature = "cluster")]
    #[allow(clippy::type_complexity)]
    pub(crate) fn parts(
        &self,
    ) -> (
        (usize, Vec<usize>, usize),
        usize,
        (usize, usize),
        Option<&Arc<StoreScope>>,
    ) {
        (
            (self.time, self.key.clone(), self.rank),
            self.keep,
            (self.versions, self.runs),
            self.scope.as_ref(),
        )
    }

    /// Runs the input with `scope`'s store when a task's environment has
    /// not got it.
    pub(crate) fn with_scope(mut self, scope: Arc<StoreScope>) -> Self {
        self.scope = Some(scope);
        self
    }

    fn time_order(&self) -> LexOrdering {
        let schema = self.input.schema();
        let column = Arc::new(Column::new(schema.field(self.time).name(), self.time));
        LexOrdering::new([PhysicalSortExpr::new(column, ascending())]).expect("one")
    }
}

fn ascending() -> SortOptions {
    SortOptions::new(false, false)
}

impl DisplayAs for LastWriterWinsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schema = self.input.schema();
        let key: Vec<&str> = self
            .key
            .iter()
            .chain([&self.time])
            .map(|&i| schema.field(i).name().as_str())
            .collect();
        write!(
            f,
            "LastWriterWinsExec: key=[{}], merged versions={} in {} runs",
            key.join(", "),
            self.versions,
            self.runs
        )
    }
}

impl ExecutionPlan for LastWriterWinsExec {
    fn name(&self) -> &str {
        "LastWriterWinsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![Some(OrderingRequirements::from(self.time_order()))]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(self.with_input(children.swap_remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        // The input starts when this stream is first polled, not now: a
        // merge spawns its inputs, which would open their files before a
        // hash join's build side has set the dynamic filter that prunes them.
        let plan = Arc::clone(&self.input);
        let context = match &self.scope {
            Some(scope) => scope.context(context),
            None => context,
        };
        let input = futures::stream::once(async move { plan.execute(partition, context) })
            .try_flatten()
            .boxed();
        let input_schema = self.input.schema();
        let fields = self
            .key
            .iter()
            .map(|&i| SortField::new(input_schema.field(i).data_type().clone()))
            .collect();
        let winners = Winners {
            converter: RowConverter::new(fields)?,
            time: self.time,
            key: self.key.clone(),
            rank: self.rank,
            keep: self.keep,
            schema: Arc::clone(&self.schema),
            pending: None,
        };
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let stream = futures::stream::unfold(
            (input, winners, baseline, false),
            |(mut input, mut winners, baseline, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let next = input.next().await;
                    let _timer = baseline.elapsed_compute().timer();
                    let (out, done) = match next {
                        Some(Ok(batch)) => (winners.push(&batch), false),
                        Some(Err(e)) => (Err(e), true),
                        None => (winners.finish(), true),
                    };
                    match out {
                        Ok(Some(batch)) if batch.num_rows() > 0 => {
                            baseline.record_output(batch.num_rows());
                            drop(_timer);
                            return Some((Ok(batch), (input, winners, baseline, done)));
                        }
                        Ok(_) if !done => continue,
                        Ok(_) => return None,
                        Err(e) => {
                            drop(_timer);
                            return Some((Err(e), (input, winners, baseline, true)));
                        }
                    }
                }
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        Ok(Arc::clone(&self.statistics))
    }

    /// No filter passes through (DataFusion's default), but the filters on
    /// key columns alone, a join's or a TopK's dynamic filters among them,
    /// prune the row groups and pages of the files merged: they keep or drop
    /// every row of a key alike, so the newest row of a key they keep is
    /// still read. They reach the scan under the merge by time here, since
    /// `SortPreservingMergeExec` takes no filters. The filters stay above.
    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let key: Vec<usize> = self.key.iter().copied().chain([self.time]).collect();
        let on_key: Vec<Arc<dyn PhysicalExpr>> = child_pushdown_result
            .parent_filters
            .iter()
            .map(|f| Arc::clone(&f.filter))
            .filter(|f| {
                let columns = collect_columns(f);
                !columns.is_empty() && columns.iter().all(|c| key.contains(&c.index()))
            })
            .collect();
        let kept = FilterPushdownPropagation::if_all(child_pushdown_result);
        let scan = self
            .input
            .children()
            .first()
            .and_then(|c| c.downcast_ref::<DataSourceExec>().cloned());
        let (Some(scan), false) = (scan, on_key.is_empty()) else {
            return Ok(kept);
        };
        let Some(source) = scan
            .data_source()
            .try_pushdown_filters(on_key, config)?
            .updated_node
        else {
            return Ok(kept);
        };
        let scan: Arc<dyn ExecutionPlan> = Arc::new(DataSourceExec::new(source));
        let merge = replace_children_if_necessary(Arc::clone(&self.input), vec![scan])?;
        Ok(FilterPushdownPropagation {
            filters: kept.filters,
            updated_node: Some(Arc::new(self.with_input(merge))),
        })
    }
}

/// The state of one stream of [`LastWriterWinsExec`]: the rows of the last
/// instant seen, which the next batch may continue.
struct Winners {
    converter: RowConverter,
    time: usize,
    key: Vec<usize>,
    rank: usize,
    keep: usize,
    schema: SchemaRef,
    pending: Option<RecordBatch>,
}

impl Winners {
    /// The winners of the instants `batch` completes.
    fn push(&mut self, batch: &RecordBatch) -> DfResult<Option<RecordBatch>> {
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let batch = match self.pending.take() {
            Some(pending) => arrow::compute::concat_batches(&batch.schema(), [&pending, batch])?,
            None => batch.clone(),
        };
        let times = cast(batch.column(self.time), &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        let n = batch.num_rows();
        let last = times.value(n - 1);
        // The rows of the last instant may go on in the next batch.
        let mut complete = n;
        while complete > 0 && times.value(complete - 1) == last {
            complete -= 1;
        }
        self.pending = Some(batch.slice(complete, n - complete));
        if complete == 0 {
            return Ok(None);
        }
        self.winners(&batch.slice(0, complete)).map(Some)
    }

    /// The winners of the rows still held.
    fn finish(&mut self) -> DfResult<Option<RecordBatch>> {
        match self.pending.take() {
            Some(rest) if rest.num_rows() > 0 => self.winners(&rest).map(Some),
            _ => Ok(None),
        }
    }

    /// Of each key among the whole instants of `batch`, the row of the
    /// highest rank, in the batch's order.
    fn winners(&self, batch: &RecordBatch) -> DfResult<RecordBatch> {
        let (times, rows) = times_and_keys(batch, self.time, &self.key, &self.converter)?;
        let times = times.as_primitive::<Int64Type>();
        let ranks = cast(batch.column(self.rank), &DataType::Int64)?;
        let ranks = ranks.as_primitive::<Int64Type>();
        let n = batch.num_rows();
        let mut chosen: Vec<u32> = Vec::with_capacity(n);
        let mut best: std::collections::HashMap<Option<arrow::row::Row<'_>>, usize> =
            std::collections::HashMap::new();
        let mut start = 0;
        while start < n {
            let t = times.is_valid(start).then(|| times.value(start));
            let mut end = start + 1;
            while end < n && times.is_valid(end).then(|| times.value(end)) == t {
                end += 1;
            }
            // One version holds a key once: an instant whose rows are all of
            // one rank (most are) keeps them all.
            let rank = ranks.value(start);
            if (start..end).all(|i| ranks.value(i) == rank) {
                chosen.extend(start as u32..end as u32);
            } else {
                for i in start..end {
                    let key = rows.as_ref().map(|rows| rows.row(i));
                    let rank = ranks.value(i);
                    best.entry(key)
                        .and_modify(|b| {
                            if ranks.value(*b) < rank {
                                *b = i;
                            }
                        })
                        .or_insert(i);
                }
                let from = chosen.len();
                chosen.extend(best.drain().map(|(_, i)| i as u32));
                chosen[from..].sort_unstable();
            }
            start = end;
        }
        if chosen.len() == n {
            let projected = batch.project(&(0..self.keep).collect::<Vec<_>>())?;
            return Ok(RecordBatch::try_new(
                Arc::clone(&self.schema),
                projected.columns().to_vec(),
            )?);
        }
        let projected = batch.project(&(0..self.keep).collect::<Vec<_>>())?;
        let kept = take_record_batch(&projected, &UInt32Array::from(chosen))?;
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            kept.columns().to_vec(),
        )?)
    }
}

/// The time column of `batch` as `i64`, and its other key columns `key` as
/// rows to compare (`None` when the time is the whole key).
fn times_and_keys(
    batch: &RecordBatch,
    time: usize,
    key: &[usize],
    converter: &RowConverter,
) -> DfResult<(ArrayRef, Option<arrow::row::Rows>)> {
    let times = cast(batch.column(time), &DataType::Int64)?;
    let columns: Vec<ArrayRef> = key.iter().map(|&i| Arc::clone(batch.column(i))).collect();
    let rows = (!columns.is_empty())
        .then(|| converter.convert_columns(&columns))
        .transpose()?;
    Ok((times, rows))
}

/// Whether a batch sorted by time holds a key twice: a streaming check over
/// the runs of equal times, which holds only the keys of the current one.
pub(crate) struct DuplicateKeys {
    time: usize,
    others: Vec<usize>,
    converter: RowConverter,
    instant: Option<i64>,
    /// Rows at `instant` so far, and their other key columns.
    run: usize,
    seen: std::collections::HashSet<OwnedRow>,
    /// A key was seen twice.
    pub(crate) found: bool,
}

impl DuplicateKeys {
    /// A check of `key` (which holds the time column) over rows of `schema`.
    pub(crate) fn try_new(
        schema: &Schema,
        timestamp_column: &str,
        key: &[String],
    ) -> DfResult<Self> {
        let time = schema.index_of(timestamp_column)?;
        let others: Vec<usize> = key
            .iter()
            .filter(|k| k.as_str() != timestamp_column)
            .map(|k| schema.index_of(k))
            .collect::<Result<_, _>>()?;
        let fields = others
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect();
        Ok(Self {
            time,
            others,
            converter: RowConverter::new(fields)?,
            instant: None,
            run: 0,
            seen: Default::default(),
            found: false,
        })
    }

    /// Looks at the next batch of rows in time order.
    pub(crate) fn update(&mut self, batch: &RecordBatch) -> DfResult<()> {
        if self.found || batch.num_rows() == 0 {
            return Ok(());
        }
        let (times, rows) = times_and_keys(batch, self.time, &self.others, &self.converter)?;
        let times = times.as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            let t = times.is_valid(i).then(|| times.value(i));
            if t != self.instant {
                self.instant = t;
                self.run = 0;
                self.seen.clear();
            }
            self.run += 1;
            // With the time as the whole key, a second row at an instant
            // repeats it.
            let repeated = match &rows {
                Some(rows) => !self.seen.insert(rows.row(i).owned()),
                None => self.run > 1,
            };
            if repeated {
                self.found = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A delete's predicate, stored as SQL, planned for a read: types coerced,
/// then simplified (only simplified is `arrow_cast` of a constant, which
/// SQL `DELETE` may store a timestamp as, a constant). The check of a
/// predicate when the delete is made plans it the same way.
pub(crate) fn read_predicate(sql: &str, schema: &DFSchema) -> DfResult<Expr> {
    plan_predicate(SessionContext::new().parse_sql_expr(sql, schema)?, schema)
}

/// A parsed delete predicate planned as [`read_predicate`] plans it.
pub(crate) fn plan_predicate(expr: Expr, schema: &DFSchema) -> DfResult<Expr> {
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .build(),
    );
    let expr = simplifier.coerce(expr, schema)?;
    simplifier.simplify(expr)
}
