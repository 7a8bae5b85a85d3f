//! The keep/skip decision for each version: DataFusion's own
//! [`PruningPredicate`] over the versions' oplog bounds.
//!
//! Each version is a container whose statistics are exact for the time
//! column: its bounds in the column's own type (rounded outwards for
//! nanoseconds), no NULLs, and its row count. Of the few-valued columns a
//! version records the values of (no NULL, at most 256 values), DataFusion
//! may ask whether they are all, or none, among the literals a filter
//! compares the column with (`=`, `<>`, `IN`, `NOT IN`, in conjunctions):
//! a version of other hosts is skipped for `hostname = 'host_42'`. Other
//! columns have no statistics here (the Parquet scan prunes with theirs),
//! so a predicate on them keeps every version.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column as PhysicalColumn, InListExpr, Literal,
};
use datafusion::physical_expr::utils::{collect_columns, conjunction};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};

use super::{MAX_IN_LIST, TimeRanges, physical_time_ranges};
use crate::index::FileInfo;
use crate::series::ColumnValues;
use crate::time::{MAX_TIME, MIN_TIME};

/// A conjunction of filters, ready to decide which versions may match it.
#[derive(Debug, Clone)]
pub(crate) struct VersionPredicate {
    /// The filters, for the debug builds' check of the time ranges and for
    /// the scan's record of what pruned it.
    filters: Vec<Arc<dyn PhysicalExpr>>,
    schema: Option<SchemaRef>,
    /// The times the plain comparisons of the time column with a literal
    /// allow (see [`plain_comparison`]).
    ranges: TimeRanges,
    /// DataFusion's predicate of the other filters on the time column;
    /// `None` when they cannot prune anything.
    predicate: Option<Arc<PruningPredicate>>,
    timestamp_column: String,
    data_type: DataType,
}

impl VersionPredicate {
    /// The conjunction of `filters`, which refer to the columns of `schema`;
    /// `timestamp_column` names the series' time column in it.
    pub(crate) fn new(
        filters: &[Arc<dyn PhysicalExpr>],
        schema: &SchemaRef,
        timestamp_column: &str,
    ) -> Self {
        Self::reading(filters, schema, timestamp_column, true)
    }

    /// [`Self::new`], with plain comparisons read as ranges or, if not
    /// `read_plain`, left to `PruningPredicate` like every other filter.
    fn reading(
        filters: &[Arc<dyn PhysicalExpr>],
        schema: &SchemaRef,
        timestamp_column: &str,
        read_plain: bool,
    ) -> Self {
        let data_type = schema
            .field_with_name(timestamp_column)
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null);
        // Statistics exist only for the time column, and the values a
        // version records of its few-valued columns: filters that name only
        // other columns, or compare them otherwise than by `=`, `<>` or
        // `IN` with literals, have nothing to prune by (a constant may), and
        // in a conjunction they keep every version, so they are left out of
        // it rather than rewritten for statistics that are never there.
        // A plain comparison says exactly which times it keeps: its ranges
        // keep the versions it may match, as its `PruningPredicate` would,
        // without building one (tens of microseconds per query).
        let mut ranges = TimeRanges::all();
        let mut pruning = Vec::new();
        for f in filters {
            let columns = collect_columns(f);
            if !(columns.is_empty()
                || columns.iter().any(|c| c.name() == timestamp_column)
                || compares_with_values(f))
            {
                continue;
            }
            match plain_comparison(f, timestamp_column, &data_type).filter(|_| read_plain) {
                Some(plain) => ranges = ranges.intersect(&plain),
                None => pruning.push(Arc::clone(f)),
            }
        }
        let predicate = (!pruning.is_empty() && matches!(data_type, DataType::Timestamp(..)))
            .then(|| {
                PruningPredicateBuilder::new()
                    .with_file_schema(Arc::clone(schema))
                    .with_max_in_list_size(MAX_IN_LIST)
                    .build(conjunction(pruning))
            })
            .flatten();
        Self {
            filters: filters.to_vec(),
            schema: Some(Arc::clone(schema)),
            ranges,
            predicate,
            timestamp_column: timestamp_column.to_string(),
            data_type,
        }
    }

    /// A predicate that keeps every version.
    pub(crate) fn keep_all() -> Self {
        Self {
            filters: Vec::new(),
            schema: None,
            ranges: TimeRanges::all(),
            predicate: None,
            timestamp_column: String::new(),
            data_type: DataType::Null,
        }
    }

    /// The filters, as given.
    pub(crate) fn filters(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.filters
    }

    /// Whether this can prune at all.
    pub(crate) fn can_prune(&self) -> bool {
        self.predicate.is_some() || !self.ranges.is_all()
    }

    /// For each version, whether it may hold a matching row.
    pub(crate) fn keeps(&self, versions: &[&FileInfo]) -> DfResult<Vec<bool>> {
        let mut keep: Vec<bool> = versions
            .iter()
            .map(|f| self.ranges.overlaps(f.min_event_time, f.max_event_time))
            .collect();
        if let Some(predicate) = &self.predicate {
            let kept = predicate.prune(&Bounds {
                versions,
                timestamp_column: &self.timestamp_column,
                data_type: &self.data_type,
            })?;
            for (keep, kept) in keep.iter_mut().zip(kept) {
                *keep &= kept;
            }
        }
        Ok(keep)
    }

    /// Checks the time ranges read from these filters against DataFusion:
    /// for every comparison, `IN`, `IS NULL` or literal under their `AND`s
    /// and `OR`s, each of `versions` that `PruningPredicate` keeps for it
    /// alone must meet the ranges the reader gives it. `AND` and `OR` are
    /// intersection and union of those, so the ranges of the whole filter
    /// then hold every version a matching row can be in. (`PruningPredicate`
    /// of the whole filter is no yardstick: it cannot see that
    /// `ts >= a AND ts < a` matches nothing.)
    ///
    /// An error names the first part of a filter whose ranges leave out a
    /// version that DataFusion keeps.
    pub(crate) fn check_ranges(&self, versions: &[&FileInfo]) -> Result<(), String> {
        let Some(schema) = &self.schema else {
            return Ok(());
        };
        let mut parts = Vec::new();
        for filter in &self.filters {
            let filter = snapshot_physical_expr(Arc::clone(filter)).map_err(|e| e.to_string())?;
            collect_parts(&filter, &mut parts);
        }
        for part in parts {
            let ranges = physical_time_ranges(
                std::slice::from_ref(&part),
                &self.timestamp_column,
                &self.data_type,
            );
            // DataFusion's own reading, even of plain comparisons.
            let alone = Self::reading(
                std::slice::from_ref(&part),
                schema,
                &self.timestamp_column,
                false,
            );
            let keeps = alone.keeps(versions).map_err(|e| e.to_string())?;
            if let Some((v, _)) = versions
                .iter()
                .zip(keeps)
                .find(|(v, keep)| *keep && !ranges.overlaps(v.min_event_time, v.max_event_time))
            {
                return Err(format!(
                    "pruning bug: the time ranges {ranges:?} of {part} leave out version {} \
                     [{}, {}] (µs), which DataFusion's PruningPredicate keeps",
                    v.version, v.min_event_time, v.max_event_time
                ));
            }
        }
        Ok(())
    }
}

/// The operands of `expr`'s `AND`s and `OR`s, recursively.
fn collect_parts(expr: &Arc<dyn PhysicalExpr>, parts: &mut Vec<Arc<dyn PhysicalExpr>>) {
    match expr.downcast_ref::<BinaryExpr>() {
        Some(b) if matches!(b.op(), Operator::And | Operator::Or) => {
            collect_parts(b.left(), parts);
            collect_parts(b.right(), parts);
        }
        _ => parts.push(Arc::clone(expr)),
    }
}

/// The oplog's knowledge of some versions, as pruning statistics.
struct Bounds<'a> {
    versions: &'a [&'a FileInfo],
    timestamp_column: &'a str,
    data_type: &'a DataType,
}

impl Bounds<'_> {
    fn is_time(&self, column: &Column) -> bool {
        column.name == self.timestamp_column
    }

    /// The time column's bounds, `pick`ed from each version's µs bounds and
    /// converted by `to_native` to the column's unit.
    fn bounds(&self, pick: fn(&FileInfo) -> i64, round_up: bool) -> Option<ArrayRef> {
        let DataType::Timestamp(unit, zone) = self.data_type else {
            return None;
        };
        let values = self
            .versions
            .iter()
            .map(|v| to_native(pick(v), *unit, round_up));
        let zone = zone.clone();
        Some(match unit {
            TimeUnit::Second => {
                Arc::new(TimestampSecondArray::from_iter_values(values).with_timezone_opt(zone))
            }
            TimeUnit::Millisecond => Arc::new(
                TimestampMillisecondArray::from_iter_values(values).with_timezone_opt(zone),
            ),
            TimeUnit::Microsecond => Arc::new(
                TimestampMicrosecondArray::from_iter_values(values).with_timezone_opt(zone),
            ),
            TimeUnit::Nanosecond => {
                Arc::new(TimestampNanosecondArray::from_iter_values(values).with_timezone_opt(zone))
            }
        })
    }
}

/// A µs bound in `unit`, rounded outwards (down for a lower bound, up for an
/// upper one). The oplog's bounds are whole seconds and milliseconds for
/// those units, so only nanoseconds differ from the true bound.
fn to_native(us: i64, unit: TimeUnit, round_up: bool) -> i64 {
    let per = |k: i64| us.div_euclid(k) + i64::from(round_up && us.rem_euclid(k) != 0);
    match unit {
        TimeUnit::Second => per(1_000_000),
        TimeUnit::Millisecond => per(1_000),
        TimeUnit::Microsecond => us,
        TimeUnit::Nanosecond => us.saturating_mul(1_000),
    }
}

impl PruningStatistics for Bounds<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.is_time(column)
            .then(|| self.bounds(|v| v.min_event_time, false))
            .flatten()
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.is_time(column)
            .then(|| self.bounds(|v| v.max_event_time, true))
            .flatten()
    }

    fn num_containers(&self) -> usize {
        self.versions.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        // The time column is never NULL; other columns are unknown here.
        self.is_time(column)
            .then(|| Arc::new(UInt64Array::from(vec![0; self.versions.len()])) as ArrayRef)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let rows = self.versions.iter().map(|v| v.row_count.max(0) as u64);
        Some(Arc::new(UInt64Array::from_iter_values(rows)))
    }

    /// From the values a version records of a column (all of them, and no
    /// null): `true` if every one is among `values`, `false` if none is.
    #[allow(clippy::mutable_key_type)] // the trait's signature
    fn contained(&self, column: &Column, values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        if self.is_time(column) {
            return None;
        }
        let literals = Literals::of(values)?;
        Some(
            (self.versions.iter())
                .map(|v| literals.contain(v.values.as_ref()?.of(column.name())?))
                .collect(),
        )
    }
}

/// The literals a filter compares a column with, as a version records
/// values; NULLs, which equal nothing, left out.
enum Literals<'a> {
    Strings(HashSet<&'a str>),
    Integers(HashSet<i64>),
}

impl<'a> Literals<'a> {
    /// `None` unless every one is a string, or every one an integer (that
    /// fits an `i64`: a larger one equals no value a version records, but
    /// it is simpler to leave such filters alone).
    #[allow(clippy::mutable_key_type)] // the trait's signature
    fn of(values: &'a HashSet<ScalarValue>) -> Option<Self> {
        let values: Vec<&ScalarValue> = values.iter().filter(|v| !v.is_null()).collect();
        let strings: Option<HashSet<&str>> = values.iter().map(|v| string(v)).collect();
        if let Some(strings) = strings {
            return Some(Self::Strings(strings));
        }
        let integers: Option<HashSet<i64>> = values.iter().map(|v| integer(v)).collect();
        integers.map(Self::Integers)
    }

    /// Whether the `recorded` values are all among these (`true`), none
    /// is (`false`), or neither (`None`, as for values of another kind).
    fn contain(&self, recorded: &ColumnValues) -> Option<bool> {
        let (among, of) = match (self, recorded) {
            (Self::Strings(these), ColumnValues::Strings(recorded)) => (
                recorded.iter().filter(|v| these.contains(&***v)).count(),
                recorded.len(),
            ),
            (Self::Integers(these), ColumnValues::Integers(recorded)) => (
                recorded.iter().filter(|v| these.contains(*v)).count(),
                recorded.len(),
            ),
            _ => return None,
        };
        match among {
            _ if of == 0 => None,
            0 => Some(false),
            n if n == of => Some(true),
            _ => None,
        }
    }
}

/// A string literal's value.
fn string(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s),
        ScalarValue::Dictionary(_, inner) => string(inner),
        _ => None,
    }
}

/// An integer literal's value, if it fits an `i64`.
fn integer(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        ScalarValue::Dictionary(_, inner) => integer(inner),
        _ => None,
    }
}

/// Whether `filter` compares columns with literals by `=`, `<>` or
/// `[NOT] IN` (under `AND` and `OR`): the comparisons DataFusion prunes by
/// the values a container holds (see `Bounds::contained`).
fn compares_with_values(filter: &Arc<dyn PhysicalExpr>) -> bool {
    let column_and_literal = |a: &Arc<dyn PhysicalExpr>, b: &Arc<dyn PhysicalExpr>| {
        a.downcast_ref::<PhysicalColumn>().is_some() && b.downcast_ref::<Literal>().is_some()
    };
    if let Some(binary) = filter.downcast_ref::<BinaryExpr>() {
        let (l, r) = (binary.left(), binary.right());
        return match binary.op() {
            Operator::And | Operator::Or => compares_with_values(l) || compares_with_values(r),
            Operator::Eq | Operator::NotEq => column_and_literal(l, r) || column_and_literal(r, l),
            _ => false,
        };
    }
    filter.downcast_ref::<InListExpr>().is_some_and(|list| {
        list.expr().downcast_ref::<PhysicalColumn>().is_some()
            && list
                .list()
                .iter()
                .all(|v| v.downcast_ref::<Literal>().is_some())
    })
}

/// The times `filter` keeps, if it compares the bare time column, of type
/// `data_type` (in seconds, milliseconds or microseconds), with a non-NULL
/// literal of the same type by `=`, `<`, `<=`, `>` or `>=`. The column's
/// values are whole units, so the versions whose bounds meet these times
/// are exactly those `PruningPredicate` keeps. (Not for nanoseconds: read
/// in whole microseconds, they would keep some that it skips.)
fn plain_comparison(
    filter: &Arc<dyn PhysicalExpr>,
    column: &str,
    data_type: &DataType,
) -> Option<TimeRanges> {
    let per_unit = match data_type {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1,
        _ => return None,
    };
    let binary = filter.downcast_ref::<BinaryExpr>()?;
    let is_column = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<PhysicalColumn>()
            .is_some_and(|c| c.name() == column)
    };
    let literal = |e: &Arc<dyn PhysicalExpr>| {
        let value = e.downcast_ref::<Literal>()?.value();
        if &value.data_type() != data_type {
            return None;
        }
        match value {
            ScalarValue::TimestampSecond(v, _)
            | ScalarValue::TimestampMillisecond(v, _)
            | ScalarValue::TimestampMicrosecond(v, _) => v.and_then(|v| v.checked_mul(per_unit)),
            _ => None,
        }
    };
    let (op, at) = if is_column(binary.left()) {
        (*binary.op(), literal(binary.right())?)
    } else if is_column(binary.right()) {
        (binary.op().swap()?, literal(binary.left())?)
    } else {
        return None;
    };
    // Whole microseconds: `ts > at` is `ts >= at + 1`.
    Some(match op {
        Operator::Eq => TimeRanges::between(at, at),
        Operator::Lt => match at.checked_sub(1) {
            Some(last) => TimeRanges::between(MIN_TIME, last),
            None => TimeRanges::none(),
        },
        Operator::LtEq => TimeRanges::between(MIN_TIME, at),
        Operator::Gt => match at.checked_add(1) {
            Some(first) => TimeRanges::between(first, MAX_TIME),
            None => TimeRanges::none(),
        },
        Operator::GtEq => TimeRanges::between(at, MAX_TIME),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Schema};
    use datafusion::common::DFSchema;
    use datafusion::prelude::SessionContext;

    use super::*;

    fn version(min: i64, max: i64) -> FileInfo {
        FileInfo {
            version: 1,
            min_event_time: min,
            max_event_time: max,
            row_count: 2,
            ..FileInfo::default()
        }
    }

    /// Which of `versions` (µs bounds) `sql` keeps on a column of `data_type`.
    fn keeps(sql: &str, data_type: DataType, versions: &[(i64, i64)]) -> Vec<bool> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", data_type, false),
            Field::new("v", DataType::Float64, true),
        ]));
        let ctx = SessionContext::new();
        let df_schema = Arc::new(DFSchema::try_from(Arc::clone(&schema)).unwrap());
        let expr = crate::pruning::planned_filter(sql, &df_schema);
        let physical = ctx.create_physical_expr(expr, &df_schema).unwrap();
        let infos: Vec<FileInfo> = versions.iter().map(|&(a, b)| version(a, b)).collect();
        let refs: Vec<&FileInfo> = infos.iter().collect();
        VersionPredicate::new(&[physical], &schema, "ts")
            .keeps(&refs)
            .unwrap()
    }

    const US: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

    #[test]
    fn prunes_by_bounds_in_the_columns_type() {
        let versions = [(0, 9), (10, 19), (20, 29)];
        assert_eq!(
            keeps("ts >= to_timestamp_micros(15)", US, &versions),
            [false, true, true]
        );
        assert_eq!(
            keeps("ts < to_timestamp_micros(10)", US, &versions),
            [true, false, false]
        );
        // Whole seconds: the µs bounds 1 s and 2 s are seconds 1 and 2.
        let seconds = DataType::Timestamp(TimeUnit::Second, Some("UTC".into()));
        let versions = [(1_000_000, 1_000_000), (2_000_000, 2_000_000)];
        assert_eq!(
            keeps("ts > to_timestamp_seconds(1)", seconds, &versions),
            [false, true]
        );
        // A zone-less literal against a column in +05:00 is a local time
        // there: 00:00:01+05:00 is five hours before both versions.
        let zoned = DataType::Timestamp(TimeUnit::Second, Some("+05:00".into()));
        assert_eq!(
            keeps("ts > to_timestamp_seconds(1)", zoned.clone(), &versions),
            [true, true]
        );
        assert_eq!(
            keeps("ts > to_timestamp_seconds(18001)", zoned, &versions),
            [false, true]
        );
    }

    #[test]
    fn keeps_versions_for_null_tests_and_distinct_from_null() {
        let versions = [(0, 9), (10, 19)];
        assert_eq!(
            keeps("ts IS DISTINCT FROM NULL", US, &versions),
            [true, true]
        );
        assert_eq!(keeps("ts IS NOT NULL", US, &versions), [true, true]);
        assert_eq!(keeps("ts IS NULL", US, &versions), [false, false]);
        assert_eq!(keeps("v IS NULL", US, &versions), [true, true]);
    }

    #[test]
    fn rounds_nanosecond_bounds_outwards() {
        // A version whose rows lie in [1500 ns, 2500 ns] has µs bounds [1, 3].
        let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
        assert_eq!(
            keeps("ts >= to_timestamp_nanos(2999)", ns.clone(), &[(1, 3)]),
            [true]
        );
        assert_eq!(
            keeps("ts < to_timestamp_nanos(1001)", ns, &[(1, 3)]),
            [true]
        );
    }

    /// What DataFusion's `PruningPredicate` of `filter` keeps of `versions`.
    fn datafusion_keeps(
        filter: &Arc<dyn PhysicalExpr>,
        schema: &SchemaRef,
        versions: &[&FileInfo],
    ) -> Vec<bool> {
        let data_type = schema.field(0).data_type().clone();
        match PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(schema))
            .build(Arc::clone(filter))
        {
            Some(predicate) => predicate
                .prune(&Bounds {
                    versions,
                    timestamp_column: "ts",
                    data_type: &data_type,
                })
                .unwrap(),
            None => vec![true; versions.len()],
        }
    }

    fn compare(
        left: Arc<dyn PhysicalExpr>,
        op: Operator,
        right: Arc<dyn PhysicalExpr>,
    ) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(left, op, right))
    }

    const COMPARISONS: [Operator; 5] = [
        Operator::Eq,
        Operator::Lt,
        Operator::LtEq,
        Operator::Gt,
        Operator::GtEq,
    ];

    /// Plain comparisons skip `PruningPredicate` for their ranges: the
    /// versions kept must be exactly those DataFusion's predicate keeps,
    /// for every operator, side, unit and zone, at, beside and around the
    /// bounds, at the ends of `i64`, and beside other filters.
    #[test]
    fn plain_comparisons_keep_what_pruning_predicate_keeps() {
        let units = [
            (TimeUnit::Second, 1_000_000),
            (TimeUnit::Millisecond, 1_000),
            (TimeUnit::Microsecond, 1),
        ];
        for (unit, per) in units {
            let mut versions = vec![
                (0, 0),
                (-7_000_000, -3_000_000),
                (2_000_000, 5_000_000),
                (9_000_000, 9_000_000),
            ];
            if per <= 1_000 {
                versions.push((6_001_000, 6_999_000));
            }
            let infos: Vec<FileInfo> = versions.iter().map(|&(a, b)| version(a, b)).collect();
            let refs: Vec<&FileInfo> = infos.iter().collect();
            for zone in [None, Some(Arc::from("UTC")), Some(Arc::from("+05:00"))] {
                let data_type = DataType::Timestamp(unit, zone.clone());
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "ts",
                    data_type.clone(),
                    false,
                )]));
                let literal = |us: i64| -> Arc<dyn PhysicalExpr> {
                    let value = ScalarValue::TimestampMicrosecond(Some(us), zone.clone())
                        .cast_to(&data_type)
                        .unwrap();
                    Arc::new(Literal::new(value))
                };
                let column: Arc<dyn PhysicalExpr> = Arc::new(PhysicalColumn::new("ts", 0));
                let mut times: Vec<i64> = (-8_000_000..=10_000_000)
                    .step_by(1_000_000)
                    .flat_map(|us| [us - per, us, us + per])
                    .collect();
                times.extend([6_001_000, 6_999_000]);
                for us in times {
                    for op in COMPARISONS {
                        for filter in [
                            compare(Arc::clone(&column), op, literal(us)),
                            compare(literal(us), op, Arc::clone(&column)),
                        ] {
                            let ours = VersionPredicate::new(&[Arc::clone(&filter)], &schema, "ts");
                            assert!(ours.predicate.is_none(), "{filter} is plain");
                            assert_eq!(
                                ours.keeps(&refs).unwrap(),
                                datafusion_keeps(&filter, &schema, &refs),
                                "{filter} on {data_type}"
                            );
                        }
                    }
                }
                // The ends of i64 in the column's unit: out of the
                // microseconds' range they are left to DataFusion.
                for end in [i64::MIN, i64::MAX] {
                    let value = match unit {
                        TimeUnit::Second => ScalarValue::TimestampSecond(Some(end), zone.clone()),
                        TimeUnit::Millisecond => {
                            ScalarValue::TimestampMillisecond(Some(end), zone.clone())
                        }
                        _ => ScalarValue::TimestampMicrosecond(Some(end), zone.clone()),
                    };
                    for op in COMPARISONS {
                        let filter = compare(
                            Arc::clone(&column),
                            op,
                            Arc::new(Literal::new(value.clone())),
                        );
                        let ours = VersionPredicate::new(&[Arc::clone(&filter)], &schema, "ts");
                        assert_eq!(ours.predicate.is_some(), per > 1, "{filter}");
                        assert_eq!(
                            ours.keeps(&refs).unwrap(),
                            datafusion_keeps(&filter, &schema, &refs),
                            "{filter} on {data_type}"
                        );
                    }
                }
                // Beside a filter that is not plain: the conjunction keeps
                // what DataFusion's predicate of the whole keeps.
                let other = compare(
                    compare(Arc::clone(&column), Operator::Lt, literal(-4_000_000)),
                    Operator::Or,
                    compare(Arc::clone(&column), Operator::GtEq, literal(8_000_000)),
                );
                for us in [-5_000_000, 0, 9_000_000] {
                    let plain = compare(Arc::clone(&column), Operator::GtEq, literal(us));
                    let ours = VersionPredicate::new(
                        &[Arc::clone(&plain), Arc::clone(&other)],
                        &schema,
                        "ts",
                    );
                    let both = compare(plain, Operator::And, Arc::clone(&other));
                    assert_eq!(
                        ours.keeps(&refs).unwrap(),
                        datafusion_keeps(&both, &schema, &refs)
                    );
                }
            }
        }
    }

    /// Nanosecond columns, literals of another zone or unit, and NULL
    /// literals are left to `PruningPredicate`.
    #[test]
    fn other_comparisons_are_left_to_pruning_predicate() {
        let column: Arc<dyn PhysicalExpr> = Arc::new(PhysicalColumn::new("ts", 0));
        let cases = [
            (
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                ScalarValue::TimestampNanosecond(Some(5), None),
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                ScalarValue::TimestampMicrosecond(Some(5), Some("+05:00".into())),
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                ScalarValue::TimestampMillisecond(Some(5), None),
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                ScalarValue::TimestampMicrosecond(None, None),
            ),
        ];
        for (data_type, value) in cases {
            let schema = Arc::new(Schema::new(vec![Field::new("ts", data_type, false)]));
            let filter = compare(
                Arc::clone(&column),
                Operator::Gt,
                Arc::new(Literal::new(value)),
            );
            let ours = VersionPredicate::new(&[Arc::clone(&filter)], &schema, "ts");
            assert!(ours.ranges.is_all(), "{filter}");
        }
    }

    #[test]
    fn keeps_everything_without_a_time_column() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, true)]));
        let predicate = VersionPredicate::new(&[], &schema, "ts");
        assert!(!predicate.can_prune());
        assert_eq!(predicate.keeps(&[&version(0, 1)]).unwrap(), [true]);
    }
}
