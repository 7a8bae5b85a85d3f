//! How pond's scans open Parquet files: through the session's file metadata
//! cache, with the page index kept in it.
//!
//! DataFusion 55's Parquet opener asks for a file's metadata without its
//! page index (`PageIndexPolicy::Skip`) and loads the index afterwards, only
//! if a predicate can use it, straight from the store. Through
//! `CachedParquetFileReaderFactory` the cache then holds the footer alone,
//! and every query reads the page index of every file it prunes by pages
//! again. `ListingTable` escapes this because collecting statistics when it
//! is registered fills the cache with footer and index. Measured on the
//! devops benchmark's day files (2,048-row pages): a count over the last hour
//! read 270 KB in 19 requests per query through pond, 2.4 KB through
//! `ListingTable`, with the same pages pruned.
//!
//! [`CachedReaderFactory`] asks the cache for the page index with the
//! footer (`PageIndexPolicy::Optional`, what DataFusion itself chooses when
//! a cache is present), so both are read once and kept; the opener then
//! finds the index loaded.

use std::ops::Range;
use std::sync::Arc;

use arrow::datatypes::TimeUnit;
use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::error::Result as DfResult;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::basic::{
    ConvertedType, LogicalType, TimeUnit as ParquetTimeUnit, Type as PhysicalType,
};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics as ParquetStatistics;

/// Opens files through the session's metadata cache, footer and page index
/// together (see the module's documentation).
#[derive(Debug)]
pub(crate) struct CachedReaderFactory {
    inner: CachedParquetFileReaderFactory,
}

impl CachedReaderFactory {
    /// A reader of `store`'s files through `runtime`'s metadata cache:
    /// without it every query re-reads the metadata of every file it opens.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, runtime: &RuntimeEnv) -> Self {
        let cache = runtime.cache_manager.get_file_metadata_cache();
        Self {
            inner: CachedParquetFileReaderFactory::new(store, cache),
        }
    }

    /// A reader of `partitioned_file` whose metadata, as the cache holds it,
    /// is passed through `adjust` (when given) before the scan sees it.
    pub(crate) fn create_adjusted_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
        adjust: Option<AdjustMetadata>,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        let inner = self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(Box::new(WithPageIndex { inner, adjust }))
    }

    /// The metadata of `file`, with its page index, through the cache that
    /// scans read it from (so a scan of the file finds it there).
    pub(crate) async fn metadata(&self, file: PartitionedFile) -> DfResult<Arc<ParquetMetaData>> {
        let mut reader = self.create_reader(0, file, None, &ExecutionPlanMetricsSet::new())?;
        Ok(reader.get_metadata(None).await?)
    }
}

/// The Parquet footers a session's metadata cache holds: what scans have
/// read so far, which planning may use without reading a file.
#[derive(Clone)]
pub(crate) struct Footers(Arc<FileMetadataCache>);

impl Footers {
    /// The footers `runtime`'s metadata cache holds.
    pub(crate) fn of(runtime: &RuntimeEnv) -> Self {
        Self(runtime.cache_manager.get_file_metadata_cache())
    }

    /// The footer of `file`, if the cache holds it for the file as it is
    /// (same size and modification time).
    pub(crate) fn get(&self, file: &PartitionedFile) -> Option<Arc<ParquetMetaData>> {
        let entry = self.0.get(&file.object_meta.location)?;
        if !entry.is_valid_for(&file.object_meta) {
            return None;
        }
        // DataFusion 55 has two types of this name; the cache holds the one
        // of its `metadata` module.
        let cached = (entry.file_metadata.as_any()).downcast_ref::<CachedParquetMetaData>()?;
        Some(Arc::clone(cached.parquet_metadata()))
    }
}

impl std::fmt::Debug for Footers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Footers").field(&self.0.len()).finish()
    }
}

/// How many rows of the Parquet file `metadata` describes have a time (its
/// top-level column `column`, of `unit` in the series: s, ms or µs) from
/// `first` to `last` µs, both included; or `None` if the file's statistics cannot
/// tell exactly: where a page (or a row group without a page index) holds
/// times on both sides of a bound, or within them and nulls not counted.
///
/// A count of a time range comes from this without reading a page: pond
/// ends the pages of compacted files where a time bucket ends, so whole
/// buckets (hours, by default) fall on page bounds.
pub(crate) fn rows_within(
    metadata: &ParquetMetaData,
    (column, unit): (&str, TimeUnit),
    (first, last): (i64, i64),
) -> Option<u64> {
    let (leaf, written) = time_leaf(metadata, (column, unit))?;
    let Written::PerUnit(per_unit) = written else {
        return None;
    };
    let descr = metadata.file_metadata().schema_descr().column(leaf);
    let required = descr.max_def_level() == 0;
    let micros = |value: Option<&i64>| value?.checked_mul(per_unit);
    // Of `rows` rows with times from `min` to `max` µs, `nulls` of them
    // null (each `None` where unknown): how many are within.
    let within = |(min, max): (Option<i64>, Option<i64>), rows: i64, nulls: Option<i64>| {
        let (min, max) = (min?, max?);
        if max < first || last < min {
            Some(0)
        } else if first <= min && max <= last {
            u64::try_from(rows - if required { 0 } else { nulls? }).ok()
        } else {
            None
        }
    };
    let mut rows = 0_u64;
    for (i, group) in metadata.row_groups().iter().enumerate() {
        if let Some(ParquetStatistics::Int64(stats)) = group.column(leaf).statistics()
            && stats.min_is_exact()
            && stats.max_is_exact()
            && let Some(n) = within(
                (micros(stats.min_opt()), micros(stats.max_opt())),
                group.num_rows(),
                stats.null_count_opt().and_then(|n| i64::try_from(n).ok()),
            )
        {
            rows += n;
            continue;
        }
        let ColumnIndexMetaData::INT64(index) = metadata.column_index()?.get(i)?.get(leaf)? else {
            return None;
        };
        let pages = metadata.offset_index()?.get(i)?.get(leaf)?.page_locations();
        for (page, location) in pages.iter().enumerate() {
            if index.is_null_page(page) {
                continue;
            }
            let end = pages
                .get(page + 1)
                .map_or(group.num_rows(), |next| next.first_row_index);
            rows += within(
                (micros(index.min_value(page)), micros(index.max_value(page))),
                end - location.first_row_index,
                index.null_count(page),
            )?;
        }
    }
    Some(rows)
}

/// How a time column's values are written in a Parquet file.
#[derive(Clone, Copy)]
enum Written {
    /// As this many µs each.
    PerUnit(i64),
    /// As nanoseconds.
    Nanos,
}

/// The leaf of the Parquet file `metadata` describes that holds the
/// top-level time column `column` (of `unit` in the series), and how its
/// values are written; `None` if it is not an `INT64` time.
fn time_leaf(
    metadata: &ParquetMetaData,
    (column, unit): (&str, TimeUnit),
) -> Option<(usize, Written)> {
    let schema = metadata.file_metadata().schema_descr();
    let leaf = (schema.columns().iter()).position(|c| c.path().parts() == [column])?;
    let descr = schema.column(leaf);
    // The unit as written: Parquet's timestamps are in ms, µs or ns, and
    // arrow writes seconds as plain integers.
    let written = match (descr.physical_type(), descr.logical_type_ref(), unit) {
        (PhysicalType::INT64, Some(LogicalType::Timestamp(t)), _) => match t.unit {
            ParquetTimeUnit::MILLIS => Written::PerUnit(1_000),
            ParquetTimeUnit::MICROS => Written::PerUnit(1),
            ParquetTimeUnit::NANOS => Written::Nanos,
        },
        (PhysicalType::INT64, None, TimeUnit::Second)
            if descr.converted_type() == ConvertedType::NONE =>
        {
            Written::PerUnit(1_000_000)
        }
        _ => return None,
    };
    Some((leaf, written))
}

/// Where a row group of a Parquet file lies and what times it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowGroupSpan {
    /// The offset of its first page, which decides the byte range of a file
    /// that reads it (DataFusion's `prune_by_range`).
    pub(crate) start: i64,
    /// Its compressed bytes.
    pub(crate) bytes: i64,
    /// Its first and last time, µs (rounded down), where its statistics
    /// tell them.
    pub(crate) times: Option<(i64, i64)>,
}

/// The row groups of the Parquet file `metadata` describes, in file order,
/// with the times of its top-level time column `column` (of `unit` in the
/// series); `None` if that column is not an `INT64` time.
pub(crate) fn row_group_spans(
    metadata: &ParquetMetaData,
    (column, unit): (&str, TimeUnit),
) -> Option<Vec<RowGroupSpan>> {
    let (leaf, written) = time_leaf(metadata, (column, unit))?;
    let micros = |value: Option<&i64>| match written {
        Written::PerUnit(n) => value?.checked_mul(n),
        Written::Nanos => Some(value?.div_euclid(1_000)),
    };
    let spans = metadata.row_groups().iter().map(|group| {
        let first = group.column(0);
        let times = match group.column(leaf).statistics() {
            Some(ParquetStatistics::Int64(stats)) => {
                micros(stats.min_opt()).zip(micros(stats.max_opt()))
            }
            _ => None,
        };
        RowGroupSpan {
            start: first
                .dictionary_page_offset()
                .unwrap_or_else(|| first.data_page_offset()),
            bytes: group.compressed_size(),
            times,
        }
    });
    Some(spans.collect())
}

/// A change to a file's metadata as a scan reads it.
pub(crate) type AdjustMetadata = Box<dyn Fn(&ParquetMetaData) -> Arc<ParquetMetaData> + Send>;

impl ParquetFileReaderFactory for CachedReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        self.create_adjusted_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
            None,
        )
    }
}

/// A cached reader whose metadata always comes with the page index.
struct WithPageIndex {
    inner: Box<dyn AsyncFileReader + Send>,
    adjust: Option<AdjustMetadata>,
}

impl AsyncFileReader for WithPageIndex {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        let options = options
            .cloned()
            .unwrap_or_default()
            .with_page_index_policy(PageIndexPolicy::Optional);
        async move {
            let metadata = self.inner.get_metadata(Some(&options)).await?;
            Ok(match &self.adjust {
                Some(adjust) => adjust(&metadata),
                None => metadata,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray, TimestampSecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::ParquetMetaDataReader;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Asked for the metadata without the page index, as DataFusion's
    /// opener asks, the reader returns it with the index and leaves both in
    /// the cache; DataFusion's own cached reader would not.
    #[tokio::test]
    async fn the_page_index_is_read_once_and_cached_with_the_footer() {
        let values = Arc::new(Int64Array::from_iter_values(0..10_000));
        let batch = RecordBatch::try_from_iter([("v", values as _)]).unwrap();
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(1_000)
            .build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let size = bytes.len() as u64;
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        store
            .put(&Path::from("f.parquet"), PutPayload::from(bytes))
            .await
            .unwrap();
        let open = |factory: &dyn ParquetFileReaderFactory| {
            let file = PartitionedFile::new("f.parquet", size);
            factory
                .create_reader(0, file, None, &ExecutionPlanMetricsSet::new())
                .unwrap()
        };
        let skip = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);

        let runtime = RuntimeEnv::default();
        let cache = runtime.cache_manager.get_file_metadata_cache();
        let ours = CachedReaderFactory::new(Arc::clone(&store), &runtime);
        for _ in 0..2 {
            let metadata = open(&ours).get_metadata(Some(&skip)).await.unwrap();
            assert!(metadata.column_index().is_some() && metadata.offset_index().is_some());
        }
        assert_eq!(cache.len(), 1);

        let theirs = CachedParquetFileReaderFactory::new(
            store,
            RuntimeEnv::default()
                .cache_manager
                .get_file_metadata_cache(),
        );
        let metadata = open(&theirs).get_metadata(Some(&skip)).await.unwrap();
        assert!(metadata.column_index().is_none());
    }

    /// The metadata of a file of `times` (`None`: null) in a column `ts`
    /// of `unit`, in row groups of `group` rows and pages of `page` rows.
    fn file_of(
        unit: TimeUnit,
        times: &[Option<i64>],
        group: usize,
        page: usize,
    ) -> ParquetMetaData {
        let nullable = times.iter().any(Option::is_none);
        let values: ArrayRef = match unit {
            TimeUnit::Second => Arc::new(TimestampSecondArray::from(times.to_vec())),
            TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(times.to_vec())),
            TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(times.to_vec())),
            TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(times.to_vec())),
        };
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            values.data_type().clone(),
            nullable,
        )]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![values]).unwrap();
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(page)
            .set_write_batch_size(page)
            .set_max_row_group_row_count(Some(group))
            .build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&Bytes::from(bytes))
            .unwrap()
    }

    /// Of random files (times in order with repeats, some null) and random
    /// ranges, a count `rows_within` gives is the rows' own; and a range
    /// from the first time of a page to the last of a later one, where no
    /// page holds times on both sides, has one.
    #[test]
    fn rows_within_counts_exactly_or_not_at_all() {
        let mut rng = StdRng::seed_from_u64(7);
        let (mut counted, mut aligned) = (0, 0);
        for case in 0..200 {
            let unit = [
                TimeUnit::Second,
                TimeUnit::Millisecond,
                TimeUnit::Microsecond,
            ][case % 3];
            let per_unit: i64 = match unit {
                TimeUnit::Second => 1_000_000,
                TimeUnit::Millisecond => 1_000,
                _ => 1,
            };
            let n = rng.random_range(1..400);
            let mut t: i64 = rng.random_range(-1_000..1_000);
            let with_nulls = case % 4 == 3;
            let times: Vec<Option<i64>> = (0..n)
                .map(|_| {
                    t += rng.random_range(0..3);
                    (!with_nulls || rng.random_bool(0.9)).then_some(t)
                })
                .collect();
            let page = rng.random_range(1..40);
            let group = page * rng.random_range(1..5);
            let metadata = file_of(unit, &times, group, page);
            let truth = |first: i64, last: i64| {
                (times.iter().flatten())
                    .filter(|&&v| (first..=last).contains(&(v * per_unit)))
                    .count() as u64
            };
            for _ in 0..50 {
                let a = rng.random_range(-1_100..t + 100) * per_unit + rng.random_range(-1..=1);
                let b = rng.random_range(-1_100..t + 100) * per_unit + rng.random_range(-1..=1);
                let (first, last) = (a.min(b), a.max(b));
                if let Some(rows) = rows_within(&metadata, ("ts", unit), (first, last)) {
                    assert_eq!(rows, truth(first, last), "case {case}: {first}..={last}");
                    counted += 1;
                }
            }
            // Pages of whole times: from where a time starts a page to
            // where a later one ends one.
            let starts: Vec<usize> = (0..n)
                .step_by(page)
                .filter(|&i| i == 0 || times[i].zip(times[i - 1]).is_some_and(|(x, y)| x > y))
                .collect();
            for pair in starts.windows(2) {
                let (Some(first), Some(last)) = (times[pair[0]], times[pair[1] - 1]) else {
                    continue;
                };
                let range = (first * per_unit, last * per_unit);
                let rows = rows_within(&metadata, ("ts", unit), range);
                assert_eq!(
                    rows,
                    Some(truth(range.0, range.1)),
                    "case {case}: {range:?}"
                );
                aligned += 1;
            }
        }
        assert!(
            counted > 1_000 && aligned > 1_000,
            "{counted} counted, {aligned} aligned"
        );
        // Nanoseconds are rounded to µs in the oplog: never counted here.
        let nanos = file_of(TimeUnit::Nanosecond, &[Some(1_000), Some(2_000)], 1, 1);
        assert_eq!(
            rows_within(&nanos, ("ts", TimeUnit::Nanosecond), (0, 10)),
            None
        );
        assert_eq!(
            rows_within(&nanos, ("other", TimeUnit::Nanosecond), (0, 10)),
            None
        );
    }
}
