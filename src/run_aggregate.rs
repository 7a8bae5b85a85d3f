//! [`RunAggregateExec`]: a partial aggregation that looks each run of equal
//! group keys up once.
//!
//! DataFusion's hash aggregation hashes every row's group keys and looks
//! the group up, whatever the rows' order. Rows of a file compacted with a
//! sort key come in long runs of equal keys: grouped by host and hour, the
//! devops benchmark's rows come in runs of 360, and the lookups are most of
//! the aggregation's time. [`RunAggregateExec`] stands for a partial
//! aggregation of a series and does what it does, with the same groups
//! accumulators fed the same rows in the same order, but it looks up only
//! the first row of each run of equal keys, and gives the run's other rows
//! the same group. `count`, `sum`, `avg`, `min` and `max` then fold a run
//! at a time ([`crate::run_sums`]), with the same steps in the same order.
//!
//! The answer is DataFusion's, to the bit: a run's rows are in one group
//! (rows that arrow's `partition` finds equal group together: equal strings,
//! numbers, times, or floats of the same bits), and each accumulator sees
//! every row, in order, with its group. Only the aggregation's table lookups
//! and the loads and stores of its sums and extremes change.
//!
//! Where the rows do not come in runs, the node hands them to DataFusion's
//! own aggregation: it looks at the first batches of its partition (until
//! [`DECIDING_ROWS`] rows), and if the keys change more often than every
//! [`MIN_MEAN_RUN`] rows there, the partition runs through the
//! [`AggregateExec`] it stands for, unchanged (so a series not clustered by
//! the keys keeps DataFusion's skipping of partial aggregation too). In a
//! partition that does come in runs, a batch that does not is looked up row
//! by row, as DataFusion would; and if the groups then grow about as many
//! as the rows, DataFusion's probe for aggregations that do not reduce
//! hands the rest of the partition over too.
//!
//! Over rows sorted by all the group keys (a series in time order grouped
//! by `date_trunc('minute', ts)`), where DataFusion would run its ordered
//! aggregation, the node does what that does with its output: after each
//! batch, every group but the one of the batch's last row is done and goes
//! out, in order, so that an operator above can stop early. No probe runs
//! there, as in DataFusion. Rows sorted by some of the keys only stay
//! DataFusion's.
//!
//! Memory: the groups are those DataFusion's partial aggregation would hold,
//! reserved as spillable. When the memory pool refuses more, the node emits
//! the groups it holds as partial states and starts again, which a final
//! aggregation merges (as DataFusion's partial aggregation does under
//! pressure).

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{OrderingRequirements, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
};
use futures::{StreamExt, TryStreamExt, future, stream};

use crate::run_sums::{RunAccumulator, run_accumulator};
use crate::runs::{CollapseRunsExec, MIN_MEAN_RUN, long_runs, reads_a_series, runs_of};

/// The rows a partition is judged by, at its start: whether its keys come
/// in runs decides who aggregates the whole partition.
pub(crate) const DECIDING_ROWS: usize = 1024;

/// `plan` with every partial aggregation of a series that a
/// [`RunAggregateExec`] may stand for replaced by one.
pub(crate) fn aggregate_runs(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
            return Ok(Transformed::no(node));
        };
        if !RunAggregateExec::may_stand_for(aggregate) {
            return Ok(Transformed::no(node));
        }
        let aggregate = Arc::new(aggregate.clone());
        Ok(Transformed::yes(Arc::new(RunAggregateExec::new(
            aggregate,
        )?)))
    })
    .data()
}

/// A partial aggregation, DataFusion's [`AggregateExec`] in
/// [`AggregateMode::Partial`], that looks up only the first row of each run
/// of equal group keys in its groups and gives the run's rows that group.
/// The accumulators see the same rows in the same order (`count`, `sum`,
/// `avg`, `min` and `max` fold a run at a time, the same steps), so the
/// partial states and the answer are DataFusion's. Where the rows do not
/// come in runs, DataFusion's aggregation takes them.
/// Placed by [`crate::SeriesTimePruning`] over series; see
/// `docs/ARCHITECTURE.md`.
#[derive(Debug, Clone)]
pub struct RunAggregateExec {
    aggregate: Arc<AggregateExec>,
    metrics: ExecutionPlanMetricsSet,
}

impl RunAggregateExec {
    /// Standing for `aggregate`, which must be one it may stand for.
    pub(crate) fn new(aggregate: Arc<AggregateExec>) -> DfResult<Self> {
        if !Self::may_stand_for_any_input(&aggregate) {
            return Err(DataFusionError::Internal(format!(
                "RunAggregateExec cannot stand for {}",
                datafusion::physical_plan::displayable(aggregate.as_ref()).one_line()
            )));
        }
        Ok(Self {
            aggregate,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The partial aggregation it stands for.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn aggregate(&self) -> &Arc<AggregateExec> {
        &self.aggregate
    }

    /// Whether the node may stand for `aggregate` and has a chance to pay:
    /// see [`Self::may_stand_for_any_input`], and the aggregation reads a
    /// series whose runs `min`/`max` do not already fold.
    fn may_stand_for(aggregate: &AggregateExec) -> bool {
        let input = aggregate.input();
        !input.is::<CollapseRunsExec>()
            && reads_a_series(input)
            && Self::may_stand_for_any_input(aggregate)
    }

    /// Whether `aggregate` is one the node does as DataFusion does: a
    /// partial aggregation of rows in no order it relies on or sorted by
    /// all its group keys (not by some of them only), grouped by
    /// one set of expressions (no grouping sets) of types whose runs arrow
    /// finds, without a limit or a dynamic filter, whose every aggregate
    /// has a groups accumulator and no `DISTINCT`, `ORDER BY` or `FILTER`.
    fn may_stand_for_any_input(aggregate: &AggregateExec) -> bool {
        let grouped = aggregate.group_expr();
        let Ok(keys) = grouped.group_schema(&aggregate.input().schema()) else {
            return false;
        };
        keys.fields().iter().all(|key| has_runs(key.data_type()))
            && *aggregate.mode() == AggregateMode::Partial
            && matches!(
                aggregate.input_order_mode(),
                InputOrderMode::Linear | InputOrderMode::Sorted
            )
            && grouped.is_single()
            && !grouped.expr().is_empty()
            && aggregate.limit_options().is_none()
            && aggregate.dynamic_expressions_produced().is_empty()
            && aggregate.filter_expr().iter().all(Option::is_none)
            && aggregate.aggr_expr().iter().all(|function| {
                function.groups_accumulator_supported()
                    && !function.is_distinct()
                    && function.order_bys().is_empty()
            })
    }

    /// The node standing for `aggregate` if it may, or else `aggregate`
    /// itself: for a plan rebuilt with other children, or decoded, whose
    /// aggregation may have changed (an order now holds, say).
    pub(crate) fn over(aggregate: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let standing = (aggregate.downcast_ref::<AggregateExec>())
            .and_then(|exec| Self::new(Arc::new(exec.clone())).ok());
        match standing {
            Some(node) => Arc::new(node),
            None => aggregate,
        }
    }

    /// The aggregation of one partition, from its input's stream.
    async fn aggregate_partition(
        self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let mut input = self
            .aggregate
            .input()
            .execute(partition, Arc::clone(&context))?;
        let table = RunTable::new(&self.aggregate, &self.metrics, &context, partition)?;
        let mut seen = Vec::new();
        let mut rows = 0;
        while rows < DECIDING_ROWS {
            let Some(batch) = input.next().await else {
                break;
            };
            let batch = batch?;
            rows += batch.num_rows();
            seen.push(batch);
        }
        let mut runs = 0;
        for batch in &seen {
            runs += runs_of(&table.keys(batch)?)?.len();
        }
        let input: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
            input.schema(),
            stream::iter(seen.into_iter().map(Ok)).chain(input),
        ));
        if runs * MIN_MEAN_RUN > rows {
            // Not in runs: DataFusion's own aggregation, over the rows
            // as they came.
            return self.hand_over(input, partition, context, &table.baseline);
        }
        let options = &context.session_config().options().execution;
        let sorted = *self.aggregate.input_order_mode() == InputOrderMode::Sorted;
        let folding = Folding {
            exec: self,
            partition,
            probe: (
                options.skip_partial_aggregation_probe_rows_threshold,
                options.skip_partial_aggregation_probe_ratio_threshold,
            ),
            sorted,
            context: Arc::clone(&context),
            input: Some(input),
            table,
            pending: VecDeque::new(),
            handed_over: None,
        };
        let schema = folding.exec.aggregate.schema();
        let batches = stream::try_unfold(folding, |mut folding| async move {
            let batch = folding.next().await?;
            Ok(batch.map(|batch| (batch, folding)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    /// `rows`, the rest of a partition's, aggregated by the
    /// [`AggregateExec`] the node stands for.
    fn hand_over(
        &self,
        rows: SendableRecordBatchStream,
        partition: usize,
        context: Arc<TaskContext>,
        baseline: &BaselineMetrics,
    ) -> DfResult<SendableRecordBatchStream> {
        MetricBuilder::new(&self.metrics)
            .counter("partitions_handed_over", partition)
            .add(1);
        let replay = Arc::new(Replay::new(self.aggregate.input(), rows));
        let aggregate = replace_children_if_necessary(
            Arc::clone(&self.aggregate) as Arc<dyn ExecutionPlan>,
            vec![replay],
        )?;
        let output = aggregate.execute(partition, context)?;
        let (counted, ended) = (baseline.clone(), baseline.clone());
        let schema = output.schema();
        let output = output
            .inspect_ok(move |batch| counted.record_output(batch.num_rows()))
            .chain(
                stream::once(async move {
                    ended.done();
                    None
                })
                .filter_map(future::ready),
            );
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }
}

/// A partition being aggregated by runs.
struct Folding {
    exec: RunAggregateExec,
    partition: usize,
    context: Arc<TaskContext>,
    /// DataFusion's probe for partial aggregations that do not reduce:
    /// after this many rows, more than this many groups per row.
    probe: (usize, f64),
    /// Whether the rows come sorted by the group keys.
    sorted: bool,
    /// The input, until it ends or is handed over.
    input: Option<SendableRecordBatchStream>,
    table: RunTable,
    /// Output emitted and not yet returned.
    pending: VecDeque<RecordBatch>,
    /// The aggregation the rest of the input was handed over to.
    handed_over: Option<SendableRecordBatchStream>,
}

impl Folding {
    /// The next batch of output.
    async fn next(&mut self) -> DfResult<Option<RecordBatch>> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Ok(Some(batch));
            }
            if let Some(output) = &mut self.handed_over {
                return output.next().await.transpose();
            }
            let Some(input) = &mut self.input else {
                self.table.baseline.done();
                return Ok(None);
            };
            let Some(batch) = input.next().await else {
                self.input = None;
                self.pending = self.table.emit()?;
                continue;
            };
            let batch = batch?;
            self.table.update(&batch)?;
            let groups = self.table.groups.len();
            if self.sorted && groups > 1 && self.table.last_group == Some(groups - 1) {
                // Rows sorted by the keys: every group but the last row's
                // is done, and goes out now, in order, as DataFusion's
                // aggregation of sorted rows does.
                self.pending = self.table.emit_to(EmitTo::First(groups - 1))?;
            }
            if !self.table.fits() {
                // Sorted, the last group goes out too, and its next rows
                // come out after it: a final aggregation of sorted rows
                // merges the two.
                self.pending.extend(self.table.emit()?);
            }
            if self.sorted {
                // DataFusion does not probe aggregations of sorted rows.
                continue;
            }
            // DataFusion's probe, as it runs it: after each batch once
            // enough rows came, on the groups before any early emission;
            // off with a ratio of 1 or more.
            let (probe_rows, ratio) = self.probe;
            let rows = self.table.rows;
            if ratio < 1.0 && rows >= probe_rows && groups as f64 / rows as f64 > ratio {
                // The rows stopped coming in runs, and the groups are
                // about as many: DataFusion's aggregation takes the rest,
                // and skips aggregating them as it sees fit.
                self.pending.extend(self.table.emit()?);
                if let Some(rest) = self.input.take() {
                    let context = Arc::clone(&self.context);
                    let baseline = &self.table.baseline;
                    let output = self
                        .exec
                        .hand_over(rest, self.partition, context, baseline)?;
                    self.handed_over = Some(output);
                }
            }
        }
    }
}

/// Whether arrow's `partition` (which [`runs_of`] falls back to) compares
/// values of the type: primitives, booleans, strings and binaries, and
/// dictionaries of them.
fn has_runs(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, values) => has_runs(values),
        DataType::Boolean
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => true,
        other => other.is_primitive(),
    }
}

/// An aggregate's accumulator: DataFusion's, fed each row's group, or one
/// fed runs of rows of one group (see [`crate::run_sums`]).
enum Accumulation {
    Rows(Box<dyn GroupsAccumulator>),
    Runs(Box<dyn RunAccumulator>),
}

impl Accumulation {
    /// The accumulator fed runs for `function` if there is one, or else
    /// DataFusion's.
    fn new(function: &AggregateFunctionExpr, input: &Schema) -> DfResult<Self> {
        Ok(match run_accumulator(function, input) {
            Some(runs) => Self::Runs(runs),
            None => Self::Rows(function.create_groups_accumulator()?),
        })
    }

    fn size(&self) -> usize {
        match self {
            Self::Rows(accumulator) => accumulator.size(),
            Self::Runs(accumulator) => accumulator.size(),
        }
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        match self {
            Self::Rows(accumulator) => accumulator.state(emit_to),
            Self::Runs(accumulator) => accumulator.state(emit_to),
        }
    }
}

/// The runs of neighbouring rows of one group, by `row_groups`, into
/// `runs` and `run_groups`.
fn group_runs(row_groups: &[usize], runs: &mut Vec<Range<usize>>, run_groups: &mut Vec<usize>) {
    runs.clear();
    run_groups.clear();
    for (row, &group) in row_groups.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run_groups.last() == Some(&group) => run.end = row + 1,
            _ => {
                runs.push(row..row + 1);
                run_groups.push(group);
            }
        }
    }
}

/// The groups and accumulators of one partition.
struct RunTable {
    aggregate: Arc<AggregateExec>,
    groups: Box<dyn GroupValues>,
    accumulators: Vec<Accumulation>,
    /// Each row's group, for the batch at hand, if an accumulator takes
    /// rows.
    row_groups: Vec<usize>,
    /// The batch's runs of rows of one group, and each run's group.
    runs: Vec<Range<usize>>,
    run_groups: Vec<usize>,
    /// The group of the batch's last row.
    last_group: Option<usize>,
    reservation: MemoryReservation,
    batch_size: usize,
    baseline: BaselineMetrics,
    runs_looked_up: Count,
    rows_looked_up: Count,
    /// The rows aggregated so far.
    rows: usize,
}

impl RunTable {
    fn new(
        aggregate: &Arc<AggregateExec>,
        metrics: &ExecutionPlanMetricsSet,
        context: &TaskContext,
        partition: usize,
    ) -> DfResult<Self> {
        let group_schema = aggregate
            .group_expr()
            .group_schema(&aggregate.input().schema())?;
        let input = aggregate.input().schema();
        let accumulators = (aggregate.aggr_expr().iter())
            .map(|function| Accumulation::new(function, &input))
            .collect::<DfResult<_>>()?;
        // Spillable, as DataFusion's partial aggregation: it can give
        // memory back by emitting its groups early.
        let reservation = MemoryConsumer::new(format!("RunAggregateExec[{partition}]"))
            .with_can_spill(true)
            .register(context.memory_pool());
        Ok(Self {
            aggregate: Arc::clone(aggregate),
            groups: new_group_values(
                group_schema,
                &GroupOrdering::try_new(aggregate.input_order_mode())?,
            )?,
            accumulators,
            row_groups: Vec::new(),
            runs: Vec::new(),
            run_groups: Vec::new(),
            last_group: None,
            reservation,
            batch_size: context.session_config().batch_size().max(1),
            baseline: BaselineMetrics::new(metrics, partition),
            runs_looked_up: MetricBuilder::new(metrics).counter("runs_looked_up", partition),
            rows_looked_up: MetricBuilder::new(metrics).counter("rows_looked_up", partition),
            rows: 0,
        })
    }

    /// The group keys of `batch`'s rows.
    fn keys(&self, batch: &RecordBatch) -> DfResult<Vec<ArrayRef>> {
        let rows = batch.num_rows();
        (self.aggregate.group_expr().expr().iter())
            .map(|(expr, _)| expr.evaluate(batch)?.into_array(rows))
            .collect()
    }

    /// `batch` added to the groups.
    fn update(&mut self, batch: &RecordBatch) -> DfResult<()> {
        let _timer = self.baseline.elapsed_compute().timer();
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let keys = &self.keys(batch)?;
        self.rows += rows;
        let by_rows = (self.accumulators.iter()).any(|a| matches!(a, Accumulation::Rows(_)));
        let by_runs = (self.accumulators.iter()).any(|a| matches!(a, Accumulation::Runs(_)));
        match long_runs(keys)? {
            Some(runs) => {
                let firsts = arrow::array::UInt32Array::from_iter_values(
                    runs.iter().map(|run| run.start as u32),
                );
                let run_keys = keys
                    .iter()
                    .map(|k| arrow::compute::take(k.as_ref(), &firsts, None))
                    .collect::<Result<Vec<_>, _>>()?;
                self.groups.intern(&run_keys, &mut self.run_groups)?;
                self.last_group = self.run_groups.last().copied();
                self.runs_looked_up.add(runs.len());
                self.runs = runs;
                if by_rows {
                    self.row_groups.clear();
                    for (run, &group) in self.runs.iter().zip(&self.run_groups) {
                        self.row_groups
                            .extend(std::iter::repeat_n(group, run.len()));
                    }
                }
            }
            None => {
                self.groups.intern(keys, &mut self.row_groups)?;
                self.last_group = self.row_groups.last().copied();
                self.rows_looked_up.add(rows);
                if by_runs {
                    group_runs(&self.row_groups, &mut self.runs, &mut self.run_groups);
                }
            }
        }
        let total = self.groups.len();
        for (function, accumulator) in
            (self.aggregate.aggr_expr().iter()).zip(&mut self.accumulators)
        {
            let values = (function.expressions().iter())
                .map(|expr| expr.evaluate(batch)?.into_array(rows))
                .collect::<DfResult<Vec<_>>>()?;
            match accumulator {
                Accumulation::Rows(accumulator) => {
                    accumulator.update_batch(&values, &self.row_groups, None, total)?
                }
                Accumulation::Runs(accumulator) => {
                    accumulator.update(&values[0], &self.runs, &self.run_groups, total)?
                }
            }
        }
        Ok(())
    }

    /// Whether the memory pool grants what the groups hold.
    fn fits(&mut self) -> bool {
        let size = self.groups.size()
            + (self.accumulators.iter())
                .map(Accumulation::size)
                .sum::<usize>()
            + self.row_groups.capacity() * size_of::<usize>()
            + self.runs.capacity() * size_of::<Range<usize>>()
            + self.run_groups.capacity() * size_of::<usize>();
        self.reservation.try_resize(size).is_ok()
    }

    /// The groups' partial states, in batches of the session's size; the
    /// table is then empty.
    fn emit(&mut self) -> DfResult<VecDeque<RecordBatch>> {
        self.emit_to(EmitTo::All)
    }

    /// The partial states of the groups `emit_to` names, in batches of the
    /// session's size, which the table then drops.
    fn emit_to(&mut self, emit_to: EmitTo) -> DfResult<VecDeque<RecordBatch>> {
        let _timer = self.baseline.elapsed_compute().timer();
        if self.groups.is_empty() {
            return Ok(VecDeque::new());
        }
        let mut columns = self.groups.emit(emit_to)?;
        for accumulator in &mut self.accumulators {
            columns.extend(accumulator.state(emit_to)?);
        }
        let all = RecordBatch::try_new(self.aggregate.schema(), columns)?;
        let rows = all.num_rows();
        self.baseline.record_output(rows);
        self.last_group = None;
        if self.groups.is_empty() {
            self.groups.clear_shrink(0);
            self.reservation.free();
        }
        Ok((0..rows)
            .step_by(self.batch_size)
            .map(|start| all.slice(start, self.batch_size.min(rows - start)))
            .collect())
    }
}

/// A node that gives one stream already begun: the rows a
/// [`RunAggregateExec`] looked at, then the rest, for the aggregation it
/// hands a partition over to.
struct Replay {
    properties: Arc<PlanProperties>,
    schema: SchemaRef,
    rows: Mutex<Option<SendableRecordBatchStream>>,
}

impl Replay {
    /// `rows`, a stream of `input`'s, with `input`'s properties.
    fn new(input: &Arc<dyn ExecutionPlan>, rows: SendableRecordBatchStream) -> Self {
        Self {
            properties: Arc::clone(input.properties()),
            schema: input.schema(),
            rows: Mutex::new(Some(rows)),
        }
    }
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay").finish_non_exhaustive()
    }
}

impl DisplayAs for Replay {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Replay")
    }
}

impl ExecutionPlan for Replay {
    fn name(&self) -> &str {
        "Replay"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match children.is_empty() {
            true => Ok(self),
            false => Err(DataFusionError::Internal(
                "a replayed stream has no children".to_string(),
            )),
        }
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let mut rows = self.rows.lock().map_err(|_| {
            DataFusionError::Internal("a replayed stream's lock is poisoned".to_string())
        })?;
        rows.take()
            .ok_or_else(|| DataFusionError::Internal("a replayed stream is read twice".to_string()))
    }
}

impl DisplayAs for RunAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = (self.aggregate.group_expr().expr().iter())
            .map(|(expr, name)| match expr.to_string() == *name {
                true => name.clone(),
                false => format!("{expr} as {name}"),
            })
            .collect();
        let aggregates: Vec<&str> = (self.aggregate.aggr_expr().iter())
            .map(|function| function.name())
            .collect();
        write!(
            f,
            "RunAggregateExec: mode=Partial, gby=[{}], aggr=[{}]",
            groups.join(", "),
            aggregates.join(", ")
        )?;
        match self.aggregate.input_order_mode() {
            InputOrderMode::Sorted => f.write_str(", ordering_mode=Sorted"),
            _ => Ok(()),
        }
    }
}

impl ExecutionPlan for RunAggregateExec {
    fn name(&self) -> &str {
        "RunAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.aggregate.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.aggregate.maintains_input_order()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let aggregate = replace_children_if_necessary(
            Arc::clone(&self.aggregate) as Arc<dyn ExecutionPlan>,
            children,
        )?;
        Ok(Self::over(aggregate))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let exec = self.clone();
        let batches = stream::once(exec.aggregate_partition(partition, context)).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{Field, Int64Type, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
    use datafusion::physical_plan::aggregates::PhysicalGroupBy;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::SessionConfig;
    use std::collections::BTreeMap;

    /// A partial `sum(v) GROUP BY k` over `rows` rows in batches of 500,
    /// whose `k` is `key(row)` and `v` the row.
    fn sum_by_key(rows: i64, key: impl Fn(i64) -> i64) -> RunAggregateExec {
        sum_grouped(rows, key, &["k"], &[])
    }

    /// The same, grouped by the columns `keys` (`k`, `v`), over rows that
    /// declare themselves sorted by the columns `order`.
    fn sum_grouped(
        rows: i64,
        key: impl Fn(i64) -> i64,
        keys: &[&str],
        order: &[&str],
    ) -> RunAggregateExec {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let batches: Vec<RecordBatch> = (0..rows)
            .step_by(500)
            .map(|start| {
                let rows = start..(start + 500).min(rows);
                let k = Int64Array::from_iter_values(rows.clone().map(&key));
                let v = Int64Array::from_iter_values(rows);
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(k), Arc::new(v)]).unwrap()
            })
            .collect();
        let input = ordered(
            MemorySourceConfig::try_new(&[batches], Arc::clone(&schema), None).unwrap(),
            order,
        );
        let group_by = PhysicalGroupBy::new_single(
            (keys.iter())
                .map(|k| (col(k, &schema).unwrap(), k.to_string()))
                .collect(),
        );
        let sum = AggregateExprBuilder::new(sum_udaf(), vec![col("v", &schema).unwrap()])
            .schema(Arc::clone(&schema))
            .alias("sum(v)")
            .build()
            .unwrap();
        let aggregate = AggregateExec::try_new(
            AggregateMode::Partial,
            group_by,
            vec![Arc::new(sum)],
            vec![None],
            input,
            schema,
        )
        .unwrap();
        RunAggregateExec::new(Arc::new(aggregate)).unwrap()
    }

    /// `source` declaring itself sorted by the columns `order`.
    fn ordered(source: MemorySourceConfig, order: &[&str]) -> Arc<dyn ExecutionPlan> {
        let schema = source.original_schema();
        let order = order
            .iter()
            .map(|k| PhysicalSortExpr::new_default(col(k, &schema).unwrap()));
        let source = match LexOrdering::new(order) {
            Some(order) => source.try_with_sort_information(vec![order]).unwrap(),
            None => source,
        };
        DataSourceExec::from_data_source(source)
    }

    /// The partial sums of `exec`'s output per key, merged, and the rows
    /// it output.
    async fn merged(exec: Arc<dyn ExecutionPlan>, pool: usize) -> (BTreeMap<i64, i64>, usize) {
        merged_with(exec, pool, SessionConfig::new()).await
    }

    async fn merged_with(
        exec: Arc<dyn ExecutionPlan>,
        pool: usize,
        config: SessionConfig,
    ) -> (BTreeMap<i64, i64>, usize) {
        let context = task_context(pool, config.with_batch_size(300));
        let batches = collect(exec, context).await.unwrap();
        let mut sums = BTreeMap::new();
        let mut rows = 0;
        for batch in batches {
            rows += batch.num_rows();
            let k = batch.column(0).as_primitive::<Int64Type>();
            let v = batch.column(1).as_primitive::<Int64Type>();
            for (k, v) in k.values().iter().zip(v.values()) {
                *sums.entry(*k).or_insert(0) += v;
            }
        }
        (sums, rows)
    }

    /// A task's context with `config` and a memory pool of `pool` bytes
    /// that refuses more.
    fn task_context(pool: usize, config: SessionConfig) -> Arc<TaskContext> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(pool)))
            .build_arc()
            .unwrap();
        let context = TaskContext::default()
            .with_runtime(runtime)
            .with_session_config(config);
        Arc::new(context)
    }

    fn expected(rows: i64, key: impl Fn(i64) -> i64) -> BTreeMap<i64, i64> {
        let mut sums = BTreeMap::new();
        for row in 0..rows {
            *sums.entry(key(row)).or_insert(0) += row;
        }
        sums
    }

    fn metric(exec: &RunAggregateExec, name: &str) -> usize {
        exec.metrics()
            .and_then(|m| m.sum_by_name(name))
            .map_or(0, |v| v.as_usize())
    }

    #[tokio::test]
    async fn refused_memory_emits_the_groups_early_and_the_sums_still_merge() {
        // 1,000 keys in runs of 20, twice over: a partial state per key in
        // memory.
        let key = |row: i64| row / 20 % 1_000;
        let exec = Arc::new(sum_by_key(40_000, key));
        let (sums, rows) = merged(Arc::clone(&exec) as _, 16 * 1024).await;
        assert_eq!(sums, expected(40_000, key));
        assert_eq!(metric(&exec, "runs_looked_up"), 2_000);
        // The groups were emitted more than once: some keys twice.
        assert!(rows > 1_000, "{rows} rows");
        // With room, once.
        let exec = Arc::new(sum_by_key(40_000, key));
        let (sums, rows) = merged(exec, usize::MAX).await;
        assert_eq!(sums, expected(40_000, key));
        assert_eq!(rows, 1_000);
    }

    #[tokio::test]
    async fn a_partition_not_in_runs_is_aggregated_by_datafusion() {
        // The key changes every row.
        let key = |row: i64| row % 7;
        let exec = Arc::new(sum_by_key(5_000, key));
        let (sums, rows) = merged(Arc::clone(&exec) as _, usize::MAX).await;
        assert_eq!(sums, expected(5_000, key));
        assert_eq!(rows, 7);
        assert_eq!(metric(&exec, "partitions_handed_over"), 1);
        assert_eq!(metric(&exec, "runs_looked_up"), 0);
        // In runs, aggregated by runs: one lookup per run of 50.
        let key = |row: i64| row / 50 % 7;
        let exec = Arc::new(sum_by_key(5_000, key));
        let (sums, _) = merged(Arc::clone(&exec) as _, usize::MAX).await;
        assert_eq!(sums, expected(5_000, key));
        assert_eq!(metric(&exec, "partitions_handed_over"), 0);
        assert_eq!(metric(&exec, "runs_looked_up"), 100);
    }

    #[tokio::test]
    async fn rows_that_stop_coming_in_runs_are_handed_to_datafusion() {
        // Runs of 50 for 3,000 rows, then a new key every row.
        let key = |row: i64| if row < 3_000 { row / 50 } else { row };
        let exec = Arc::new(sum_by_key(10_000, key));
        let mut config = SessionConfig::new();
        let options = &mut config.options_mut().execution;
        options.skip_partial_aggregation_probe_rows_threshold = 6_000;
        options.skip_partial_aggregation_probe_ratio_threshold = 0.5;
        let (sums, rows) = merged_with(Arc::clone(&exec) as _, usize::MAX, config).await;
        assert_eq!(sums, expected(10_000, key));
        assert_eq!(rows, 60 + 7_000);
        assert_eq!(metric(&exec, "partitions_handed_over"), 1);
        assert_eq!(metric(&exec, "runs_looked_up"), 60);
        assert_eq!(exec.metrics().unwrap().output_rows(), Some(rows));
        // Without the probe, aggregated to the end.
        let exec = Arc::new(sum_by_key(10_000, key));
        let (sums, rows) = merged(Arc::clone(&exec) as _, usize::MAX).await;
        assert_eq!(sums, expected(10_000, key));
        assert_eq!(rows, 60 + 7_000);
        assert_eq!(metric(&exec, "partitions_handed_over"), 0);
        assert_eq!(exec.metrics().unwrap().output_rows(), Some(rows));
    }

    #[tokio::test]
    async fn partial_states_are_datafusions_to_the_bit() {
        use arrow::array::Float64Array;
        use datafusion::functions_aggregate::{average, count, min_max, stddev};
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Float64, true),
        ]));
        // Keys in runs of 37, but for 600 rows where they change every
        // other row; floats of all sizes, and nulls. `avg`, `sum`,
        // `count` and `max` are fed by runs, `stddev` by rows.
        let mut rng = StdRng::seed_from_u64(5);
        let key = |row: i64| match row {
            3_000..3_600 => row / 2 % 5,
            _ => row / 37 % 11,
        };
        let batches: Vec<RecordBatch> = (0..6_000)
            .step_by(500)
            .map(|start| {
                let k = Int64Array::from_iter_values((start..start + 500).map(key));
                // Key 10's values are all null.
                let v: Float64Array = (start..start + 500)
                    .map(|row| {
                        let v = rng.random_range(-1.0..1.0) * 10f64.powi(rng.random_range(-9..9));
                        (key(row) != 10 && rng.random_bool(0.9)).then_some(v)
                    })
                    .collect();
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(k), Arc::new(v)]).unwrap()
            })
            .collect();
        let input =
            MemorySourceConfig::try_new_exec(&[batches], Arc::clone(&schema), None).unwrap();
        let group_by = PhysicalGroupBy::new_single(vec![(col("k", &schema).unwrap(), "k".into())]);
        let functions = [
            average::avg_udaf(),
            sum_udaf(),
            count::count_udaf(),
            min_max::max_udaf(),
            stddev::stddev_udaf(),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, udaf)| {
            let function = AggregateExprBuilder::new(udaf, vec![col("v", &schema).unwrap()])
                .schema(Arc::clone(&schema))
                .alias(format!("a{i}"))
                .build()
                .unwrap();
            Arc::new(function)
        })
        .collect();
        let aggregate = Arc::new(
            AggregateExec::try_new(
                AggregateMode::Partial,
                group_by,
                functions,
                vec![None; 5],
                input,
                Arc::clone(&schema),
            )
            .unwrap(),
        );
        let fed_by_runs: Vec<bool> = (aggregate.aggr_expr().iter())
            .map(|function| run_accumulator(function, &schema).is_some())
            .collect();
        assert_eq!(fed_by_runs, [true, true, true, true, false]);
        let exec = Arc::new(RunAggregateExec::new(Arc::clone(&aggregate)).unwrap());
        let all = |batches: Vec<RecordBatch>| {
            arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
        };
        let context = Arc::new(TaskContext::default());
        let ours = all(collect(Arc::clone(&exec) as _, Arc::clone(&context))
            .await
            .unwrap());
        let theirs = all(collect(aggregate, context).await.unwrap());
        assert_eq!(ours, theirs);
        // The group of key 10 has null states: a null average's sum.
        assert_eq!(ours.column(2).null_count(), 1);
        for (ours, theirs) in ours.columns().iter().zip(theirs.columns()) {
            assert_eq!(ours.nulls(), theirs.nulls());
        }
        let bits = |batch: &RecordBatch| -> Vec<Vec<Option<u64>>> {
            (batch.columns().iter())
                .filter_map(|c| c.as_primitive_opt::<arrow::datatypes::Float64Type>())
                .map(|c| c.iter().map(|v| v.map(f64::to_bits)).collect())
                .collect()
        };
        assert_eq!(bits(&ours), bits(&theirs));
        // Both ways of looking up were taken.
        assert!(metric(&exec, "runs_looked_up") > 0);
        assert_eq!(metric(&exec, "rows_looked_up"), 1_000);
    }

    #[test]
    // `with_new_children` is what `replace_children` calls for a node.
    #[allow(deprecated)]
    fn rebuilt_over_rows_in_another_order_it_gives_way_to_datafusion() {
        let exec = Arc::new(sum_grouped(1_000, |row| row / 50, &["k", "v"], &[]));
        let input = exec.children()[0];
        let schema = input.schema();
        let by_k = || {
            ordered(
                MemorySourceConfig::try_new(&[vec![]], Arc::clone(&schema), None).unwrap(),
                &["k"],
            )
        };
        // Over rows sorted by some of the keys only, DataFusion's
        // aggregation streams on them.
        let rebuilt = (Arc::clone(&exec) as Arc<dyn ExecutionPlan>)
            .with_new_children(vec![by_k()])
            .unwrap();
        let aggregate = rebuilt.downcast_ref::<AggregateExec>().unwrap();
        assert!(matches!(
            aggregate.input_order_mode(),
            InputOrderMode::PartiallySorted(_)
        ));
        // Over the same input, it stands.
        let same = (Arc::clone(&exec) as Arc<dyn ExecutionPlan>)
            .with_new_children(vec![Arc::clone(input)])
            .unwrap();
        assert!(same.is::<RunAggregateExec>());
        // Grouped by `k` alone, over rows sorted by it, it stands too.
        let exec = Arc::new(sum_by_key(1_000, |row| row / 50));
        let rebuilt = (exec as Arc<dyn ExecutionPlan>)
            .with_new_children(vec![by_k()])
            .unwrap();
        let node = rebuilt.downcast_ref::<RunAggregateExec>().unwrap();
        assert_eq!(*node.aggregate().input_order_mode(), InputOrderMode::Sorted);
    }

    #[tokio::test]
    async fn groups_of_sorted_rows_go_out_as_they_end() {
        // Keys in runs of 70, each key once, declared sorted; batches of
        // 500, so that keys run on from one batch into the next.
        let key = |row: i64| row / 70;
        let exec = Arc::new(sum_grouped(5_000, key, &["k"], &["k"]));
        assert_eq!(*exec.aggregate().input_order_mode(), InputOrderMode::Sorted);
        let keys = |batches: &[RecordBatch]| -> Vec<i64> {
            (batches.iter())
                .flat_map(|batch| {
                    let keys = batch.column(0).as_primitive::<Int64Type>();
                    keys.values().to_vec()
                })
                .collect()
        };
        let output = |pool: usize| {
            let config = SessionConfig::new().with_batch_size(500);
            collect(Arc::clone(&exec) as _, task_context(pool, config))
        };
        // A batch out for each batch in (the groups it ended: all but its
        // last row's), and the last group at the end: in order, each key
        // once.
        let batches = output(usize::MAX).await.unwrap();
        assert_eq!(batches.len(), 11);
        assert_eq!(keys(&batches), (0..=71).collect::<Vec<_>>());
        assert_eq!(metric(&exec, "runs_looked_up"), 80);
        // Refused memory, the last group goes out too: a key then comes
        // out twice, one right after the other, and the sums still merge.
        let batches = output(1).await.unwrap();
        let keys = keys(&batches);
        assert!(keys.is_sorted(), "{keys:?}");
        assert!(keys.len() > 72, "{keys:?}");
        let (sums, _) = merged(Arc::clone(&exec) as _, 1).await;
        assert_eq!(sums, expected(5_000, key));
    }
}
