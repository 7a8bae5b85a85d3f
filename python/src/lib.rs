//! pond for Python: a pond's catalog, table functions and optimizer rule
//! handed to datafusion-python through datafusion-ffi, and appends of
//! anything that speaks the Arrow C stream interface.
//!
//! The Python package `pond` (python/pond/__init__.py) wraps this module,
//! `pond._pond`; its `register` checks the installed `datafusion` before a
//! capsule of this module reaches it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::Result as ArrowResult;
use arrow::ffi_stream::ArrowArrayStreamReader;
use arrow::record_batch::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use datafusion::catalog::{CatalogProvider, TableFunctionImpl};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion_ffi::catalog_provider::FFI_CatalogProvider;
use datafusion_ffi::physical_optimizer::FFI_PhysicalOptimizerRule;
use datafusion_ffi::udtf::FFI_TableFunction;
use datafusion_python_util::ffi_logical_codec_from_pycapsule;
use futures::StreamExt;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyCapsule, PyDict, PyList};

use pond::{AppendOptions, PondOptions, SeriesInfo};

mod boundary;
mod runtime;

use runtime::{runtime, wait};

pyo3::create_exception!(
    _pond,
    PondError,
    PyException,
    "An error of pond: the text is the one the command line prints after `error: `."
);

/// A pond error as a Python exception, with the command line's text.
fn error(e: impl std::error::Error + 'static) -> PyErr {
    PondError::new_err(pond::error_line(&e))
}

/// The major version of DataFusion this module was built with: a
/// datafusion-python of another major version cannot exchange plans with it.
#[pyfunction]
fn datafusion_major() -> u64 {
    datafusion_ffi::version()
}

/// A pond, opened or created at a local path or URL.
#[pyclass(name = "Pond", module = "pond", frozen)]
struct PyPond {
    pond: Arc<pond::Pond>,
}

fn options(storage_options: Option<HashMap<String, String>>) -> PondOptions {
    let mut options = PondOptions::default();
    for (key, value) in storage_options.unwrap_or_default() {
        options = options.with_storage_option(key, value);
    }
    options
}

#[pymethods]
impl PyPond {
    /// Creates a new, empty pond at `uri` (a local path, `file://`, `s3://`
    /// or `memory://` URL); fails if one is there.
    #[staticmethod]
    #[pyo3(signature = (uri, storage_options = None))]
    fn create(
        py: Python<'_>,
        uri: &str,
        storage_options: Option<HashMap<String, String>>,
    ) -> PyResult<Self> {
        let options = options(storage_options);
        let opened = wait(py, pond::Pond::create_with_options(uri, options))?;
        Ok(Self {
            pond: Arc::new(opened.map_err(error)?),
        })
    }

    /// Opens the pond at `uri`.
    #[staticmethod]
    #[pyo3(signature = (uri, storage_options = None))]
    fn open(
        py: Python<'_>,
        uri: &str,
        storage_options: Option<HashMap<String, String>>,
    ) -> PyResult<Self> {
        let options = options(storage_options);
        let opened = wait(py, pond::Pond::open_with_options(uri, options))?;
        Ok(Self {
            pond: Arc::new(opened.map_err(error)?),
        })
    }

    /// The pond's location, as a URL.
    #[getter]
    fn uri(&self) -> String {
        self.pond.location().to_string()
    }

    fn __repr__(&self) -> String {
        format!("Pond('{}')", self.pond.location())
    }

    /// Appends `data` to `series` as one new version. `data` is anything
    /// with `__arrow_c_stream__` (a pyarrow Table or RecordBatchReader, a
    /// polars DataFrame) or `__arrow_c_array__` (a record batch). The time
    /// column is the series' own, else `timestamp_column`, else one named
    /// timestamp, ts, time or event_time. `key` declares a keyed series on
    /// its first append. Returns what was appended.
    #[pyo3(signature = (series, data, timestamp_column = None, key = None))]
    fn append<'py>(
        &self,
        py: Python<'py>,
        series: &str,
        data: &Bound<'py, PyAny>,
        timestamp_column: Option<String>,
        key: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (schema, batches) = arrow_input(data)?;
        // The series as it is now: another handle or process may have
        // created it since this one last looked, with its own time column.
        self.refresh(py)?;
        let existing = self.pond.series_info(series).ok();
        let column = match (&existing, timestamp_column) {
            (Some(info), Some(asked)) if info.timestamp_column != asked => {
                return Err(PondError::new_err(format!(
                    "series {series} has timestamp column {:?}, not {asked:?}",
                    info.timestamp_column
                )));
            }
            (Some(info), _) => info.timestamp_column.clone(),
            (None, Some(asked)) => asked,
            (None, None) => pond::default_timestamp_column(&schema).ok_or_else(|| {
                PondError::new_err(format!(
                    "no timestamp column: name it with timestamp_column=, or call it \
                     timestamp, ts, time or event_time (columns: {})",
                    column_names(&schema)
                ))
            })?,
        };
        let options = match key {
            Some(key) => AppendOptions::default().with_key(key),
            None => AppendOptions::default(),
        };
        let pond = Arc::clone(&self.pond);
        let series = series.to_string();
        // The batches are read on this thread (a Python producer may need
        // the interpreter) while the append writes them on pond's runtime,
        // through a small channel: memory holds a few batches at a time.
        let runtime = runtime()?;
        let outcome = py.detach(move || {
            let (tx, rx) = tokio::sync::mpsc::channel::<pond::Result<RecordBatch>>(2);
            let input = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|batch| (batch, rx))
            });
            let writing = runtime.spawn(async move {
                pond.append_stream_with_options(&series, schema, input.boxed(), &column, &options)
                    .await
            });
            for batch in batches {
                let failed = batch.is_err();
                let batch = batch.map_err(pond::Error::from);
                if tx.blocking_send(batch).is_err() || failed {
                    break;
                }
            }
            drop(tx);
            runtime.block_on(writing)
        });
        let outcome = outcome
            .map_err(|e| PondError::new_err(format!("the append task failed: {e}")))?
            .map_err(error)?;
        let out = PyDict::new(py);
        out.set_item("series", outcome.series)?;
        out.set_item("version", outcome.version)?;
        out.set_item("rows", outcome.row_count)?;
        out.set_item("min_event_time", outcome.min_event_time)?;
        out.set_item("max_event_time", outcome.max_event_time)?;
        out.set_item("oplog_version", outcome.txn_seq)?;
        Ok(out)
    }

    /// Every series, as dicts (see [`describe`](Self::describe)), by path.
    fn ls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.refresh(py)?;
        let list = PyList::empty(py);
        for info in self.pond.list_series() {
            list.append(series_dict(py, &info)?)?;
        }
        Ok(list)
    }

    /// One series: its path, id, time column, schema (a pyarrow Schema),
    /// live versions, rows, bytes, event-time bounds (µs UTC), key and sort
    /// key.
    fn describe<'py>(&self, py: Python<'py>, series: &str) -> PyResult<Bound<'py, PyDict>> {
        self.refresh(py)?;
        let info = self.pond.series_info(series).map_err(error)?;
        series_dict(py, &info)
    }

    /// Verifies every data file against the oplog. Returns the files
    /// checked, the garbage and pending files, and the problems found.
    fn check<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pond = Arc::clone(&self.pond);
        let report = wait(py, async move { pond.check().await })?.map_err(error)?;
        let out = PyDict::new(py);
        out.set_item("files_checked", report.files_checked)?;
        out.set_item("garbage", report.garbage.clone())?;
        out.set_item("pending", report.pending.clone())?;
        let problems = PyList::empty(py);
        for p in &report.problems {
            let problem = PyDict::new(py);
            problem.set_item("series", &p.series)?;
            problem.set_item("version", p.version)?;
            problem.set_item("file_path", &p.file_path)?;
            problem.set_item("problem", format!("{:?}", p.problem))?;
            problems.append(problem)?;
        }
        out.set_item("problems", problems)?;
        out.set_item("clean", report.is_clean())?;
        Ok(out)
    }

    /// Rewrites the small versions of `series` (every series if none) into
    /// few large ones, as `pond compact` does; answers stay the same.
    /// `sort_key` (columns) and `compression` (`zstd`, `lz4`, `snappy` or
    /// `none`) first declare the series' clustering and the codec of its
    /// files from now on, as `--sort-key` and `--compression` do. Returns
    /// one dict per series: versions and bytes read and written.
    #[pyo3(signature = (series = None, sort_key = None, compression = None))]
    fn compact<'py>(
        &self,
        py: Python<'py>,
        series: Option<String>,
        sort_key: Option<Vec<String>>,
        compression: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        if series.is_none() && (sort_key.is_some() || compression.is_some()) {
            return Err(PondError::new_err(
                "a sort key or a compression is declared for one series: name it",
            ));
        }
        let codec = compression
            .map(|c| c.parse::<pond::Compression>())
            .transpose()
            .map_err(PondError::new_err)?;
        let pond = Arc::clone(&self.pond);
        let done = wait(py, async move {
            if let Some(path) = &series {
                // The key first: a key refused declares nothing.
                if let Some(key) = &sort_key {
                    let key: Vec<&str> = key.iter().map(String::as_str).collect();
                    pond.set_sort_key(path, &key).await.map_err(error)?;
                }
                if let Some(codec) = codec {
                    pond.set_compression(path, codec).await.map_err(error)?;
                }
            }
            let Some(path) = series else {
                let mut done = Vec::new();
                let mut failed = Vec::new();
                let options = pond::CompactOptions::default();
                let results = pond.compact_every_series(&options, |_, _| {}).await;
                for (path, result) in results.map_err(error)? {
                    match result {
                        pond::SeriesCompaction::Done(outcome) => done.push(outcome),
                        pond::SeriesCompaction::Failed(e) => {
                            failed.push(format!("{path}: {}", pond::error_line(&e)))
                        }
                        _ => {}
                    }
                }
                return if failed.is_empty() {
                    Ok(done)
                } else {
                    Err(PondError::new_err(format!(
                        "{} series could not be compacted (the others were): {}",
                        failed.len(),
                        failed.join("; ")
                    )))
                };
            };
            Ok(vec![pond.compact(&path).await.map_err(error)?])
        })??;
        let list = PyList::empty(py);
        for outcome in done {
            let out = PyDict::new(py);
            out.set_item("series", outcome.series)?;
            out.set_item("versions_read", outcome.versions_read)?;
            out.set_item("versions_written", outcome.versions_written)?;
            out.set_item("bytes_read", outcome.bytes_read)?;
            out.set_item("bytes_written", outcome.bytes_written)?;
            list.append(out)?;
        }
        Ok(list)
    }

    /// Deletes the rows of `series` with `start <= ts < end` (int µs UTC;
    /// None for unbounded) for which the SQL predicate `where` holds (every
    /// such row without one), as `pond delete` does: a version of its own,
    /// so reads as of an earlier version still see the rows. (SQL `DELETE`
    /// does not cross datafusion-ffi.) Returns the delete's version.
    #[pyo3(signature = (series, start = None, end = None, r#where = None))]
    fn delete(
        &self,
        py: Python<'_>,
        series: String,
        start: Option<i64>,
        end: Option<i64>,
        r#where: Option<String>,
    ) -> PyResult<i64> {
        if start.is_none() && end.is_none() && r#where.is_none() {
            return Err(PondError::new_err(
                "delete needs start, end or where (to delete every row, give a range that holds them all)",
            ));
        }
        let pond = Arc::clone(&self.pond);
        let done = wait(py, async move {
            let (start, end) = (
                start.unwrap_or(pond::MIN_TIME),
                end.unwrap_or(pond::MAX_TIME),
            );
            pond.delete(&series, start, end, r#where.as_deref()).await
        })?
        .map_err(error)?;
        Ok(done.version)
    }

    /// Deletes the files of versions superseded more than `retain_seconds`
    /// ago (7 days by default, as `pond vacuum`) and unreferenced files
    /// older than that; reads as of earlier versions fail afterwards.
    #[pyo3(signature = (retain_seconds = 7 * 86_400))]
    fn vacuum<'py>(&self, py: Python<'py>, retain_seconds: u64) -> PyResult<Bound<'py, PyDict>> {
        let pond = Arc::clone(&self.pond);
        let retain = std::time::Duration::from_secs(retain_seconds);
        let done = wait(py, async move { pond.vacuum(retain).await })?.map_err(error)?;
        let out = PyDict::new(py);
        out.set_item("superseded_files", done.superseded_files)?;
        out.set_item("superseded_bytes", done.superseded_bytes)?;
        out.set_item("garbage_files", done.garbage_files)?;
        out.set_item("log_files", done.log_files)?;
        out.set_item("oplog_files", done.oplog_files)?;
        Ok(out)
    }

    /// Reads the commits other writers made since the last look.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        let pond = Arc::clone(&self.pond);
        wait(py, async move { pond.refresh().await })?.map_err(error)
    }

    /// The oplog version this handle reflects.
    #[getter]
    fn oplog_version(&self) -> i64 {
        self.pond.oplog_version()
    }

    /// The pond catalog, for `SessionContext.register_catalog_provider`.
    fn __datafusion_catalog_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let catalog: Arc<dyn CatalogProvider> =
            Arc::new(pond::PondCatalogProvider::new(Arc::clone(&self.pond)));
        let codec = ffi_logical_codec_from_pycapsule(session, None)?;
        let provider = FFI_CatalogProvider::new_with_ffi_codec(
            boundary::catalog(catalog),
            Some(runtime()?.handle().clone()),
            codec,
        );
        PyCapsule::new_with_value(py, provider, c"datafusion_catalog_provider")
    }

    /// One of pond's table functions, by its SQL name.
    fn table_function(&self, name: &str) -> PyResult<PyTableFunction> {
        let pond = Arc::clone(&self.pond);
        let function: Arc<dyn TableFunctionImpl> = match name {
            "series_range" => Arc::new(pond::SeriesRangeFunction::new(pond)),
            "series_versions" => Arc::new(pond::SeriesVersionsFunction::new(pond)),
            "series_list" => Arc::new(pond::SeriesListFunction::new(pond)),
            "series_union" => Arc::new(pond::SeriesUnionFunction::new(pond)),
            other => {
                return Err(PondError::new_err(format!(
                    "pond has no table function {other}: it has series_range, series_versions, \
                     series_list and series_union"
                )));
            }
        };
        Ok(PyTableFunction {
            function: boundary::function(function),
        })
    }

    /// The physical optimizer rule that prunes versions by the time filters
    /// a plan pushes into pond's scans.
    fn pruning_rule(&self) -> PyPruningRule {
        PyPruningRule
    }
}

/// One of pond's table functions, for `datafusion.udtf`.
#[pyclass(name = "TableFunction", module = "pond", frozen)]
struct PyTableFunction {
    function: Arc<dyn TableFunctionImpl>,
}

#[pymethods]
impl PyTableFunction {
    fn __datafusion_table_function__<'py>(
        &self,
        py: Python<'py>,
        session: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let codec = ffi_logical_codec_from_pycapsule(session, None)?;
        let function = FFI_TableFunction::new_with_ffi_codec(
            Arc::clone(&self.function),
            Some(runtime()?.handle().clone()),
            codec,
        );
        PyCapsule::new_with_value(py, function, c"datafusion_table_function")
    }
}

/// pond's physical optimizer rule, for
/// `SessionContext.add_physical_optimizer_rule`.
#[pyclass(name = "PruningRule", module = "pond", frozen)]
struct PyPruningRule;

#[pymethods]
impl PyPruningRule {
    fn __datafusion_physical_optimizer_rule__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let rule: Arc<dyn PhysicalOptimizerRule + Send + Sync> =
            Arc::new(pond::SeriesTimePruning::new());
        let rule = FFI_PhysicalOptimizerRule::new(rule, Some(runtime()?.handle().clone()));
        PyCapsule::new_with_value(py, rule, c"datafusion_physical_optimizer_rule")
    }
}

/// The schema and batches of an object with `__arrow_c_stream__` or
/// `__arrow_c_array__` (a pandas DataFrame goes through pyarrow, with its
/// index if named), in plain Arrow types (see [`plain_type`]).
fn arrow_input(data: &Bound<'_, PyAny>) -> PyResult<(SchemaRef, Batches)> {
    let module = data.get_type().module()?.to_string();
    if module.starts_with("pandas") {
        let py = data.py();
        // pyarrow's default: a named index is a column (the hosts of a
        // frame indexed by host), a plain range index is left out.
        let options = [("preserve_index", py.None())].into_py_dict(py)?;
        let table = py.import("pyarrow")?.getattr("Table")?.call_method(
            "from_pandas",
            (data,),
            Some(&options),
        )?;
        return arrow_input(&table);
    }
    let (schema, reader): (SchemaRef, Box<dyn RecordBatchReader + Send>) =
        if data.hasattr("__arrow_c_stream__")? {
            let reader = ArrowArrayStreamReader::from_pyarrow_bound(data)?;
            (reader.schema(), Box::new(reader))
        } else if data.hasattr("__arrow_c_array__")? {
            let batch = RecordBatch::from_pyarrow_bound(data)?;
            let schema = batch.schema();
            let reader = RecordBatchIterator::new([Ok(batch)], Arc::clone(&schema));
            (schema, Box::new(reader))
        } else {
            return Err(unsupported(data));
        };
    let plain = plain_schema(&schema);
    if plain == schema {
        return Ok((schema, Box::new(reader)));
    }
    let target = Arc::clone(&plain);
    let batches = reader.map(move |batch| {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(target.fields())
            .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
            .collect::<ArrowResult<Vec<_>>>()?;
        RecordBatch::try_new(Arc::clone(&target), columns)
    });
    Ok((plain, Box::new(batches)))
}

/// Batches read from Python.
type Batches = Box<dyn Iterator<Item = ArrowResult<RecordBatch>> + Send>;

/// `schema` with large and view string and binary types as plain ones:
/// pandas hands over `large_string`, polars `string_view`, and a series
/// keeps one type per column whoever appends to it.
fn plain_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| plain_field(f)).collect();
    let plain = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    if plain == *schema {
        Arc::clone(schema)
    } else {
        plain
    }
}

/// `field` with [`plain_type`].
fn plain_field(field: &Field) -> Field {
    field.clone().with_data_type(plain_type(field.data_type()))
}

/// `data_type` with plain strings and binaries, dictionaries decoded (a
/// pandas `Categorical`) and lists as `List`, at any depth.
fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => plain_type(values),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => DataType::List(Arc::new(plain_field(item))),
        DataType::FixedSizeList(item, n) => {
            DataType::FixedSizeList(Arc::new(plain_field(item)), *n)
        }
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| plain_field(f)).collect())
        }
        other => other.clone(),
    }
}

fn unsupported(data: &Bound<'_, PyAny>) -> PyErr {
    let name = data
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "value".to_string());
    PondError::new_err(format!(
        "cannot append a {name}: pass a pyarrow Table, RecordBatch or RecordBatchReader, a \
         pandas or polars DataFrame, or anything with __arrow_c_stream__"
    ))
}

fn column_names(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn series_dict<'py>(py: Python<'py>, info: &SeriesInfo) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("path", &info.path)?;
    out.set_item("id", &info.id)?;
    out.set_item("timestamp_column", &info.timestamp_column)?;
    out.set_item("schema", info.schema.as_ref().to_pyarrow(py)?)?;
    out.set_item("versions", info.versions)?;
    out.set_item("rows", info.rows)?;
    out.set_item("bytes", info.bytes)?;
    out.set_item("min_event_time", info.min_event_time)?;
    out.set_item("max_event_time", info.max_event_time)?;
    out.set_item("created_at", info.created_at)?;
    out.set_item("key", info.key.clone())?;
    out.set_item("sort_key", info.sort_key.clone())?;
    out.set_item("sort_bucket", info.sort_bucket)?;
    out.set_item("compression", info.compression.name())?;
    Ok(out)
}

#[pymodule]
fn _pond(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // pond's warnings (an automatic compaction that failed, …) to the
    // `pond` logger of Python's logging, which prints them on stderr
    // unless configured otherwise; none while the interpreter shuts down.
    pond::forward_warnings(|text| {
        Python::try_attach(|py| {
            let logged = py
                .import("logging")
                .and_then(|logging| logging.call_method1("getLogger", ("pond",)))
                .and_then(|logger| logger.call_method1("warning", (text,)));
            if let Err(e) = logged {
                e.write_unraisable(py, None);
            }
        });
    });
    m.add_class::<PyPond>()?;
    m.add_class::<PyTableFunction>()?;
    m.add_class::<PyPruningRule>()?;
    m.add("PondError", m.py().get_type::<PondError>())?;
    m.add_function(wrap_pyfunction!(datafusion_major, m)?)?;
    m.add("DATAFUSION_VERSION", datafusion::DATAFUSION_VERSION)?;
    Ok(())
}
