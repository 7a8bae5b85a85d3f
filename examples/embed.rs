//! Embedding pond in your own DataFusion program: register a pond in a
//! `SessionContext`, then query its series with SQL and with the DataFrame API.
//!
//! Run with `cargo run --example embed` (it writes a small pond in a
//! temporary directory and removes it at the end).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use pond::{Pond, SeriesExt};

/// 2026-01-01T00:00:00Z in µs.
const START: i64 = 1_767_225_600_000_000;
const MINUTE: i64 = 60_000_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let pond = Arc::new(Pond::create(dir.path().to_str().ok_or("non-UTF-8 temp dir")?).await?);

    // Twelve appends of one hour each: twelve versions.
    for hour in 0..12 {
        let times: Vec<i64> = (0..60).map(|m| START + (hour * 60 + m) * MINUTE).collect();
        let celsius: Vec<f64> = (0..60)
            .map(|m| 15.0 + hour as f64 + m as f64 / 60.0)
            .collect();
        let batch = RecordBatch::try_from_iter([
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
            ),
            ("celsius", Arc::new(Float64Array::from(celsius)) as ArrayRef),
        ])?;
        pond.append_series_data("/plant/boiler/temperature", &batch, "ts")
            .await?;
    }

    // Your own session; pond adds its catalog and table functions to it.
    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::clone(&pond));

    println!("SQL: two hours of one series");
    let sql = "SELECT min(celsius), max(celsius), count(*) FROM \"plant/boiler\".temperature \
               WHERE ts >= '2026-01-01T03:00:00Z' AND ts < '2026-01-01T05:00:00Z'";
    ctx.sql(sql).await?.show().await?;
    ctx.sql(&format!("EXPLAIN {sql}")).await?.show().await?;

    println!("DataFrame API: from 03:00 on");
    let start =
        ScalarValue::TimestampMicrosecond(Some(START + 3 * 60 * MINUTE), Some("UTC".into()));
    let df = ctx
        .table("\"plant/boiler\".temperature")
        .await?
        .filter(col("ts").gt_eq(lit(start)))?
        .aggregate(
            vec![],
            vec![datafusion::functions_aggregate::expr_fn::avg(col(
                "celsius",
            ))],
        )?;
    df.show().await?;

    println!("series_versions(): the first three versions");
    ctx.sql(
        "SELECT version, row_count, min_event_time, max_event_time \
             FROM series_versions('/plant/boiler/temperature') ORDER BY version LIMIT 3",
    )
    .await?
    .show()
    .await?;
    Ok(())
}
