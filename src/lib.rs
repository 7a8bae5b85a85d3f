//! # pond
//!
//! Time series stored as versioned Parquet files, with an operation log (the
//! *oplog*) kept as a Delta Lake table, for Apache DataFusion.
//!
//! Each append to a series writes one Parquet file sorted by time (a
//! *version*) and commits one [`OplogEntry`] row with the version's exact
//! event-time bounds. A read of a time range asks the in-memory oplog index
//! which versions can hold rows in it and opens only those.
//!
//! Times are `i64` microseconds since the Unix epoch, UTC, everywhere in the
//! API and the oplog; ranges are `[start, end)`.
//!
//! [`register`] makes every series a table of a DataFusion session: a time
//! filter in SQL prunes versions through the same index, and the physical
//! optimizer rule [`SeriesTimePruning`] does the same for filters that only
//! exist in the physical plan (TopK and hash-join dynamic filters).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> pond::Result<()> {
//! use std::sync::Arc;
//! use arrow::array::{Float64Array, RecordBatch, TimestampMicrosecondArray};
//! use pond::{Pond, SeriesExt};
//!
//! # let dir = tempfile::tempdir()?;
//! # let location = dir.path().to_str().unwrap();
//! let pond = Pond::create(location).await?;
//! let batch = RecordBatch::try_from_iter([
//!     ("ts", Arc::new(TimestampMicrosecondArray::from(vec![30, 10, 20]).with_timezone("UTC")) as _),
//!     ("celsius", Arc::new(Float64Array::from(vec![21.5, 20.0, 20.75])) as _),
//! ])?;
//! let (min, max) = pond.append_series_data("/site1/temperature", &batch, "ts").await?;
//! assert_eq!((min, max), (10, 30));
//!
//! let rows = pond.read_series_time_range("/site1/temperature", 15, 31).await?;
//! assert_eq!(rows.versions().len(), 1);
//! let batches = rows.try_collect().await?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
//!
//! // The same series as the SQL table site1.temperature.
//! let ctx = datafusion::prelude::SessionContext::new();
//! pond::register(&ctx, Arc::new(pond));
//! let answer = ctx
//!     .sql("SELECT count(*) AS n FROM site1.temperature WHERE ts > to_timestamp_micros(15)")
//!     .await?
//!     .collect()
//!     .await?;
//! assert_eq!(answer[0].num_rows(), 1);
//! # Ok(())
//! # }
//! ```

mod aws_profile;
mod catalog;
mod check;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cluster")]
pub mod cluster;
mod comparisons;
mod error;
mod functions;
mod index;
mod io;
mod lww;
pub mod oplog;
mod optimizer;
mod path;
mod pond;
mod provider;
pub mod pruning;
mod reader;
mod run_aggregate;
mod run_sums;
mod runs;
mod runtime;
mod scan;
mod scope;
mod series;
mod store;
mod time;
mod udtf;
mod union;
mod warnings;

pub use catalog::{CATALOG, PondCatalogProvider, PondSchemaProvider, PondSessionOptions, register};
pub use check::{CheckReport, DEFAULT_GRACE, FileProblem, Problem};
pub use comparisons::ExactTimeComparisons;
pub use error::{Error, Result, error_line};
pub use index::FileInfo;
pub use lww::LastWriterWinsExec;
pub use oplog::{EntryType, OplogEntry};
pub use optimizer::SeriesTimePruning;
pub use path::{SeriesPattern, schema_and_table, sql_table_name, validate_series_path};
pub use pond::{
    AppendOptions, AppendOutcome, CompactOptions, CompactOutcome, Compression, DEFAULT_SORT_BUCKET,
    DeleteOutcome, Pond, PondOptions, SeriesCompaction, SeriesInfo, StagedAppend, VacuumOptions,
    VacuumOutcome,
};
pub use provider::SeriesTable;
pub use run_aggregate::RunAggregateExec;
pub use runs::CollapseRunsExec;
pub use scan::SeriesScanExec;
pub use series::{SchemaInfo, SeriesExt, SeriesStream, default_timestamp_column};
pub use store::{Requests, StoreRequests};
pub use time::{MAX_TIME, MIN_TIME, format_micros};
pub use udtf::{SeriesListFunction, SeriesRangeFunction, SeriesVersionsFunction};
pub use union::{SERIES_COLUMN, SeriesUnion, SeriesUnionFunction, TIME_COLUMN};
pub use warnings::forward_warnings;
