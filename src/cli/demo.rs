//! `pond demo`: a pond of synthetic sensor data, and reads that show pruning.
//!
//! Three sites each report temperature and humidity every 10 seconds; every
//! hour of data is one append (one version). Every 12 hours a late batch
//! arrives that re-sends readings from earlier hours, so a few versions
//! overlap in time, as real backfills do.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow::datatypes::Float64Type;
use pond::{Pond, SeriesExt, format_micros};

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
    super::print_series(&pond, "", &mut out)?;
    showcase(&pond, &mut out).await
}

async fn build(dir: &str, hours: i64) -> Result<Pond> {
    let pond = Pond::create(dir).await.with_context(|| {
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

async fn showcase(pond: &Pond, out: &mut impl Write) -> Result<()> {
    let path = "/sites/site2/temperature";
    let info = pond.series_info(path)?;
    let (first, last) = info
        .min_event_time
        .zip(info.max_event_time)
        .context("the demo series is empty")?;
    // Two hours, 60% of the way through the data.
    let from = (first + (last - first) / 5 * 3) / HOUR * HOUR;
    let to = from + 2 * HOUR;
    writeln!(
        out,
        "\n{path} from {} to {}:",
        format_micros(from),
        format_micros(to)
    )?;
    describe_read(pond, path, from, to, out).await?;

    writeln!(out, "\nthe last hour of every series:")?;
    for s in pond.list_series() {
        let end = s.max_event_time.unwrap_or(0) + 1;
        write!(out, "  {:<28}", s.path)?;
        describe_read(pond, &s.path, end - HOUR, end, out).await?;
    }

    writeln!(out, "\nall of {path}:")?;
    describe_read(pond, path, pond::MIN_TIME, pond::MAX_TIME, out).await?;
    Ok(())
}

async fn describe_read(
    pond: &Pond,
    path: &str,
    start: i64,
    end: i64,
    out: &mut impl Write,
) -> Result<()> {
    let stream = pond.read_series_time_range(path, start, end).await?;
    let (opened, total) = (stream.versions().len(), stream.total_versions());
    let column = stream.schema().field(1).name().clone();
    let batches = stream.try_collect().await?;
    let values: Vec<f64> = batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(&column)
                .expect("value column")
                .as_primitive::<Float64Type>();
            (0..a.len())
                .filter(|i| a.is_valid(*i))
                .map(|i| a.value(i))
                .collect::<Vec<_>>()
        })
        .collect();
    let stats = if values.is_empty() {
        String::new()
    } else {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!(", {column} min {min:.2} mean {mean:.2} max {max:.2}")
    };
    writeln!(
        out,
        "  {} rows{stats}; opened {opened} of {total} versions",
        values.len()
    )?;
    Ok(())
}
