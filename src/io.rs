//! Opening Parquet files in the pond's object store for the async reader.

use std::sync::Arc;

use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::DefaultParquetFileReaderFactory;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use object_store::ObjectStore;
use parquet::arrow::async_reader::AsyncFileReader;

use crate::error::Result;

/// A reader of the Parquet file at `path` (relative to `store`) of `size`
/// bytes, through DataFusion's object store reader.
pub(crate) fn parquet_reader(
    store: Arc<dyn ObjectStore>,
    path: &str,
    size: u64,
) -> Result<Box<dyn AsyncFileReader>> {
    let file = PartitionedFile::new(path, size);
    Ok(DefaultParquetFileReaderFactory::new(store).create_reader(
        0,
        file,
        None,
        &ExecutionPlanMetricsSet::new(),
    )?)
}
