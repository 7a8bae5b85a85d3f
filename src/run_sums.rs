//! `count`, `sum`, `avg`, `min` and `max` fed a run of rows of one group at
//! a time, for [`crate::RunAggregateExec`], keeping the partial states
//! DataFusion's own groups accumulators keep, to the bit.
//!
//! DataFusion's groups accumulators take a group for every row: for each
//! row, they load its group's sum (or extreme) from memory, fold the value
//! in, store it back, and mark the group as having seen a value. Folding a
//! run of rows of one group instead keeps the value in a register and marks
//! the group once. The steps are the same, in the same order (a group's sum
//! starts at zero and adds each of its values in the order of the rows), so
//! a float sum ends with the same bits, and a NaN goes where DataFusion's
//! would.

use std::cmp::Ordering;
use std::mem::take;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanBufferBuilder, Int64Array, PrimitiveArray,
    UInt64Array,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{ArrowNativeTypeOp, DataType, Float64Type, Int64Type, Schema, UInt64Type};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions_aggregate::average::Avg;
use datafusion::functions_aggregate::count::Count;
use datafusion::functions_aggregate::min_max::{Max, Min};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

/// An aggregate's partial states per group, fed runs of rows.
pub(crate) trait RunAccumulator: Send {
    /// The rows of each run of `runs`, of `values`, added to the group at
    /// the same place in `groups`; the table holds `groups_len` groups.
    fn update(
        &mut self,
        values: &ArrayRef,
        runs: &[Range<usize>],
        groups: &[usize],
        groups_len: usize,
    ) -> DfResult<()>;

    /// The partial state of the groups `emit_to` names, as DataFusion's
    /// groups accumulator gives it, which the accumulator then drops (the
    /// groups after them move to the front).
    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>>;

    /// The bytes it holds.
    fn size(&self) -> usize;
}

/// The accumulator fed by runs for `function`, whose input has `schema`,
/// if there is one whose partial state is the one DataFusion's
/// accumulator for it keeps: `count` of anything; `sum`, `min` and `max`
/// of `Int64`, `UInt64` or `Float64`; and `avg` of `Float64` (to which
/// DataFusion casts integers). Not for `DISTINCT`; the caller has checked
/// that it is neither filtered nor ordered.
pub(crate) fn run_accumulator(
    function: &AggregateFunctionExpr,
    schema: &Schema,
) -> Option<Box<dyn RunAccumulator>> {
    use DataType::{Float64, Int64, UInt64};
    if function.is_distinct() {
        return None;
    }
    let [argument] = <[_; 1]>::try_from(function.expressions()).ok()?;
    let argument = argument.data_type(schema).ok()?;
    let states: Vec<DataType> = (function.state_fields().ok()?.iter())
        .map(|field| field.data_type().clone())
        .collect();
    let result = function.field().data_type().clone();
    let udf = function.fun().inner().as_ref();
    if udf.is::<Count>() {
        return (states == [Int64]).then(|| Box::new(Counts::default()) as _);
    }
    let fold = if udf.is::<Sum>() {
        Fold::Sum
    } else if udf.is::<Avg>() {
        Fold::Average
    } else if udf.is::<Max>() {
        Fold::Max
    } else if udf.is::<Min>() {
        Fold::Min
    } else {
        return None;
    };
    // DataFusion's states: a count and a sum for `avg`, else one value of
    // the argument's type, which is the result's.
    let expected = match fold {
        Fold::Average => vec![UInt64, Float64],
        _ => vec![argument.clone()],
    };
    if result != argument || states != expected {
        return None;
    }
    match (argument, fold) {
        (Float64, _) => Some(folds::<Float64Type>(fold, f64::MIN, f64::MAX)),
        (_, Fold::Average) => None,
        (Int64, _) => Some(folds::<Int64Type>(fold, i64::MIN, i64::MAX)),
        (UInt64, _) => Some(folds::<UInt64Type>(fold, u64::MIN, u64::MAX)),
        _ => None,
    }
}

/// What a [`Folds`] keeps per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    Sum,
    Average,
    Max,
    Min,
}

/// The accumulator for `fold` of values of type `T`, whose least and
/// greatest values are `least` and `greatest`: DataFusion's `min` and
/// `max` start from them (not from infinities), and a value replaces the
/// extreme when it is beyond it or does not compare with it (a NaN).
fn folds<T: ArrowPrimitiveType>(
    fold: Fold,
    least: T::Native,
    greatest: T::Native,
) -> Box<dyn RunAccumulator> {
    let add = |sum: T::Native, value: T::Native| sum.add_wrapping(value);
    match fold {
        Fold::Sum => Box::new(Folds::<T, _>::new(T::Native::default(), false, add)),
        Fold::Average => Box::new(Folds::<T, _>::new(T::Native::default(), true, add)),
        Fold::Max => Box::new(Folds::<T, _>::new(least, false, beyond(Ordering::Greater))),
        Fold::Min => Box::new(Folds::<T, _>::new(greatest, false, beyond(Ordering::Less))),
    }
}

/// DataFusion's step of `max` (`way` Greater) or `min` (Less): a value
/// replaces the extreme kept if it lies beyond it, or if the two do not
/// compare.
fn beyond<N: PartialOrd>(way: Ordering) -> impl Fn(N, N) -> N {
    move |kept, value| match value.partial_cmp(&kept) {
        Some(o) if o != way => kept,
        _ => value,
    }
}

/// `count`: each group's values that are not null, as DataFusion's
/// `CountGroupsAccumulator` counts them (by the logical nulls).
#[derive(Default)]
struct Counts {
    counts: Vec<i64>,
}

impl RunAccumulator for Counts {
    fn update(
        &mut self,
        values: &ArrayRef,
        runs: &[Range<usize>],
        groups: &[usize],
        groups_len: usize,
    ) -> DfResult<()> {
        self.counts.resize(groups_len, 0);
        let nulls = values.logical_nulls();
        for (run, &group) in runs.iter().zip(groups) {
            let valid = match &nulls {
                None => run.len(),
                // A count of the bits pays for its slice on longer runs.
                Some(nulls) if run.len() >= 64 => {
                    run.len() - nulls.slice(run.start, run.len()).null_count()
                }
                Some(nulls) => run.clone().filter(|&row| nulls.is_valid(row)).count(),
            };
            self.counts[group] += valid as i64;
        }
        Ok(())
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let counts = emit_to.take_needed(&mut self.counts);
        Ok(vec![Arc::new(Int64Array::from(counts))])
    }

    fn size(&self) -> usize {
        self.counts.capacity() * size_of::<i64>()
    }
}

/// `sum`, `min` or `max`, or `avg` (a sum and a count), of each group's
/// values that are not null: DataFusion's `PrimitiveGroupsAccumulator`
/// (for `sum` with wrapping addition), or its `AvgGroupsAccumulator`.
/// Each group starts at `start` and folds its values in with `fold`, in
/// the order of the rows. A group that saw no value has a null state.
struct Folds<T: ArrowPrimitiveType, F> {
    values: Vec<T::Native>,
    start: T::Native,
    fold: F,
    /// Each group's values, for `avg` (empty otherwise).
    counts: Vec<u64>,
    /// Whether each group saw a value, once a batch had nulls since the
    /// last emission; until then every group did. DataFusion's `NullState`
    /// does the same, so the states have a null buffer when DataFusion's
    /// do.
    seen: Option<BooleanBufferBuilder>,
    average: bool,
}

impl<T: ArrowPrimitiveType, F> Folds<T, F> {
    fn new(start: T::Native, average: bool, fold: F) -> Self {
        Self {
            values: Vec::new(),
            start,
            fold,
            counts: Vec::new(),
            seen: None,
            average,
        }
    }
}

/// `value` with `values`' rows of `run` that `nulls` leaves valid folded
/// in, in order, and how many were.
fn run_fold<N: Copy>(
    mut value: N,
    values: &[N],
    nulls: Option<&NullBuffer>,
    run: Range<usize>,
    fold: &impl Fn(N, N) -> N,
) -> (N, usize) {
    match nulls {
        None => {
            let count = run.len();
            for &next in &values[run] {
                value = fold(value, next);
            }
            (value, count)
        }
        Some(nulls) => {
            let mut count = 0;
            for row in run.filter(|&row| nulls.is_valid(row)) {
                value = fold(value, values[row]);
                count += 1;
            }
            (value, count)
        }
    }
}

impl<T, F> RunAccumulator for Folds<T, F>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native, T::Native) -> T::Native + Send,
{
    fn update(
        &mut self,
        values: &ArrayRef,
        runs: &[Range<usize>],
        groups: &[usize],
        groups_len: usize,
    ) -> DfResult<()> {
        let values = values.as_primitive_opt::<T>().ok_or_else(|| {
            DataFusionError::Internal(format!(
                "an aggregate of {} fed {}",
                T::DATA_TYPE,
                values.data_type()
            ))
        })?;
        let nulls = values.nulls().filter(|nulls| nulls.null_count() > 0);
        if nulls.is_some() && self.seen.is_none() {
            // The groups so far all saw a value.
            let mut seen = BooleanBufferBuilder::new(groups_len);
            seen.append_n(self.values.len(), true);
            self.seen = Some(seen);
        }
        if let Some(seen) = &mut self.seen {
            seen.append_n(groups_len - seen.len(), false);
        }
        self.values.resize(groups_len, self.start);
        if self.average {
            self.counts.resize(groups_len, 0);
        }
        let data = values.values();
        for (run, &group) in runs.iter().zip(groups) {
            let (value, count) = run_fold(self.values[group], data, nulls, run.clone(), &self.fold);
            self.values[group] = value;
            if count > 0 {
                if self.average {
                    self.counts[group] += count as u64;
                }
                if let Some(seen) = &mut self.seen {
                    seen.set_bit(group, true);
                }
            }
        }
        Ok(())
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        // As DataFusion's `NullState`: the first groups' bits go out, and
        // the rest's stay.
        let nulls = match (emit_to, take(&mut self.seen)) {
            (_, None) => None,
            (EmitTo::All, Some(mut seen)) => Some(NullBuffer::new(seen.finish())),
            (EmitTo::First(n), Some(mut seen)) => {
                let seen = seen.finish();
                let mut rest = BooleanBufferBuilder::new(seen.len() - n);
                rest.append_buffer(&seen.slice(n, seen.len() - n));
                self.seen = Some(rest);
                Some(NullBuffer::new(seen.slice(0, n)))
            }
        };
        let values = emit_to.take_needed(&mut self.values);
        let values = PrimitiveArray::<T>::new(values.into(), nulls.clone());
        Ok(if self.average {
            let counts = UInt64Array::new(emit_to.take_needed(&mut self.counts).into(), nulls);
            vec![Arc::new(counts), Arc::new(values)]
        } else {
            vec![Arc::new(values)]
        })
    }

    fn size(&self) -> usize {
        self.values.capacity() * size_of::<T::Native>()
            + self.counts.capacity() * size_of::<u64>()
            + self.seen.as_ref().map_or(0, BooleanBufferBuilder::capacity) / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Decimal128Array, DictionaryArray, Float64Array, Int32Array, UInt64Array,
    };
    use arrow::datatypes::Field;
    use datafusion::functions_aggregate::average::avg_udaf;
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::col;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn function(udaf: Arc<AggregateUDF>, schema: &Arc<Schema>) -> AggregateFunctionExpr {
        AggregateExprBuilder::new(udaf, vec![col("v", schema).unwrap()])
            .schema(Arc::clone(schema))
            .alias("a")
            .build()
            .unwrap()
    }

    /// Random runs of `rows` rows, each with a group: a group already
    /// seen, or a new one numbered next, as interning numbers groups.
    fn runs(rng: &mut StdRng, rows: usize, groups_len: &mut usize) -> Vec<(Range<usize>, usize)> {
        let mut runs = Vec::new();
        let mut start = 0;
        while start < rows {
            let end = (start + rng.random_range(1..40)).min(rows);
            let group = if *groups_len == 0 || rng.random_bool(0.2) {
                *groups_len += 1;
                *groups_len - 1
            } else {
                rng.random_range(0..*groups_len)
            };
            runs.push((start..end, group));
            start = end;
        }
        runs
    }

    /// Feeds DataFusion's groups accumulator for `udaf` over `values` row by
    /// row and pond's run by run, in batches, and checks their states are
    /// equal, float bits and null buffers included: the first groups'
    /// after some batches (as an aggregation of sorted rows emits the
    /// groups it is done with), and all of them at the end; twice, as a
    /// table fed again after an emission. With `nulls`, some groups are
    /// null in every row, some only in the first batch, and the third
    /// batch is all null.
    fn agree(udaf: Arc<AggregateUDF>, values: ArrayRef, rng: &mut StdRng, nulls: bool) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "v",
            values.data_type().clone(),
            true,
        )]));
        let function = function(udaf, &schema);
        let name = function.name();
        let mut datafusion = function.create_groups_accumulator().unwrap();
        let mut pond = run_accumulator(&function, &schema)
            .unwrap_or_else(|| panic!("no accumulator fed runs for {name}"));
        for _ in 0..2 {
            let mut groups_len = 0;
            let mut offset = 0;
            let mut batches = 0;
            while offset < values.len() {
                let batch_rows = rng.random_range(1..300).min(values.len() - offset);
                let (runs, groups): (Vec<_>, Vec<_>) =
                    runs(rng, batch_rows, &mut groups_len).into_iter().unzip();
                let row_groups: Vec<usize> = (runs.iter().zip(&groups))
                    .flat_map(|(run, &group)| std::iter::repeat_n(group, run.len()))
                    .collect();
                let mut batch = values.slice(offset, batch_rows);
                if nulls {
                    let null: BooleanArray = (row_groups.iter())
                        .map(|group| {
                            Some(batches == 2 || group % 7 == 3 || (group % 7 == 5 && batches == 0))
                        })
                        .collect();
                    batch = arrow::compute::nullif(&batch, &null).unwrap();
                }
                offset += batch_rows;
                batches += 1;
                (datafusion.update_batch(&[Arc::clone(&batch)], &row_groups, None, groups_len))
                    .unwrap();
                pond.update(&batch, &runs, &groups, groups_len).unwrap();
                if rng.random_bool(0.3) {
                    let first = rng.random_range(1..=groups_len);
                    let emit_to = EmitTo::First(first);
                    let expected = datafusion.state(emit_to).unwrap();
                    same_states(&pond.state(emit_to).unwrap(), &expected, name);
                    groups_len -= first;
                }
            }
            let expected = datafusion.state(EmitTo::All).unwrap();
            same_states(&pond.state(EmitTo::All).unwrap(), &expected, name);
        }
        // Emptied: a second emission holds no group.
        let states = pond.state(EmitTo::All).unwrap();
        assert!(states.iter().all(|state| state.is_empty()));
    }

    /// Asserts `states` are `expected`, float bits and null buffers
    /// included.
    fn same_states(states: &[ArrayRef], expected: &[ArrayRef], name: &str) {
        assert_eq!(states.len(), expected.len());
        for (state, expected) in states.iter().zip(expected) {
            assert_eq!(state.data_type(), expected.data_type(), "{name}");
            assert_eq!(state.nulls(), expected.nulls(), "{name}");
            match expected.as_primitive_opt::<Float64Type>() {
                // By their bits, but any NaN for a NaN: arithmetic leaves a
                // NaN's sign and payload open (the compiler may swap the
                // operands of an addition of two NaNs).
                Some(floats) => {
                    let bits = |array: &Float64Array| -> Vec<Option<u64>> {
                        let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
                        array.iter().map(|v| v.map(bits)).collect()
                    };
                    assert_eq!(bits(state.as_primitive()), bits(floats), "{name}");
                }
                None => assert_eq!(state.as_ref(), expected.as_ref(), "{name}"),
            }
        }
    }

    #[test]
    fn the_states_are_datafusions_to_the_bit() {
        let mut rng = StdRng::seed_from_u64(9);
        for round in 0..20 {
            let rows = rng.random_range(1..3_000);
            // Floats of every magnitude and sign, zeros of both signs, and
            // nulls in half the rounds (none in the others).
            let nulls = round % 2 == 0;
            let floats: Float64Array = (0..rows)
                .map(|_| {
                    let value = match rng.random_range(0..40) {
                        0..4 => -0.0,
                        4..8 => 0.0,
                        8 => f64::NAN,
                        9 => f64::INFINITY,
                        10 => f64::NEG_INFINITY,
                        11..20 => rng.random_range(-1e12..1e12),
                        _ => rng.random_range(-1.0..1.0) * 10f64.powi(rng.random_range(-8..8)),
                    };
                    (!nulls || rng.random_bool(0.8)).then_some(value)
                })
                .collect();
            let floats: ArrayRef = Arc::new(floats);
            // Integers that wrap around when summed.
            let integers: ArrayRef = Arc::new(
                (0..rows)
                    .map(|_| (!nulls || rng.random_bool(0.8)).then(|| rng.random::<i64>()))
                    .collect::<Int64Array>(),
            );
            let unsigned: ArrayRef = Arc::new(
                (0..rows)
                    .map(|_| (!nulls || rng.random_bool(0.8)).then(|| rng.random::<u64>()))
                    .collect::<UInt64Array>(),
            );
            agree(avg_udaf(), Arc::clone(&floats), &mut rng, nulls);
            agree(sum_udaf(), Arc::clone(&floats), &mut rng, nulls);
            agree(sum_udaf(), Arc::clone(&integers), &mut rng, nulls);
            agree(sum_udaf(), Arc::clone(&unsigned), &mut rng, nulls);
            for extreme in [max_udaf(), min_udaf()] {
                agree(Arc::clone(&extreme), Arc::clone(&floats), &mut rng, nulls);
                agree(Arc::clone(&extreme), Arc::clone(&integers), &mut rng, nulls);
                agree(extreme, Arc::clone(&unsigned), &mut rng, nulls);
            }
            agree(count_udaf(), floats, &mut rng, nulls);
            agree(count_udaf(), integers, &mut rng, nulls);
        }
        // Extremes start from the type's least and greatest values, not
        // from infinities: DataFusion's `max` of `-inf` alone is `f64::MIN`.
        let infinities: ArrayRef = Arc::new(Float64Array::from(vec![f64::NEG_INFINITY; 50]));
        agree(max_udaf(), Arc::clone(&infinities), &mut rng, false);
        let infinities: ArrayRef = Arc::new(Float64Array::from(vec![f64::INFINITY; 50]));
        agree(min_udaf(), infinities, &mut rng, false);
        // `count` by logical nulls: of a dictionary whose values are null.
        let keys = Int32Array::from_iter_values((0..500).map(|i| i % 3));
        let values = Float64Array::from(vec![Some(1.5), None, Some(2.5)]);
        let dictionary: ArrayRef = Arc::new(DictionaryArray::new(keys, Arc::new(values)));
        agree(count_udaf(), dictionary, &mut rng, false);
    }

    #[test]
    fn other_aggregates_and_types_keep_datafusions_accumulators() {
        let decimals: ArrayRef = Arc::new(
            Decimal128Array::from(vec![1, 2])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        let schema = Arc::new(Schema::new(vec![Field::new(
            "v",
            decimals.data_type().clone(),
            true,
        )]));
        for udaf in [sum_udaf(), avg_udaf()] {
            assert!(run_accumulator(&function(udaf, &schema), &schema).is_none());
        }
        assert!(run_accumulator(&function(count_udaf(), &schema), &schema).is_some());
        for udaf in [max_udaf(), min_udaf()] {
            assert!(run_accumulator(&function(udaf, &schema), &schema).is_none());
        }
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, true)]));
        let stddev = datafusion::functions_aggregate::stddev::stddev_udaf();
        assert!(run_accumulator(&function(stddev, &schema), &schema).is_none());
    }
}
