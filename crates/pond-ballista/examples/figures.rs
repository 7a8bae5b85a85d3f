//! Figures of pond on a Ballista cluster of the real binaries, on this
//! machine (docs/BENCHMARKS.md, "On a cluster"): a full scan and a 10%
//! window of one series of 5,000 versions, on one executor and on two.
//! For each: the median time of five runs, the plan's stages and tasks
//! (from `EXPLAIN ANALYZE` on the cluster), and the bytes each executor
//! process read (`rchar` of `/proc/PID/io`: files and sockets).
//!
//! ```sh
//! cargo build --release -p pond-ballista --bins --examples
//! target/release/examples/figures            # POND_FIGURES_VERSIONS=5000
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::prelude::SessionContext;
use pond::{Pond, PondOptions, SeriesExt};
use pond_ballista::LocalCluster;

const JAN1: i64 = 1_704_067_200_000_000;
const MINUTE: i64 = 60_000_000;
/// Rows per version: one minute of readings every second.
const ROWS: i64 = 60;

fn version(i: i64) -> RecordBatch {
    let start = JAN1 + i * MINUTE;
    let ts: Vec<i64> = (0..ROWS).map(|r| start + r * 1_000_000).collect();
    let v: Vec<f64> = (0..ROWS)
        .map(|r| ((i * ROWS + r) % 1000) as f64 / 10.0)
        .collect();
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
        ),
        ("v", Arc::new(Float64Array::from(v)) as ArrayRef),
    ])
    .expect("batch")
}

/// Bytes the process has read through system calls (`rchar`).
fn read_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("rchar: ").and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// The plan column of an `EXPLAIN`, as text.
async fn plan_text(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<String> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut text = String::new();
    for batch in &batches {
        let column = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8)?;
        let column = column
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("plan text".into()))?;
        for plan in column.iter().flatten() {
            text.push_str(plan);
            text.push('\n');
        }
    }
    Ok(text)
}

async fn text(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<String> {
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let versions: i64 = std::env::var("POND_FIGURES_VERSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = tempfile::tempdir()?;
    let location = dir.path().join("pond");
    let options = PondOptions::default().with_auto_compact_versions(0);
    let pond = Pond::create_with_options(location.to_str().ok_or("path")?, options).await?;
    let started = Instant::now();
    for i in 0..versions {
        pond.append_series_data("/bench/series", &version(i), "ts")
            .await?;
    }
    println!(
        "{versions} versions of {ROWS} rows appended in {:.1?}",
        started.elapsed()
    );
    let pond = Arc::new(pond);
    let window_start = versions * 45 / 100;
    let window_end = window_start + versions / 10;
    let stamp = |i: i64| pond::format_micros(JAN1 + i * MINUTE);
    let queries = [
        (
            "full scan",
            "SELECT count(*), avg(v), max(v) FROM bench.series".to_string(),
        ),
        (
            "10% window",
            format!(
                "SELECT count(*), avg(v), max(v) FROM bench.series WHERE ts >= '{}' AND ts < '{}'",
                stamp(window_start),
                stamp(window_end)
            ),
        ),
    ];
    let bin_dir = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .ok_or("no binary directory")?
        .to_path_buf();
    let local = SessionContext::new();
    pond::register(&local, Arc::clone(&pond));
    let mut medians = Vec::new();
    for executors in [1, 2] {
        let cluster = LocalCluster::start(&bin_dir, executors, 2, &[])?;
        let ctx = pond::cluster::remote(&cluster.url(), Arc::clone(&pond)).await?;
        for (name, sql) in &queries {
            let expected = text(&local, sql).await?;
            assert_eq!(text(&ctx, sql).await?, expected, "{sql}");
            let before: Vec<u64> = cluster
                .executor_pids()
                .into_iter()
                .map(read_bytes)
                .collect();
            let mut times: Vec<Duration> = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                text(&ctx, sql).await?;
                times.push(t.elapsed());
            }
            times.sort();
            let read: Vec<String> = cluster
                .executor_pids()
                .into_iter()
                .zip(before)
                .map(|(pid, b)| format!("{:.1} MB", (read_bytes(pid) - b) as f64 / 5e6))
                .collect();
            let plan = plan_text(&ctx, &format!("EXPLAIN ANALYZE {sql}")).await?;
            let stages: Vec<String> = plan
                .lines()
                .filter(|l| l.contains("Stage["))
                .map(|l| l.trim().to_string())
                .collect();
            println!(
                "\n{name}, {executors} executor(s): median {:.1?}; read per run by each executor: {}",
                times[2],
                read.join(", ")
            );
            for line in stages {
                println!("  {line}");
            }
            medians.push(((*name, executors), times[2]));
        }
    }
    println!();
    for (name, _) in &queries {
        let one = medians.iter().find(|((n, e), _)| n == name && *e == 1);
        let two = medians.iter().find(|((n, e), _)| n == name && *e == 2);
        if let (Some((_, one)), Some((_, two))) = (one, two) {
            println!(
                "{name}: two executors take {:.2}× the time of one",
                two.as_secs_f64() / one.as_secs_f64()
            );
        }
    }
    Ok(())
}
