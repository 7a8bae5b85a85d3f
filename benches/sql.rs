//! SQL over one series: pond against DataFusion's `ListingTable` over the
//! same Parquet files, and against a `ListingTable` over only the files that
//! overlap the window (the best any pruning can do), in one process.
//!
//! Grid: 100 / 1,000 / 5,000 versions × 2,000 rows (one row a second, each
//! version the next 2,000 seconds), queried with a fixed window of 10
//! versions' worth of time and with 1% of the series' time.
//!
//! Each is measured in a warm session (the table registered, its listing
//! and file statistics cached) and as the first query of a new session.
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
use pond::{Pond, PondOptions, SeriesExt};
use tokio::runtime::Runtime;

const ROWS: i64 = 2_000;
const SECOND: i64 = 1_000_000;
/// 2024-01-01T00:00:00Z in µs.
const START: i64 = 1_704_067_200_000_000;
const PATH: &str = "/bench/sql";

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
        let pond = Pond::create_with_options(dir.to_str().unwrap(), manual())
            .await
            .unwrap();
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
    // In DataFusion's own catalog: in the pond catalog, registering a
    // table would create a series.
    let name = format!("datafusion.public.{name}");
    ctx.register_table(
        name.as_str(),
        Arc::new(ListingTable::try_new(config).unwrap()),
    )
    .unwrap();
}

async fn run(ctx: &SessionContext, sql: &str) -> usize {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

/// The answer of `sql`, as text, to check that every contender agrees.
async fn answer(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
        .lines()
        .skip(3)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One pond of the grid, registered in a warm session, with its windows.
struct Setup {
    versions: i64,
    dir: PathBuf,
    ctx: SessionContext,
    /// `(name, query predicate, table of only the overlapping files)`.
    windows: Vec<(&'static str, String, String)>,
}

fn setup(rt: &Runtime, versions: i64) -> Setup {
    let dir = pond_dir(rt, versions);
    let (ctx, windows) = rt.block_on(async {
        let pond = Arc::new(
            Pond::open_with_options(dir.to_str().unwrap(), manual())
                .await
                .unwrap(),
        );
        let ctx = session();
        pond::register(&ctx, Arc::clone(&pond));
        let url = format!("file://{}/", series_dir(&dir).display());
        listing_table(&ctx, "listing", vec![url]).await;

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
            let predicate = format!("ts >= {} AND ts < {}", timestamp(from), timestamp(to));
            out.push((name, predicate, best));
        }
        (ctx, out)
    });
    Setup {
        versions,
        dir,
        ctx,
        windows,
    }
}

fn query(table: &str, predicate: &str) -> String {
    let table = if table.starts_with('"') {
        table.to_string()
    } else {
        format!("datafusion.public.{table}")
    };
    format!("SELECT count(*) AS n, avg(value) AS mean FROM {table} WHERE {predicate}")
}

const POND_TABLE: &str = "\"bench\".\"sql\"";

/// Queries in a session where the tables are registered and warm.
fn warm(c: &mut Criterion, rt: &Runtime, setups: &[Setup]) {
    let mut group = c.benchmark_group("sql_window");
    group.sample_size(20);
    for setup in setups {
        for (name, predicate, best) in &setup.windows {
            for (contender, table) in [
                ("pond", POND_TABLE),
                ("listing_table", "listing"),
                ("best_files_only", best.as_str()),
            ] {
                let q = query(table, predicate);
                group.bench_function(
                    BenchmarkId::new(format!("{name}/{contender}"), setup.versions),
                    |b| b.iter(|| rt.block_on(run(&setup.ctx, &q))),
                );
            }
        }
    }
    group.finish();
}

/// The first query of a new session (a new datafusion-cli, a new program):
/// pond opens the oplog; a `ListingTable` lists the directory and reads
/// every file's footer for its statistics.
fn new_session(c: &mut Criterion, rt: &Runtime, setups: &[Setup]) {
    let mut group = c.benchmark_group("sql_window_new_session");
    group.sample_size(10);
    for setup in setups {
        let pond_dir = setup.dir.to_str().unwrap().to_string();
        let url = format!("file://{}/", series_dir(&setup.dir).display());
        for (name, predicate, best) in &setup.windows {
            // Every contender, warm or new, must give the same answer.
            rt.block_on(async {
                let expected = answer(&setup.ctx, &query(best, predicate)).await;
                for table in [POND_TABLE, "listing"] {
                    let got = answer(&setup.ctx, &query(table, predicate)).await;
                    assert_eq!(got, expected, "{table}, {name}");
                }
                let started = std::time::Instant::now();
                let pond = Pond::open_with_options(&pond_dir, manual()).await.unwrap();
                let opened = started.elapsed();
                let ctx = session();
                pond::register(&ctx, Arc::new(pond));
                let got = answer(&ctx, &query(POND_TABLE, predicate)).await;
                assert_eq!(got, expected, "new pond session, {name}");
                let pond_total = started.elapsed();
                let started = std::time::Instant::now();
                let ctx = session();
                listing_table(&ctx, "listing", vec![url.clone()]).await;
                let registered = started.elapsed();
                let got = answer(&ctx, &query("listing", predicate)).await;
                assert_eq!(got, expected, "new listing session, {name}");
                eprintln!(
                    "{} versions, {name}: new pond session {pond_total:?} (open {opened:?}); \
                     new listing session {:?} (register {registered:?})",
                    setup.versions,
                    started.elapsed()
                );
            });
            let q = query(POND_TABLE, predicate);
            group.bench_function(
                BenchmarkId::new(format!("{name}/pond"), setup.versions),
                |b| {
                    b.iter(|| {
                        rt.block_on(async {
                            let pond = Pond::open_with_options(&pond_dir, manual()).await.unwrap();
                            let ctx = session();
                            pond::register(&ctx, Arc::new(pond));
                            run(&ctx, &q).await
                        })
                    })
                },
            );
            let q = query("listing", predicate);
            group.bench_function(
                BenchmarkId::new(format!("{name}/listing_table"), setup.versions),
                |b| {
                    b.iter(|| {
                        rt.block_on(async {
                            let ctx = session();
                            listing_table(&ctx, "listing", vec![url.clone()]).await;
                            run(&ctx, &q).await
                        })
                    })
                },
            );
        }
    }
    group.finish();
}

fn session() -> SessionContext {
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2))
}

/// The folder of the series' data files.
fn series_dir(pond: &std::path::Path) -> PathBuf {
    let data_dir = pond.join("data").canonicalize().unwrap();
    std::fs::read_dir(&data_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// Every benchmark of this file, with criterion's command-line settings.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    let rt = runtime();
    let setups: Vec<Setup> = [100, 1_000, 5_000].map(|v| setup(&rt, v)).into();
    warm(&mut c, &rt, &setups);
    new_session(&mut c, &rt, &setups);
}

criterion_main!(benches);
