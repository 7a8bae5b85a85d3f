//! Versions and rows that cannot hold any group's newest (or oldest) time.
//!
//! "The last reading of each host" is `max(ts) ... GROUP BY hostname`: it
//! reads every row of the series, though only each host's newest rows
//! matter. Each version records the values of its few-valued columns and
//! each value's first and last time (`values` and `value_times` in its
//! oplog row, see [`crate::series`]). From them, each host's newest time
//! over the versions read is known, and
//! - a version whose every host has a later newest time in another
//!   version cannot give any host its newest time: it is left out of the
//!   aggregation's scan;
//! - no row before the earliest of the hosts' newest times is any host's
//!   newest: the scan's Parquet predicate gets `ts >= T`, so that
//!   DataFusion prunes the row groups and pages that end before it.
//!
//! Of a series appended every 10 minutes, the newest version's last page
//! is read; of one compacted into days clustered by host within each hour,
//! the newest day's last hour.
//!
//! [`skip_superseded_groups`] does it for a partial (or single-stage)
//! aggregation that:
//! - groups by one column, and aggregates only `max` (or only `min`) of the
//!   series' time column: its other columns are where the later version's
//!   rows would differ;
//! - reads the scan through nodes that keep every row (projections,
//!   repartitions, run folding; none with a row limit) or filters that only
//!   bound the time from below for `max` (`ts >= ...`), from above for
//!   `min`: such a filter keeps every later row if it keeps any earlier
//!   one.
//!
//! The versions that give each value its newest time must be read by the
//! same scan (one that reads rows as they are, so no delete or newer key
//! hides any of them). A version that records no values (a null, or too
//! many values) stays, and may hold any value from its start on: `T` is
//! at or before it.

use std::sync::Arc;

use datafusion::common::HashMap;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;

use crate::index::{FileInfo, ValuesOf};
use crate::runs::{CollapseRunsExec, Extreme, extreme_of_column};
use crate::scan::SeriesScanExec;
use crate::series::ColumnValues;

/// `plan` with the scans under every aggregation described in the module's
/// documentation reading only the versions that may hold a group's newest
/// (or oldest) time.
pub(crate) fn skip_superseded_groups(
    plan: Arc<dyn ExecutionPlan>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some((group, time, extreme)) = extreme_time_per_group(aggregate) else {
            return Ok(Transformed::no(node));
        };
        let Some(input) = without_superseded(aggregate.input(), group, time, extreme)? else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(replace_children_if_necessary(
            node,
            vec![input],
        )?))
    })
    .data()
}

/// The group column, the aggregated column and the end it keeps, of a
/// partial or single-stage aggregation grouped by one column whose every
/// aggregate is DataFusion's `max` (or every one its `min`) of one other
/// column: no `DISTINCT`, `FILTER` or `ORDER BY`.
fn extreme_time_per_group(aggregate: &AggregateExec) -> Option<(usize, usize, Extreme)> {
    let grouped = aggregate.group_expr();
    if !matches!(
        aggregate.mode(),
        AggregateMode::Partial | AggregateMode::Single
    ) || !grouped.is_single()
        || aggregate.filter_expr().iter().any(Option::is_some)
    {
        return None;
    }
    let [(group, _)] = grouped.expr() else {
        return None;
    };
    let group = group.downcast_ref::<Column>()?.index();
    let mut found: Option<(usize, Extreme)> = None;
    for function in aggregate.aggr_expr() {
        let (column, extreme) = extreme_of_column(function)?;
        if column == group {
            return None;
        }
        if found.is_some_and(|f| f != (column, extreme)) {
            return None;
        }
        found = Some((column, extreme));
    }
    let (time, extreme) = found?;
    Some((group, time, extreme))
}

/// `plan` (whose columns `group` and `time` are the aggregation's) with
/// its series scan reading fewer versions, if it reads one as the module's
/// documentation requires and that drops any.
fn without_superseded(
    plan: &Arc<dyn ExecutionPlan>,
    group: usize,
    time: usize,
    extreme: Extreme,
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    // A node that stops after a number of rows (a `LIMIT` DataFusion
    // pushed into a filter or a coalesce) returns rows that depend on
    // which versions it reads.
    if plan.fetch().is_some() {
        return Ok(None);
    }
    if let Some(scan) = plan.downcast_ref::<SeriesScanExec>() {
        let schema = scan.schema();
        let (group, time) = (schema.field(group).name(), schema.field(time).name());
        return Ok(scan
            .without_superseded(group, time, extreme)?
            .map(|scan| Arc::new(scan) as Arc<dyn ExecutionPlan>));
    }
    let (group, time) = if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let column = |i: usize| Some(projection.expr()[i].expr.downcast_ref::<Column>()?.index());
        match (column(group), column(time)) {
            (Some(group), Some(time)) => (group, time),
            _ => return Ok(None),
        }
    } else if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        let (group, time) = match filter.projection() {
            Some(projection) => (projection[group], projection[time]),
            None => (group, time),
        };
        if !bounds_one_side(filter.predicate(), |c| c.index() == time, extreme) {
            return Ok(None);
        }
        (group, time)
    } else if plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<CollapseRunsExec>()
    {
        (group, time)
    } else {
        return Ok(None);
    };
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    let Some(child) = without_superseded(child, group, time, extreme)? else {
        return Ok(None);
    };
    Ok(Some(replace_children_if_necessary(
        Arc::clone(plan),
        vec![child],
    )?))
}

/// Whether `predicate` is a conjunction of comparisons of the time column
/// (which `is_time` tells) with a literal that only bound it from below
/// (for `Extreme::Max`: a later row passes wherever an earlier one does)
/// or from above (for `Extreme::Min`).
pub(crate) fn bounds_one_side(
    predicate: &Arc<dyn PhysicalExpr>,
    is_time: impl Fn(&Column) -> bool + Copy,
    extreme: Extreme,
) -> bool {
    let Some(binary) = predicate.downcast_ref::<BinaryExpr>() else {
        return false;
    };
    let op = *binary.op();
    if op == Operator::And {
        return bounds_one_side(binary.left(), is_time, extreme)
            && bounds_one_side(binary.right(), is_time, extreme);
    }
    let literal = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Literal>()
            .is_some_and(|l| !l.value().is_null())
    };
    let time = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Column>().is_some_and(is_time);
    // As `time op literal`.
    let op = if time(binary.left()) && literal(binary.right()) {
        op
    } else if literal(binary.left()) && time(binary.right()) {
        match op.swap() {
            Some(op) => op,
            None => return false,
        }
    } else {
        return false;
    };
    match extreme {
        Extreme::Max => matches!(op, Operator::Gt | Operator::GtEq),
        Extreme::Min => matches!(op, Operator::Lt | Operator::LtEq),
    }
}

/// What [`superseded`] leaves out of a scan.
#[derive(Debug, Default)]
pub(crate) struct Superseded<'a> {
    /// The versions that hold no value's newest (`Extreme::Max`) or oldest
    /// time.
    pub(crate) versions: Vec<&'a FileInfo>,
    /// A time, µs, that every value's newest time is at or after (oldest
    /// at or before): rows before it (after it) hold none. `None` if no
    /// version records its values.
    pub(crate) bound: Option<i64>,
}

/// What can be left out of reading `versions` for the newest
/// (`Extreme::Max`) or oldest (`Extreme::Min`) time of each value of
/// `column`:
/// - a version that records that column's values, each of which has a
///   later newest time (an earlier oldest) in another version;
/// - the rows before the earliest of the values' newest times (after the
///   latest of their oldest), and before the start (after the end) of any
///   version that does not record its values (one with a null, or too many
///   values or bytes of them): that version may hold any value, whose
///   newest time is at its start or later.
///
/// A version that records its values' times gives each value's newest time
/// exactly; one that records only the values (written before times were
/// recorded) only bounds it: at or after its start, at or before its end.
/// "Has a later newest time in another version" compares what the version
/// may hold at most with what another certainly holds. The recorded times
/// are rounded inwards (a value's newest down, its oldest up) and the
/// versions' bounds outwards, so comparing them strictly compares the rows'
/// own times.
pub(crate) fn superseded<'a>(
    versions: &[&'a FileInfo],
    column: &str,
    extreme: Extreme,
) -> Superseded<'a> {
    // The value lists the versions hold, each with the newest time of each
    // value that the versions holding that same list certainly reach (a
    // series' versions mostly hold the same hosts as the one before: one
    // list, one hash per value); and the list of each version.
    let mut lists: Vec<(&ColumnValues, Vec<i64>)> = Vec::new();
    let mut read = Vec::with_capacity(versions.len());
    // The earliest start (latest end) of the versions that do not record
    // their values: any value of theirs has its newest time at or after it.
    let mut unrecorded: Option<i64> = None;
    for &v in versions {
        let Some(of) = v.values.as_ref().and_then(|r| r.with_times(column)) else {
            let reach = match extreme {
                Extreme::Max => v.min_event_time,
                Extreme::Min => v.max_event_time,
            };
            unrecorded = Some(unrecorded.map_or(reach, |u| worse(extreme, u, reach)));
            continue;
        };
        let reached = reach(v, of, extreme).map(|(reached, _)| reached);
        match lists.last_mut() {
            Some((list, best)) if **list == of.values => {
                for (best, t) in best.iter_mut().zip(reached) {
                    *best = better(extreme, *best, t);
                }
            }
            _ => lists.push((&of.values, reached.collect())),
        }
        read.push((v, of, lists.len() - 1));
    }
    // The newest time each value certainly reaches, over all versions.
    let mut best: HashMap<Value, i64> = HashMap::new();
    for (list, times) in &lists {
        for (value, &t) in values_of(list).zip(times) {
            best.entry(value)
                .and_modify(|b| *b = better(extreme, *b, t))
                .or_insert(t);
        }
    }
    // Each list's values' newest times over all versions, in its order.
    let overall: Vec<Vec<i64>> = (lists.iter())
        .map(|(list, _)| values_of(list).map(|value| best[&value]).collect())
        .collect();
    let beaten = |t: i64, best: i64| match extreme {
        Extreme::Max => t < best,
        Extreme::Min => t > best,
    };
    let dropped = (read.into_iter())
        .filter(|&(v, of, list)| {
            (reach(v, of, extreme).zip(&overall[list]))
                .all(|((_, at_most), &best)| beaten(at_most, best))
        })
        .map(|(v, _, _)| v)
        .collect();
    let bound = (best.values().copied())
        .chain(unrecorded)
        .reduce(|a, b| worse(extreme, a, b))
        .filter(|_| !best.is_empty());
    Superseded {
        versions: dropped,
        bound,
    }
}

/// For each value `v` records, in order: the newest (`Extreme::Max`) or
/// oldest time, µs, that it certainly reaches, and the one it may reach at
/// most: both its recorded time, or without recorded times, the version's
/// start and end (its end and start).
fn reach<'v>(
    v: &'v FileInfo,
    of: &'v ValuesOf,
    extreme: Extreme,
) -> Box<dyn Iterator<Item = (i64, i64)> + 'v> {
    let (start, end) = (v.min_event_time, v.max_event_time);
    match (&of.times, extreme) {
        (Some((_, last)), Extreme::Max) => Box::new(last.iter().map(move |o| {
            let t = end.saturating_sub(*o);
            (t, t)
        })),
        (Some((first, _)), Extreme::Min) => Box::new(first.iter().map(move |o| {
            let t = start.saturating_add(*o);
            (t, t)
        })),
        (None, Extreme::Max) => Box::new(std::iter::repeat_n((start, end), of.values.len())),
        (None, Extreme::Min) => Box::new(std::iter::repeat_n((end, start), of.values.len())),
    }
}

/// The newer of two times for `Extreme::Max`, the older for `Extreme::Min`.
fn better(extreme: Extreme, a: i64, b: i64) -> i64 {
    match extreme {
        Extreme::Max => a.max(b),
        Extreme::Min => a.min(b),
    }
}

/// The older of two times for `Extreme::Max`, the newer for `Extreme::Min`.
fn worse(extreme: Extreme, a: i64, b: i64) -> i64 {
    match extreme {
        Extreme::Max => a.min(b),
        Extreme::Min => a.max(b),
    }
}

/// A recorded value, of whichever kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Value<'a> {
    String(&'a str),
    Integer(i64),
}

fn values_of(values: &ColumnValues) -> Box<dyn Iterator<Item = Value<'_>> + '_> {
    match values {
        ColumnValues::Strings(values) => Box::new(values.iter().map(|v| Value::String(v))),
        ColumnValues::Integers(values) => Box::new(values.iter().map(|&v| Value::Integer(v))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::index::RecordedValues;

    /// A version over `min..=max` holding each host from its first to its
    /// last time; or none recorded.
    fn version(
        version: i64,
        (min, max): (i64, i64),
        hosts: Option<&[(&str, i64, i64)]>,
    ) -> FileInfo {
        let values = hosts.map(|hosts| {
            let names: Vec<&str> = hosts.iter().map(|h| h.0).collect();
            let first: Vec<i64> = hosts.iter().map(|h| h.1 - min).collect();
            let last: Vec<i64> = hosts.iter().map(|h| max - h.2).collect();
            Arc::new(RecordedValues::from_attributes(
                &json!({
                    "values": { "host": names },
                    "value_times": { "host": { "first": first, "last": last } },
                }),
                max - min,
            ))
        });
        FileInfo {
            version,
            min_event_time: min,
            max_event_time: max,
            values,
            ..FileInfo::default()
        }
    }

    /// The versions dropped and the bound.
    fn skipped(versions: &[FileInfo], extreme: Extreme) -> (Vec<i64>, Option<i64>) {
        let refs: Vec<&FileInfo> = versions.iter().collect();
        let Superseded { versions, bound } = superseded(&refs, "host", extreme);
        let mut dropped: Vec<i64> = versions.iter().map(|v| v.version).collect();
        dropped.sort_unstable();
        (dropped, bound)
    }

    #[test]
    fn drops_versions_whose_every_value_is_newer_elsewhere() {
        let versions = [
            version(1, (0, 9), Some(&[("a", 0, 9), ("b", 1, 5)])),
            version(2, (10, 19), Some(&[("a", 10, 12)])),
            version(3, (12, 29), Some(&[("b", 12, 29), ("c", 20, 25)])),
            version(4, (20, 39), Some(&[("c", 21, 39)])),
        ];
        // a's newest time is 12, in 2; b's 29 in 3; c's 39 in 4: 1 holds
        // none, and no row before 12 holds any.
        assert_eq!(skipped(&versions, Extreme::Max), (vec![1], Some(12)));
        // a's and b's oldest are in 1, c's (20) in 3; none after 20.
        assert_eq!(skipped(&versions, Extreme::Min), (vec![2, 4], Some(20)));
    }

    #[test]
    fn keeps_versions_that_tie_or_are_not_recorded() {
        // Both hold a at 10: either may be the one read.
        let versions = [
            version(1, (0, 10), Some(&[("a", 0, 10)])),
            version(2, (10, 19), Some(&[("a", 10, 10), ("b", 11, 19)])),
        ];
        assert_eq!(skipped(&versions, Extreme::Max), (vec![], Some(10)));
        // A version without recorded values (a null, or too many values)
        // may hold any value: it stays, and bounds the rows left out by its
        // start (end). One that records its values but not their times
        // (written before they were) holds each somewhere within its
        // bounds.
        let values_only = FileInfo {
            values: Some(Arc::new(RecordedValues::from_json(
                &json!({ "host": ["a"] }),
            ))),
            ..version(4, (5, 15), None)
        };
        let versions = [
            version(1, (0, 9), Some(&[("a", 0, 9)])),
            version(2, (10, 19), None),
            version(3, (11, 29), Some(&[("a", 11, 29)])),
            values_only,
        ];
        assert_eq!(skipped(&versions, Extreme::Max), (vec![1, 4], Some(10)));
        assert_eq!(skipped(&versions, Extreme::Min), (vec![3, 4], Some(19)));
        // It may hold a anywhere from 5 to 30: it stays for the newest (a
        // may be there at 30, after 1's 9), and 1 stays too (a may be there
        // only at 5); an oldest at 5 or later never beats 1's 0.
        let values_only = FileInfo {
            values: Some(Arc::new(RecordedValues::from_json(
                &json!({ "host": ["a"] }),
            ))),
            ..version(2, (5, 30), None)
        };
        let versions = [version(1, (0, 9), Some(&[("a", 0, 9)])), values_only];
        assert_eq!(skipped(&versions, Extreme::Max), (vec![], Some(9)));
        assert_eq!(skipped(&versions, Extreme::Min), (vec![2], Some(0)));
        // None records its values: nothing is left out.
        let versions = [version(1, (0, 9), None), version(2, (10, 19), None)];
        assert_eq!(skipped(&versions, Extreme::Max), (vec![], None));
    }

    #[test]
    fn versions_with_the_same_values_are_merged_by_position() {
        let versions = [
            version(1, (0, 9), Some(&[("a", 0, 9), ("b", 0, 8)])),
            version(2, (10, 19), Some(&[("a", 10, 11), ("b", 10, 19)])),
            version(3, (20, 29), Some(&[("a", 20, 29), ("b", 20, 21)])),
            version(4, (5, 30), Some(&[("c", 5, 30)])),
        ];
        // a's and b's newest are both in 3, c's in 4.
        assert_eq!(skipped(&versions, Extreme::Max), (vec![1, 2], Some(21)));
        assert_eq!(skipped(&versions, Extreme::Min), (vec![2, 3], Some(5)));
    }
}
