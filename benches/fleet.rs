//! Many series as one table (issue 11): `series_union` against DuckDB's
//! `read_parquet` over the same files, in one run.
//!
//! Workload: a fleet of 1,000 sensors, `/fleet/site{0..9}/sensor{000..099}`,
//! each its own series `(ts, value, status)` with one reading every 5
//! minutes, appended as one version per sensor per day for 20 days (20,000
//! versions, 5.76 M rows; no compaction, so every version stays a file).
//!
//! DuckDB reads the pond's data files with `read_parquet` and gets the
//! series' path as a column by joining each row's file name with a table of
//! the files' series (`files`, stored in its database file), which is what
//! a user of DuckDB would do with files named by series id. Its Parquet
//! metadata cache is on, as a warm DuckDB session would have it. Every
//! answer is checked equal to DuckDB's.
//!
//! Queries run warm (a few runs first) and the median of the timed runs is
//! reported; the whole process too (`pond sql` against the DuckDB CLI, start
//! to exit, peak memory from GNU time). Needs DuckDB's CLI and Python API
//! (`pip install duckdb-cli==1.5.6 duckdb==1.5.6 pytz`) and GNU time. Run
//! with `cargo bench --bench fleet`; the pond is built once under
//! `bench-ponds/fleet/` in the target directory (delete it to rebuild).
//! `FLEET_RUNS` sets the timed runs per query (default 15).

#[allow(dead_code, reason = "the helpers of other benchmarks")]
mod common;
#[path = "common/duckdb.rs"]
mod duckdb;
use common::bench_dir;
use duckdb::{
    assert_same, duckdb_answer, duckdb_binary, duckdb_time, median, process_cost, release_pond,
};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::prelude::SessionContext;
use pond::{Pond, PondOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SITES: usize = 10;
const SENSORS_PER_SITE: usize = 100;
const DAYS: i64 = 20;
/// 2024-01-01T00:00:00Z in µs.
const START: i64 = 1_704_067_200_000_000;
const DAY: i64 = 86_400_000_000;
const STEP: i64 = 300_000_000;

/// The queries: the pond's, then DuckDB's over `read_parquet` of the data
/// files (`{files}`) joined with their series.
const QUERIES: [(&str, &str, &str); 3] = [
    (
        "1,000 series, one day, hourly mean per series",
        "SELECT series, date_bin(INTERVAL '1 hour', ts) AS h, avg(value) \
         FROM series_union('/fleet/**') \
         WHERE ts >= '2024-01-11T00:00:00Z' AND ts < '2024-01-12T00:00:00Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT f.series, time_bucket(INTERVAL '1 hour', p.ts) AS h, avg(p.value) \
         FROM read_parquet('{files}', filename = true) p JOIN files f ON p.filename = f.filename \
         WHERE p.ts >= '2024-01-11T00:00:00Z' AND p.ts < '2024-01-12T00:00:00Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "one site (100 series), one day, hourly mean per series",
        "SELECT series, date_bin(INTERVAL '1 hour', ts) AS h, avg(value) \
         FROM series_union('/fleet/site3/*') \
         WHERE ts >= '2024-01-11T00:00:00Z' AND ts < '2024-01-12T00:00:00Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT f.series, time_bucket(INTERVAL '1 hour', p.ts) AS h, avg(p.value) \
         FROM read_parquet('{files}', filename = true) p JOIN files f ON p.filename = f.filename \
         WHERE f.series LIKE '/fleet/site3/%' \
         AND p.ts >= '2024-01-11T00:00:00Z' AND p.ts < '2024-01-12T00:00:00Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "1,000 series, 20 days, daily max per site",
        "SELECT split_part(CAST(series AS TEXT), '/', 3) AS site, \
         date_bin(INTERVAL '1 day', ts) AS d, max(value) FROM series_union('/fleet/**') \
         GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT split_part(f.series, '/', 3) AS site, time_bucket(INTERVAL '1 day', p.ts) AS d, \
         max(p.value) FROM read_parquet('{files}', filename = true) p \
         JOIN files f ON p.filename = f.filename GROUP BY 1, 2 ORDER BY 1, 2",
    ),
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runs: usize = std::env::var("FLEET_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let duckdb = duckdb_binary();
    let dir = bench_dir().join("fleet");
    let (pond_dir, duck_db) = rt.block_on(build(&dir, &duckdb));
    let files = format!("{}/data/*/*.parquet", pond_dir.display());
    let setup = "SET parquet_metadata_cache = true";

    let ctx = SessionContext::new();
    let pond = rt.block_on(Pond::open(pond_dir.to_str().unwrap())).unwrap();
    pond::register(&ctx, Arc::new(pond));

    let mut report = String::new();
    if std::env::args().any(|a| a == "parts") {
        parts(&rt, &ctx, &pond_dir, runs, &mut report);
        println!("{report}");
        return;
    }
    let _ = writeln!(
        report,
        "fleet: {} series × {DAYS} versions, {} rows; medians of {runs} warm runs (ms)\n",
        SITES * SENSORS_PER_SITE,
        (SITES * SENSORS_PER_SITE) as i64 * DAYS * DAY / STEP,
    );
    let _ = writeln!(
        report,
        "| query | pond | DuckDB read_parquet | pond / DuckDB |"
    );
    let _ = writeln!(report, "|---|---|---|---|");
    for (name, pond_sql, duck_sql) in QUERIES {
        let duck_sql = duck_sql.replace("{files}", &files);
        let want = duckdb_answer(&duckdb, &duck_db, &format!("{setup}; {duck_sql}"));
        let got = rt.block_on(csv(&ctx, pond_sql));
        assert_same(&got, &want, name);
        // The full scans take seconds: fewer runs.
        let runs = if pond_sql.contains("WHERE") {
            runs
        } else {
            runs.min(5)
        };
        let pond_time = rt.block_on(time(&ctx, pond_sql, runs));
        let duck_time = duckdb_time(&duck_db, setup, &duck_sql, runs);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let _ = writeln!(
            report,
            "| {name} | {:.1} | {:.1} | {:.2} |",
            ms(pond_time),
            ms(duck_time),
            ms(pond_time) / ms(duck_time)
        );
        eprintln!("{}", report.lines().last().unwrap_or_default());
    }

    parts(&rt, &ctx, &pond_dir, runs, &mut report);

    // The whole process, on the first query.
    let (_, pond_sql, duck_sql) = QUERIES[0];
    let pond_run = process_cost(
        Command::new(release_pond())
            .arg("--pond")
            .arg(&pond_dir)
            .args(["sql", "--format", "csv"])
            .arg(pond_sql),
        runs,
    );
    let duck_run = process_cost(
        Command::new(&duckdb)
            .args(["-readonly", "-csv"])
            .arg(&duck_db)
            .arg("-c")
            .arg(duck_sql.replace("{files}", &files)),
        runs,
    );
    let _ = writeln!(
        report,
        "\nwhole process, 1,000 series, one day: `pond sql` {:.1} ms, {:.1} MiB; \
         DuckDB CLI {:.1} ms, {:.1} MiB; ratio {:.2} (time), {:.2} (peak memory)",
        pond_run.0.as_secs_f64() * 1e3,
        pond_run.1,
        duck_run.0.as_secs_f64() * 1e3,
        duck_run.1,
        pond_run.0.as_secs_f64() / duck_run.0.as_secs_f64(),
        pond_run.1 / duck_run.1,
    );
    println!("{report}");
    let out = bench_dir().join("fleet-results.md");
    std::fs::write(&out, &report).unwrap();
    eprintln!("written to {}", out.display());
}

/// Where the time of the first query goes: planning alone (EXPLAIN), and
/// DataFusion's own Parquet scan of the same 1,000 files, listed by hand,
/// without the series column.
fn parts(
    rt: &tokio::runtime::Runtime,
    ctx: &SessionContext,
    pond_dir: &Path,
    runs: usize,
    report: &mut String,
) {
    let (_, first, _) = QUERIES[0];
    let planning = rt.block_on(time(ctx, &format!("EXPLAIN {first}"), runs));
    let day: Vec<String> = (0..SITES * SENSORS_PER_SITE)
        .map(|i| {
            format!(
                "/fleet/site{}/sensor{:03}",
                i / SENSORS_PER_SITE,
                i % SENSORS_PER_SITE
            )
        })
        .collect();
    let listing = rt.block_on(day_listing(ctx, pond_dir, &day));
    let _ = writeln!(
        report,
        "\nthe first query's parts: planning (EXPLAIN) {:.1} ms; DataFusion's ListingTable over \
         the same 1,000 files, without the series column: {:.1} ms",
        planning.as_secs_f64() * 1e3,
        listing.as_secs_f64() * 1e3,
    );
}

/// The pond and the DuckDB database with the table `files`, built once.
async fn build(dir: &Path, duckdb: &Path) -> (PathBuf, PathBuf) {
    let pond_dir = dir.join("pond");
    let duck = dir.join("fleet.duckdb");
    let done = dir.join(".complete");
    if done.exists() {
        return (pond_dir, duck);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let started = Instant::now();
    let manual = PondOptions::default().with_auto_compact_versions(0);
    let pond = Pond::create_with_options(pond_dir.to_str().unwrap(), manual)
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let sensors: Vec<String> = (0..SITES)
        .flat_map(|site| {
            (0..SENSORS_PER_SITE).map(move |s| format!("/fleet/site{site}/sensor{s:03}"))
        })
        .collect();
    // As a fleet reports: every sensor appends its day, day after day.
    for day in 0..DAYS {
        for sensor in &sensors {
            let batch = day_of(&mut rng, START + day * DAY);
            pond.append_batch(sensor, &batch, "ts").await.unwrap();
        }
        eprintln!("day {} appended after {:?}", day + 1, started.elapsed());
    }
    let mut rows = String::from("filename,series\n");
    for sensor in &sensors {
        for version in pond.versions(sensor).unwrap() {
            let _ = writeln!(
                rows,
                "{},{sensor}",
                pond_dir.join(&version.file_path).display()
            );
        }
    }
    let listing = dir.join("files.csv");
    std::fs::write(&listing, rows).unwrap();
    let status = Command::new(duckdb)
        .arg(&duck)
        .arg("-c")
        .arg(format!(
            "CREATE TABLE files AS SELECT * FROM read_csv('{}', header = true)",
            listing.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "DuckDB could not load the file list");
    std::fs::write(&done, b"").unwrap();
    (pond_dir, duck)
}

/// One sensor's day: a reading every 5 minutes, a random walk, and a status.
fn day_of(rng: &mut StdRng, start: i64) -> RecordBatch {
    let n = (DAY / STEP) as usize;
    let mut value = rng.random_range(0.0..100.0);
    let values: Vec<f64> = (0..n)
        .map(|_| {
            value = (value + rng.random_range(-1.0..1.0_f64)).clamp(0.0, 100.0);
            value
        })
        .collect();
    let status: Vec<&str> = values
        .iter()
        .map(|v| if *v > 90.0 { "hot" } else { "ok" })
        .collect();
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..n as i64).map(|i| start + i * STEP),
                )
                .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        ("value", Arc::new(Float64Array::from(values)) as ArrayRef),
        ("status", Arc::new(StringArray::from(status)) as ArrayRef),
    ])
    .unwrap()
}

/// The warm time of the first query's aggregation by DataFusion's
/// `ListingTable` over exactly the files the pond keeps for it.
async fn day_listing(ctx: &SessionContext, pond_dir: &Path, series: &[String]) -> Duration {
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    let pond = Pond::open(pond_dir.to_str().unwrap()).await.unwrap();
    let day = START + 10 * DAY;
    let urls: Vec<ListingTableUrl> = series
        .iter()
        .flat_map(|s| pond.scan_time_range(s, day, day + DAY).unwrap())
        .map(|f| ListingTableUrl::parse(pond_dir.join(&f.file_path).to_str().unwrap()).unwrap())
        .collect();
    let options = ListingOptions::new(Arc::new(
        datafusion::datasource::file_format::parquet::ParquetFormat::default(),
    ));
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await
        .unwrap();
    let table = ListingTable::try_new(config).unwrap();
    ctx.register_table("datafusion.public.day", Arc::new(table))
        .unwrap();
    time(
        ctx,
        "SELECT date_bin(INTERVAL '1 hour', ts) AS h, avg(value) FROM datafusion.public.day \
         WHERE ts >= '2024-01-11T00:00:00Z' AND ts < '2024-01-12T00:00:00Z' GROUP BY 1 ORDER BY 1",
        15,
    )
    .await
}

async fn csv(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(false)
            .build(&mut out);
        for batch in &batches {
            writer.write(batch).unwrap();
        }
    }
    String::from_utf8(out).unwrap()
}

/// The median of `runs` timed runs, after 3 untimed ones.
async fn time(ctx: &SessionContext, sql: &str, runs: usize) -> Duration {
    for _ in 0..3 {
        ctx.sql(sql).await.unwrap().collect().await.unwrap();
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        ctx.sql(sql).await.unwrap().collect().await.unwrap();
        times.push(t.elapsed());
    }
    median(times)
}
