//! [`SeriesStream`]: the rows of a series in a time range, read version by
//! version.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::ObjectStore;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;

use crate::error::{Error, Result};
use crate::index::{FileInfo, Tombstone};
use crate::io::parquet_reader;
use crate::lww::{MergedScan, read_segments};
use crate::series::schema::conform_batch;
use crate::time::{ceil_micros, floor_micros, overlaps, range_mask, timestamp_unit};

/// The shape of the rows a [`SeriesStream`] yields.
#[derive(Debug, Clone)]
pub struct SchemaInfo {
    /// The series path.
    pub series: String,
    /// The series' current schema; rows of older versions without a later
    /// column have NULLs in it.
    pub schema: SchemaRef,
    /// The name of the timestamp column.
    pub timestamp_column: String,
    /// The series' key, the time column among it; empty if the series
    /// keeps every row it is given.
    pub key: Vec<String>,
}

/// A stream of the record batches of one series within a time range.
///
/// Only the versions whose event-time bounds overlap the range are opened, in
/// order of their earliest event time, and within a file only the row groups
/// whose statistics overlap it are read. Rows outside `[start, end)` are
/// dropped. Versions may overlap in time, so batches are ordered by version
/// bounds, not globally by time. Of a keyed series, versions that overlap
/// are read together, one row per key (the newest version's).
pub struct SeriesStream {
    inner: BoxStream<'static, Result<RecordBatch>>,
    total_versions: usize,
    files: Vec<FileInfo>,
    time_range: (i64, i64),
    schema_info: SchemaInfo,
}

impl std::fmt::Debug for SeriesStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesStream")
            .field("series", &self.schema_info.series)
            .field("time_range", &self.time_range)
            .field(
                "versions",
                &format!("{}/{}", self.files.len(), self.total_versions),
            )
            .finish()
    }
}

impl SeriesStream {
    /// The rows of `files` (of `total_versions`) in `[start, end)`, without
    /// those `deletes` remove.
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        schema_info: SchemaInfo,
        total_versions: usize,
        files: Vec<FileInfo>,
        (start, end): (i64, i64),
        deletes: Vec<Arc<Tombstone>>,
    ) -> Self {
        let info = schema_info.clone();
        let segments = read_segments(&files, !info.key.is_empty(), &deletes);
        let inner = futures::stream::iter(segments)
            .then(move |(mut segment, merge)| {
                let (store, info, deletes) = (Arc::clone(&store), info.clone(), deletes.clone());
                async move {
                    if merge {
                        merge_versions(store, info, segment, (start, end), &deletes)
                    } else {
                        open_version(store, info, segment.remove(0), start, end).await
                    }
                }
            })
            .try_flatten()
            .boxed();
        Self {
            inner,
            total_versions,
            files,
            time_range: (start, end),
            schema_info,
        }
    }

    /// How many versions the series has in all.
    pub fn total_versions(&self) -> usize {
        self.total_versions
    }

    /// The versions this stream reads: those overlapping the time range.
    pub fn versions(&self) -> &[FileInfo] {
        &self.files
    }

    /// The requested range `[start, end)` in µs UTC.
    pub fn time_range(&self) -> (i64, i64) {
        self.time_range
    }

    /// The series, its schema and its timestamp column.
    pub fn schema_info(&self) -> &SchemaInfo {
        &self.schema_info
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema_info.schema)
    }

    /// Reads every batch into memory.
    pub async fn try_collect(self) -> Result<Vec<RecordBatch>> {
        TryStreamExt::try_collect(self).await
    }

    /// Calls `f` with each batch in turn, stopping at the first error.
    pub async fn for_each<F>(mut self, mut f: F) -> Result<()>
    where
        F: FnMut(RecordBatch) -> Result<()>,
    {
        while let Some(batch) = self.next().await {
            f(batch?)?;
        }
        Ok(())
    }
}

impl Stream for SeriesStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Opens one version and streams its rows in `[start, end)` in the series'
/// current schema.
async fn open_version(
    store: Arc<dyn ObjectStore>,
    info: SchemaInfo,
    file: FileInfo,
    start: i64,
    end: i64,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let name = file.file_path.clone();
    let reader = parquet_reader(store, &file.file_path, file.size as u64)?;
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| Error::parquet(&name, e))?;
    let row_groups = overlapping_row_groups(&builder, &info.timestamp_column, start, end)
        .map_err(|e| Error::parquet(&name, e))?;
    let stream = builder
        .with_row_groups(row_groups)
        .build()
        .map_err(|e| Error::parquet(&name, e))?;
    let ts = info.timestamp_column.clone();
    let stream = stream
        .map_err(move |e| Error::parquet(&name, e))
        .and_then(move |batch| {
            let out = restrict(&batch, &ts, start, end)
                .and_then(|b| conform_batch(&b, &info.schema, &info.series));
            futures::future::ready(out)
        })
        .try_filter(|b| futures::future::ready(b.num_rows() > 0));
    Ok(stream.boxed())
}

/// Streams the rows in `[start, end)` of a run of `versions` (see
/// [`MergedScan`]): of a keyed series one row per key, the one of the
/// highest precedence, and without the rows `deletes` remove.
fn merge_versions(
    store: Arc<dyn ObjectStore>,
    info: SchemaInfo,
    versions: Vec<FileInfo>,
    (start, end): (i64, i64),
    deletes: &[Arc<Tombstone>],
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let ctx = SessionContext::new();
    let url = ObjectStoreUrl::parse("pond-read://pond/")?;
    ctx.register_object_store(url.as_ref(), Arc::clone(&store));
    let projection: Vec<usize> = (0..info.schema.fields().len()).collect();
    let plan = MergedScan {
        scope: crate::scope::StoreScope::new(url.clone(), store, None),
        url,
        schema: &info.schema,
        timestamp_column: &info.timestamp_column,
        key: &info.key,
        projection: &projection,
        deletes,
        partitions: 1,
    }
    .plan(&[versions], ParquetSource::new, |expr, schema| {
        ctx.create_physical_expr(expr, schema)
    })?;
    let stream = plan.execute(0, ctx.task_ctx())?;
    let ts = info.timestamp_column.clone();
    let stream = stream
        .map_err(Error::from)
        .and_then(move |batch| {
            let out = restrict(&batch, &ts, start, end)
                .and_then(|b| conform_batch(&b, &info.schema, &info.series));
            futures::future::ready(out)
        })
        .try_filter(|b| futures::future::ready(b.num_rows() > 0));
    Ok(stream.boxed())
}

/// The row groups whose time statistics overlap `[start, end)`; all of them
/// when a statistic is missing.
fn overlapping_row_groups<T>(
    builder: &ParquetRecordBatchStreamBuilder<T>,
    timestamp_column: &str,
    start: i64,
    end: i64,
) -> parquet::errors::Result<Vec<usize>> {
    let metadata = builder.metadata();
    let all: Vec<usize> = (0..metadata.num_row_groups()).collect();
    let converter =
        StatisticsConverter::try_new(timestamp_column, builder.schema(), builder.parquet_schema())?;
    let Some(unit) = timestamp_unit(converter.arrow_field().data_type()) else {
        return Ok(all);
    };
    let as_i64 = |a: ArrayRef| -> parquet::errors::Result<Int64Array> {
        let a = cast(&a, &DataType::Int64)?;
        Ok(a.as_primitive::<Int64Type>().clone())
    };
    let mins = as_i64(converter.row_group_mins(metadata.row_groups())?)?;
    let maxes = as_i64(converter.row_group_maxes(metadata.row_groups())?)?;
    let value = |a: &Int64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    Ok(all
        .into_iter()
        .filter(|&i| {
            let min = value(&mins, i).and_then(|v| floor_micros(v, unit));
            let max = value(&maxes, i).and_then(|v| ceil_micros(v, unit));
            match (min, max) {
                (Some(min), Some(max)) => overlaps(min, max, start, end),
                _ => true,
            }
        })
        .collect())
}

/// Keeps the rows of `batch` whose time lies in `[start, end)`.
fn restrict(
    batch: &RecordBatch,
    timestamp_column: &str,
    start: i64,
    end: i64,
) -> Result<RecordBatch> {
    let Some(column) = batch.column_by_name(timestamp_column) else {
        return Ok(batch.clone());
    };
    match range_mask(column, start, end) {
        None => Ok(batch.clone()),
        Some(mask) => Ok(filter_record_batch(batch, &mask)?),
    }
}
