//! Versions that cannot hold any group's newest (or oldest) time.
//!
//! "The last reading of each host" is `max(ts) ... GROUP BY hostname`: it
//! reads every row of the series, though only each host's newest rows
//! matter. Each version records the values of its few-valued columns
//! (`values` in its oplog row, see [`crate::series`]); a version whose
//! every `hostname` also appears in versions that start after it ends
//! cannot give any host its newest time, since those versions give that
//! host a later one. Such versions are left out of the aggregation's scan:
//! of a series appended every 10 minutes, the newest version stays; of one
//! compacted into days, the newest day.
//!
//! [`skip_superseded_groups`] does it for a partial (or single-stage)
//! aggregation that:
//! - groups by one column, and aggregates only `max` (or only `min`) of the
//!   series' time column: its other columns are where the later version's
//!   rows would differ;
//! - reads the scan through nodes that keep every row (projections,
//!   repartitions, run folding; none with a row limit) or filters that only
//!   bound the time from below for `max` (`ts >= ...`), from above for
//!   `min`: such a filter keeps every row of the later version if it keeps
//!   any row of the earlier one.
//!
//! The later versions must be read by the same scan (one that reads rows
//! as they are, so no delete or newer key hides any of them), and every
//! value of the earlier one must be recorded: one with a null, or too many
//! values to record, stays.

use std::hash::Hash;
use std::sync::Arc;

use datafusion::common::HashSet;
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

use crate::index::FileInfo;
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

/// The versions among `versions` whose newest (`Extreme::Max`) or oldest
/// (`Extreme::Min`) time of each value of `column` is beaten by another
/// version among them: every value of it recorded, and each recorded by
/// versions that start after it ends (or end before it starts).
///
/// Versions' bounds are rounded outwards to µs, so a version that starts
/// after another ends by them starts after it by its rows' times too.
pub(crate) fn superseded<'a>(
    versions: &[&'a FileInfo],
    column: &str,
    extreme: Extreme,
) -> Vec<&'a FileInfo> {
    fn values_of<'v>(v: &'v FileInfo, column: &str) -> Option<&'v ColumnValues> {
        v.values.as_ref()?.of(column)
    }
    // Toward the past for `max`: each version in turn by its end, with the
    // values of every version starting after it ends.
    let (mut by_end, mut by_start) = (versions.to_vec(), versions.to_vec());
    match extreme {
        Extreme::Max => {
            by_end.sort_by_key(|v| std::cmp::Reverse(v.max_event_time));
            by_start.sort_by_key(|v| std::cmp::Reverse(v.min_event_time));
        }
        Extreme::Min => {
            by_end.sort_by_key(|v| v.min_event_time);
            by_start.sort_by_key(|v| v.max_event_time);
        }
    }
    let beyond = |later: &FileInfo, v: &FileInfo| match extreme {
        Extreme::Max => later.min_event_time > v.max_event_time,
        Extreme::Min => later.max_event_time < v.min_event_time,
    };
    let mut seen = Seen::default();
    let mut later = by_start.into_iter().peekable();
    let mut dropped = Vec::new();
    // Versions of a series mostly hold the same values as the one before:
    // those are added, or found held, once.
    let (mut last_added, mut last_held) = (None, None);
    for v in by_end {
        while let Some(l) = later.next_if(|l| beyond(l, v)) {
            if let Some(values) = values_of(l, column).filter(|&v| Some(v) != last_added) {
                seen.add(values);
                last_added = Some(values);
            }
        }
        if let Some(values) = values_of(v, column)
            && (Some(values) == last_held || seen.holds(values))
        {
            dropped.push(v);
            last_held = Some(values);
        }
    }
    dropped
}

/// The values seen in the later versions.
#[derive(Default)]
struct Seen<'a> {
    strings: HashSet<&'a str>,
    integers: HashSet<i64>,
}

impl<'a> Seen<'a> {
    fn add(&mut self, values: &'a ColumnValues) {
        match values {
            ColumnValues::Strings(values) => self.strings.extend(values.iter().map(|v| &**v)),
            ColumnValues::Integers(values) => self.integers.extend(values.iter().copied()),
        }
    }

    fn holds(&self, values: &ColumnValues) -> bool {
        fn all<T: Eq + Hash>(seen: &HashSet<T>, values: impl ExactSizeIterator<Item = T>) -> bool {
            values.len() <= seen.len() && { values }.all(|v| seen.contains(&v))
        }
        match values {
            ColumnValues::Strings(values) => all(&self.strings, values.iter().map(|v| &**v)),
            ColumnValues::Integers(values) => all(&self.integers, values.iter().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::index::RecordedValues;

    fn version(version: i64, (min, max): (i64, i64), hosts: Option<&[&str]>) -> FileInfo {
        FileInfo {
            version,
            min_event_time: min,
            max_event_time: max,
            values: hosts
                .map(|hosts| Arc::new(RecordedValues::from_json(&json!({ "host": hosts })))),
            ..FileInfo::default()
        }
    }

    fn dropped(versions: &[FileInfo], extreme: Extreme) -> Vec<i64> {
        let refs: Vec<&FileInfo> = versions.iter().collect();
        let mut dropped: Vec<i64> = superseded(&refs, "host", extreme)
            .iter()
            .map(|v| v.version)
            .collect();
        dropped.sort_unstable();
        dropped
    }

    #[test]
    fn drops_versions_whose_every_value_comes_again_beyond_them() {
        let versions = [
            version(1, (0, 9), Some(&["a", "b"])),
            version(2, (10, 19), Some(&["a"])),
            version(3, (20, 29), Some(&["b", "c"])),
            version(4, (30, 39), Some(&["c"])),
        ];
        // a's newest time is in 2, b's in 3, c's in 4: 1 holds none.
        assert_eq!(dropped(&versions, Extreme::Max), [1]);
        // a's and b's oldest are in 1, c's in 3.
        assert_eq!(dropped(&versions, Extreme::Min), [2, 4]);
    }

    #[test]
    fn keeps_versions_that_overlap_or_are_not_recorded() {
        let versions = [
            version(1, (0, 10), Some(&["a"])),
            // Starts where 1 ends: its a may be no newer than 1's.
            version(2, (10, 19), Some(&["a"])),
        ];
        assert_eq!(dropped(&versions, Extreme::Max), Vec::<i64>::new());
        let versions = [
            version(1, (0, 9), Some(&["a"])),
            // Unrecorded (a null, or too many values): beats nothing.
            version(2, (10, 19), None),
        ];
        assert_eq!(dropped(&versions, Extreme::Max), Vec::<i64>::new());
        assert_eq!(dropped(&versions, Extreme::Min), Vec::<i64>::new());
    }

    #[test]
    fn values_may_come_again_over_several_later_versions() {
        let versions = [
            version(1, (0, 9), Some(&["a", "b", "c"])),
            version(2, (10, 19), Some(&["a"])),
            version(3, (20, 29), Some(&["b"])),
            version(4, (30, 39), Some(&["c", "a"])),
        ];
        assert_eq!(dropped(&versions, Extreme::Max), [1, 2]);
    }
}
