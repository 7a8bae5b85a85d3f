//! Table functions: `series_range(path, start, end [, as_of])`,
//! `series_versions(path)` and `series_list([pattern])`. They read the oplog
//! as of each scan, so a statement prepared or a DataFrame kept earlier sees
//! the versions (and series) committed since.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;

use crate::index::SeriesState;
use crate::oplog::EntryType;
use crate::path::SeriesPattern;
use crate::pond::{Pond, SeriesInfo};
use crate::provider::SeriesTable;
use crate::time::{MAX_TIME, MIN_TIME, ceil_micros, floor_micros, parse_time, scalar_timestamp};

/// `series_range(path, start, end [, as_of])`: the rows of one series
/// with `start <= ts < end`. `start` and `end` are timestamps or RFC 3339
/// strings (no zone means UTC), taken at microsecond precision (rounded
/// down); NULL means unbounded. `as_of` reads the series as it was: a
/// version number (the versions up to it) or a time, a timestamp or an RFC
/// 3339 string (the versions committed at or before it).
#[derive(Debug)]
pub struct SeriesRangeFunction {
    pond: Arc<Pond>,
}

impl SeriesRangeFunction {
    /// The function over `pond`.
    pub fn new(pond: Arc<Pond>) -> Self {
        Self { pond }
    }
}

impl TableFunctionImpl for SeriesRangeFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(3..=4).contains(&exprs.len()) {
            return plan_err!(
                "series_range(path, start, end [, as_of]) takes 3 or 4 arguments, got {}",
                exprs.len()
            );
        }
        let path = path_argument("series_range", &exprs[0])?;
        // Whole µs, rounded up: a row of whole µs is at or after a bound
        // exactly when it is at or after the bound rounded up (`now()` has
        // nanoseconds).
        let start = time_argument("start", &exprs[1], Round::Up)?.unwrap_or(MIN_TIME);
        let end = time_argument("end", &exprs[2], Round::Up)?.unwrap_or(MAX_TIME);
        let mut table =
            series_table(&self.pond, "series_range", &path)?.with_time_range(start, end);
        if let Some(expr) = exprs.get(3) {
            // A version of any integer type (`CAST(3 AS INT)`, a parameter).
            let value = match constant(expr)? {
                v if v.data_type().is_integer() => v.cast_to(&DataType::Int64)?,
                v => v,
            };
            match value {
                ScalarValue::Int64(Some(v)) if v >= 0 => table = table.with_max_version(v),
                ScalarValue::Int64(None) | ScalarValue::Null => {}
                ScalarValue::Int64(Some(v)) => {
                    return plan_err!(
                        "series_range: as_of must be a version (a non-negative integer) or a time, got {v}"
                    );
                }
                _ => {
                    // The versions committed at or before it: rounded down.
                    if let Some(time) = time_argument("as_of", &exprs[3], Round::Down)? {
                        table = table.with_as_of_time(time);
                    }
                }
            }
        }
        Ok(Arc::new(table))
    }
}

/// `series_versions(path)`: one row per version of a series.
#[derive(Debug)]
pub struct SeriesVersionsFunction {
    pond: Arc<Pond>,
}

impl SeriesVersionsFunction {
    /// The function over `pond`.
    pub fn new(pond: Arc<Pond>) -> Self {
        Self { pond }
    }
}

impl TableFunctionImpl for SeriesVersionsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 1 {
            return plan_err!(
                "series_versions(path) takes 1 argument, got {}",
                exprs.len()
            );
        }
        let path = path_argument("series_versions", &exprs[0])?;
        known_series(&self.pond, "series_versions", &path)?;
        Ok(Arc::new(SeriesVersionsTable {
            pond: Arc::clone(&self.pond),
            path,
        }))
    }
}

/// `series_list([pattern])`: one row per series (whose path matches the
/// pattern, see [`SeriesPattern`]), as `pond ls` shows them.
#[derive(Debug)]
pub struct SeriesListFunction {
    pond: Arc<Pond>,
}

impl SeriesListFunction {
    /// The function over `pond`.
    pub fn new(pond: Arc<Pond>) -> Self {
        Self { pond }
    }
}

impl TableFunctionImpl for SeriesListFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let pattern = match exprs {
            [] => None,
            [pattern] => {
                let text = path_argument("series_list", pattern)?;
                match SeriesPattern::parse(&text) {
                    Ok(pattern) => Some(pattern),
                    Err(e) => return plan_err!("series_list: {e}"),
                }
            }
            _ => {
                return plan_err!(
                    "series_list([pattern]) takes 0 or 1 argument, got {}",
                    exprs.len()
                );
            }
        };
        Ok(Arc::new(SeriesListTable {
            pond: Arc::clone(&self.pond),
            pattern,
        }))
    }
}

/// The series of a pond as a table, read from the oplog at each scan.
#[derive(Debug)]
struct SeriesListTable {
    pond: Arc<Pond>,
    pattern: Option<SeriesPattern>,
}

#[async_trait]
impl TableProvider for SeriesListTable {
    fn schema(&self) -> SchemaRef {
        series_list_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.pond.refresh().await?;
        scan_batch(self.rows()?, state, (projection, filters, limit)).await
    }
}

impl SeriesListTable {
    /// Its rows, from the oplog as last read.
    fn rows(&self) -> DfResult<RecordBatch> {
        let series: Vec<SeriesInfo> = (self.pond)
            .list_series_where(|path| self.pattern.as_ref().is_none_or(|p| p.matches(path)));
        series_list_batch(&series)
    }
}

/// The rows of the table of `series_list` or `series_versions`, as they are
/// after reading new oplog commits; `None` for another table. This is how
/// [`crate::cluster`] sends such a table: a cluster gets its rows.
#[cfg(feature = "cluster")]
pub(crate) fn listing_rows(table: &dyn TableProvider) -> Option<DfResult<RecordBatch>> {
    let refresh = |pond: &Arc<Pond>| -> DfResult<()> {
        let refreshing = Arc::clone(pond);
        crate::runtime::block_on(async move { refreshing.refresh().await })??;
        Ok(())
    };
    if let Some(list) = table.downcast_ref::<SeriesListTable>() {
        return Some(refresh(&list.pond).and_then(|()| list.rows()));
    }
    if let Some(versions) = table.downcast_ref::<SeriesVersionsTable>() {
        return Some(refresh(&versions.pond).and_then(|()| versions.rows()));
    }
    None
}

/// A scan of one in-memory batch, as the listing functions return it.
async fn scan_batch(
    batch: RecordBatch,
    state: &dyn Session,
    (projection, filters, limit): (Option<&Vec<usize>>, &[Expr], Option<usize>),
) -> DfResult<Arc<dyn ExecutionPlan>> {
    MemTable::try_new(batch.schema(), vec![vec![batch]])?
        .scan(state, projection, filters, limit)
        .await
}

fn series_list_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("series", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("versions", DataType::UInt64, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("min_time", ts.clone(), true),
        Field::new("max_time", ts, true),
        Field::new("bytes", DataType::Int64, false),
        Field::new("key", DataType::Utf8, true),
        Field::new("sort_key", DataType::Utf8, true),
        Field::new("compression", DataType::Utf8, false),
    ]))
}

/// One row per series: path, SQL table, live versions, rows, time range,
/// bytes, key and sort key (NULL if none), and the codec its files are
/// written with; `pond ls` prints the same.
pub(crate) fn series_list_batch(series: &[SeriesInfo]) -> DfResult<RecordBatch> {
    let tables: Vec<String> = series
        .iter()
        .map(|s| crate::sql_table_name(&s.path))
        .collect();
    let times = |f: fn(&SeriesInfo) -> Option<i64>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter(series.iter().map(f)).with_timezone("UTC"))
    };
    let columns = |f: fn(&SeriesInfo) -> &Vec<String>| -> ArrayRef {
        Arc::new(
            series
                .iter()
                .map(|s| Some(f(s)).filter(|c| !c.is_empty()).map(|c| c.join(", ")))
                .collect::<StringArray>(),
        )
    };
    Ok(RecordBatch::try_new(
        series_list_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                series.iter().map(|s| s.path.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(tables.iter())),
            Arc::new(UInt64Array::from_iter_values(
                series.iter().map(|s| s.versions as u64),
            )),
            Arc::new(Int64Array::from_iter_values(series.iter().map(|s| s.rows))),
            times(|s| s.min_event_time),
            times(|s| s.max_event_time),
            Arc::new(Int64Array::from_iter_values(series.iter().map(|s| s.bytes))),
            columns(|s| &s.key),
            Arc::new(
                series
                    .iter()
                    .map(|s| sort_key_text(&s.sort_key, s.sort_bucket))
                    .collect::<StringArray>(),
            ),
            Arc::new(StringArray::from_iter_values(
                series.iter().map(|s| s.compression.name()),
            )),
        ],
    )?)
}

/// A sort key as the order of the rows it writes: `hostname, ts`, or
/// `date_bin(INTERVAL '1 hour', ts), hostname, ts` within hour buckets.
fn sort_key_text(key: &[String], bucket: i64) -> Option<String> {
    let time = key.last()?;
    let columns = key.join(", ");
    if bucket <= 0 {
        return Some(columns);
    }
    let (n, unit) = [
        (86_400_000_000, "day"),
        (3_600_000_000, "hour"),
        (60_000_000, "minute"),
        (1_000_000, "second"),
    ]
    .into_iter()
    .find(|(size, _)| bucket % size == 0)
    .map(|(size, unit)| (bucket / size, unit))
    .unwrap_or((bucket, "microsecond"));
    let plural = if n == 1 { "" } else { "s" };
    Some(format!(
        "date_bin(INTERVAL '{n} {unit}{plural}', {time}), {columns}"
    ))
}

/// The versions of one series as a table, read from the oplog at each scan.
#[derive(Debug)]
struct SeriesVersionsTable {
    pond: Arc<Pond>,
    path: String,
}

impl SeriesVersionsTable {
    /// Its rows, from the oplog as last read.
    fn rows(&self) -> DfResult<RecordBatch> {
        let state = self.pond.state(&self.path)?;
        Self::batch(&state)
    }

    fn versions_schema() -> SchemaRef {
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("version", DataType::Int64, false),
            Field::new("entry_type", DataType::Utf8, false),
            Field::new("file_path", DataType::Utf8, true),
            Field::new("row_count", DataType::Int64, false),
            Field::new("size", DataType::Int64, false),
            Field::new("min_event_time", ts(), true),
            Field::new("max_event_time", ts(), true),
            Field::new("txn_seq", DataType::Int64, false),
            Field::new("created_at", ts(), false),
            Field::new("live", DataType::Boolean, false),
            Field::new("precedence", DataType::Int64, false),
            Field::new("key", DataType::Utf8, true),
            Field::new("predicate", DataType::Utf8, true),
        ]))
    }

    /// The rows of the versions of `state`, data and deletes, in version
    /// order.
    fn batch(state: &SeriesState) -> DfResult<RecordBatch> {
        let mut rows: Vec<VersionRow> = state
            .versions
            .iter()
            .map(|v| VersionRow {
                version: v.version,
                entry_type: v.entry_type.as_str(),
                file_path: Some(v.file_path.clone()),
                row_count: v.row_count,
                size: v.size,
                min: Some(v.min_event_time),
                max: Some(v.max_event_time),
                txn_seq: v.txn_seq,
                created_at: v.created_at,
                live: v.is_live(),
                precedence: v.precedence,
                predicate: None,
            })
            .collect();
        rows.extend(state.deletes.iter().map(|d| VersionRow {
            version: d.version,
            entry_type: EntryType::Delete.as_str(),
            file_path: None,
            row_count: 0,
            size: 0,
            min: (d.min_event_time != crate::MIN_TIME).then_some(d.min_event_time),
            max: (d.max_event_time != crate::MAX_TIME).then_some(d.max_event_time),
            txn_seq: d.txn_seq,
            created_at: d.created_at,
            live: true,
            precedence: d.version,
            predicate: d.predicate.clone(),
        }));
        rows.sort_by_key(|r| r.version);
        let micros = |f: fn(&VersionRow) -> Option<i64>| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(f)
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            )
        };
        let ints = |f: fn(&VersionRow) -> i64| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<Int64Array>())
        };
        let key = (!state.key.is_empty()).then(|| state.key.join(", "));
        Ok(RecordBatch::try_new(
            Self::versions_schema(),
            vec![
                ints(|r| r.version),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.entry_type))
                        .collect::<StringArray>(),
                ),
                Arc::new(
                    rows.iter()
                        .map(|r| r.file_path.as_deref())
                        .collect::<StringArray>(),
                ),
                ints(|r| r.row_count),
                ints(|r| r.size),
                micros(|r| r.min),
                micros(|r| r.max),
                ints(|r| r.txn_seq),
                micros(|r| Some(r.created_at)),
                Arc::new(rows.iter().map(|r| Some(r.live)).collect::<BooleanArray>()),
                ints(|r| r.precedence),
                Arc::new(rows.iter().map(|_| key.as_deref()).collect::<StringArray>()),
                Arc::new(
                    rows.iter()
                        .map(|r| r.predicate.as_deref())
                        .collect::<StringArray>(),
                ),
            ],
        )?)
    }
}

/// One row of `series_versions`.
struct VersionRow {
    version: i64,
    entry_type: &'static str,
    file_path: Option<String>,
    row_count: i64,
    size: i64,
    min: Option<i64>,
    max: Option<i64>,
    txn_seq: i64,
    created_at: i64,
    live: bool,
    precedence: i64,
    predicate: Option<String>,
}

#[async_trait]
impl TableProvider for SeriesVersionsTable {
    fn schema(&self) -> SchemaRef {
        Self::versions_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.pond.refresh().await?;
        scan_batch(self.rows()?, state, (projection, filters, limit)).await
    }
}

/// An error unless `path` names a series, after reading any new oplog
/// commits if it does not (it may have been created by another process).
fn known_series(pond: &Arc<Pond>, function: &str, path: &str) -> DfResult<()> {
    if pond.state(path).is_err() {
        let refreshing = Arc::clone(pond);
        crate::runtime::block_on(async move { refreshing.refresh().await })??;
    }
    match pond.state(path) {
        Ok(_) => Ok(()),
        Err(e) => plan_err!("{function}: {e}"),
    }
}

fn series_table(pond: &Arc<Pond>, function: &str, path: &str) -> DfResult<SeriesTable> {
    known_series(pond, function, path)?;
    match SeriesTable::try_new(Arc::clone(pond), path) {
        Ok(table) => Ok(table),
        Err(e) => plan_err!("{function}: {e}"),
    }
}

/// Folds an argument to a constant (`now() - INTERVAL '1 hour'` included).
fn constant(expr: &Expr) -> DfResult<ScalarValue> {
    let simplifier = ExprSimplifier::new(SimplifyContext::builder().with_current_time().build());
    match simplifier.simplify(expr.clone())? {
        Expr::Literal(value, _) => Ok(value),
        other => plan_err!("expected a constant argument, got {other}"),
    }
}

pub(crate) fn path_argument(function: &str, expr: &Expr) -> DfResult<String> {
    match constant(expr)? {
        ScalarValue::Utf8(Some(p))
        | ScalarValue::Utf8View(Some(p))
        | ScalarValue::LargeUtf8(Some(p)) => Ok(p),
        other => plan_err!("{function}: the series path must be a string, got {other}"),
    }
}

/// Which way a time argument finer than µs is rounded.
#[derive(Clone, Copy)]
enum Round {
    Down,
    Up,
}

/// A time argument in µs (pond's API has microsecond precision), rounded
/// as `round` says; `None` for NULL (unbounded).
fn time_argument(name: &str, expr: &Expr, round: Round) -> DfResult<Option<i64>> {
    let value = constant(expr)?;
    if value.is_null() {
        return Ok(None);
    }
    let (raw, unit) = match &value {
        ScalarValue::Utf8(Some(text))
        | ScalarValue::Utf8View(Some(text))
        | ScalarValue::LargeUtf8(Some(text)) => {
            // In nanoseconds where they can hold it (1677 to 2262), else
            // in µs.
            let nanos = value
                .cast_to(&DataType::Timestamp(TimeUnit::Nanosecond, None))
                .ok()
                .and_then(|v| scalar_timestamp(&v));
            match nanos.or_else(|| parse_time(text).map(|us| (us, TimeUnit::Microsecond))) {
                Some(raw) => raw,
                None => {
                    return plan_err!("series_range: {name} {value} is not an RFC 3339 timestamp");
                }
            }
        }
        _ => match scalar_timestamp(&value) {
            Some(raw) => raw,
            None => {
                return plan_err!(
                    "series_range: {name} must be a timestamp or a string, got {value}"
                );
            }
        },
    };
    let us = match round {
        Round::Down => floor_micros(raw, unit),
        Round::Up => ceil_micros(raw, unit),
    };
    match us {
        Some(us) => Ok(Some(us)),
        None => plan_err!("series_range: {name} is out of range"),
    }
}
