//! Event time: every Arrow timestamp unit reduced to `i64` microseconds UTC.
//!
//! Pruning is only safe if the bounds in the oplog contain every row. A
//! version's lower bound is therefore rounded down and its upper bound rounded
//! up to the microsecond, and a row filter compares `floor_us(value)` against
//! integer microsecond bounds, which is exact for every unit: for an integer
//! `s`, `floor(x) >= s` holds exactly when `x >= s`.

use arrow::array::{Array, ArrayRef, BooleanArray, PrimitiveArray};
use arrow::datatypes::Field;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, lit};

/// The earliest representable event time; a read from here is unbounded below.
pub const MIN_TIME: i64 = i64::MIN;
/// The latest representable event time; a read up to here is unbounded above.
pub const MAX_TIME: i64 = i64::MAX;

/// Microseconds per unit, for the units coarser than a microsecond.
fn micros_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond | TimeUnit::Nanosecond => 1,
    }
}

/// A time given as RFC 3339 text (no zone means UTC), in µs (rounded
/// down), as DataFusion casts text to a timestamp: in microseconds, so that
/// times before 1677 and after 2262 (outside nanoseconds' range) are read.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    match ScalarValue::Utf8(Some(text.to_string()))
        .cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None))
        .ok()?
    {
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(us),
        _ => None,
    }
}

/// `value` (in `unit`) as microseconds, rounded down. `None` if it does not fit.
pub(crate) fn floor_micros(value: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Nanosecond => Some(value.div_euclid(1_000)),
        other => value.checked_mul(micros_per(other)),
    }
}

/// `value` (in `unit`) as microseconds, rounded up. `None` if it does not fit.
pub(crate) fn ceil_micros(value: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Nanosecond => {
            let floor = value.div_euclid(1_000);
            Some(if value.rem_euclid(1_000) == 0 {
                floor
            } else {
                floor + 1
            })
        }
        other => value.checked_mul(micros_per(other)),
    }
}

/// A non-NULL timestamp value as `(value, unit)`; `None` for NULL and for
/// values of other types.
pub(crate) fn scalar_timestamp(value: &ScalarValue) -> Option<(i64, TimeUnit)> {
    match value {
        ScalarValue::TimestampSecond(v, _) => v.map(|v| (v, TimeUnit::Second)),
        ScalarValue::TimestampMillisecond(v, _) => v.map(|v| (v, TimeUnit::Millisecond)),
        ScalarValue::TimestampMicrosecond(v, _) => v.map(|v| (v, TimeUnit::Microsecond)),
        ScalarValue::TimestampNanosecond(v, _) => v.map(|v| (v, TimeUnit::Nanosecond)),
        _ => None,
    }
}

/// The time unit of a timestamp column, or `None` if the type is not a timestamp.
pub(crate) fn timestamp_unit(data_type: &DataType) -> Option<TimeUnit> {
    match data_type {
        DataType::Timestamp(unit, _) => Some(*unit),
        _ => None,
    }
}

/// Statistics of one timestamp column chunk, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeStats {
    /// Smallest value, rounded down.
    pub(crate) min: i64,
    /// Largest value, rounded up.
    pub(crate) max: i64,
    /// Whether the values are in non-decreasing order.
    pub(crate) sorted: bool,
    /// First value in the column's own unit, to check order across chunks.
    pub(crate) first: i64,
    /// Last value in the column's own unit.
    pub(crate) last: i64,
}

/// Why a timestamp column chunk cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeStatsError {
    /// The column is not an Arrow timestamp.
    NotATimestamp(DataType),
    /// The column holds this many NULLs.
    Nulls(usize),
    /// A value cannot be expressed in `i64` microseconds.
    OutOfRange(i64),
}

impl std::fmt::Display for TimeStatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotATimestamp(t) => write!(f, "has type {t}, not a timestamp"),
            Self::Nulls(n) => write!(f, "has {n} NULL value(s)"),
            Self::OutOfRange(v) => write!(f, "value {v} does not fit in i64 microseconds"),
        }
    }
}

/// Bounds and order of a non-empty timestamp column chunk. `Ok(None)` for an
/// empty chunk.
pub(crate) fn time_stats(column: &dyn Array) -> Result<Option<TimeStats>, TimeStatsError> {
    let Some(unit) = timestamp_unit(column.data_type()) else {
        return Err(TimeStatsError::NotATimestamp(column.data_type().clone()));
    };
    if column.null_count() > 0 {
        return Err(TimeStatsError::Nulls(column.null_count()));
    }
    let values = raw_values(column);
    let (Some(&first), Some(&last)) = (values.first(), values.last()) else {
        return Ok(None);
    };
    let mut min = first;
    let mut max = first;
    let mut sorted = true;
    let mut prev = first;
    for &v in values {
        min = min.min(v);
        max = max.max(v);
        sorted &= prev <= v;
        prev = v;
    }
    let min = floor_micros(min, unit).ok_or(TimeStatsError::OutOfRange(min))?;
    let max = ceil_micros(max, unit).ok_or(TimeStatsError::OutOfRange(max))?;
    Ok(Some(TimeStats {
        min,
        max,
        sorted,
        first,
        last,
    }))
}

/// The raw `i64` values of a timestamp array, whatever its unit and zone.
///
/// Panics if `column` is not a timestamp; callers check with [`timestamp_unit`].
pub(crate) fn raw_values(column: &dyn Array) -> &[i64] {
    fn values<T: ArrowPrimitiveType<Native = i64>>(column: &dyn Array) -> &[i64] {
        column
            .as_any()
            .downcast_ref::<PrimitiveArray<T>>()
            .expect("timestamp array of the declared unit")
            .values()
    }
    match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => values::<TimestampSecondType>(column),
        DataType::Timestamp(TimeUnit::Millisecond, _) => values::<TimestampMillisecondType>(column),
        DataType::Timestamp(TimeUnit::Microsecond, _) => values::<TimestampMicrosecondType>(column),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => values::<TimestampNanosecondType>(column),
        other => panic!("raw_values on non-timestamp type {other}"),
    }
}

/// A mask of the rows whose time lies in `[start, end)` (microseconds), or
/// `None` when every row does. Rows with a NULL time are never selected.
pub(crate) fn range_mask(column: &ArrayRef, start: i64, end: i64) -> Option<BooleanArray> {
    let unit = timestamp_unit(column.data_type())?;
    let values = raw_values(column.as_ref());
    let Some(last) = last_micro(end) else {
        return Some(BooleanArray::from(vec![false; column.len()]));
    };
    let keep = |v: i64| {
        // Saturation keeps the order, and stored values always fit (checked on write).
        let us = floor_micros(v, unit).unwrap_or(if v < 0 { MIN_TIME } else { MAX_TIME });
        us >= start && us <= last
    };
    if column.null_count() == 0 && values.iter().all(|&v| keep(v)) {
        return None;
    }
    let mask: BooleanArray = values
        .iter()
        .enumerate()
        .map(|(i, &v)| Some(column.is_valid(i) && keep(v)))
        .collect();
    Some(mask)
}

/// The last microsecond inside `[start, end)`, `None` if no microsecond is
/// before `end`. An `end` of [`MAX_TIME`] means "unbounded", so that a read of
/// everything includes the latest instant.
pub(crate) fn last_micro(end: i64) -> Option<i64> {
    if end == MAX_TIME {
        Some(MAX_TIME)
    } else {
        end.checked_sub(1)
    }
}

/// Whether a version with inclusive bounds `[min, max]` may hold rows of `[start, end)`.
pub(crate) fn overlaps(min: i64, max: i64, start: i64, end: i64) -> bool {
    last_micro(end).is_some_and(|last| start <= last && min <= last && max >= start)
}

/// Formats microseconds as RFC 3339 in UTC, for messages and listings.
pub fn format_micros(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{us}µs"))
}

/// Nanoseconds per `unit`.
pub(crate) fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// Whether `zone` names UTC itself (not a zone that is at UTC only part of
/// the year, such as Europe/London).
pub(crate) fn is_utc(zone: &str) -> bool {
    matches!(
        zone,
        "UTC" | "Etc/UTC" | "+00:00" | "+0000" | "+00" | "-00:00"
    )
}

/// The wall-clock time `ago` before now; the earliest time chrono has if
/// that is earlier.
pub(crate) fn before_now(ago: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::TimeDelta::from_std(ago)
        .ok()
        .and_then(|ago| chrono::Utc::now().checked_sub_signed(ago))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// The current wall-clock time in microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `start <= ts < end` (µs UTC; [`crate::MIN_TIME`] / [`crate::MAX_TIME`]
/// for unbounded) on the timestamp column `field`, compared in the
/// column's own unit: a row is within exactly when the microsecond floor of
/// its time is. `None` for no condition, or a column that is not a
/// timestamp.
pub(crate) fn time_range_predicate(field: &Field, start: i64, end: i64) -> Option<Expr> {
    let DataType::Timestamp(unit, _) = field.data_type() else {
        return None;
    };
    let literal = |v: i64| lit(timestamp_scalar(v, field.data_type()));
    let column = || Expr::Column(Column::new_unqualified(field.name()));
    // Past the range of `unit`, a bound holds for every value or none.
    let lower = (start != crate::MIN_TIME).then(|| match native_lower_bound(start, *unit) {
        Some(v) => column().gt_eq(literal(v)),
        None => lit(start < 0),
    });
    let upper = (end != crate::MAX_TIME).then(|| match native_lower_bound(end, *unit) {
        Some(v) => column().lt(literal(v)),
        None => lit(end > 0),
    });
    conjunction(lower.into_iter().chain(upper))
}

/// `value` as a scalar of the timestamp type `data_type` (of its unit and
/// zone); a null for any other type.
pub(crate) fn timestamp_scalar(value: i64, data_type: &DataType) -> ScalarValue {
    let DataType::Timestamp(unit, zone) = data_type else {
        return ScalarValue::Null;
    };
    let (v, zone) = (Some(value), zone.clone());
    match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(v, zone),
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(v, zone),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(v, zone),
        TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(v, zone),
    }
}

/// The largest value in `unit` whose microsecond ceiling is at most `us`, so
/// that `ts <= native_upper_bound(us)` holds exactly when `ceil_us(ts) <= us`;
/// `None` where that value is beyond `i64`.
pub(crate) fn native_upper_bound(us: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => Some(us.div_euclid(1_000_000)),
        TimeUnit::Millisecond => Some(us.div_euclid(1_000)),
        TimeUnit::Microsecond => Some(us),
        TimeUnit::Nanosecond => us.checked_mul(1_000),
    }
}

/// The smallest value in `unit` whose microsecond floor is at least `us`, so
/// that `ts >= native_lower_bound(us)` holds exactly when `floor_us(ts) >= us`;
/// `None` where that value is beyond `i64` (nanoseconds far from 1970).
pub(crate) fn native_lower_bound(us: i64, unit: TimeUnit) -> Option<i64> {
    let per = |k: i64| us.div_euclid(k) + i64::from(us.rem_euclid(k) != 0);
    match unit {
        TimeUnit::Second => Some(per(1_000_000)),
        TimeUnit::Millisecond => Some(per(1_000)),
        TimeUnit::Microsecond => Some(us),
        TimeUnit::Nanosecond => us.checked_mul(1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{TimestampNanosecondArray, TimestampSecondArray};
    use std::sync::Arc;

    #[test]
    fn a_retention_longer_than_history_reaches_back_to_the_earliest_time() {
        // `pond vacuum --retain 100000000d` panicked in chrono's subtraction.
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(
            before_now(day * 100_000_000),
            chrono::DateTime::<chrono::Utc>::MIN_UTC
        );
        assert_eq!(
            before_now(std::time::Duration::MAX),
            chrono::DateTime::<chrono::Utc>::MIN_UTC
        );
        let hour_ago = before_now(std::time::Duration::from_secs(3_600));
        let expected = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        assert!((expected - hour_ago).num_seconds().abs() <= 1, "{hour_ago}");
    }

    #[test]
    fn native_bounds_select_exactly_the_rounded_times() {
        // For every unit, `ts >= lower(us)` exactly when floor_us(ts) >= us,
        // and `ts <= upper(us)` exactly when ceil_us(ts) <= us, around 0
        // and on both sides of it.
        let units = [
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ];
        for unit in units {
            for us in [
                -2_000_001, -1_000_000, -1_001, -1, 0, 1, 999, 1_000_000, 2_500_000,
            ] {
                let (lower, upper) = (
                    native_lower_bound(us, unit).unwrap(),
                    native_upper_bound(us, unit).unwrap(),
                );
                for ts in (lower - 3)..=(lower + 3) {
                    assert_eq!(
                        ts >= lower,
                        floor_micros(ts, unit).unwrap() >= us,
                        "{unit:?} {us} {ts}"
                    );
                }
                for ts in (upper - 3)..=(upper + 3) {
                    assert_eq!(
                        ts <= upper,
                        ceil_micros(ts, unit).unwrap() <= us,
                        "{unit:?} {us} {ts}"
                    );
                }
            }
        }
        assert_eq!(
            native_upper_bound(i64::MAX / 10, TimeUnit::Nanosecond),
            None
        );
    }

    #[test]
    fn nanoseconds_round_outwards() {
        assert_eq!(floor_micros(1_500, TimeUnit::Nanosecond), Some(1));
        assert_eq!(ceil_micros(1_500, TimeUnit::Nanosecond), Some(2));
        assert_eq!(floor_micros(-1_500, TimeUnit::Nanosecond), Some(-2));
        assert_eq!(ceil_micros(-1_500, TimeUnit::Nanosecond), Some(-1));
        assert_eq!(ceil_micros(2_000, TimeUnit::Nanosecond), Some(2));
        assert_eq!(
            floor_micros(i64::MIN, TimeUnit::Nanosecond),
            Some(i64::MIN / 1000 - 1)
        );
    }

    #[test]
    fn coarse_units_scale_exactly_or_fail() {
        assert_eq!(floor_micros(3, TimeUnit::Second), Some(3_000_000));
        assert_eq!(ceil_micros(-3, TimeUnit::Millisecond), Some(-3_000));
        assert_eq!(floor_micros(i64::MAX / 10, TimeUnit::Second), None);
    }

    #[test]
    fn stats_of_nanosecond_column() {
        let col = TimestampNanosecondArray::from(vec![2_500, 1_001, 9_999]);
        let stats = time_stats(&col).unwrap().unwrap();
        assert_eq!((stats.min, stats.max, stats.sorted), (1, 10, false));
    }

    #[test]
    fn stats_reject_nulls_and_other_types() {
        let col = TimestampSecondArray::from(vec![Some(1), None]);
        assert_eq!(time_stats(&col), Err(TimeStatsError::Nulls(1)));
        let ints = arrow::array::Int64Array::from(vec![1]);
        assert!(matches!(
            time_stats(&ints),
            Err(TimeStatsError::NotATimestamp(DataType::Int64))
        ));
    }

    #[test]
    fn mask_is_exact_for_nanoseconds() {
        // 1.999µs is before 2µs; 2.000µs is not before 2µs.
        let col: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_999, 2_000, 2_999]));
        let mask = range_mask(&col, 2, 3).unwrap();
        assert_eq!(mask, BooleanArray::from(vec![false, true, true]));
        assert!(range_mask(&col, 1, 3).is_none());
    }

    #[test]
    fn times_parse_beyond_the_range_of_nanoseconds_and_round_down() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00.0000019Z"), Some(1));
        assert_eq!(parse_time("1969-12-31T23:59:59.9999991Z"), Some(-1));
        // 2300 and 1600 lie outside i64 nanoseconds, inside µs.
        assert_eq!(
            parse_time("2300-01-01T00:00:00Z"),
            Some(10_413_792_000_000_000)
        );
        assert_eq!(
            parse_time("1600-01-01T00:00:00Z"),
            Some(-11_676_096_000_000_000)
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn overlap_uses_inclusive_max_and_exclusive_end() {
        assert!(overlaps(10, 20, 20, 30));
        assert!(!overlaps(10, 20, 21, 30));
        assert!(!overlaps(10, 20, 0, 10));
        assert!(overlaps(10, 20, 0, 11));
        assert!(!overlaps(0, 100, 50, 50), "an empty range overlaps nothing");
        assert!(
            overlaps(MAX_TIME, MAX_TIME, 0, MAX_TIME),
            "MAX_TIME as end is unbounded"
        );
    }
}
