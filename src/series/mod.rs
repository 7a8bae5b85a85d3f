//! Series data: the [`SeriesExt`] API, writing versions and streaming them back.

mod distinct;
pub(crate) use distinct::ColumnValues;
mod reader;
pub(crate) mod schema;
pub(crate) mod writer;

pub use reader::{SchemaInfo, SeriesStream};
pub use schema::default_timestamp_column;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::execution::SendableRecordBatchStream;
use futures::TryStreamExt;

use crate::error::{Error, Result};
use crate::pond::{AppendOutcome, Pond};
use crate::time::{MAX_TIME, MIN_TIME};

/// Appending to and reading series. Paths look like `/sensors/site1/temperature`;
/// times are `i64` µs UTC, ranges are `[start, end)`.
#[async_trait]
pub trait SeriesExt {
    /// Appends `batch` to the series at `path` as one new version and returns
    /// its exact event-time bounds `(min, max)` in µs. The first append creates
    /// the series with the batch's schema and `timestamp_column`.
    async fn append_series_data(
        &self,
        path: &str,
        batch: &RecordBatch,
        timestamp_column: &str,
    ) -> Result<(i64, i64)>;

    /// Appends every batch of `input` as ONE new version, in bounded memory
    /// (input out of time order is sorted with spilling to disk).
    async fn append_series_stream(
        &self,
        path: &str,
        input: SendableRecordBatchStream,
        timestamp_column: &str,
    ) -> Result<AppendOutcome>;

    /// The rows with `start <= time < end`, opening only the versions whose
    /// bounds overlap the range.
    async fn read_series_time_range(
        &self,
        path: &str,
        start: i64,
        end: i64,
    ) -> Result<SeriesStream>;

    /// Every row of every version.
    async fn read_series_all(&self, path: &str) -> Result<SeriesStream>;
}

#[async_trait]
impl SeriesExt for Pond {
    async fn append_series_data(
        &self,
        path: &str,
        batch: &RecordBatch,
        timestamp_column: &str,
    ) -> Result<(i64, i64)> {
        let outcome = self.append_batch(path, batch, timestamp_column).await?;
        Ok((outcome.min_event_time, outcome.max_event_time))
    }

    async fn append_series_stream(
        &self,
        path: &str,
        input: SendableRecordBatchStream,
        timestamp_column: &str,
    ) -> Result<AppendOutcome> {
        let schema = input.schema();
        let input = input.map_err(Error::from);
        self.append_stream(path, schema, input, timestamp_column)
            .await
    }

    async fn read_series_time_range(
        &self,
        path: &str,
        start: i64,
        end: i64,
    ) -> Result<SeriesStream> {
        self.read_time_range(path, start, end).await
    }

    async fn read_series_all(&self, path: &str) -> Result<SeriesStream> {
        self.read_time_range(path, MIN_TIME, MAX_TIME).await
    }
}
