//! Embedding pond in your own DataFusion program: register a pond in a
//! `SessionContext`, then query its series with SQL and with the DataFrame
//! API, one by one or many as one table (`series_union`).
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

    // A second series beside it, with its own time column and values.
    let times: Vec<i64> = (0..12 * 6).map(|i| START + i * 10 * MINUTE).collect();
    let bar: Vec<f64> = (0..12 * 6).map(|i| 1.0 + i as f64 / 100.0).collect();
    let batch = RecordBatch::try_from_iter([
        (
            "time",
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
        ),
        ("bar", Arc::new(Float64Array::from(bar)) as ArrayRef),
    ])?;
    pond.append_series_data("/plant/boiler/pressure", &batch, "time")
        .await?;

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

    println!("series_union(): both series of the boiler as one table, hour by hour");
    let sql = "SELECT series, date_bin(INTERVAL '1 hour', ts) AS h, avg(celsius), avg(bar) \
               FROM series_union('/plant/boiler/*') \
               WHERE ts >= '2026-01-01T03:00:00Z' AND ts < '2026-01-01T06:00:00Z' \
               GROUP BY 1, 2 ORDER BY 1, 2";
    let union = ctx.sql(sql).await?.collect().await?;
    arrow::util::pretty::print_batches(&union)?;
    // The same as the UNION ALL a user would otherwise write.
    let by_hand = ctx
        .sql(
            "SELECT series, date_bin(INTERVAL '1 hour', ts) AS h, avg(celsius), avg(bar) FROM ( \
               SELECT '/plant/boiler/temperature' AS series, ts, celsius, NULL AS bar \
               FROM \"plant/boiler\".temperature \
               UNION ALL SELECT '/plant/boiler/pressure', time, NULL, bar \
               FROM \"plant/boiler\".pressure) \
             WHERE ts >= '2026-01-01T03:00:00Z' AND ts < '2026-01-01T06:00:00Z' \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await?
        .collect()
        .await?;
    let text = |batches: &[RecordBatch]| -> Result<String, arrow::error::ArrowError> {
        let mut lines = Vec::new();
        for batch in batches {
            let batch = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)
                .map(|series| {
                    let mut columns = batch.columns().to_vec();
                    columns[0] = series;
                    columns
                })?;
            for row in 0..batch[0].len() {
                let cells: Vec<String> = batch
                    .iter()
                    .map(|c| arrow::util::display::array_value_to_string(c, row))
                    .collect::<Result<_, _>>()?;
                lines.push(cells.join(","));
            }
        }
        Ok(lines.join("\n"))
    };
    assert_eq!(
        text(&union)?,
        text(&by_hand)?,
        "series_union differs from UNION ALL"
    );
    ctx.sql(&format!("EXPLAIN {sql}")).await?.show().await?;

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
