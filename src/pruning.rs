//! The time ranges a predicate can match, for pruning versions.
//!
//! [`time_ranges`] reads a filter on a series' timestamp column — `=`, `<`,
//! `<=`, `>`, `>=`, `BETWEEN`, `IN`, `AND`, `OR` and `NOT` of those, against
//! literals of any timestamp unit and zone, strings, dates and casts of them —
//! and returns a superset of the microseconds its matching rows can have.
//! Whatever it does not understand means "any time", so a version is only
//! ever skipped when no row of it can match.
//!
//! Microsecond semantics: a row with time `t` (in the column's unit) is at
//! microsecond `floor_us(t)`, the same rounding the oplog's bounds use. A
//! version with bounds `[min, max]` may match if the ranges meet `[min, max]`.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use std::sync::Arc;

use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr as PhysicalBinary, CastExpr, Column as PhysicalColumn, InListExpr, IsNotNullExpr,
    IsNullExpr, Literal, NotExpr, TryCastExpr,
};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;

use crate::time::{MAX_TIME, MIN_TIME, ceil_micros, floor_micros};

/// A set of microseconds: sorted, disjoint, non-adjacent closed intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRanges {
    ranges: Vec<(i64, i64)>,
}

impl TimeRanges {
    /// Every time.
    pub fn all() -> Self {
        Self {
            ranges: vec![(MIN_TIME, MAX_TIME)],
        }
    }

    /// No time at all: a predicate that matches nothing.
    pub fn none() -> Self {
        Self { ranges: Vec::new() }
    }

    /// The closed interval `[first, last]`; empty if `first > last`.
    pub fn between(first: i64, last: i64) -> Self {
        if first > last {
            Self::none()
        } else {
            Self {
                ranges: vec![(first, last)],
            }
        }
    }

    /// The half-open range `[start, end)` of the API; `end == MAX_TIME` is unbounded.
    pub fn half_open(start: i64, end: i64) -> Self {
        crate::time::last_micro(end).map_or_else(Self::none, |last| Self::between(start, last))
    }

    /// Whether this is every time.
    pub fn is_all(&self) -> bool {
        self.ranges == [(MIN_TIME, MAX_TIME)]
    }

    /// Whether no time is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The closed intervals, in order.
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }

    /// The smallest closed interval holding the whole set.
    pub fn hull(&self) -> Option<(i64, i64)> {
        Some((self.ranges.first()?.0, self.ranges.last()?.1))
    }

    /// Whether the set meets the closed interval `[min, max]`.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        // The first range that does not end before `min` decides.
        let i = self.ranges.partition_point(|&(_, last)| last < min);
        self.ranges.get(i).is_some_and(|&(first, _)| first <= max)
    }

    /// Times in both sets.
    pub fn intersect(&self, other: &Self) -> Self {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let (first, last) = (a.0.max(b.0), a.1.min(b.1));
            if first <= last {
                out.push((first, last));
            }
            if a.1 < b.1 { i += 1 } else { j += 1 }
        }
        Self { ranges: out }
    }

    /// Times in either set.
    pub fn union(&self, other: &Self) -> Self {
        let mut all: Vec<(i64, i64)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(all.len());
        for (first, last) in all {
            match out.last_mut() {
                Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
                _ => out.push((first, last)),
            }
        }
        Self { ranges: out }
    }
}

/// The times the conjunction of `filters` can match on `timestamp_column`,
/// whose values are in `unit`.
pub fn time_ranges(filters: &[Expr], timestamp_column: &str, unit: TimeUnit) -> TimeRanges {
    let column = TimeColumn {
        name: timestamp_column,
        unit,
    };
    filters.iter().fold(TimeRanges::all(), |acc, f| {
        acc.intersect(&column.ranges(f, false))
    })
}

/// The times the conjunction of physical `filters` can match, like
/// [`time_ranges`]. Dynamic filters (of TopK and hash joins) count with the
/// value they have now.
pub fn physical_time_ranges(
    filters: &[Arc<dyn PhysicalExpr>],
    timestamp_column: &str,
    unit: TimeUnit,
) -> TimeRanges {
    let column = TimeColumn {
        name: timestamp_column,
        unit,
    };
    filters.iter().fold(TimeRanges::all(), |acc, f| {
        match snapshot_physical_expr(Arc::clone(f)) {
            Ok(f) => acc.intersect(&column.physical_ranges(&f, false)),
            Err(_) => acc,
        }
    })
}

struct TimeColumn<'a> {
    name: &'a str,
    unit: TimeUnit,
}

impl TimeColumn<'_> {
    /// A superset of the times where `expr` (or `NOT expr` if `negated`) holds.
    fn ranges(&self, expr: &Expr, negated: bool) -> TimeRanges {
        match expr {
            Expr::Not(inner) => self.ranges(inner, !negated),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And | Operator::Or => {
                    let (l, r) = (self.ranges(left, negated), self.ranges(right, negated));
                    // De Morgan: under NOT, AND becomes OR and OR becomes AND.
                    if (*op == Operator::And) != negated {
                        l.intersect(&r)
                    } else {
                        l.union(&r)
                    }
                }
                _ => {
                    let op = if negated { op.negate() } else { Some(*op) };
                    op.map_or_else(TimeRanges::all, |op| self.comparison(left, op, right))
                }
            },
            Expr::Between(Between {
                expr,
                negated: between_negated,
                low,
                high,
            }) if self.is_column(expr) => {
                let (Some(low), Some(high)) = (literal_time(low), literal_time(high)) else {
                    return TimeRanges::all();
                };
                if *between_negated != negated {
                    // ts < low OR ts > high
                    less_than(low).union(&at_least(high))
                } else {
                    at_least(low).intersect(&at_most(high))
                }
            }
            Expr::InList(list) if self.is_column(&list.expr) && list.negated == negated => list
                .list
                .iter()
                .fold(TimeRanges::none(), |acc, item| match literal_time(item) {
                    Some(t) => acc.union(&at_least(t).intersect(&at_most(t))),
                    None => TimeRanges::all(),
                }),
            // The time column is never NULL.
            Expr::IsNull(e) if self.is_column(e) => null_test(true, negated),
            Expr::IsNotNull(e) if self.is_column(e) => null_test(false, negated),
            Expr::Literal(ScalarValue::Boolean(value), _) => boolean(*value, negated),
            _ => TimeRanges::all(),
        }
    }

    fn comparison(&self, left: &Expr, op: Operator, right: &Expr) -> TimeRanges {
        let (op, literal) = if self.is_column(left) {
            (op, right)
        } else if self.is_column(right) {
            match op.swap() {
                Some(op) => (op, left),
                None => return TimeRanges::all(),
            }
        } else {
            return TimeRanges::all();
        };
        compare(op, literal_time(literal))
    }

    /// Whether `expr` is the time column, possibly cast to a timestamp of the
    /// same or a finer unit (which changes neither order nor instants).
    fn is_column(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Column(c) => c.name == self.name,
            Expr::Cast(cast) => {
                matches!(cast.field.data_type(), DataType::Timestamp(u, _) if fineness(*u) >= fineness(self.unit))
                    && self.is_column(&cast.expr)
            }
            _ => false,
        }
    }
}

/// The times where a boolean literal holds: all of them or none.
fn boolean(value: Option<bool>, negated: bool) -> TimeRanges {
    match value {
        Some(b) if b != negated => TimeRanges::all(),
        _ => TimeRanges::none(),
    }
}

/// The times where `ts IS NULL` (`is_null`) or `ts IS NOT NULL` holds: the
/// time column has no NULLs, so none or all.
fn null_test(is_null: bool, negated: bool) -> TimeRanges {
    if is_null == negated {
        TimeRanges::all()
    } else {
        TimeRanges::none()
    }
}

/// The times where `ts <op> time` can hold, for a literal `time` as
/// [`literal_time`] returns it.
fn compare(op: Operator, time: Option<Option<(i64, TimeUnit)>>) -> TimeRanges {
    let Some(time) = time else {
        return TimeRanges::all();
    };
    let Some(t) = time else {
        // A comparison with NULL is never true.
        return TimeRanges::none();
    };
    let t = Some(t);
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
    fn physical_ranges(&self, expr: &Arc<dyn PhysicalExpr>, negated: bool) -> TimeRanges {
        let any = expr.as_ref();
        if let Some(not) = any.downcast_ref::<NotExpr>() {
            return self.physical_ranges(not.arg(), !negated);
        }
        if let Some(binary) = any.downcast_ref::<PhysicalBinary>() {
            let op = *binary.op();
            let (left, right) = (binary.left(), binary.right());
            if matches!(op, Operator::And | Operator::Or) {
                let (l, r) = (
                    self.physical_ranges(left, negated),
                    self.physical_ranges(right, negated),
                );
                return if (op == Operator::And) != negated {
                    l.intersect(&r)
                } else {
                    l.union(&r)
                };
            }
            let Some(op) = (if negated { op.negate() } else { Some(op) }) else {
                return TimeRanges::all();
            };
            return if self.is_physical_column(left) {
                compare(op, physical_literal_time(right))
            } else if self.is_physical_column(right) {
                op.swap().map_or_else(TimeRanges::all, |op| {
                    compare(op, physical_literal_time(left))
                })
            } else {
                TimeRanges::all()
            };
        }
        if let Some(list) = any.downcast_ref::<InListExpr>()
            && self.is_physical_column(list.expr())
            && list.negated() == negated
        {
            return list.list().iter().fold(TimeRanges::none(), |acc, item| {
                match physical_literal_time(item) {
                    Some(t) => acc.union(&at_least(t).intersect(&at_most(t))),
                    None => TimeRanges::all(),
                }
            });
        }
        if let Some(e) = any.downcast_ref::<IsNullExpr>()
            && self.is_physical_column(e.arg())
        {
            return null_test(true, negated);
        }
        if let Some(e) = any.downcast_ref::<IsNotNullExpr>()
            && self.is_physical_column(e.arg())
        {
            return null_test(false, negated);
        }
        if let Some(literal) = any.downcast_ref::<Literal>()
            && let ScalarValue::Boolean(value) = literal.value()
        {
            return boolean(*value, negated);
        }
        TimeRanges::all()
    }

    fn is_physical_column(&self, expr: &Arc<dyn PhysicalExpr>) -> bool {
        let any = expr.as_ref();
        if let Some(column) = any.downcast_ref::<PhysicalColumn>() {
            return column.name() == self.name;
        }
        if let Some(cast) = any.downcast_ref::<CastExpr>() {
            return matches!(cast.cast_type(), DataType::Timestamp(u, _) if fineness(*u) >= fineness(self.unit))
                && self.is_physical_column(cast.expr());
        }
        false
    }
}

/// [`literal_time`] of a physical literal, or a cast of one.
fn physical_literal_time(expr: &Arc<dyn PhysicalExpr>) -> Option<Option<(i64, TimeUnit)>> {
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
    scalar_time(value)
}

fn fineness(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// A literal time as `(value, unit)`: `Some(None)` for a NULL literal, `None`
/// if `expr` is not a literal that converts to a timestamp.
fn literal_time(expr: &Expr) -> Option<Option<(i64, TimeUnit)>> {
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
    scalar_time(value)
}

fn literal_scalar(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        _ => None,
    }
}

fn scalar_time(value: ScalarValue) -> Option<Option<(i64, TimeUnit)>> {
    Some(match value {
        ScalarValue::TimestampSecond(v, _) => v.map(|v| (v, TimeUnit::Second)),
        ScalarValue::TimestampMillisecond(v, _) => v.map(|v| (v, TimeUnit::Millisecond)),
        ScalarValue::TimestampMicrosecond(v, _) => v.map(|v| (v, TimeUnit::Microsecond)),
        ScalarValue::TimestampNanosecond(v, _) => v.map(|v| (v, TimeUnit::Nanosecond)),
        ScalarValue::Null => None,
        // Strings (RFC 3339; no zone means UTC) and dates go through Arrow's cast.
        v @ (ScalarValue::Utf8(_)
        | ScalarValue::Utf8View(_)
        | ScalarValue::LargeUtf8(_)
        | ScalarValue::Date32(_)
        | ScalarValue::Date64(_)) => {
            let cast = v
                .cast_to(&DataType::Timestamp(TimeUnit::Nanosecond, None))
                .ok()?;
            return scalar_time(cast);
        }
        _ => return None,
    })
}

/// Microseconds of rows with `ts >= t` (also `ts > t`: a superset).
fn at_least(t: Option<(i64, TimeUnit)>) -> TimeRanges {
    match t.map(|(v, u)| floor_micros(v, u)) {
        Some(Some(f)) => TimeRanges::between(f, MAX_TIME),
        Some(None) if t.is_some_and(|(v, _)| v < 0) => TimeRanges::all(),
        Some(None) => TimeRanges::none(),
        None => TimeRanges::none(),
    }
}

/// Microseconds of rows with `ts <= t`.
fn at_most(t: Option<(i64, TimeUnit)>) -> TimeRanges {
    match t.map(|(v, u)| floor_micros(v, u)) {
        Some(Some(f)) => TimeRanges::between(MIN_TIME, f),
        Some(None) if t.is_some_and(|(v, _)| v > 0) => TimeRanges::all(),
        Some(None) => TimeRanges::none(),
        None => TimeRanges::none(),
    }
}

/// Microseconds of rows with `ts < t`: `floor_us(ts) <= ts < t <= ceil_us(t)`.
fn less_than(t: Option<(i64, TimeUnit)>) -> TimeRanges {
    match t.map(|(v, u)| ceil_micros(v, u)) {
        Some(Some(c)) => c
            .checked_sub(1)
            .map_or_else(TimeRanges::none, |last| TimeRanges::between(MIN_TIME, last)),
        Some(None) if t.is_some_and(|(v, _)| v > 0) => TimeRanges::all(),
        Some(None) => TimeRanges::none(),
        None => TimeRanges::none(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema};
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
    use datafusion::logical_expr::simplify::SimplifyContext;
    use datafusion::optimizer::simplify_expressions::ExprSimplifier;
    use datafusion::physical_expr::create_physical_expr;
    use datafusion::physical_expr::execution_props::ExecutionProps;
    use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, lit as physical_lit};
    use datafusion::prelude::SessionContext;

    use super::*;

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
        let df_schema = Arc::new(DFSchema::try_from(schema).unwrap());
        let expr = SessionContext::new()
            .parse_sql_expr(sql, &df_schema)
            .unwrap();
        let context = SimplifyContext::builder()
            .with_schema(Arc::clone(&df_schema))
            .with_current_time()
            .build();
        let simplifier = ExprSimplifier::new(context);
        let expr = simplifier.coerce(expr, &df_schema).unwrap();
        let expr = simplifier.simplify(expr).unwrap();
        let logical = time_ranges(std::slice::from_ref(&expr), "ts", unit);
        // The physical reading must agree on every predicate of these tests.
        let physical = create_physical_expr(
            &expr,
            &df_schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )
        .unwrap();
        assert_eq!(
            physical_time_ranges(&[physical], "ts", unit),
            logical,
            "{sql}"
        );
        logical
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
        ] {
            assert!(ranges(sql).is_all(), "{sql}: {:?}", ranges(sql));
        }
    }

    #[test]
    fn prunes_everything_for_contradictions_and_null() {
        assert!(ranges("ts > NULL").is_empty());
        assert!(ranges("false").is_empty());
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
        let read =
            || physical_time_ranges(std::slice::from_ref(&as_expr), "ts", TimeUnit::Microsecond);
        assert!(read().is_all(), "a TopK filter starts as `true`");
        let threshold = physical_lit(ScalarValue::TimestampMicrosecond(Some(JAN1), None));
        filter
            .update(Arc::new(PhysicalBinary::new(ts, Operator::Gt, threshold)))
            .unwrap();
        assert_eq!(read(), TimeRanges::between(JAN1, MAX_TIME));
    }

    #[test]
    fn overlap_checks_closed_bounds() {
        let r = TimeRanges::between(10, 20).union(&TimeRanges::between(30, 40));
        assert!(r.overlaps(20, 25) && r.overlaps(25, 30) && r.overlaps(0, 100));
        assert!(!r.overlaps(21, 29) && !r.overlaps(41, 50) && !r.overlaps(0, 9));
        assert_eq!(
            TimeRanges::between(1, 5).union(&TimeRanges::between(6, 8)),
            TimeRanges::between(1, 8),
            "adjacent ranges merge"
        );
    }
}
