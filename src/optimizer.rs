//! [`SeriesTimePruning`]: version pruning for time filters that only exist
//! in the physical plan.
//!
//! The logical pushdown gives a [`crate::SeriesTable`] the filters of the
//! query's `WHERE`. Others appear only while DataFusion plans physically: a
//! `FilterExec` the logical optimizer did not push into the scan, the
//! dynamic filter a TopK (`ORDER BY ts DESC LIMIT k`) tightens as it sees
//! rows, the bounds of a hash join's build side. DataFusion's own filter
//! pushdown carries them, through projections, repartitions and coalesces,
//! into [`crate::SeriesScanExec`]; this rule, run after it, turns them into
//! version pruning through the oplog index: static filters at planning (the
//! scan then shows the smaller `versions=k/n`), dynamic ones when each
//! partition of the scan starts to run.
//!
//! The same rule then puts a [`crate::CollapseRunsExec`] under the
//! `min`/`max` aggregations of a series that it may stand under: the runs
//! of equal group keys that a file clustered by a sort key holds reach the
//! hash table as one row each (see [`crate::runs`]). Before that, the
//! scans under aggregations of the newest (or oldest) time of each value
//! of a column drop the versions that cannot hold any value's (see
//! [`crate::pruning::groups`]).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::pruning::groups::skip_superseded_groups;
use crate::run_aggregate::aggregate_runs;
use crate::runs::collapse_runs;
use crate::scan::SeriesScanExec;

/// The physical optimizer rule that prunes versions of every
/// [`SeriesScanExec`] with the time filters pushed into it, folds runs
/// under `min`/`max` aggregations of series, and has other partial
/// aggregations of series look up each run of equal keys once
/// ([`crate::RunAggregateExec`]). Installed by
/// [`crate::register`].
#[derive(Debug, Default)]
pub struct SeriesTimePruning;

impl SeriesTimePruning {
    /// The rule.
    pub fn new() -> Self {
        Self
    }
}

impl PhysicalOptimizerRule for SeriesTimePruning {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = plan
            .transform_up(|node| {
                let Some(scan) = node.downcast_ref::<SeriesScanExec>() else {
                    return Ok(Transformed::no(node));
                };
                Ok(match scan.apply_pushed_filters()? {
                    Some(pruned) => Transformed::yes(Arc::new(pruned) as Arc<dyn ExecutionPlan>),
                    None => Transformed::no(node),
                })
            })
            .data()?;
        aggregate_runs(collapse_runs(skip_superseded_groups(plan)?)?)
    }

    fn name(&self) -> &str {
        "SeriesTimePruning"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
