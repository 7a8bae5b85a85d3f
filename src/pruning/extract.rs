//! The time ranges a predicate can match: the index lookup's half of
//! version pruning.
//!
//! [`time_ranges`] reads the filters on a series' timestamp column — `=`,
//! `<`, `<=`, `>`, `>=`, `BETWEEN`, `IN`, `IS NULL`, `AND` and `OR` of those,
//! against literals of any timestamp unit and zone and casts of them — and
//! returns a superset of the microseconds their matching rows can have.
//!
//! It reads no more than DataFusion's `PruningPredicate` does (see
//! [`crate::pruning`]): whatever else it meets, `NOT`, `IS DISTINCT FROM`,
//! `IS TRUE`, NULL literals, functions, means "any time". A NULL is never
//! taken for "no time".
//!
//! The column may be cast to a timestamp of the same or a finer unit that
//! keeps its instants: a cast that gives a zone-less column a zone reads its
//! values as local times there and moves them, so it means "any time". A
//! cast can overflow to NULL, so `IS NULL` only prunes on the bare column,
//! which is never NULL.
//!
//! Microsecond semantics: a row with time `t` (in the column's unit) is at
//! microsecond `floor_us(t)`, the same rounding the oplog's bounds use. A
//! version with bounds `[min, max]` may match if the ranges meet `[min, max]`.

use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr as PhysicalBinary, CastExpr, Column as PhysicalColumn, InListExpr, IsNullExpr,
    Literal, TryCastExpr,
};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;

use super::{MAX_IN_LIST, TimeRanges};
use crate::time::{MAX_TIME, MIN_TIME, ceil_micros, floor_micros, scalar_timestamp};

/// The times the conjunction of `filters` can match on `timestamp_column`,
/// whose type is `data_type` (any other type than a timestamp: every time).
pub fn time_ranges(filters: &[Expr], timestamp_column: &str, data_type: &DataType) -> TimeRanges {
    let Some(column) = TimeColumn::new(timestamp_column, data_type) else {
        return TimeRanges::all();
    };
    filters
        .iter()
        .fold(TimeRanges::all(), |acc, f| acc.intersect(&column.ranges(f)))
}

/// The times the conjunction of physical `filters` can match, like
/// [`time_ranges`]. Dynamic filters (of TopK and hash joins) count with the
/// value they have now.
pub fn physical_time_ranges(
    filters: &[Arc<dyn PhysicalExpr>],
    timestamp_column: &str,
    data_type: &DataType,
) -> TimeRanges {
    let Some(column) = TimeColumn::new(timestamp_column, data_type) else {
        return TimeRanges::all();
    };
    filters.iter().fold(TimeRanges::all(), |acc, f| {
        match snapshot_physical_expr(Arc::clone(f)) {
            Ok(f) => acc.intersect(&column.physical_ranges(&f)),
            Err(_) => acc,
        }
    })
}

struct TimeColumn<'a> {
    name: &'a str,
    unit: TimeUnit,
    zone: Option<Arc<str>>,
}

/// How an expression refers to the time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reference {
    /// The column itself, which is never NULL.
    Bare,
    /// A cast of it that keeps every instant, or is NULL where it overflows.
    Cast,
}

/// A literal time as `(value, unit)`; `None` for anything else, NULL
/// included.
type LiteralTime = Option<(i64, TimeUnit)>;

impl<'a> TimeColumn<'a> {
    fn new(name: &'a str, data_type: &DataType) -> Option<Self> {
        match data_type {
            DataType::Timestamp(unit, zone) => Some(Self {
                name,
                unit: *unit,
                zone: zone.clone(),
            }),
            _ => None,
        }
    }

    /// A superset of the times where `expr` is TRUE.
    fn ranges(&self, expr: &Expr) -> TimeRanges {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And => self.ranges(left).intersect(&self.ranges(right)),
                Operator::Or => self.ranges(left).union(&self.ranges(right)),
                _ => comparison(
                    *op,
                    self.reference(left),
                    self.reference(right),
                    literal_time,
                ),
            },
            Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }) => match self.reference(expr) {
                Ok(_) => between(*negated, literal_time(low), literal_time(high)),
                Err(_) => TimeRanges::all(),
            },
            Expr::InList(list) => match self.reference(&list.expr) {
                Ok(_) => in_list(list.negated, list.list.iter().map(literal_time)),
                Err(_) => TimeRanges::all(),
            },
            Expr::IsNull(e) => is_null(self.reference(e)),
            Expr::Literal(ScalarValue::Boolean(Some(false)), _) => TimeRanges::none(),
            _ => TimeRanges::all(),
        }
    }

    /// How `expr` refers to the time column; `Err(expr)` if it does not.
    fn reference<'e>(&self, expr: &'e Expr) -> Result<Reference, &'e Expr> {
        self.zone_of(expr).map(|(r, _)| r).ok_or(expr)
    }

    /// The reference and the zone its values are in.
    fn zone_of(&self, expr: &Expr) -> Option<(Reference, Option<Arc<str>>)> {
        match expr {
            Expr::Column(c) if c.name == self.name => Some((Reference::Bare, self.zone.clone())),
            Expr::Cast(cast) => self.cast_of(self.zone_of(&cast.expr)?, cast.field.data_type()),
            Expr::TryCast(cast) => self.cast_of(self.zone_of(&cast.expr)?, cast.field.data_type()),
            _ => None,
        }
    }

    /// A cast of a reference in `zone` to `to`, if it keeps every instant:
    /// a timestamp no coarser than the column (whole values of the column's
    /// unit convert exactly), not moving a zone-less value into a zone.
    fn cast_of(
        &self,
        (_, zone): (Reference, Option<Arc<str>>),
        to: &DataType,
    ) -> Option<(Reference, Option<Arc<str>>)> {
        let DataType::Timestamp(unit, to_zone) = to else {
            return None;
        };
        let keeps_instants = zone.is_some() || to_zone.is_none();
        (fineness(*unit) >= fineness(self.unit) && keeps_instants)
            .then(|| (Reference::Cast, to_zone.clone()))
    }
}

/// `left <op> right` where one side refers to the column and the other is
/// a literal read by `literal`.
fn comparison<E>(
    op: Operator,
    left: Result<Reference, &E>,
    right: Result<Reference, &E>,
    literal: impl Fn(&E) -> LiteralTime,
) -> TimeRanges {
    match (left, right) {
        (Ok(_), Err(other)) => compare(op, literal(other)),
        (Err(other), Ok(_)) => op
            .swap()
            .map_or_else(TimeRanges::all, |op| compare(op, literal(other))),
        _ => TimeRanges::all(),
    }
}

/// `e IS NULL`: never TRUE on the bare column, which has no NULLs.
fn is_null<E>(reference: Result<Reference, E>) -> TimeRanges {
    match reference {
        Ok(Reference::Bare) => TimeRanges::none(),
        _ => TimeRanges::all(),
    }
}

/// `ts BETWEEN low AND high`, or with `negated`, `ts < low OR ts > high`.
fn between(negated: bool, low: LiteralTime, high: LiteralTime) -> TimeRanges {
    if negated {
        compare(Operator::Lt, low).union(&compare(Operator::Gt, high))
    } else {
        compare(Operator::GtEq, low).intersect(&compare(Operator::LtEq, high))
    }
}

/// `ts IN (items)`: the union of the items; `NOT IN` can be anywhere.
fn in_list(negated: bool, items: impl ExactSizeIterator<Item = LiteralTime>) -> TimeRanges {
    if negated || items.len() == 0 || items.len() > MAX_IN_LIST {
        return TimeRanges::all();
    }
    items.fold(TimeRanges::none(), |acc, item| {
        acc.union(&compare(Operator::Eq, item))
    })
}

/// The times where `ts <op> time` can be TRUE; any time for an operator
/// other than `=`, `<`, `<=`, `>`, `>=`, or a `time` that is not a literal.
fn compare(op: Operator, time: LiteralTime) -> TimeRanges {
    let Some(t) = time else {
        return TimeRanges::all();
    };
    match op {
        Operator::Eq => at_least(t).intersect(&at_most(t)),
        Operator::Lt => less_than(t),
        Operator::LtEq => at_most(t),
        Operator::Gt | Operator::GtEq => at_least(t),
        _ => TimeRanges::all(),
    }
}

/// The same reading of physical expressions, as DataFusion's filter pushdown
/// hands them to a scan.
impl TimeColumn<'_> {
    fn physical_ranges(&self, expr: &Arc<dyn PhysicalExpr>) -> TimeRanges {
        let any = expr.as_ref();
        if let Some(binary) = any.downcast_ref::<PhysicalBinary>() {
            let (left, right) = (binary.left(), binary.right());
            return match binary.op() {
                Operator::And => self
                    .physical_ranges(left)
                    .intersect(&self.physical_ranges(right)),
                Operator::Or => self
                    .physical_ranges(left)
                    .union(&self.physical_ranges(right)),
                op => comparison(
                    *op,
                    self.physical_reference(left),
                    self.physical_reference(right),
                    physical_literal_time,
                ),
            };
        }
        if let Some(list) = any.downcast_ref::<InListExpr>() {
            return match self.physical_reference(list.expr()) {
                Ok(_) => in_list(
                    list.negated(),
                    list.list().iter().map(physical_literal_time),
                ),
                Err(_) => TimeRanges::all(),
            };
        }
        if let Some(e) = any.downcast_ref::<IsNullExpr>() {
            return is_null(self.physical_reference(e.arg()));
        }
        if let Some(literal) = any.downcast_ref::<Literal>()
            && literal.value() == &ScalarValue::Boolean(Some(false))
        {
            return TimeRanges::none();
        }
        TimeRanges::all()
    }

    fn physical_reference<'e>(
        &self,
        expr: &'e Arc<dyn PhysicalExpr>,
    ) -> Result<Reference, &'e Arc<dyn PhysicalExpr>> {
        self.physical_zone_of(expr).map(|(r, _)| r).ok_or(expr)
    }

    fn physical_zone_of(
        &self,
        expr: &Arc<dyn PhysicalExpr>,
    ) -> Option<(Reference, Option<Arc<str>>)> {
        let any = expr.as_ref();
        if let Some(column) = any.downcast_ref::<PhysicalColumn>() {
            return (column.name() == self.name).then(|| (Reference::Bare, self.zone.clone()));
        }
        if let Some(cast) = any.downcast_ref::<CastExpr>() {
            return self.cast_of(self.physical_zone_of(cast.expr())?, cast.cast_type());
        }
        if let Some(cast) = any.downcast_ref::<TryCastExpr>() {
            return self.cast_of(self.physical_zone_of(cast.expr())?, cast.cast_type());
        }
        None
    }
}

/// [`literal_time`] of a physical literal, or a cast of one.
fn physical_literal_time(expr: &Arc<dyn PhysicalExpr>) -> LiteralTime {
    let any = expr.as_ref();
    let literal =
        |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().map(|l| l.value().clone());
    let value = if let Some(l) = literal(expr) {
        l
    } else if let Some(cast) = any.downcast_ref::<CastExpr>() {
        literal(cast.expr())?.cast_to(cast.cast_type()).ok()?
    } else if let Some(cast) = any.downcast_ref::<TryCastExpr>() {
        literal(cast.expr())?.cast_to(cast.cast_type()).ok()?
    } else {
        return None;
    };
    // Values of other types (strings, dates) meet a timestamp only through
    // a cast, which DataFusion's type coercion adds and is evaluated above.
    scalar_timestamp(&value)
}

fn fineness(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// A literal time, or a cast of a literal to a timestamp (evaluated as
/// DataFusion would: a zone-less string is read in the target's zone).
fn literal_time(expr: &Expr) -> LiteralTime {
    let value = match expr {
        Expr::Literal(value, _) => value.clone(),
        Expr::Cast(cast) => literal_scalar(&cast.expr)?
            .cast_to(cast.field.data_type())
            .ok()?,
        Expr::TryCast(cast) => literal_scalar(&cast.expr)?
            .cast_to(cast.field.data_type())
            .ok()?,
        _ => return None,
    };
    // Values of other types (strings, dates) meet a timestamp only through
    // a cast, which DataFusion's type coercion adds and is evaluated above.
    scalar_timestamp(&value)
}

fn literal_scalar(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        _ => None,
    }
}

/// Microseconds of rows with `ts >= t` (also `ts > t`: a superset).
fn at_least((v, unit): (i64, TimeUnit)) -> TimeRanges {
    match floor_micros(v, unit) {
        Some(f) => TimeRanges::between(f, MAX_TIME),
        // Beyond the microsecond range: below it every row is later.
        None if v < 0 => TimeRanges::all(),
        None => TimeRanges::none(),
    }
}

/// Microseconds of rows with `ts <= t`.
fn at_most((v, unit): (i64, TimeUnit)) -> TimeRanges {
    match floor_micros(v, unit) {
        Some(f) => TimeRanges::between(MIN_TIME, f),
        None if v > 0 => TimeRanges::all(),
        None => TimeRanges::none(),
    }
}

/// Microseconds of rows with `ts < t`: `floor_us(ts) <= ts < t <= ceil_us(t)`.
fn less_than((v, unit): (i64, TimeUnit)) -> TimeRanges {
    match ceil_micros(v, unit) {
        Some(c) => c
            .checked_sub(1)
            .map_or_else(TimeRanges::none, |last| TimeRanges::between(MIN_TIME, last)),
        None if v > 0 => TimeRanges::all(),
        None => TimeRanges::none(),
    }
}

/// The microseconds `filter` selects, exactly, as `(first, last)`: when it
/// compares the bare time column with a literal of the column's own type
/// (`ts <op> v` or `v <op> ts` with `=`, `<`, `<=`, `>` or `>=`), or is
/// `ts BETWEEN v AND w` or an `AND` of such filters (which DataFusion's
/// simplifier may make of a `BETWEEN`: the scan must know a filter again in
/// whatever form it is handed). Every row whose time lies there matches and
/// no other row does, so a version whose oplog bounds lie within needs no
/// filtering by it (see `SeriesTable::supports_filters_pushdown`).
///
/// `None` for anything else, and for nanosecond columns, whose oplog
/// bounds are rounded outwards. In the coarser units a value is a whole
/// number of microseconds, so `ts > v` is `us >= v_us + 1` exactly.
pub(crate) fn exact_time_range(
    filter: &Expr,
    column: &str,
    data_type: &DataType,
) -> Option<(i64, i64)> {
    if !matches!(data_type, DataType::Timestamp(unit, _) if *unit != TimeUnit::Nanosecond) {
        return None;
    }
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    let micros = |e: &Expr| match e {
        Expr::Literal(value, _) if value.data_type() == *data_type => {
            let (v, unit) = scalar_timestamp(value)?;
            floor_micros(v, unit)
        }
        _ => None,
    };
    let compare = |op: Operator, us: i64| match op {
        Operator::Eq => Some((us, us)),
        Operator::Gt => Some((us.checked_add(1)?, MAX_TIME)),
        Operator::GtEq => Some((us, MAX_TIME)),
        Operator::Lt => Some((MIN_TIME, us.checked_sub(1)?)),
        Operator::LtEq => Some((MIN_TIME, us)),
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            let (a, b) = exact_time_range(left, column, data_type)?;
            let (c, d) = exact_time_range(right, column, data_type)?;
            Some((a.max(c), b.min(d)))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_column(left) => {
            compare(*op, micros(right)?)
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_column(right) => {
            compare(op.swap()?, micros(left)?)
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_column(expr) => Some((micros(low)?, micros(high)?)),
        _ => None,
    }
}

/// The µs, first and last (first after last for none), that every one of
/// `filters` selects, and the window `start..end` if given; `None` unless
/// each filter is a comparison of the time column `column` (of type
/// `data_type`) with a constant, as [`exact_time_range`] takes them.
pub(crate) fn exact_range(
    filters: &[Expr],
    (column, data_type): (&str, &DataType),
    window: Option<(i64, i64)>,
) -> Option<(i64, i64)> {
    // The window's end is exclusive, but for `MAX_TIME` (no end); an end
    // of `MIN_TIME` selects nothing.
    let window = window.map(|(start, end)| match end {
        crate::MAX_TIME => (start, end),
        _ => end
            .checked_sub(1)
            .map_or((crate::MAX_TIME, crate::MIN_TIME), |last| (start, last)),
    });
    let bounds = (window.into_iter().map(Some))
        .chain((filters.iter()).map(|f| exact_time_range(f, column, data_type)));
    let mut range = (crate::MIN_TIME, crate::MAX_TIME);
    for bound in bounds {
        let (first, last) = bound?;
        range = (range.0.max(first), range.1.min(last));
    }
    Some(range)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema};
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
    use datafusion::physical_expr::create_physical_expr;
    use datafusion::physical_expr::execution_props::ExecutionProps;
    use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, lit as physical_lit};

    use super::*;
    use crate::index::FileInfo;
    use crate::pruning::versions::VersionPredicate;

    const DAY: i64 = 86_400_000_000;
    /// 2024-01-01T00:00:00Z in µs.
    const JAN1: i64 = 1_704_067_200_000_000;

    /// Parses, type-checks and simplifies `sql` as DataFusion's optimizer
    /// would before offering it to a table provider.
    fn ranges_in(sql: &str, unit: TimeUnit, zone: Option<&str>) -> TimeRanges {
        let schema = Schema::new(vec![
            Field::new("ts", DataType::Timestamp(unit, zone.map(Into::into)), false),
            Field::new("v", DataType::Float64, true),
        ]);
        let df_schema = Arc::new(DFSchema::try_from(schema.clone()).unwrap());
        let expr = crate::pruning::planned_filter(sql, &df_schema);
        let data_type = DataType::Timestamp(unit, zone.map(Into::into));
        let logical = time_ranges(std::slice::from_ref(&expr), "ts", &data_type);
        // The physical reading must agree on every predicate of these tests.
        let physical = physical_of(&expr, &df_schema);
        assert_eq!(
            physical_time_ranges(std::slice::from_ref(&physical), "ts", &data_type),
            logical,
            "{sql}"
        );
        // Every part of the filter must hold each version that DataFusion's
        // PruningPredicate keeps for it: versions of one µs and of a day,
        // around 2024-01-01 and the epoch.
        let versions: Vec<FileInfo> = [0, JAN1]
            .into_iter()
            .flat_map(|base| (-3..4).map(move |d| base + d * DAY))
            .flat_map(|t| [(t, t), (t - 1, t + 1), (t, t + DAY - 1)])
            .map(|(min, max)| FileInfo {
                min_event_time: min,
                max_event_time: max,
                row_count: 1,
                ..FileInfo::default()
            })
            .collect();
        let refs: Vec<&FileInfo> = versions.iter().collect();
        VersionPredicate::new(&[physical], &Arc::new(schema), "ts")
            .check_ranges(&refs)
            .unwrap_or_else(|bug| panic!("{sql}: {bug}"));
        logical
    }

    /// `expr` planned over `schema`, as a scan's filter.
    fn physical_of(expr: &Expr, schema: &DFSchema) -> Arc<dyn PhysicalExpr> {
        create_physical_expr(
            expr,
            schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )
        .unwrap()
    }

    fn ranges(sql: &str) -> TimeRanges {
        ranges_in(sql, TimeUnit::Microsecond, Some("UTC"))
    }

    #[test]
    fn prunes_comparisons_with_timestamp_literals() {
        assert_eq!(
            ranges("ts >= TIMESTAMP '2024-01-01T00:00:00Z'"),
            TimeRanges::between(JAN1, MAX_TIME)
        );
        assert_eq!(
            ranges("ts < TIMESTAMP '2024-01-01T00:00:00Z'"),
            TimeRanges::between(MIN_TIME, JAN1 - 1)
        );
        assert_eq!(
            ranges("ts <= '2024-01-01T00:00:00Z'"),
            TimeRanges::between(MIN_TIME, JAN1)
        );
        assert_eq!(
            ranges("ts = '2024-01-01 00:00:00'"),
            TimeRanges::between(JAN1, JAN1)
        );
        assert_eq!(
            ranges("'2024-01-01' < ts"),
            TimeRanges::between(JAN1, MAX_TIME)
        );
    }

    #[test]
    fn prunes_between_and_in_lists() {
        assert_eq!(
            ranges("ts BETWEEN '2024-01-01' AND '2024-01-02'"),
            TimeRanges::between(JAN1, JAN1 + DAY)
        );
        let r = ranges("ts IN ('2024-01-01', '2024-01-03')");
        assert_eq!(
            r.ranges(),
            &[(JAN1, JAN1), (JAN1 + 2 * DAY, JAN1 + 2 * DAY)]
        );
    }

    #[test]
    fn prunes_and_as_intersection_and_or_as_union() {
        let r = ranges("ts >= '2024-01-01' AND ts < '2024-01-02' AND v > 3");
        assert_eq!(r, TimeRanges::between(JAN1, JAN1 + DAY - 1));
        let r = ranges("(ts >= '2024-01-01' AND ts < '2024-01-02') OR ts >= '2024-01-05'");
        assert_eq!(
            r.ranges(),
            &[(JAN1, JAN1 + DAY - 1), (JAN1 + 4 * DAY, MAX_TIME)]
        );
        assert!(ranges("ts > '2024-01-02' AND ts < '2024-01-01'").is_empty());
    }

    #[test]
    fn prunes_negations() {
        assert_eq!(
            ranges("NOT (ts < '2024-01-01')"),
            TimeRanges::between(JAN1, MAX_TIME)
        );
        let r = ranges("ts NOT BETWEEN '2024-01-01' AND '2024-01-02'");
        assert_eq!(r.ranges(), &[(MIN_TIME, JAN1 - 1), (JAN1 + DAY, MAX_TIME)]);
        let r = ranges("NOT (ts < '2024-01-01' OR ts > '2024-01-02')");
        assert_eq!(r, TimeRanges::between(JAN1, JAN1 + DAY));
    }

    #[test]
    fn prunes_literals_of_every_unit_and_zone() {
        // 2024-01-01T01:00:00+01:00 is JAN1.
        assert_eq!(
            ranges("ts >= TIMESTAMP '2024-01-01T01:00:00+01:00'"),
            TimeRanges::between(JAN1, MAX_TIME)
        );
        assert_eq!(
            ranges("ts >= to_timestamp_seconds(1704067200)"),
            TimeRanges::between(JAN1, MAX_TIME)
        );
        assert_eq!(
            ranges("ts < to_timestamp_millis(1704067200001)"),
            TimeRanges::between(MIN_TIME, JAN1 + 999)
        );
    }

    #[test]
    fn prunes_nanosecond_columns_with_outward_rounding() {
        // ts < 1500ns: rows up to 1499ns, at microseconds up to 1.
        let r = ranges_in("ts < to_timestamp_nanos(1500)", TimeUnit::Nanosecond, None);
        assert_eq!(r, TimeRanges::between(MIN_TIME, 1));
        // ts > 1500ns: rows from 1501ns, at microseconds from 1.
        let r = ranges_in("ts > to_timestamp_nanos(1500)", TimeUnit::Nanosecond, None);
        assert_eq!(r, TimeRanges::between(1, MAX_TIME));
        let r = ranges_in("ts = to_timestamp_nanos(-1)", TimeUnit::Nanosecond, None);
        assert_eq!(r, TimeRanges::between(-1, -1));
    }

    #[test]
    fn prunes_expressions_that_fold_to_constants() {
        let r = ranges("ts > now() - INTERVAL '1 hour'");
        let (first, last) = r.hull().unwrap();
        assert_eq!(last, MAX_TIME);
        let now = chrono::Utc::now().timestamp_micros();
        assert!((now - 3_600_000_000 - first).abs() < 60_000_000, "{first}");
    }

    #[test]
    fn keeps_everything_it_does_not_understand() {
        for sql in [
            "v > 3",
            "ts != '2024-01-01'",
            "ts NOT IN ('2024-01-01')",
            "date_trunc('day', ts) = '2024-01-01'",
            "ts >= '2024-01-01' OR v > 3",
            "ts IS NOT NULL",
            "NOT (ts IS NULL)",
            "ts IS NOT DISTINCT FROM '2024-01-01'",
            "ts = ts",
            "ts > to_timestamp_seconds(CAST(v AS BIGINT))",
            "ts > to_timestamp_micros(1 + CAST(floor(random()) AS BIGINT))",
        ] {
            assert!(ranges(sql).is_all(), "{sql}: {:?}", ranges(sql));
        }
    }

    #[test]
    fn prunes_everything_for_contradictions_only() {
        assert!(ranges("false").is_empty());
        assert!(ranges("ts > '2024-01-02' AND ts < '2024-01-01'").is_empty());
        // A NULL is never "no time" (DataFusion's optimizer drops a filter
        // that is NULL before any scan sees it).
        assert!(ranges("ts > NULL").is_all());
    }

    /// The issue that made pruning a matter of proof: `IS DISTINCT FROM
    /// NULL` pruned every version.
    #[test]
    fn keeps_everything_for_null_tests_it_cannot_prove() {
        for sql in [
            "ts IS DISTINCT FROM NULL",
            "NOT (ts IS NOT DISTINCT FROM NULL)",
            "ts IS NOT DISTINCT FROM NULL",
            "ts IN (NULL)",
            "ts NOT IN ('2024-01-01', NULL)",
            "(ts > '2024-01-01') IS NOT FALSE",
            "(ts > NULL) IS NOT TRUE",
        ] {
            assert!(ranges(sql).is_all(), "{sql}: {:?}", ranges(sql));
        }
        // A cast to nanoseconds overflows to NULL for far seconds (built by
        // hand: DataFusion's simplifier takes casts for NULL-preserving).
        let seconds = DataType::Timestamp(TimeUnit::Second, None);
        let schema = Schema::new(vec![Field::new("ts", seconds.clone(), false)]);
        let ts = datafusion::physical_expr::expressions::col("ts", &schema).unwrap();
        let nanos = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let cast: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(ts, nanos, None));
        let filter: Arc<dyn PhysicalExpr> = Arc::new(IsNullExpr::new(cast));
        assert!(physical_time_ranges(&[filter], "ts", &seconds).is_all());
    }

    #[test]
    fn keeps_everything_for_casts_that_move_instants() {
        // A zone-less column cast to a zone reads its values as local
        // times there (DataFusion's simplifier removes most such casts, so
        // the physical expression is built by hand).
        let zone_less = DataType::Timestamp(TimeUnit::Microsecond, None);
        let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some("+05:00".into()));
        let schema = Schema::new(vec![Field::new("ts", zone_less.clone(), false)]);
        let ts = datafusion::physical_expr::expressions::col("ts", &schema).unwrap();
        let cast: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(ts, zoned, None));
        let literal = physical_lit(ScalarValue::TimestampMicrosecond(
            Some(JAN1),
            Some("+05:00".into()),
        ));
        let filter: Arc<dyn PhysicalExpr> =
            Arc::new(PhysicalBinary::new(cast, Operator::Gt, literal));
        assert!(physical_time_ranges(&[filter], "ts", &zone_less).is_all());
        // A zoned column cast to another zone keeps its instants.
        let r = ranges(
            "arrow_cast(ts, 'Timestamp(Nanosecond, Some(\"+05:00\"))') >= '2024-01-01T05:00:00+05:00'",
        );
        assert_eq!(r, TimeRanges::between(JAN1, MAX_TIME));
    }

    #[test]
    fn prunes_null_tests_of_the_time_column() {
        assert!(
            ranges("ts IS NULL").is_empty(),
            "the time column has no NULLs"
        );
        assert!(ranges("ts IS NULL OR ts > '2024-01-01'") == ranges("ts > '2024-01-01'"));
        assert!(ranges("NOT (ts IS NOT NULL)").is_empty());
        assert!(ranges("v IS NULL").is_all());
    }

    #[test]
    fn prunes_with_the_current_value_of_dynamic_filters() {
        let schema = Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        )]);
        let ts = datafusion::physical_expr::expressions::col("ts", &schema).unwrap();
        let filter = Arc::new(DynamicFilterPhysicalExpr::new(
            vec![Arc::clone(&ts)],
            physical_lit(true),
        ));
        let as_expr: Arc<dyn PhysicalExpr> = Arc::clone(&filter) as _;
        let data_type = DataType::Timestamp(TimeUnit::Microsecond, None);
        let read = || physical_time_ranges(std::slice::from_ref(&as_expr), "ts", &data_type);
        assert!(read().is_all(), "a TopK filter starts as `true`");
        let threshold = physical_lit(ScalarValue::TimestampMicrosecond(Some(JAN1), None));
        filter
            .update(Arc::new(PhysicalBinary::new(ts, Operator::Gt, threshold)))
            .unwrap();
        assert_eq!(read(), TimeRanges::between(JAN1, MAX_TIME));
    }

    /// `exact_time_range` of `sql`, type-checked and simplified as a scan
    /// gets it, over a column `ts` of `unit` in UTC.
    fn exact_in(sql: &str, unit: TimeUnit) -> (Option<(i64, i64)>, Expr, Arc<DFSchema>) {
        let data_type = DataType::Timestamp(unit, Some("UTC".into()));
        let schema = Schema::new(vec![Field::new("ts", data_type.clone(), false)]);
        let df_schema = Arc::new(DFSchema::try_from(schema).unwrap());
        let expr = crate::pruning::planned_filter(sql, &df_schema);
        (exact_time_range(&expr, "ts", &data_type), expr, df_schema)
    }

    /// Whether each row of `values` (in `unit`, UTC) passes `expr`, as
    /// DataFusion evaluates it.
    fn passing(expr: &Expr, schema: &DFSchema, unit: TimeUnit, values: &[i64]) -> Vec<bool> {
        use arrow::array::{
            Array, ArrayRef, AsArray, RecordBatch, TimestampMicrosecondArray,
            TimestampMillisecondArray, TimestampSecondArray,
        };
        use datafusion::physical_plan::ColumnarValue;
        let values = values.to_vec();
        let column: ArrayRef = match unit {
            TimeUnit::Second => Arc::new(TimestampSecondArray::from(values).with_timezone("UTC")),
            TimeUnit::Millisecond => {
                Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
            }
            _ => Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC")),
        };
        let batch = RecordBatch::try_new(Arc::clone(schema.inner()), vec![column]).unwrap();
        let ColumnarValue::Array(passed) = physical_of(expr, schema).evaluate(&batch).unwrap()
        else {
            panic!("{expr}: not an array");
        };
        let passed = passed.as_boolean();
        (0..passed.len())
            .map(|i| passed.is_valid(i) && passed.value(i))
            .collect()
    }

    #[test]
    fn exact_ranges_hold_every_row_that_passes_and_no_other() {
        let instants = [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:01Z",
            "2024-01-01T00:00:00.001Z",
            "2024-01-01T00:00:00.000001Z",
            "2023-12-31T23:59:59.999999Z",
        ];
        for unit in [
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
        ] {
            let per = crate::time::floor_micros(1, unit).unwrap();
            // Rows from 3 units before to 3 after the first instant.
            let values: Vec<i64> = (-3..=3).map(|d| JAN1 / per + d).collect();
            let mut exact = 0;
            for (a, b) in instants.iter().flat_map(|a| instants.map(|b| (a, b))) {
                for sql in [
                    format!("ts = '{a}'"),
                    format!("ts < '{a}'"),
                    format!("ts <= '{a}'"),
                    format!("ts > '{a}'"),
                    format!("ts >= '{a}'"),
                    format!("'{a}' < ts"),
                    format!("'{a}' >= ts"),
                    format!("ts BETWEEN '{a}' AND '{b}'"),
                ] {
                    let (range, expr, df_schema) = exact_in(&sql, unit);
                    // A literal the coercion left as a cast (a string no
                    // timestamp of the unit holds) is not exact.
                    let Some((first, last)) = range else {
                        continue;
                    };
                    exact += 1;
                    let passed = passing(&expr, &df_schema, unit, &values);
                    for (v, passed) in values.iter().zip(passed) {
                        let us = v * per;
                        assert_eq!(
                            passed,
                            first <= us && us <= last,
                            "{sql} over {unit:?}, row {v}: range {first}..={last}"
                        );
                    }
                }
            }
            // Every form, at instants the unit holds.
            assert!(exact >= 7 * 2 + 4, "{unit:?}: {exact}");
        }
    }

    /// A window's end is exclusive, but `MAX_TIME` is no end and
    /// `MIN_TIME` no row; filters narrow it, and one that is not exact
    /// leaves no range.
    #[test]
    fn exact_range_is_the_window_within_every_filter() {
        let data_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let ts = |op: &str| {
            exact_in(
                &format!("ts {op} '2024-01-01T00:00:00Z'"),
                TimeUnit::Microsecond,
            )
            .1
        };
        let range = |filters: &[Expr], window| exact_range(filters, ("ts", &data_type), window);
        assert_eq!(range(&[], None), Some((MIN_TIME, MAX_TIME)));
        assert_eq!(range(&[], Some((5, MAX_TIME))), Some((5, MAX_TIME)));
        assert_eq!(range(&[], Some((5, 10))), Some((5, 9)));
        let (first, last) = range(&[], Some((MIN_TIME, MIN_TIME))).unwrap();
        assert!(first > last);
        assert_eq!(
            range(&[ts(">=")], Some((0, JAN1 + 10))),
            Some((JAN1, JAN1 + 9))
        );
        assert_eq!(range(&[ts(">="), ts("<=")], None), Some((JAN1, JAN1)));
        assert_eq!(range(&[ts(">="), ts("<>")], None), None);
    }

    #[test]
    fn exact_ranges_are_only_of_plain_comparisons_of_the_bare_column() {
        let exact = |sql: &str, unit| exact_in(sql, unit).0;
        let at = "'2024-01-01T00:00:00Z'";
        assert_eq!(
            exact(&format!("ts >= {at}"), TimeUnit::Microsecond),
            Some((JAN1, MAX_TIME))
        );
        assert_eq!(
            exact(&format!("ts < {at}"), TimeUnit::Second),
            Some((MIN_TIME, JAN1 - 1))
        );
        // As the simplifier leaves it.
        assert_eq!(
            exact(&format!("NOT ts < {at}"), TimeUnit::Millisecond),
            Some((JAN1, MAX_TIME))
        );
        // BETWEEN and AND, as DataFusion may hand them over unsimplified.
        let micros = |us: i64| {
            datafusion::logical_expr::lit(ScalarValue::TimestampMicrosecond(
                Some(us),
                Some("UTC".into()),
            ))
        };
        let ts = || datafusion::logical_expr::col("ts");
        let data_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let between = ts().between(micros(JAN1), micros(JAN1 + DAY));
        assert_eq!(
            exact_time_range(&between, "ts", &data_type),
            Some((JAN1, JAN1 + DAY))
        );
        let both = ts().gt(micros(JAN1)).and(ts().lt(micros(JAN1 + DAY)));
        assert_eq!(
            exact_time_range(&both, "ts", &data_type),
            Some((JAN1 + 1, JAN1 + DAY - 1))
        );
        for inexact in [
            ts().not_between(micros(JAN1), micros(JAN1 + DAY)),
            ts().gt(micros(JAN1))
                .and(datafusion::logical_expr::col("v").lt(micros(0))),
            ts().gt(micros(JAN1)).or(ts().lt(micros(0))),
        ] {
            assert_eq!(
                exact_time_range(&inexact, "ts", &data_type),
                None,
                "{inexact}"
            );
        }
        // The oplog rounds nanosecond bounds outwards.
        assert_eq!(exact(&format!("ts >= {at}"), TimeUnit::Nanosecond), None);
        for sql in [
            format!("ts <> {at}"),
            format!("ts < {at} OR ts > {at}"),
            format!("ts NOT BETWEEN {at} AND {at}"),
            format!("ts IN ({at}, '2024-01-02T00:00:00Z')"),
            format!("date_trunc('hour', ts) = {at}"),
        ] {
            assert_eq!(exact(&sql, TimeUnit::Microsecond), None, "{sql}");
        }
    }
}
