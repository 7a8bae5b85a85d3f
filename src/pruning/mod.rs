//! Which versions a query must read.
//!
//! Two readers of a query's filters decide it together, and a version is
//! read unless either rules it out:
//!
//! - [`time_ranges`] and [`physical_time_ranges`] read the filters on the
//!   timestamp column into [`TimeRanges`], a superset of the microseconds
//!   their matching rows can have. The oplog index turns those into
//!   candidate versions in O(log n + k), and `EXPLAIN` shows them.
//! - DataFusion's own `PruningPredicate`, evaluated over the candidates'
//!   oplog bounds, then keeps or skips each candidate. It reads every
//!   filter on the time column the way DataFusion evaluates it (NULLs,
//!   casts, zones; the others have no statistics there, but for the values
//!   each version records of its tags, see `versions.rs`), so a
//!   version is only skipped when DataFusion itself proves that none of its
//!   rows can match. A plain comparison of the column with a literal of
//!   its own type (seconds to microseconds) is read as exact ranges
//!   instead, which keep the same versions (unit-tested against
//!   `PruningPredicate`, which the debug check below still uses) without
//!   building one.
//!
//! The range reader is the one that could drop a matching row, so it reads
//! no more than `PruningPredicate` does, and debug builds (every test)
//! check it on every scan: for each comparison, `IN`, `IS NULL` or literal
//! under the filters' `AND`s and `OR`s, every version of the series that
//! `PruningPredicate` keeps for that part alone must meet the part's
//! ranges. `AND` and `OR` are intersection and union of those, so the
//! ranges of the whole filter then hold every version a matching row can be
//! in. A violation fails the query with `pruning bug: …`.

mod extract;
pub(crate) mod groups;
mod ranges;
pub(crate) mod versions;

pub(crate) use extract::{exact_range, exact_time_range};
pub use extract::{physical_time_ranges, time_ranges};
pub use ranges::TimeRanges;

/// The longest `IN` list either reader turns into times; a longer one keeps
/// every version.
pub(crate) const MAX_IN_LIST: usize = 1_000;

/// `sql` over `schema`, type-checked and simplified as DataFusion's
/// optimizer hands a filter to a scan.
#[cfg(test)]
pub(crate) fn planned_filter(
    sql: &str,
    schema: &std::sync::Arc<datafusion::common::DFSchema>,
) -> datafusion::logical_expr::Expr {
    use datafusion::logical_expr::simplify::SimplifyContext;
    use datafusion::optimizer::simplify_expressions::ExprSimplifier;
    let expr = datafusion::prelude::SessionContext::new()
        .parse_sql_expr(sql, schema)
        .unwrap();
    let context = SimplifyContext::builder()
        .with_schema(std::sync::Arc::clone(schema))
        .with_current_time()
        .build();
    let simplifier = ExprSimplifier::new(context);
    let expr = simplifier.coerce(expr, schema).unwrap();
    simplifier.simplify(expr).unwrap()
}
