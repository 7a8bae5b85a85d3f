//! SQL over one series: pond against DataFusion's `ListingTable` over the
//! same Parquet files, and against a `ListingTable` over only the files that
//! overlap the window (the best any pruning can do), in one process.
//!
//! Grid: 100 / 1,000 / 5,000 versions × 2,000 rows (one row a second, each
//! version the next 2,000 seconds), queried with a fixed window of 10
//! versions' worth of time and with 1% of the series' time.
//!
//! Run with `cargo bench --bench sql`. Ponds are built once under
//! `target/bench-ponds/`; delete that folder to rebuild them.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, TimestampMicrosecondArray};
use criterion::{BenchmarkId, Criterion, criterion_main};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::{Pond, SeriesExt};
use tokio::runtime::Runtime;

const ROWS: i64 = 2_000;
const SECOND: i64 = 1_000_000;
/// 2024-01-01T00:00:00Z in µs.
const START: i64 = 1_704_067_200_000_000;
const PATH: &str = "/bench/sql";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn version_batch(v: i64) -> RecordBatch {
    let times: Vec<i64> = (0..ROWS).map(|i| START + (v * ROWS + i) * SECOND).collect();
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
        ),
        (
            "value",
            Arc::new(Float64Array::from_iter_values(
                (0..ROWS).map(|i| (i % 97) as f64),
            )) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// A pond whose series has `versions` versions, built once.
fn pond_dir(rt: &Runtime, versions: i64) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = PathBuf::from(target)
        .join("bench-ponds")
        .join(format!("sql-{versions}"));
    if dir.join(".complete").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    rt.block_on(async {
        let pond = Pond::create(dir.to_str().unwrap()).await.unwrap();
        for v in 0..versions {
            pond.append_series_data(PATH, &version_batch(v), "ts")
                .await
                .unwrap();
        }
    });
    std::fs::write(dir.join(".complete"), b"").unwrap();
    dir
}

fn timestamp(us: i64) -> String {
    format!("to_timestamp_micros({us})")
}

async fn listing_table(ctx: &SessionContext, name: &str, paths: Vec<String>) {
    let urls = paths
        .iter()
        .map(|p| ListingTableUrl::parse(p).unwrap())
        .collect();
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await
        .unwrap();
    ctx.register_table(name, Arc::new(ListingTable::try_new(config).unwrap()))
        .unwrap();
}

async fn run(ctx: &SessionContext, sql: &str) -> usize {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

fn sql(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("sql_window");
    group.sample_size(20);
    for versions in [100i64, 1_000, 5_000] {
        let dir = pond_dir(&rt, versions);
        let (ctx, windows) = rt.block_on(async {
            let pond = Arc::new(Pond::open(dir.to_str().unwrap()).await.unwrap());
            let ctx =
                SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
            pond::register(&ctx, Arc::clone(&pond));
            let data_dir = dir.join("data").canonicalize().unwrap();
            let series_dir = std::fs::read_dir(&data_dir)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            listing_table(
                &ctx,
                "listing",
                vec![format!("file://{}/", series_dir.display())],
            )
            .await;

            let total_us = versions * ROWS * SECOND;
            let middle = START + total_us / 2;
            let windows = [
                ("fixed_10_versions", middle, middle + 10 * ROWS * SECOND),
                ("one_percent", middle, middle + total_us / 100),
            ];
            let mut out = Vec::new();
            for (name, from, to) in windows {
                // The hand-built best: a table of only the overlapping files.
                let files: Vec<String> = pond
                    .scan_time_range(PATH, from, to)
                    .unwrap()
                    .iter()
                    .map(|f| {
                        format!(
                            "file://{}",
                            dir.join(&f.file_path).canonicalize().unwrap().display()
                        )
                    })
                    .collect();
                let best = format!("best_{name}");
                listing_table(&ctx, &best, files).await;
                out.push((name, from, to, best));
            }
            (ctx, out)
        });
        for (name, from, to, best) in windows {
            let predicate = format!("ts >= {} AND ts < {}", timestamp(from), timestamp(to));
            let query =
                |table: &str| format!("SELECT count(*), avg(value) FROM {table} WHERE {predicate}");
            for (contender, table) in [
                ("pond", "\"bench\".\"sql\"".to_string()),
                ("listing_table", "listing".to_string()),
                ("best_files_only", best.clone()),
            ] {
                let q = query(&table);
                group.bench_function(
                    BenchmarkId::new(format!("{name}/{contender}"), versions),
                    |b| b.iter(|| rt.block_on(run(&ctx, &q))),
                );
            }
        }
    }
    group.finish();
}

/// Every benchmark of this file, with criterion's command-line settings.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    sql(&mut c);
}

criterion_main!(benches);
