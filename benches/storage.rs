//! Storage-core benchmarks: index lookups at 10,000 versions, cold open of a
//! 5,000-append pond, appending 1,000,000 rows against writing the same
//! Parquet file with the parquet crate alone, and a small append to a fresh
//! pond against one with 10,000 versions.
//!
//! Run with `cargo bench --bench storage`. The ponds with many versions take a
//! while to build, so they are built once under `target/bench-ponds/` and
//! reused; delete that folder to rebuild them.
//!
//! `POND_BENCH_SCALE=1` adds the scale benchmark (issue 9): a series of
//! 100,000 small versions against one of 1,000, for a small append, a cold
//! open with the whole listing, and a fixed-window SQL query. Building the
//! 100,000-version pond takes a quarter of an hour.

mod common;
use common::{bench_dir, copy_dir};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use criterion::{BenchmarkId, Criterion, criterion_main};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use pond::{Pond, PondOptions, SeriesExt};
use tokio::runtime::Runtime;

const ROWS_PER_VERSION: i64 = 10;
const MINUTE: i64 = 60_000_000;

/// Without automatic compaction: these benchmarks measure many small
/// versions as they were appended.
fn manual() -> PondOptions {
    PondOptions::default().with_auto_compact_versions(0)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A small batch for version `v`: one minute of data starting at minute `v`.
fn version_batch(v: i64) -> RecordBatch {
    let times: Vec<i64> = (0..ROWS_PER_VERSION)
        .map(|i| v * MINUTE + i * MINUTE / ROWS_PER_VERSION)
        .collect();
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
        ),
        (
            "value",
            Arc::new(Float64Array::from_iter_values(
                (0..ROWS_PER_VERSION).map(|i| i as f64),
            )) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// A pond whose series `/bench/s` has `versions` versions, built once.
fn pond_with_versions(rt: &Runtime, versions: i64) -> PathBuf {
    let dir = bench_dir().join(format!("v{versions}"));
    let done = dir.join(".complete");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    rt.block_on(async {
        let pond = Pond::create_with_options(dir.to_str().unwrap(), manual())
            .await
            .unwrap();
        let started = std::time::Instant::now();
        for v in 0..versions {
            pond.append_series_data("/bench/s", &version_batch(v), "ts")
                .await
                .unwrap();
            if (v + 1) % 1_000 == 0 {
                eprintln!(
                    "built {} of {versions} versions in {:?}",
                    v + 1,
                    started.elapsed()
                );
            }
        }
    });
    std::fs::write(&done, b"").unwrap();
    dir
}

fn index_lookup(c: &mut Criterion) {
    let rt = runtime();
    let dir = pond_with_versions(&rt, 10_000);
    let pond = rt
        .block_on(Pond::open_with_options(dir.to_str().unwrap(), manual()))
        .unwrap();
    let mut group = c.benchmark_group("index_lookup");
    for (name, minutes) in [
        ("window_10_versions", 10),
        ("window_1_version", 1),
        ("window_1000_versions", 1_000),
    ] {
        group.bench_function(BenchmarkId::new(name, 10_000), |b| {
            let mut start = 0i64;
            b.iter(|| {
                start = (start + 7_919) % 9_000;
                let files = pond
                    .scan_time_range("/bench/s", start * MINUTE, (start + minutes) * MINUTE)
                    .unwrap();
                assert!(!files.is_empty());
                files
            })
        });
    }
    group.finish();
}

fn cold_open(c: &mut Criterion) {
    let rt = runtime();
    let dir = pond_with_versions(&rt, 5_000);
    let mut group = c.benchmark_group("cold_open");
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("appends", 5_000), |b| {
        b.iter(|| {
            let pond = rt
                .block_on(Pond::open_with_options(dir.to_str().unwrap(), manual()))
                .unwrap();
            assert_eq!(pond.versions("/bench/s").unwrap().len(), 5_000);
            pond
        })
    });
    group.finish();
}

fn big_batch(rows: i64) -> RecordBatch {
    let ts: Vec<i64> = (0..rows)
        .map(|i| 1_700_000_000_000_000 + i * 1_000)
        .collect();
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
        ),
        (
            "sensor",
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i % 16))) as ArrayRef,
        ),
        (
            "temperature",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| 20.0 + (i % 1000) as f64 / 100.0),
            )) as ArrayRef,
        ),
        (
            "humidity",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| ((i * 7) % 100) as f64),
            )) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// The same Parquet settings pond uses, for a like-for-like baseline.
fn bare_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build()
}

async fn bare_write(path: &Path, batch: &RecordBatch) {
    let file = tokio::fs::File::create(path).await.unwrap();
    let mut writer =
        AsyncArrowWriter::try_new(file, batch.schema(), Some(bare_properties())).unwrap();
    writer.write(batch).await.unwrap();
    writer.close().await.unwrap();
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let batch = big_batch(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let pond = rt
        .block_on(Pond::create_with_options(
            dir.path().join("pond").to_str().unwrap(),
            manual(),
        ))
        .unwrap();
    let bare = dir.path().join("bare.parquet");
    let mut group = c.benchmark_group("append_1m_rows");
    group.sample_size(10);
    group.bench_function("pond_append_series_data", |b| {
        b.iter(|| {
            rt.block_on(pond.append_series_data("/bench/big", &batch, "ts"))
                .unwrap()
        })
    });
    group.bench_function("parquet_async_arrow_writer", |b| {
        b.iter(|| rt.block_on(bare_write(&bare, &batch)))
    });
    group.finish();
}

/// Appending one small batch to a fresh series and to a copy of the
/// 10,000-version pond: the cost must not grow with the history.
fn append_small(c: &mut Criterion) {
    let rt = runtime();
    let big = pond_with_versions(&rt, 10_000);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    copy_dir(&big, &copy);
    let fresh = dir.path().join("fresh");
    let mut group = c.benchmark_group("append_10_rows");
    for (name, location, versions) in [("fresh_pond", &fresh, 0), ("after_versions", &copy, 10_000)]
    {
        let pond = rt
            .block_on(async {
                match versions {
                    0 => Pond::create_with_options(location.to_str().unwrap(), manual()).await,
                    _ => Pond::open_with_options(location.to_str().unwrap(), manual()).await,
                }
            })
            .unwrap();
        let mut v = 20_000;
        group.bench_function(BenchmarkId::new(name, versions), |b| {
            b.iter(|| {
                v += 1;
                rt.block_on(pond.append_series_data("/bench/s", &version_batch(v), "ts"))
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// A series of 1,000 and one of 100,000 small versions: a small append, a
/// cold open with the listing `pond ls` prints, and a query of a fixed
/// window of 10 versions' time, in a warm session.
fn scale(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("scale");
    group.sample_size(20);
    for versions in [1_000, 100_000] {
        let built = pond_with_versions(&rt, versions);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy");
        copy_dir(&built, &copy);
        let location = copy.to_str().unwrap().to_string();
        group.bench_function(BenchmarkId::new("open_and_list", versions), |b| {
            b.iter(|| {
                let pond = rt
                    .block_on(Pond::open_with_options(&location, manual()))
                    .unwrap();
                let listed = pond.list_series();
                assert_eq!(listed[0].versions, versions as usize);
                listed
            })
        });
        let pond = Arc::new(
            rt.block_on(Pond::open_with_options(&location, manual()))
                .unwrap(),
        );
        let ctx = datafusion::prelude::SessionContext::new();
        pond::register(&ctx, Arc::clone(&pond));
        let start = versions / 2 * MINUTE;
        let sql = format!(
            "SELECT count(*), avg(value) FROM bench.s WHERE ts >= to_timestamp_micros({start}) \
             AND ts < to_timestamp_micros({})",
            start + 10 * MINUTE
        );
        group.bench_function(BenchmarkId::new("window_10_versions", versions), |b| {
            b.iter(|| {
                let batches = rt
                    .block_on(async { ctx.sql(&sql).await?.collect().await })
                    .unwrap();
                assert_eq!(batches[0].num_rows(), 1);
                batches
            })
        });
        let mut v = 2 * versions;
        group.bench_function(BenchmarkId::new("append_10_rows", versions), |b| {
            b.iter(|| {
                v += 1;
                rt.block_on(pond.append_series_data("/bench/s", &version_batch(v), "ts"))
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// Every benchmark of this file, with criterion's command-line settings.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    index_lookup(&mut c);
    cold_open(&mut c);
    append(&mut c);
    append_small(&mut c);
    if std::env::var_os("POND_BENCH_SCALE").is_some() {
        scale(&mut c);
    }
}

criterion_main!(benches);
