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

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

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
    use arrow::array::{Int64Array, RecordBatch};
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

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
}
