//! Writing one version's data file: sorted by time, with statistics and the
//! page index, hashed as it is written.
//!
//! Rows stream through in bounded memory. Sensor data usually arrives in time
//! order, so the first pass writes the file as it comes while checking the
//! order; only if it finds rows out of order does a second pass sort the file
//! with DataFusion's external sort (which spills to disk past a memory limit)
//! into a new file and delete the first.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::{SortOptions, cast, concat_batches};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use bytes::Bytes;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions::datetime::expr_fn::date_bin;
use datafusion::logical_expr::{col as logical_col, lit};
use datafusion::physical_expr::expressions::col;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::future::BoxFuture;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::arrow::{ArrowSchemaConverter, AsyncArrowWriter, RowNumber};
use parquet::basic::Encoding;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use super::distinct::{DistinctCounter, RecordedColumn};
use crate::error::{Error, Result};
use crate::lww::{DuplicateKeys, LastWriterWinsExec};
use crate::pond::Compression;
use crate::runs::runs_of;
use crate::time::{TimeStats, floor_micros, time_stats, timestamp_unit};

/// Tuning of data files.
#[derive(Debug, Clone)]
pub(crate) struct WriteOptions {
    /// Rows per row group: the unit DataFusion prunes with statistics.
    pub(crate) row_group_rows: usize,
    /// Memory the external sort of an unsorted input may use before spilling.
    pub(crate) sort_memory: usize,
    /// The codec of every column.
    pub(crate) compression: Compression,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 128 * 1024,
            sort_memory: 512 * 1024 * 1024,
            compression: Compression::default(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub(crate) struct WrittenFile {
    pub(crate) path: Path,
    pub(crate) size: i64,
    pub(crate) row_count: i64,
    pub(crate) min_event_time: i64,
    pub(crate) max_event_time: i64,
    pub(crate) content_hash: String,
    /// Distinct counts of the file's low-cardinality columns (see
    /// [`super::distinct`]).
    pub(crate) distinct: Vec<(String, u64)>,
    /// The values of the columns that record them (see
    /// [`super::distinct`]).
    pub(crate) values: Vec<RecordedColumn>,
}

impl WrittenFile {
    /// What an oplog row records of the file's columns: the distinct counts
    /// as `"distinct": {"column": count}`, the values recorded as
    /// `"values": {"column": [value, ...]}`, and their times as
    /// `"value_times": {"column": {"first": [µs, ...], "last": [µs, ...]}}`
    /// in the values' order: each value's first time after the file's
    /// `min_event_time`, and its last time before the file's
    /// `max_event_time` (mostly 0 or small); each only if there are any.
    pub(crate) fn column_attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut attributes = serde_json::Map::new();
        if !self.distinct.is_empty() {
            let counts = (self.distinct.iter())
                .map(|(name, n)| (name.clone(), serde_json::Value::from(*n)))
                .collect();
            attributes.insert("distinct".into(), serde_json::Value::Object(counts));
        }
        if !self.values.is_empty() {
            let values = (self.values.iter())
                .map(|c| (c.name.clone(), c.values.to_json()))
                .collect();
            attributes.insert("values".into(), serde_json::Value::Object(values));
        }
        // A column whose offsets go beyond `i64` (times hundreds of
        // millennia apart) records no times.
        let times: serde_json::Map<_, _> = (self.values.iter())
            .filter_map(|c| {
                let first = (c.first.iter())
                    .map(|t| t.checked_sub(self.min_event_time))
                    .collect::<Option<Vec<i64>>>()?;
                let last = (c.last.iter())
                    .map(|t| self.max_event_time.checked_sub(*t))
                    .collect::<Option<Vec<i64>>>()?;
                (!first.is_empty()).then(|| {
                    let times = serde_json::json!({ "first": first, "last": last });
                    (c.name.clone(), times)
                })
            })
            .collect();
        if !times.is_empty() {
            attributes.insert("value_times".into(), serde_json::Value::Object(times));
        }
        attributes
    }
}

/// The most rows a data page holds. Pages are what the page index prunes:
/// DataFusion decodes a whole page to read any row of it. Measured on the
/// devops benchmark's days clustered by host (`ListingTable`, pyarrow-written
/// copies): 20,000-row pages (Parquet's default) to 2,048 took one host over
/// 12 hours from 4.7 to 3.3 ms and over 8 hours from 7.1 to 4.6 ms, and the
/// newest 5 minutes of all hosts from 11.7 to 5.6 ms. The files grow by 6%
/// (89.7 to 95.2 MB for the three days): more page headers, and zstd
/// frames over fewer values. Files clustered by a sort key cut their pages
/// at the key's runs instead, within this bound (see [`PageRuns`]).
const PAGE_ROWS: usize = 2_048;

/// Parquet settings of every data file: the series' codec (zstd unless
/// it declares another), page-level statistics (which
/// also writes the column and offset indexes), bounded row groups, and the
/// sort order declared: `order`'s columns. Pages hold at most
/// [`PAGE_ROWS`] rows; `aligned` (a file clustered by a sort key, written
/// in slices by a [`PageCutter`]) ends a page after each write as well.
///
/// Encodings: the time column is delta-encoded (`DELTA_BINARY_PACKED`:
/// sorted or clustered times are small steps), floating-point columns are
/// plain (measurements rarely repeat: a dictionary of every distinct value
/// is one more page that a read of any page of the column must fetch and
/// decode, 577 KB per 128 Ki rows of the devops benchmark's metrics), and
/// zstd compresses both. Everything else (tags, integers, flags) keeps
/// Parquet's dictionary encoding. Measured on a day of the devops
/// benchmark clustered by host: 38.4 MB → 29.9 MB, one host over 8 hours
/// 19.8 → 10.2 ms, a count over the last hour 3.8 → 2.5 ms.
pub(crate) fn writer_properties(
    schema: &SchemaRef,
    timestamp_column: &str,
    order: &[&str],
    options: &WriteOptions,
    aligned: bool,
) -> Result<WriterProperties> {
    let descr = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(|e| Error::parquet("<schema>", e))?;
    let leaf = |name: &str| {
        descr
            .columns()
            .iter()
            .position(|c| c.path().parts() == [name.to_string()])
    };
    let sorting: Option<Vec<SortingColumn>> = order
        .iter()
        .map(|name| {
            leaf(name).map(|i| SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: false,
            })
        })
        .collect();
    let mut builder = WriterProperties::builder()
        .set_compression(options.compression.parquet())
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_sorting_columns(sorting.filter(|columns| !columns.is_empty()));
    builder = if aligned {
        // A page ends after each write, and within one every PAGE_ROWS.
        builder
            .set_data_page_row_count_limit(1)
            .set_write_batch_size(PAGE_ROWS)
    } else {
        builder.set_data_page_row_count_limit(PAGE_ROWS)
    };
    for field in schema.fields() {
        let path = ColumnPath::from(field.name().as_str());
        if field.name() == timestamp_column {
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        } else if field.data_type().is_floating() {
            builder = builder.set_column_dictionary_enabled(path, false);
        }
    }
    Ok(builder.build())
}

/// Writes the batches of `input` (already in `schema`'s shape) to `path`,
/// sorted by `timestamp_column`, or by `sort_key` (which ends with it) if
/// that is not empty: within time buckets of `sort_bucket` µs if that is
/// not 0 (then the file does not declare an order in its footer). With a
/// `key` (a keyed series' append), rows that repeat a key give way to the
/// last of them in `input`'s order, so that the file holds each key once. On error the partial file is removed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_data_file<S>(
    store: &Arc<dyn ObjectStore>,
    path: Path,
    schema: &SchemaRef,
    timestamp_column: &str,
    sort_key: &[String],
    sort_bucket: i64,
    key: &[String],
    input: S,
    options: &WriteOptions,
    series: &str,
) -> Result<WrittenFile>
where
    S: Stream<Item = Result<RecordBatch>> + Send,
{
    let by_time = [timestamp_column];
    let clustered: Vec<&str> = sort_key.iter().map(String::as_str).collect();
    let order: &[&str] = if clustered.is_empty() {
        &by_time
    } else {
        &clustered
    };
    // Rows sorted by the key within time buckets are not in the key's
    // order over the file: its footer names no order then.
    let bucket = if clustered.is_empty() { 0 } else { sort_bucket };
    let file = Target {
        store,
        schema,
        timestamp_column,
        order: if bucket > 0 { &[] } else { order },
        key,
        options,
        series,
    };
    let first = match file.write_pass(&path, input, None).await {
        Ok(pass) => pass,
        Err(e) => {
            remove_quietly(store, &path).await;
            return Err(e);
        }
    };
    // Rows in time order are written as they come; rows clustered by a sort
    // key always need the sort, and repeated keys a pass that drops them.
    if first.sorted && sort_key.is_empty() && !first.repeats_key {
        return Ok(first.file);
    }
    let sorted_path = Path::from(format!("{path}.sorted"));
    let result = async {
        let read = Written {
            store,
            path: &path,
            size: first.file.size as u64,
            schema,
        };
        let sorted = sorted_stream(read, order, bucket, timestamp_column, key, options).await?;
        // Pages are cut at runs only where every column is required (see
        // `PageRuns`): the series' nullable columns that hold no NULL in
        // this file are declared required in it. Readers see the series'
        // schema all the same (a required column reads as a nullable one).
        let required = required_where_no_nulls(schema, &first.nulls);
        let runs = PageRuns::new(&required, timestamp_column, sort_key, bucket)?;
        let written = if runs.is_some() {
            required
        } else {
            Arc::clone(schema)
        };
        let in_written = Arc::clone(&written);
        // Checked by `RecordBatch::try_new`: a NULL in a column declared
        // required fails the write instead of being written as a value.
        let sorted = sorted.map(move |batch| {
            Ok(RecordBatch::try_new(
                Arc::clone(&in_written),
                batch?.columns().to_vec(),
            )?)
        });
        let target = Target {
            schema: &written,
            ..file
        };
        let pass = target.write_pass(&sorted_path, sorted, runs).await?;
        debug_assert!(
            pass.sorted || !sort_key.is_empty(),
            "external sort produced unsorted output"
        );
        debug_assert!(!pass.repeats_key, "a key is left twice");
        store.rename(&sorted_path, &path).await?;
        Ok::<_, Error>(WrittenFile {
            path: path.clone(),
            ..pass.file
        })
    }
    .await;
    if result.is_err() {
        remove_quietly(store, &path).await;
        remove_quietly(store, &sorted_path).await;
    }
    result
}

/// Deletes an object that is garbage after a failure. A failure to delete
/// leaves garbage (never data) that [`crate::Pond::check`] reports, so it does
/// not hide the original error.
pub(crate) async fn remove_quietly(store: &Arc<dyn ObjectStore>, path: &Path) {
    if let Err(e) = store.delete(path).await
        && !matches!(e, object_store::Error::NotFound { .. })
    {
        tracing::warn!(%path, error = %e, "could not remove unreferenced data file");
    }
}

struct Pass {
    file: WrittenFile,
    /// Whether each column held a NULL.
    nulls: Vec<bool>,
    sorted: bool,
    /// The rows, in time order so far, held a key twice.
    repeats_key: bool,
}

/// Where and how one data file is written.
struct Target<'a> {
    store: &'a Arc<dyn ObjectStore>,
    schema: &'a SchemaRef,
    timestamp_column: &'a str,
    /// The columns the file is declared sorted by.
    order: &'a [&'a str],
    /// A keyed series' key, whose repeats a pass looks for.
    key: &'a [String],
    options: &'a WriteOptions,
    series: &'a str,
}

impl Target<'_> {
    /// Writes `input` to `path` as it comes, checking whether it is in time
    /// order.
    async fn write_pass<S>(&self, path: &Path, input: S, runs: Option<PageRuns>) -> Result<Pass>
    where
        S: Stream<Item = Result<RecordBatch>> + Send,
    {
        let Self {
            store,
            schema,
            timestamp_column,
            order,
            key,
            options,
            series,
        } = *self;
        let file_name = path.to_string();
        let props = writer_properties(schema, timestamp_column, order, options, runs.is_some())?;
        let mut pages = runs.map(PageCutter::new);
        let sink = HashingWriter::new(BufWriter::new(Arc::clone(store), path.clone()));
        let mut writer = AsyncArrowWriter::try_new(sink, Arc::clone(schema), Some(props))
            .map_err(|e| Error::parquet(&file_name, e))?;
        let ts_index = schema
            .index_of(timestamp_column)
            .map_err(|_| Error::invalid_data(series, format!("no column {timestamp_column:?}")))?;

        let mut bounds: Option<(i64, i64)> = None;
        let mut distinct = DistinctCounter::new(schema, timestamp_column);
        let mut sorted = true;
        // Only rows in time order are checked: others are sorted (and their
        // repeats dropped) by a second pass anyway.
        let mut repeats = (!key.is_empty())
            .then(|| DuplicateKeys::try_new(schema, timestamp_column, key))
            .transpose()?;
        let mut last: Option<i64> = None;
        let mut rows = 0i64;
        let mut nulls = vec![false; schema.fields().len()];
        let mut input = std::pin::pin!(input);
        while let Some(batch) = input.next().await {
            let batch = batch?;
            let stats = time_stats(batch.column(ts_index).as_ref()).map_err(|e| {
                Error::invalid_data(series, format!("timestamp column {timestamp_column:?} {e}"))
            })?;
            let Some(TimeStats {
                min,
                max,
                sorted: batch_sorted,
                first,
                last: batch_last,
            }) = stats
            else {
                continue;
            };
            sorted &= batch_sorted && last.is_none_or(|l| l <= first);
            if let Some(repeats) = repeats.as_mut().filter(|_| sorted) {
                repeats.update(&batch)?;
            }
            last = Some(batch_last);
            bounds = Some(bounds.map_or((min, max), |(lo, hi)| (lo.min(min), hi.max(max))));
            rows += batch.num_rows() as i64;
            distinct.update(&batch);
            for (null, column) in nulls.iter_mut().zip(batch.columns()) {
                *null |= column.null_count() > 0;
            }
            let slices = match pages.as_mut() {
                Some(pages) => pages.push(batch)?,
                None => vec![batch],
            };
            for slice in slices {
                writer
                    .write(&slice)
                    .await
                    .map_err(|e| Error::parquet(&file_name, e))?;
            }
        }
        if let Some(rest) = pages.and_then(PageCutter::finish) {
            writer
                .write(&rest)
                .await
                .map_err(|e| Error::parquet(&file_name, e))?;
        }
        let Some((min, max)) = bounds else {
            return Err(Error::invalid_data(series, "there are no rows to append"));
        };
        writer
            .finish()
            .await
            .map_err(|e| Error::parquet(&file_name, e))?;
        let sink = writer.into_inner();
        let summary = distinct.finish();
        Ok(Pass {
            file: WrittenFile {
                path: path.clone(),
                size: sink.bytes as i64,
                row_count: rows,
                min_event_time: min,
                max_event_time: max,
                content_hash: sink.digest(),
                distinct: summary.distinct,
                values: summary.values,
            },
            nulls,
            sorted,
            repeats_key: repeats.is_some_and(|r| r.found),
        })
    }
}

/// The fewest rows after which a clustered file's page may end: runs of
/// the sort key shorter than this share pages. See [`PageRuns`]. Measured
/// on the devops benchmark (runs of 360 rows: one host's hour), against
/// pages of [`PAGE_ROWS`] cut anywhere: 1,024 (pages of three hosts) took
/// the one-host queries 15–45% faster and the files 7.7% larger (96.8 to
/// 104.3 MB), with the all-hosts queries within 10%; 256 (a page per host and
/// hour) grew the files by 38% and slowed the last reading per host by
/// 60%, as a scan of every row decodes 5.7× as many pages.
const MIN_PAGE_ROWS: usize = 1_024;

/// The fewest rows after which a clustered file's page ends where a time
/// bucket ends, though it holds fewer than [`MIN_PAGE_ROWS`]: at most one
/// page more per bucket, little for buckets of thousands of rows (the
/// devops benchmark's hours: 36,000 rows); sparse buckets keep sharing
/// pages, as a page of a few rows costs its header and decoding in every
/// column.
const MIN_BUCKET_END_ROWS: usize = 256;

/// Where the pages of a file clustered by a sort key begin: where the sort
/// key (but for the time column) or the time bucket changes, so that the
/// page index finds one host's rows of one hour without decoding its
/// neighbours'. Runs shorter than [`MIN_PAGE_ROWS`] share a page, but not
/// across the end of a time bucket unless the page would hold fewer than
/// [`MIN_BUCKET_END_ROWS`]; a run longer than [`PAGE_ROWS`] takes several.
/// Only for files whose columns are all required (not nullable) and flat,
/// which a series' nullable columns are where the file holds no NULL in
/// them ([`required_where_no_nulls`]): others keep pages of [`PAGE_ROWS`]
/// cut anywhere.
struct PageRuns {
    /// The sort key's columns but the time column.
    columns: Vec<usize>,
    ts: usize,
    unit: TimeUnit,
    /// µs; 0 for none.
    bucket: i64,
}

impl PageRuns {
    fn new(
        schema: &SchemaRef,
        timestamp_column: &str,
        sort_key: &[String],
        bucket: i64,
    ) -> Result<Option<Self>> {
        // parquet 59 writes a nullable column without NULLs in mini-batches
        // of the page's row limit (one row here), so each row would be a
        // page of its own: pages are cut only where every column is
        // required and flat.
        let required = schema
            .fields()
            .iter()
            .all(|f| !f.is_nullable() && !f.data_type().is_nested());
        if sort_key.is_empty() || !required {
            return Ok(None);
        }
        let ts = schema.index_of(timestamp_column)?;
        // A time column that is no timestamp fails the write anyway.
        let Some(unit) = timestamp_unit(schema.field(ts).data_type()) else {
            return Ok(None);
        };
        Ok(Some(Self {
            columns: indices_but_time(schema, sort_key, timestamp_column)?,
            ts,
            unit,
            bucket,
        }))
    }

    /// The runs of `batch`, as row ranges, each with whether it starts a
    /// time bucket other than the run before it's.
    fn runs(
        &self,
        batch: &RecordBatch,
    ) -> std::result::Result<Vec<(Range<usize>, bool)>, ArrowError> {
        let mut columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let mut buckets = None;
        if self.bucket > 0 {
            // As the sort's `date_bin` bins them: µs rounded down.
            let raw = cast(batch.column(self.ts), &DataType::Int64)?;
            let (unit, bucket) = (self.unit, self.bucket);
            let of_rows = raw
                .as_primitive::<Int64Type>()
                .unary_opt::<_, Int64Type>(|t| Some(floor_micros(t, unit)?.div_euclid(bucket)));
            buckets = Some(of_rows.clone());
            columns.push(Arc::new(of_rows));
        }
        let runs = match columns.is_empty() {
            true => std::iter::once(0..batch.num_rows()).collect(),
            false => runs_of(&columns)?,
        };
        let bucket_at = |b: &Int64Array, i: usize| b.is_valid(i).then(|| b.value(i));
        Ok(runs
            .into_iter()
            .map(|run| {
                let starts = buckets.as_ref().is_some_and(|b| {
                    run.start > 0 && bucket_at(b, run.start) != bucket_at(b, run.start - 1)
                });
                (run, starts)
            })
            .collect())
    }
}

/// `schema` with its nullable columns that hold no NULL (`nulls[i]` false)
/// declared required: a series ingested from CSV has only nullable columns,
/// and most of them never see a NULL. (A nested column stays unfit for
/// [`PageRuns`] either way, which then leaves the file the series' schema.)
fn required_where_no_nulls(schema: &SchemaRef, nulls: &[bool]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(nulls)
        .map(|(field, &null)| {
            field
                .as_ref()
                .clone()
                .with_nullable(field.is_nullable() && null)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Cuts a clustered file's sorted batches at [`PageRuns`] for the writer,
/// which (with a page limit of one row) ends a page after each write.
struct PageCutter {
    runs: PageRuns,
    /// Rows after the last cut: the last run may go on in the next batch.
    carry: Option<RecordBatch>,
}

impl PageCutter {
    fn new(runs: PageRuns) -> Self {
        Self { runs, carry: None }
    }

    /// The slices of `batch` (after the rows carried) that end at a run's
    /// end; the rest is carried to the next batch.
    fn push(&mut self, batch: RecordBatch) -> std::result::Result<Vec<RecordBatch>, ArrowError> {
        let batch = match self.carry.take() {
            Some(carry) => concat_batches(&batch.schema(), [&carry, &batch])?,
            None => batch,
        };
        let runs = self.runs.runs(&batch)?;
        let mut slices = Vec::new();
        let mut start = 0;
        for (i, (run, new_bucket)) in runs.iter().enumerate() {
            // A run that would overfill the page, or that fills one itself,
            // starts a page; and so does a time bucket, after a page of
            // `MIN_BUCKET_END_ROWS` or more: a range of whole buckets is then
            // a range of whole pages, which a count of it reads no page of
            // (see `crate::reader::rows_within`).
            if run.start > start
                && ((*new_bucket && run.start - start >= MIN_BUCKET_END_ROWS)
                    || run.end - start > PAGE_ROWS
                    || run.len() >= MIN_PAGE_ROWS)
            {
                slices.push(batch.slice(start, run.start - start));
                start = run.start;
            }
            if i + 1 == runs.len() {
                // The last run may go on in the next batch: it is carried,
                // but for whole pages of it (a series of one host, sorted
                // by host over whole files, is one run).
                while batch.num_rows() - start > PAGE_ROWS {
                    slices.push(batch.slice(start, PAGE_ROWS));
                    start += PAGE_ROWS;
                }
            } else if run.end - start >= MIN_PAGE_ROWS {
                slices.push(batch.slice(start, run.end - start));
                start = run.end;
            }
        }
        if start < batch.num_rows() {
            self.carry = Some(batch.slice(start, batch.num_rows() - start));
        }
        Ok(slices)
    }

    /// The rows carried at the end of the input.
    fn finish(self) -> Option<RecordBatch> {
        self.carry
    }
}

/// Where `schema` holds the columns `names` but the time column.
fn indices_but_time(
    schema: &Schema,
    names: &[String],
    timestamp_column: &str,
) -> std::result::Result<Vec<usize>, ArrowError> {
    names
        .iter()
        .filter(|name| name.as_str() != timestamp_column)
        .map(|name| schema.index_of(name))
        .collect()
}

/// A data file a first pass wrote.
struct Written<'a> {
    store: &'a Arc<dyn ObjectStore>,
    path: &'a Path,
    size: u64,
    schema: &'a SchemaRef,
}

/// The rows of the file `read`, sorted by the columns of `order` in bounded
/// memory: DataFusion's `SortExec` spills sorted runs to disk once the
/// memory pool is full and merges them. With a `key` (which holds the time
/// column, and then `order` is the time column), the rows are sorted by
/// time and key, and of the rows of one key only the last in the file is
/// kept. With a `bucket` (µs, not 0), the rows are sorted first by the
/// bucket of their time (`date_bin`), then by `order`.
async fn sorted_stream(
    read: Written<'_>,
    order: &[&str],
    bucket: i64,
    timestamp_column: &str,
    key: &[String],
    options: &WriteOptions,
) -> Result<impl Stream<Item = Result<RecordBatch>> + Send + use<>> {
    let Written {
        store,
        path,
        size,
        schema,
    } = read;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(options.sort_memory)))
        .build_arc()?;
    // Merging spilled runs reserves memory up front; keep that within the pool.
    let config = SessionConfig::new().with_sort_spill_reservation_bytes(options.sort_memory / 4);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let store_url = ObjectStoreUrl::parse("pond-staging://data/")?;
    ctx.register_object_store(store_url.as_ref(), Arc::clone(store));

    // The file's row numbers tell which of a key's rows came last.
    let row: FieldRef =
        Arc::new(Field::new(ROW_COLUMN, DataType::Int64, false).with_extension_type(RowNumber));
    let mut table = TableSchema::builder(Arc::clone(schema));
    if !key.is_empty() {
        table = table.with_virtual_columns(vec![row]);
    }
    let source = Arc::new(ParquetSource::new(table.build()));
    let columns = schema.fields().len() + usize::from(!key.is_empty());
    let scan = FileScanConfigBuilder::new(store_url, source)
        .with_file(PartitionedFile::new(path.as_ref(), size))
        .with_projection_indices(Some((0..columns).collect()))?
        .build();
    let scan = DataSourceExec::from_data_source(scan);
    let scanned = scan.schema();
    let ascending = SortOptions::new(false, false);
    let mut sort: Vec<PhysicalSortExpr> = Vec::new();
    if key.is_empty() {
        if bucket > 0 {
            let stride = lit(ScalarValue::new_interval_mdn(
                0,
                0,
                bucket.saturating_mul(1_000),
            ));
            let origin = lit(ScalarValue::TimestampNanosecond(Some(0), None));
            let binned = date_bin(stride, logical_col(timestamp_column), origin);
            let df_schema = DFSchema::try_from(scanned.as_ref().clone())?;
            let expr = ctx.state().create_physical_expr(binned, &df_schema)?;
            sort.push(PhysicalSortExpr::new(expr, ascending));
        }
        for name in order {
            sort.push(PhysicalSortExpr::new(col(name, &scanned)?, ascending));
        }
    } else {
        sort.push(PhysicalSortExpr::new(
            col(timestamp_column, &scanned)?,
            ascending,
        ));
        for name in key.iter().filter(|k| k.as_str() != timestamp_column) {
            sort.push(PhysicalSortExpr::new(col(name, &scanned)?, ascending));
        }
        sort.push(PhysicalSortExpr::new(
            col(ROW_COLUMN, &scanned)?,
            SortOptions::new(true, false),
        ));
    }
    let sort = LexOrdering::new(sort).expect("at least the time column");
    let mut plan: Arc<dyn ExecutionPlan> = Arc::new(SortExec::new(sort, scan));
    if !key.is_empty() {
        let others = indices_but_time(&scanned, key, timestamp_column)?;
        let time = scanned.index_of(timestamp_column)?;
        let row = scanned.index_of(ROW_COLUMN)?;
        plan = Arc::new(LastWriterWinsExec::try_new(
            plan,
            (time, others, row),
            schema.fields().len(),
            (1, 1),
        )?);
    }
    let stream = plan.execute(0, ctx.task_ctx())?;
    Ok(stream.map_err(Error::from))
}

/// The row number column of a pass that drops repeated keys.
const ROW_COLUMN: &str = "__pond_row";

/// Forwards a Parquet file's bytes to the store while hashing and counting them.
struct HashingWriter<W> {
    inner: W,
    hasher: ContentHasher,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: ContentHasher::new(),
            bytes: 0,
        }
    }

    fn digest(&self) -> String {
        self.hasher.clone().finish()
    }
}

impl<W: AsyncFileWriter> AsyncFileWriter for HashingWriter<W> {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.hasher.update(&bs);
        self.bytes += bs.len() as u64;
        self.inner.write(bs)
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.inner.complete()
    }
}

/// `sha256:<hex>` of a file's bytes, as stored in `content_hash`, fed in
/// parts.
#[derive(Clone)]
pub(crate) struct ContentHasher(Sha256);

impl ContentHasher {
    pub(crate) fn new() -> Self {
        Self(Sha256::new())
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub(crate) fn finish(self) -> String {
        format!("sha256:{:x}", self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::ColumnValues;
    use arrow::array::{StringArray, TimestampMicrosecondArray};

    #[test]
    fn value_times_are_offsets_within_the_file_or_left_out() {
        let file = |min, max, first: Vec<i64>, last: Vec<i64>| WrittenFile {
            path: Path::from("f"),
            size: 0,
            row_count: 2,
            min_event_time: min,
            max_event_time: max,
            content_hash: String::new(),
            distinct: Vec::new(),
            values: vec![RecordedColumn {
                name: "host".into(),
                values: ColumnValues::Strings(vec!["a".into(), "b".into()]),
                first,
                last,
            }],
        };
        let attributes = file(10, 50, vec![10, 12], vec![40, 50]).column_attributes();
        assert_eq!(
            attributes["value_times"],
            serde_json::json!({ "host": { "first": [0, 2], "last": [10, 0] } })
        );
        // Times hundreds of millennia apart: offsets beyond `i64`.
        let far = file(
            -6e18 as i64,
            6e18 as i64,
            vec![-6e18 as i64, 6e18 as i64],
            vec![-6e18 as i64, 6e18 as i64],
        );
        let attributes = far.column_attributes();
        assert!(attributes.contains_key("values"));
        assert!(!attributes.contains_key("value_times"), "{attributes:?}");
    }

    /// A cutter of `(ts, host)` batches clustered by host (within time
    /// buckets of `bucket` µs, if not 0), and their schema.
    fn host_cutter(bucket: i64) -> (SchemaRef, PageCutter) {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("host", DataType::Utf8, false),
        ]));
        let runs = PageRuns::new(&schema, "ts", &["host".into(), "ts".into()], bucket)
            .unwrap()
            .unwrap();
        (schema, PageCutter::new(runs))
    }

    fn batch(schema: &SchemaRef, from: i64, hosts: &[&str]) -> RecordBatch {
        let ts =
            TimestampMicrosecondArray::from_iter_values((0..hosts.len() as i64).map(|i| from + i));
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![Arc::new(ts), Arc::new(StringArray::from(hosts.to_vec()))],
        )
        .unwrap()
    }

    /// One run over the whole input (a series of one host sorted by host)
    /// is cut into whole pages as it comes: what is carried stays under a
    /// page, and every row comes out once, in order.
    #[test]
    fn a_run_longer_than_the_input_batches_is_carried_a_page_at_most() {
        let (schema, mut cutter) = host_cutter(0);
        let mut out = Vec::new();
        for b in 0..5 {
            let slices = cutter
                .push(batch(&schema, b * 8_192, &["a"; 8_192]))
                .unwrap();
            assert!(slices.iter().all(|s| s.num_rows() == PAGE_ROWS));
            assert!(
                cutter
                    .carry
                    .as_ref()
                    .is_some_and(|c| c.num_rows() <= PAGE_ROWS)
            );
            out.extend(slices);
        }
        out.extend(cutter.finish());
        let all = concat_batches(&schema, &out).unwrap();
        let ts = all
            .column(0)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(ts.len(), 5 * 8_192);
        assert!(ts.values().iter().enumerate().all(|(i, &t)| t == i as i64));
    }

    /// A time bucket starts a page after a page of a few hundred rows, so
    /// that whole buckets are whole pages; the short tail of a sparse one
    /// shares its page with the next bucket.
    #[test]
    fn a_bucket_starts_a_page_unless_the_last_one_ends_in_a_few_rows() {
        let (schema, mut cutter) = host_cutter(10_000);
        // Buckets of 10,000 µs: hosts a, b, c with 600, 600 and 300 rows in
        // the first, a and b with 100 each in the second, a with 100 in the
        // third.
        let (mut ts, mut hosts) = (Vec::new(), Vec::new());
        for (bucket, runs) in [
            (0, vec![("a", 600), ("b", 600), ("c", 300)]),
            (1, vec![("a", 100), ("b", 100)]),
            (2, vec![("a", 100)]),
        ] {
            for (host, n) in runs {
                ts.extend((0..n).map(|i| bucket * 10_000 + i));
                hosts.extend(std::iter::repeat_n(host, n as usize));
            }
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(TimestampMicrosecondArray::from(ts)),
                Arc::new(StringArray::from(hosts)),
            ],
        )
        .unwrap();
        let slices = cutter.push(batch).unwrap();
        let sizes: Vec<usize> = slices.iter().map(RecordBatch::num_rows).collect();
        // a and b of the first bucket fill a page; c ends it, 300 rows; the
        // second bucket's 200 rows go on with the third's.
        assert_eq!(sizes, [1_200, 300]);
        assert_eq!(cutter.finish().map(|c| c.num_rows()), Some(300));
    }

    /// Runs end pages where they end: short runs share a page until it
    /// holds the minimum, a run of at least the minimum gets its own.
    #[test]
    fn short_runs_share_a_page_and_long_ones_start_one() {
        let (schema, mut cutter) = host_cutter(0);
        // Runs of 600, 600, 100, 1,500 and 300 rows.
        let mut hosts = Vec::new();
        for (host, n) in [("a", 600), ("b", 600), ("c", 100), ("d", 1_500), ("e", 300)] {
            hosts.extend(std::iter::repeat_n(host, n));
        }
        let slices = cutter.push(batch(&schema, 0, &hosts)).unwrap();
        let sizes: Vec<usize> = slices.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [1_200, 100, 1_500]);
        assert_eq!(cutter.finish().map(|c| c.num_rows()), Some(300));
    }
}
