//! Helpers shared by the integration tests.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
};
use arrow::datatypes::TimeUnit;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::{Pond, PondOptions, SeriesExt};
use tempfile::TempDir;

/// 2024-01-01T00:00:00Z in µs.
pub(crate) const JAN1: i64 = 1_704_067_200_000_000;
/// A second in µs.
pub(crate) const SECOND: i64 = 1_000_000;

/// The environment variable `name` parsed, if set (a test's size or seed).
pub(crate) fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A session of `partitions` target partitions and batches of
/// `batch_size` rows, with `pond` registered.
pub(crate) fn session(pond: Arc<Pond>, partitions: usize, batch_size: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size);
    let ctx = SessionContext::new_with_config(config);
    pond::register(&ctx, pond);
    ctx
}

/// Options without automatic compaction: the tests of pruning need many
/// small versions to stay as they were appended.
pub(crate) fn manual() -> PondOptions {
    PondOptions::default().with_auto_compact_versions(0)
}

/// A new empty pond in a temporary directory (removed on drop), without
/// automatic compaction.
pub(crate) async fn temp_pond() -> (TempDir, Pond) {
    temp_pond_with(manual()).await
}

pub(crate) async fn temp_pond_with(options: PondOptions) -> (TempDir, Pond) {
    let dir = tempfile::tempdir().unwrap();
    let pond = Pond::create_with_options(dir.path().to_str().unwrap(), options)
        .await
        .unwrap();
    (dir, pond)
}

/// The pond's oplog opened by deltalake directly, as any Delta client would.
pub(crate) async fn open_oplog_with_deltalake(dir: &TempDir) -> deltalake::DeltaTable {
    let url = url::Url::from_directory_path(dir.path().join("oplog")).unwrap();
    deltalake::open_table(url).await.unwrap()
}

/// The pond's oplog opened by deltalake, and a session with it as table
/// `oplog`.
pub(crate) async fn oplog_context(dir: &TempDir) -> (deltalake::DeltaTable, SessionContext) {
    let table = open_oplog_with_deltalake(dir).await;
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("oplog", table.table_provider().await.unwrap())
        .unwrap();
    (table, ctx)
}

pub(crate) fn location(dir: &TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// A timestamp array of `unit` and `zone` from raw values in that unit.
pub(crate) fn timestamps(unit: TimeUnit, zone: Option<&str>, values: Vec<i64>) -> ArrayRef {
    fn zoned<T: arrow::datatypes::ArrowTimestampType>(
        a: arrow::array::PrimitiveArray<T>,
        zone: Option<&str>,
    ) -> ArrayRef {
        Arc::new(a.with_timezone_opt(zone.map(str::to_string)))
    }
    match unit {
        TimeUnit::Second => zoned(TimestampSecondArray::from(values), zone),
        TimeUnit::Millisecond => zoned(TimestampMillisecondArray::from(values), zone),
        TimeUnit::Microsecond => zoned(TimestampMicrosecondArray::from(values), zone),
        TimeUnit::Nanosecond => zoned(TimestampNanosecondArray::from(values), zone),
    }
}

/// A batch `(ts, value)` with `value[i] = i` offset by `first_value`.
pub(crate) fn batch(
    unit: TimeUnit,
    zone: Option<&str>,
    times: Vec<i64>,
    first_value: i64,
) -> RecordBatch {
    let n = times.len() as i64;
    RecordBatch::try_from_iter([
        ("ts", timestamps(unit, zone, times)),
        (
            "value",
            Arc::new(Int64Array::from_iter_values(first_value..first_value + n)) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// A microsecond batch `(ts, reading)`.
pub(crate) fn readings(times: &[i64]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "ts",
            timestamps(TimeUnit::Microsecond, Some("UTC"), times.to_vec()),
        ),
        (
            "reading",
            Arc::new(Float64Array::from_iter_values(
                times.iter().map(|t| *t as f64 / 10.0),
            )) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// Every row of a series, all batches concatenated.
pub(crate) async fn read_all(pond: &Pond, path: &str) -> RecordBatch {
    let stream = pond.read_series_all(path).await.unwrap();
    let schema = stream.schema();
    let batches = stream.try_collect().await.unwrap();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// The raw `i64` values of a column (timestamps of any unit, or Int64).
pub(crate) fn raw_i64(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let col = batch.column_by_name(column).unwrap();
    let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Int64).unwrap();
    col.as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

/// Plans and runs `sql`; returns the answer, pretty-printed, and the plan
/// with its metrics.
pub(crate) async fn run_plan(ctx: &SessionContext, sql: &str) -> (String, Arc<dyn ExecutionPlan>) {
    let plan = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .create_physical_plan()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches = collect(Arc::clone(&plan), ctx.task_ctx())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    (text, plan)
}

/// Every node of type `T` in `plan`, top down.
pub(crate) fn nodes<T: ExecutionPlan + 'static>(plan: &Arc<dyn ExecutionPlan>) -> Vec<&T> {
    let mut found: Vec<&T> = plan.downcast_ref::<T>().into_iter().collect();
    for child in plan.children() {
        found.extend(nodes::<T>(child));
    }
    found
}
