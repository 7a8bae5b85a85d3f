//! Deletes: a tombstone in the oplog, applied when the series is read.
//!
//! A delete writes no data file. It commits one `delete` row with a version
//! number of its own, the time range it covers and, optionally, a SQL
//! predicate on the series' columns. Reads drop the rows of versions of
//! lower precedence (written before it) that lie in the range and satisfy
//! the predicate; a version wholly inside the range of a delete without a
//! predicate is not read at all. Rows appended later are not affected.
//! Compaction rewrites versions without their deleted rows, and vacuum then
//! removes the old files.

use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::{Expr, Volatility};
use datafusion::prelude::SessionContext;

use super::Pond;
use super::append::create_entry;
use crate::error::{Error, Result};
use crate::oplog::{EntryType, OplogEntry};
use crate::path::validate_series_path;
use crate::time::last_micro;
use crate::{MAX_TIME, MIN_TIME};

/// The result of a committed delete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteOutcome {
    /// The series path.
    pub series: String,
    /// The delete's version number.
    pub version: i64,
    /// The oplog (Delta) version of the commit.
    pub txn_seq: i64,
}

impl Pond {
    /// Deletes the rows of the series at `path` with `start <= ts < end`
    /// (µs UTC; [`crate::MIN_TIME`] / [`crate::MAX_TIME`] for unbounded)
    /// for which the SQL `predicate` on its columns holds (every such row
    /// without one), as the series is now. Rows appended afterwards are
    /// kept; reads as of an earlier version still see the deleted rows.
    pub async fn delete(
        &self,
        path: &str,
        start: i64,
        end: i64,
        predicate: Option<&str>,
    ) -> Result<DeleteOutcome> {
        let Some(last) = last_micro(end).filter(|&last| last >= start) else {
            return Err(Error::InvalidDelete {
                path: path.to_string(),
                reason: "the time range is empty".to_string(),
            });
        };
        self.delete_between(path, (start, last), predicate).await
    }

    /// [`Self::delete`] of the rows with `first <= ts <= last`.
    pub(crate) async fn delete_between(
        &self,
        path: &str,
        (start, last): (i64, i64),
        predicate: Option<&str>,
    ) -> Result<DeleteOutcome> {
        validate_series_path(path)?;
        self.refresh().await?;
        let state = self.state(path)?;
        if let Some(sql) = predicate {
            check_predicate(path, &state.schema, sql)?;
        }
        let mut committed = None;
        self.commit_one_row(path, |index, txn_seq| {
            let state = index.series(path).ok_or_else(|| Error::UnknownSeries {
                path: path.to_string(),
            })?;
            let version = state.last_version() + 1;
            committed = Some((version, txn_seq));
            Ok(Some(OplogEntry {
                version,
                entry_type: EntryType::Delete,
                // Unbounded sides are left empty.
                min_event_time: (start != MIN_TIME).then_some(start),
                max_event_time: (last != MAX_TIME).then_some(last),
                row_count: Some(0),
                extended_attributes: predicate
                    .map(|sql| serde_json::json!({ "where": sql }).to_string()),
                ..create_entry(path, &state.id, &state.timestamp_column, None, &[], txn_seq)
            }))
        })
        .await?;
        let (version, txn_seq) = committed.expect("a committed delete was planned");
        Ok(DeleteOutcome {
            series: path.to_string(),
            version,
            txn_seq,
        })
    }
}

/// An error unless `sql` is a predicate DataFusion can plan on `schema`.
fn check_predicate(path: &str, schema: &arrow::datatypes::SchemaRef, sql: &str) -> Result<()> {
    let invalid = |e: datafusion::error::DataFusionError| Error::InvalidDelete {
        path: path.to_string(),
        reason: format!(
            "the predicate {sql:?} is not valid here: {}",
            e.strip_backtrace()
        ),
    };
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).map_err(invalid)?;
    let ctx = SessionContext::new();
    let expr = ctx.parse_sql_expr(sql, &df_schema).map_err(invalid)?;
    // Read back at every read: it must say the same each time. `now()` is
    // stable, not volatile, but says something else at every read (and
    // fails there, as reads do not fold it).
    let changing = expr
        .exists(|e| {
            Ok(matches!(e, Expr::ScalarFunction(f)
                if f.func.signature().volatility != Volatility::Immutable))
        })
        .map_err(invalid)?;
    if changing {
        return Err(Error::InvalidDelete {
            path: path.to_string(),
            reason: format!(
                "the predicate {sql:?} is not the same at every read (random(), now() …): \
                 give times and values as constants"
            ),
        });
    }
    // Planned as reads plan it, so that what fails there fails here.
    let planned = crate::lww::plan_predicate(expr, &df_schema).map_err(invalid)?;
    let physical = ctx
        .create_physical_expr(planned, &df_schema)
        .map_err(invalid)?;
    match physical.data_type(schema.as_ref()) {
        Ok(arrow::datatypes::DataType::Boolean) => Ok(()),
        Ok(other) => Err(Error::InvalidDelete {
            path: path.to_string(),
            reason: format!("the predicate {sql:?} is of type {other}, not a boolean"),
        }),
        Err(e) => Err(invalid(e)),
    }
}
