//! Which versions a query must read.
//!
//! Two readers of a query's filters decide it together:
//!
//! - [`time_ranges`] and [`physical_time_ranges`] read the filters on the
//!   timestamp column into [`TimeRanges`], a superset of the microseconds
//!   their matching rows can have. The oplog index turns those into
//!   candidate versions in O(log n + k), and `EXPLAIN` shows them.
//! - DataFusion's own [`PruningPredicate`], evaluated over the candidates'
//!   oplog bounds, then makes the keep/skip decision for each candidate (see
//!   [`versions`]). It understands the whole predicate the way DataFusion
//!   evaluates it (NULLs, casts, zones), so a version is only skipped when
//!   DataFusion itself proves that none of its rows can match.
//!
//! The extracted ranges must never be narrower than what the
//! `PruningPredicate` keeps, or the index lookup would drop a version the
//! predicate keeps. Debug builds (and so every test) check this on every
//! query, over all versions of the series.
//!
//! [`PruningPredicate`]: datafusion::physical_optimizer::pruning::PruningPredicate

mod extract;
mod ranges;
pub(crate) mod versions;

pub use extract::{physical_time_ranges, time_ranges};
pub use ranges::TimeRanges;

/// The longest `IN` list either reader turns into times; a longer one keeps
/// every version.
pub(crate) const MAX_IN_LIST: usize = 1_000;
