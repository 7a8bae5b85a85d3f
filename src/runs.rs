//! [`CollapseRunsExec`]: runs of equal group keys folded into one row before
//! a `min`/`max` aggregation.
//!
//! A file compacted with a sort key holds each tag value in long runs (in
//! the devops benchmark a host's hour is 360 rows). DataFusion's hash
//! aggregation looks each row's group up in a hash table whatever the
//! order, and `max(ts) ... GROUP BY hostname` over 2.6 M rows spends most of
//! its time there. Where every aggregate is a `min` or a `max` of a column, a
//! run of rows with the same group keys can stand as one row holding, in each
//! aggregated column, the run's minimum or maximum: the answer is the same,
//! and the hash table sees a row per run.
//!
//! [`collapse_runs`] puts the node under every partial (or single-stage)
//! aggregation of a series that qualifies. The node decides batch by batch:
//! a batch whose keys change every few rows passes through as it is, after a
//! look at its first rows, so series not clustered by the keys pay next to
//! nothing.
//!
//! The fold is DataFusion's own (`min`/`max`'s groups accumulators replace
//! the value kept when the new one is strictly smaller or larger, so the
//! first of equal values stays): folding a run first and the runs then gives
//! what folding every row gives. A NaN breaks that (DataFusion replaces any
//! value by a NaN and a NaN by any value), so a batch with a NaN in an
//! aggregated float column passes through whole.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, PrimitiveArray, RecordBatch, RecordBatchOptions,
    StringViewArray, UInt32Array, downcast_primitive_array,
};
use arrow::compute::{partition, take};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_aggregate::min_max::{Max, Min};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_expr_common::physical_expr::is_volatile;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, replace_children_if_necessary,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, InputOrderMode,
    PlanProperties,
};
use futures::StreamExt;

use crate::scan::SeriesScanExec;

/// The shortest mean run worth folding: a batch with more runs than one
/// per this many rows passes through.
pub(crate) const MIN_MEAN_RUN: usize = 16;

/// The rows a batch is first looked at by: with more than
/// `SAMPLE_ROWS / MIN_MEAN_RUN` runs in them, it passes through without
/// the whole batch being split into runs.
const SAMPLE_ROWS: usize = 4 * MIN_MEAN_RUN;

/// Which end of a run an aggregated column keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extreme {
    Min,
    Max,
}

/// `plan` with a [`CollapseRunsExec`] under every aggregation it may stand
/// under (see [`CollapseRunsExec::under`]).
pub(crate) fn collapse_runs(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(exec) = node
            .downcast_ref::<AggregateExec>()
            .and_then(CollapseRunsExec::under)
        else {
            return Ok(Transformed::no(node));
        };
        let node = replace_children_if_necessary(node, vec![Arc::new(exec)])?;
        Ok(Transformed::yes(node))
    })
    .data()
}

/// Folds each run of rows with equal key columns into one row: the first
/// row's values, but for the aggregated columns, which hold the run's
/// minimum or maximum (nulls ignored, as `min` and `max` ignore them).
#[derive(Debug, Clone)]
pub struct CollapseRunsExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<usize>,
    extremes: Vec<(usize, Extreme)>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl CollapseRunsExec {
    /// Over `input`, with runs of the columns `keys`, keeping the
    /// `extremes` of their columns.
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<usize>,
        extremes: Vec<(usize, Extreme)>,
    ) -> DfResult<Self> {
        // The rows are the input's, fewer; no order is claimed (a run's
        // maximum need not sort where its first row did). Constants stay
        // constant: a run of a constant column folds to the constant.
        let mut equivalence = EquivalenceProperties::new(input.schema());
        equivalence.add_constants(input.equivalence_properties().constants())?;
        let properties = PlanProperties::new(
            equivalence,
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        // Each batch is the input's, folded: polling this polls the input.
        .with_scheduling_type(input.properties().scheduling_type)
        .with_evaluation_type(input.properties().evaluation_type);
        Ok(Self {
            input,
            keys,
            extremes,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The node to put under `aggregate`, if it may stand there and has a
    /// chance to pay:
    /// - a partial or single-stage aggregation of rows in no order it
    ///   relies on, whose input reads a series;
    /// - grouped by expressions, none volatile, of columns whose equality
    ///   is the grouping's (strings, integers, booleans, times: not floats,
    ///   whose `-0.0` and `0.0` group apart);
    /// - and every aggregate a `min` or `max` (not `DISTINCT`, no `FILTER`,
    ///   no `ORDER BY`) of a column of a type whose fold is DataFusion's.
    pub(crate) fn under(aggregate: &AggregateExec) -> Option<Self> {
        let input = aggregate.input();
        let grouped = aggregate.group_expr();
        if !matches!(
            aggregate.mode(),
            AggregateMode::Partial | AggregateMode::Single
        ) || *aggregate.input_order_mode() != InputOrderMode::Linear
            || !grouped.is_single()
            || grouped.expr().is_empty()
            || aggregate.filter_expr().iter().any(Option::is_some)
            || input.is::<Self>()
            || !reads_a_series(input)
        {
            return None;
        }
        let schema = input.schema();
        let mut keys = Vec::new();
        for (expr, _) in grouped.expr() {
            if is_volatile(expr) {
                return None;
            }
            for column in collect_columns(expr) {
                if !groups_by_equality(schema.field(column.index()).data_type()) {
                    return None;
                }
                keys.push(column.index());
            }
        }
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return None;
        }
        let mut extremes = BTreeMap::new();
        for function in aggregate.aggr_expr() {
            let (column, extreme) = extreme_of_column(function)?;
            if !folds_as_datafusion(schema.field(column).data_type()) {
                return None;
            }
            // A key column is the same over its run: any row of it will do.
            if keys.contains(&column) {
                continue;
            }
            if *extremes.entry(column).or_insert(extreme) != extreme {
                // Both ends of one column would take two rows per run.
                return None;
            }
        }
        Self::new(Arc::clone(input), keys, extremes.into_iter().collect()).ok()
    }

    /// The key columns and the aggregated columns with the end each keeps.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn parts(&self) -> (&[usize], &[(usize, Extreme)]) {
        (&self.keys, &self.extremes)
    }

    /// `batch` with its runs folded, or as it is if they are short.
    fn collapse(&self, batch: RecordBatch) -> Result<(RecordBatch, bool), ArrowError> {
        let rows = batch.num_rows();
        if rows < 2 * SAMPLE_ROWS {
            return Ok((batch, false));
        }
        let keys: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let Some(runs) = long_runs(&keys)? else {
            return Ok((batch, false));
        };
        if (self.extremes.iter()).any(|&(i, _)| has_nan(batch.column(i).as_ref())) {
            return Ok((batch, false));
        }
        let firsts = UInt32Array::from_iter_values(runs.iter().map(|r| r.start as u32));
        let columns = batch
            .columns()
            .iter()
            .enumerate()
            .map(
                |(i, column)| match self.extremes.iter().find(|(e, _)| *e == i) {
                    Some(&(_, extreme)) => fold_runs(column, &runs, extreme),
                    None => take(column.as_ref(), &firsts, None),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(runs.len()));
        let folded = RecordBatch::try_new_with_options(batch.schema(), columns, &options)?;
        Ok((folded, true))
    }
}

/// The runs of equal rows of `keys` if they are [`MIN_MEAN_RUN`] rows long
/// on average, or else `None`: after a look at the first [`SAMPLE_ROWS`]
/// rows, so that keys which change every few rows cost little.
pub(crate) fn long_runs(keys: &[ArrayRef]) -> Result<Option<Vec<Range<usize>>>, ArrowError> {
    let rows = keys.first().map_or(0, |k| k.len());
    let sample: Vec<ArrayRef> = (keys.iter())
        .map(|k| k.slice(0, rows.min(SAMPLE_ROWS)))
        .collect();
    if runs_of(&sample)?.len() > SAMPLE_ROWS / MIN_MEAN_RUN {
        return Ok(None);
    }
    let runs = runs_of(keys)?;
    Ok((runs.len() * MIN_MEAN_RUN <= rows).then_some(runs))
}

/// The runs of equal rows of `keys`, as row ranges: what arrow's
/// `partition` finds, faster. Keys without nulls that are string views or
/// primitives other than floats (whose NaN and `-0.0` `partition` compares
/// by total order) are compared here, a word at a time; others by
/// `partition`.
pub(crate) fn runs_of(keys: &[ArrayRef]) -> Result<Vec<Range<usize>>, ArrowError> {
    let rows = keys.first().map_or(0, |k| k.len());
    // The rows that start a run, but the first.
    let mut starts: Vec<usize> = Vec::new();
    for key in keys {
        let mut changes = Vec::new();
        let compared = key.null_count() == 0
            && !key.data_type().is_floating()
            && match key.data_type() {
                DataType::Utf8View => {
                    view_changes(key.as_string_view(), &mut changes);
                    true
                }
                _ => downcast_primitive_array!(
                    key => {
                        changes.extend(
                            (key.values().windows(2).enumerate())
                                .filter(|(_, pair)| pair[0] != pair[1])
                                .map(|(i, _)| i + 1),
                        );
                        true
                    },
                    _ => false
                ),
            };
        if !compared {
            return Ok(partition(keys)?.ranges());
        }
        starts.extend(changes);
    }
    if keys.len() > 1 {
        starts.sort_unstable();
        starts.dedup();
    }
    let ends = starts.iter().copied().chain((rows > 0).then_some(rows));
    let mut first = 0;
    Ok(ends
        .map(|end| {
            let run = first..end;
            first = end;
            run
        })
        .collect())
}

/// The rows of `array` whose string differs from the row before: equal
/// views are equal strings (the same inline bytes, or the same bytes of the
/// same buffer); unequal ones are unequal strings unless both are long and
/// of one length and prefix.
fn view_changes(array: &StringViewArray, changes: &mut Vec<usize>) {
    let views = array.views();
    for (i, pair) in views.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        if a == b {
            continue;
        }
        // The low 32 bits are the length, the next 32 the prefix.
        let long = (a as u32) > 12;
        if !long || (a as u64) != (b as u64) || array.value(i) != array.value(i + 1) {
            changes.push(i + 1);
        }
    }
}

/// The column and the end of it that `function` aggregates, if it is
/// DataFusion's own `min` or `max` (not another of the same name) of a
/// column, without `DISTINCT` or `ORDER BY`. (A `FILTER` is the
/// aggregation's, not the function's.)
pub(crate) fn extreme_of_column(function: &AggregateFunctionExpr) -> Option<(usize, Extreme)> {
    let inner = function.fun().inner();
    let extreme = if inner.is::<Min>() {
        Extreme::Min
    } else if inner.is::<Max>() {
        Extreme::Max
    } else {
        return None;
    };
    let [argument] = function.expressions().try_into().ok()?;
    let column = argument.downcast_ref::<Column>()?.index();
    (!function.is_distinct() && function.order_bys().is_empty()).then_some((column, extreme))
}

/// Whether `plan` reads a series through nodes of one input each.
pub(crate) fn reads_a_series(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut node = plan;
    loop {
        if node.is::<SeriesScanExec>() {
            return true;
        }
        match node.children().as_slice() {
            [child] => node = child,
            _ => return false,
        }
    }
}

/// Whether two values of the type group together exactly when `partition`
/// finds them equal.
fn groups_by_equality(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Boolean
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
        )
}

/// Whether `min` and `max` of the type fold by `partial_cmp` in
/// DataFusion's groups accumulators, as [`fold_runs`] does.
fn folds_as_datafusion(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Float32
                | DataType::Float64
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Decimal128(..)
        )
}

/// Whether `array` is of floats and holds a NaN (in a null slot too).
fn has_nan(array: &dyn Array) -> bool {
    match array.data_type() {
        DataType::Float32 => array
            .as_primitive::<arrow::datatypes::Float32Type>()
            .values()
            .iter()
            .any(|v| v.is_nan()),
        DataType::Float64 => array
            .as_primitive::<arrow::datatypes::Float64Type>()
            .values()
            .iter()
            .any(|v| v.is_nan()),
        _ => false,
    }
}

/// Each run's minimum or maximum of `column`, or null for a run of nulls.
fn fold_runs(
    column: &ArrayRef,
    runs: &[Range<usize>],
    extreme: Extreme,
) -> Result<ArrayRef, ArrowError> {
    let wanted = match extreme {
        Extreme::Min => Ordering::Less,
        Extreme::Max => Ordering::Greater,
    };
    downcast_primitive_array!(
        column => Ok(Arc::new(fold_primitive_runs(column, runs, wanted))),
        other => Err(ArrowError::NotYetImplemented(format!(
            "the runs of a column of {other} cannot be folded"
        )))
    )
}

/// [`fold_runs`] of one primitive type: a value replaces the one kept only
/// if it compares `wanted` to it, as in DataFusion's `min` and `max`.
fn fold_primitive_runs<T: ArrowPrimitiveType>(
    array: &PrimitiveArray<T>,
    runs: &[Range<usize>],
    wanted: Ordering,
) -> PrimitiveArray<T> {
    let values = array.values();
    let better = |kept: T::Native, value: T::Native| value.partial_cmp(&kept) == Some(wanted);
    let folded: PrimitiveArray<T> = match array.nulls().filter(|n| n.null_count() > 0) {
        None => runs
            .iter()
            .map(|run| {
                let run = &values[run.clone()];
                let first = run.first().copied();
                first.map(|first| {
                    run[1..]
                        .iter()
                        .fold(first, |kept, &v| if better(kept, v) { v } else { kept })
                })
            })
            .collect(),
        Some(nulls) => runs
            .iter()
            .map(|run| {
                run.clone()
                    .filter(|&i| nulls.is_valid(i))
                    .map(|i| values[i])
                    .reduce(|kept, v| if better(kept, v) { v } else { kept })
            })
            .collect(),
    };
    folded.with_data_type(array.data_type().clone())
}

impl DisplayAs for CollapseRunsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schema = self.input.schema();
        let name = |i: usize| format!("{}@{i}", schema.field(i).name());
        let keys: Vec<String> = self.keys.iter().map(|&i| name(i)).collect();
        write!(f, "CollapseRunsExec: keys=[{}]", keys.join(", "))?;
        for (label, wanted) in [("min", Extreme::Min), ("max", Extreme::Max)] {
            let columns: Vec<String> = self
                .extremes
                .iter()
                .filter(|(_, e)| *e == wanted)
                .map(|&(i, _)| name(i))
                .collect();
            if !columns.is_empty() {
                write!(f, ", {label}=[{}]", columns.join(", "))?;
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for CollapseRunsExec {
    fn name(&self) -> &str {
        "CollapseRunsExec"
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

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            self.keys.clone(),
            self.extremes.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let folded: Count = MetricBuilder::new(&self.metrics).counter("batches_folded", partition);
        let exec = self.clone();
        let stream = input.map(move |batch| {
            let batch = batch?;
            let _timer = baseline.elapsed_compute().timer();
            let (batch, changed) = exec.collapse(batch)?;
            if changed {
                folded.add(1);
            }
            baseline.record_output(batch.num_rows());
            Ok::<_, DataFusionError>(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringViewBuilder};

    #[test]
    fn a_run_keeps_the_first_of_equal_extremes_and_ignores_nulls() {
        let values: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(0.0),
            Some(-0.0),
            None,
            None,
            Some(-1.0),
        ]));
        let max = fold_runs(&values, &[0..2, 2..4, 4..5], Extreme::Max).unwrap();
        let max = max.as_primitive::<arrow::datatypes::Float64Type>();
        assert!(max.value(0) == 0.0 && max.value(0).is_sign_positive());
        assert!(max.is_null(1));
        assert_eq!(max.value(2), -1.0);
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![3, 1, 2]));
        let min = fold_runs(&ints, &[0..2, 2..3], Extreme::Min).unwrap();
        assert_eq!(
            min.as_primitive::<arrow::datatypes::Int64Type>().value(0),
            1
        );
    }

    #[test]
    fn runs_of_are_the_runs_partition_finds() {
        // Blocks of 40 bytes: equal long strings in different buffers.
        let mut builder = StringViewBuilder::new().with_fixed_block_size(40);
        let strings = [
            "host_a",
            "host_a",
            "host_b",
            "a host name past twelve bytes 1",
            "a host name past twelve bytes 1",
            "a host name past twelve bytes 2",
            "a host name past twelve bytes 2",
            "a host name past twelve",
            "host_a",
            "",
        ];
        for s in strings {
            builder.append_value(s);
        }
        let views: ArrayRef = Arc::new(builder.finish());
        assert!(views.as_string_view().data_buffers().len() > 1);
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 1, 1, 2, 2, 2, 2, 2, 2]));
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![
            f64::NAN,
            f64::NAN,
            0.0,
            -0.0,
            -0.0,
            1.0,
            1.0,
            f64::NAN,
            2.0,
            2.0,
        ]));
        for keys in [
            vec![Arc::clone(&views)],
            vec![Arc::clone(&views), ints],
            vec![views, floats],
        ] {
            assert_eq!(runs_of(&keys).unwrap(), partition(&keys).unwrap().ranges());
        }
    }

    #[test]
    fn a_batch_with_a_nan_to_fold_passes_through_whole() {
        let batch = |v: f64| {
            RecordBatch::try_from_iter([
                ("k", Arc::new(Int64Array::from(vec![7; 200])) as ArrayRef),
                ("v", Arc::new(Float64Array::from(vec![v; 200])) as ArrayRef),
            ])
            .unwrap()
        };
        let input = Arc::new(datafusion::physical_plan::empty::EmptyExec::new(
            batch(0.0).schema(),
        ));
        let exec = CollapseRunsExec::new(input, vec![0], vec![(1, Extreme::Max)]).unwrap();
        let (folded, changed) = exec.collapse(batch(1.5)).unwrap();
        assert!(changed && folded.num_rows() == 1);
        let (kept, changed) = exec.collapse(batch(f64::NAN)).unwrap();
        assert!(!changed && kept.num_rows() == 200);
    }
}
