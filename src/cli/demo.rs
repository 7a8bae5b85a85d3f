//! `pond demo`: a pond of synthetic sensor data, and reads that show pruning.
//!
//! Three sites each report temperature and humidity every 10 seconds; every
//! hour of data is one append (one version). Every 12 hours a late batch
//! arrives that re-sends readings from earlier hours, so a few versions
//! overlap in time, as real backfills do.

use std::io::Write;
use std::sync::Arc;

use crate::{Pond, SeriesExt, SeriesScanExec, format_micros};
use anyhow::{Context, Result};
use arrow::array::{ArrayRef, Float64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::{ExecutionPlan, collect};

/// 2026-01-01T00:00:00Z in µs.
const START: i64 = 1_767_225_600_000_000;
const HOUR: i64 = 3_600_000_000;
const STEP: i64 = 10_000_000;
const SITES: [&str; 3] = ["site1", "site2", "site3"];
const SENSORS: [&str; 2] = ["temperature", "humidity"];

pub(crate) async fn run(dir: &str, hours: i64) -> Result<()> {
    let pond = match Pond::open(dir).await {
        Ok(pond) if !pond.list_series().is_empty() => {
            eprintln!("using the demo pond already at {dir}");
            pond
        }
        _ => build(dir, hours).await?,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "pond at {}\n", pond.location())?;
    super::inspect::ls(&pond, None, super::OutputFormat::Table, &mut out)?;
    showcase(pond, &mut out).await
}

async fn build(dir: &str, hours: i64) -> Result<Pond> {
    // Many small versions show what pruning does; `pond compact` then
    // shows what compaction does.
    let options = crate::PondOptions::default().with_auto_compact_versions(0);
    let pond = Pond::create_with_options(dir, options)
        .await
        .with_context(|| {
            format!("creating the demo pond at {dir} (remove it or choose another directory)")
        })?;
    let started = std::time::Instant::now();
    for (s, site) in SITES.iter().enumerate() {
        for (k, sensor) in SENSORS.iter().enumerate() {
            let path = format!("/sites/{site}/{sensor}");
            for hour in 0..hours {
                pond.append_series_data(&path, &hour_batch(s, k, hour * HOUR, HOUR), "ts")
                    .await?;
                if hour % 12 == 11 {
                    // A late delivery: the middle of the hours 3 to 2 back.
                    let from = (hour - 2) * HOUR - HOUR / 2;
                    pond.append_series_data(&path, &hour_batch(s, k, from, HOUR / 4), "ts")
                        .await?;
                }
            }
            eprintln!(
                "wrote {path}: {} versions ({:.1?} so far)",
                pond.versions(&path)?.len(),
                started.elapsed()
            );
        }
    }
    Ok(pond)
}

/// Readings of one sensor from `offset` (µs after START) for `span` µs.
fn hour_batch(site: usize, sensor: usize, offset: i64, span: i64) -> RecordBatch {
    let times: Vec<i64> = (0..span / STEP)
        .map(|i| START + offset + i * STEP)
        .collect();
    let values: Vec<f64> = times
        .iter()
        .map(|t| {
            let day = ((t - START) as f64 / (24 * HOUR) as f64 - 0.375) * std::f64::consts::TAU;
            let noise = (splitmix(*t as u64 ^ (site as u64) << 56 ^ (sensor as u64) << 48) % 1000)
                as f64
                / 1000.0
                - 0.5;
            match sensor {
                0 => 4.0 + site as f64 + 6.0 * day.sin() + noise,
                _ => 70.0 - 15.0 * day.sin() + 4.0 * noise,
            }
        })
        .collect();
    let name = SENSORS[sensor];
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
        ),
        (name, Arc::new(Float64Array::from(values)) as ArrayRef),
    ])
    .expect("demo batch")
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Showcase queries, each with its answer and what pruning did for it.
async fn showcase(pond: Pond, out: &mut impl Write) -> Result<()> {
    let info = pond.series_info("/sites/site2/temperature")?;
    let (first, last) = info
        .min_event_time
        .zip(info.max_event_time)
        .context("the demo series is empty")?;
    // Two hours, 60% of the way through the data.
    let from = (first + (last - first) / 5 * 3) / HOUR * HOUR;
    let (from, to, three) = (
        format_micros(from),
        format_micros(from + 2 * HOUR),
        format_micros(from + 3 * HOUR),
    );
    let ctx = super::sql::session(Arc::new(pond));
    let queries = [
        (
            "Two hours of one series: the oplog keeps the versions that overlap them.",
            format!(
                "SELECT count(*) AS readings, round(avg(temperature), 2) AS mean, \
                 round(min(temperature), 2) AS min, round(max(temperature), 2) AS max\n\
                 FROM \"sites/site2\".temperature\n\
                 WHERE ts >= '{from}' AND ts < '{to}'"
            ),
        ),
        (
            "The latest readings: the TopK's filter skips every older version.",
            "SELECT ts, round(humidity, 2) AS humidity FROM \"sites/site1\".humidity \
             ORDER BY ts DESC LIMIT 3"
                .to_string(),
        ),
        (
            "Two series joined by time, hour by hour, over three hours.",
            format!(
                "SELECT date_trunc('hour', t.ts) AS hour, round(avg(t.temperature), 2) AS temperature,\n       \
                 round(avg(h.humidity), 2) AS humidity\n\
                 FROM \"sites/site3\".temperature t JOIN \"sites/site3\".humidity h ON t.ts = h.ts\n\
                 WHERE t.ts >= '{from}' AND t.ts < '{three}'\n\
                 GROUP BY 1 ORDER BY 1"
            ),
        ),
        (
            "A window read with the series_range table function.",
            format!(
                "SELECT min(ts) AS first, max(ts) AS last, count(*) AS readings\n\
                 FROM series_range('/sites/site2/temperature', '{from}', '{to}')"
            ),
        ),
    ];
    for (what, sql) in queries {
        writeln!(out, "\n-- {what}\n{sql};")?;
        let plan = ctx.sql(&sql).await?.create_physical_plan().await?;
        let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
        let batch = arrow::compute::concat_batches(&plan.schema(), &batches)?;
        super::output::print(out, &batch, super::OutputFormat::Table)?;
        for line in pruning(&plan) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// What pruning did in each series scan of an executed plan.
fn pruning(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut lines: Vec<String> = plan.children().into_iter().flat_map(pruning).collect();
    if let Some(scan) = plan.downcast_ref::<SeriesScanExec>() {
        let metrics = scan.metrics().unwrap_or_default();
        let count = |name: &str| metrics.sum_by_name(name).map_or(0, |v| v.as_usize());
        let skipped_by_statistics: usize = metrics
            .iter()
            .filter_map(|m| match m.value() {
                MetricValue::PruningMetrics {
                    name,
                    pruning_metrics,
                } if name == "files_ranges_pruned_statistics" => Some(pruning_metrics.pruned()),
                _ => None,
            })
            .sum();
        let total = count("versions_total");
        let oplog = count("versions_pruned") + count("versions_pruned_dynamic");
        let read = total.saturating_sub(oplog + skipped_by_statistics);
        lines.push(format!(
            "   {}: read {read} of {total} versions ({oplog} pruned by the oplog, \
             {skipped_by_statistics} skipped by a filter set while the query ran)",
            scan_series(scan)
        ));
    }
    lines
}

/// The series a scan reads, from its one-line description.
fn scan_series(scan: &SeriesScanExec) -> String {
    let text = datafusion::physical_plan::displayable(scan)
        .one_line()
        .to_string();
    text.split("series=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("?")
        .to_string()
}
