//! Reads never go stale: a session that resolved a table, kept a DataFrame
//! or prepared a statement earlier sees, on its next execution, the
//! versions and series another process committed since; so do the table
//! functions, `SHOW TABLES` and `information_schema`.

use std::process::Command;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::SeriesExt;

use crate::common::*;

async fn count_of(df: DataFrame) -> i64 {
    let batches = df.collect().await.unwrap();
    let column = arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
    column.as_primitive::<Int64Type>().value(0)
}

async fn names(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
            (0..c.len())
                .map(|i| c.as_string::<i32>().value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `pond append` in a process of its own.
fn append_in_another_process(pond: &str, series: &str, csv: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.csv");
    std::fs::write(&file, csv).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pond"))
        .args(["--pond", pond, "append", series, file.to_str().unwrap()])
        .env_remove("POND")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_read_sees_what_another_process_committed_before_it() {
    let (dir, pond) = temp_pond().await;
    pond.append_series_data("/plant/boiler", &readings(&[JAN1, JAN1 + 1]), "ts")
        .await
        .unwrap();
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    pond::register(&ctx, Arc::new(pond));

    // Resolved once, executed twice.
    let kept = ctx.sql("SELECT count(*) FROM plant.boiler").await.unwrap();
    let table = ctx.table("plant.boiler").await.unwrap();
    let window = ctx
        .sql("SELECT count(*) FROM series_range('/plant/boiler', '2024-01-01T00:00:00Z', NULL)")
        .await
        .unwrap();
    let versions = ctx
        .sql("SELECT count(*) FROM series_versions('/plant/boiler')")
        .await
        .unwrap();
    ctx.sql("PREPARE since(TIMESTAMP) AS SELECT count(*) FROM plant.boiler WHERE ts >= $1")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let execute = "EXECUTE since('2024-01-01T00:00:00')";
    assert_eq!(count_of(kept.clone()).await, 2);
    assert_eq!(table.clone().count().await.unwrap(), 2);
    assert_eq!(count_of(window.clone()).await, 2);
    assert_eq!(count_of(versions.clone()).await, 1);
    assert_eq!(count_of(ctx.sql(execute).await.unwrap()).await, 2);
    let tables = "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                  WHERE table_catalog = 'pond' AND table_schema = 'plant' ORDER BY 1";
    assert_eq!(names(&ctx, tables).await, ["plant.boiler"]);

    // Another process adds a version and a series.
    let location = location(&dir);
    append_in_another_process(
        location,
        "/plant/boiler",
        "ts,reading\n2024-01-02T00:00:00Z,1.5\n2024-01-02T00:00:01Z,2.5\n2024-01-02T00:00:02Z,3.5\n",
    );
    append_in_another_process(
        location,
        "/plant/pump",
        "ts,rpm\n2024-01-02T00:00:00Z,1200\n",
    );

    assert_eq!(count_of(kept).await, 5, "a DataFrame kept from before");
    assert_eq!(table.count().await.unwrap(), 5, "a table resolved before");
    assert_eq!(count_of(window).await, 5, "series_range planned before");
    assert_eq!(
        count_of(versions).await,
        2,
        "series_versions planned before"
    );
    assert_eq!(
        count_of(ctx.sql(execute).await.unwrap()).await,
        5,
        "a statement prepared before"
    );
    assert_eq!(
        names(&ctx, tables).await,
        ["plant.boiler", "plant.pump"],
        "information_schema"
    );
    let shown = ctx
        .sql("SHOW TABLES")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&shown)
        .unwrap()
        .to_string();
    assert!(text.contains("pump"), "SHOW TABLES\n{text}");
    let pump = "SELECT count(*) FROM series_range('/plant/pump', NULL, NULL)";
    assert_eq!(count_of(ctx.sql(pump).await.unwrap()).await, 1);
}

#[tokio::test]
async fn a_column_another_process_added_is_there_for_the_next_query() {
    let (dir, pond) = temp_pond().await;
    let at = location(&dir).to_string();
    append_in_another_process(
        &at,
        "/plant/boiler",
        "ts,reading\n2024-01-01T00:00:00Z,1.0\n",
    );
    let pond = Arc::new(pond);
    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::clone(&pond));
    let rows = ctx.sql("SELECT count(*) FROM plant.boiler").await.unwrap();
    assert_eq!(count_of(rows).await, 1);
    append_in_another_process(
        &at,
        "/plant/boiler",
        "ts,reading,pressure\n2024-01-01T00:01:00Z,2.0,7.5\n",
    );
    let rows = ctx
        .sql("SELECT count(pressure) FROM plant.boiler")
        .await
        .unwrap();
    assert_eq!(count_of(rows).await, 1);
}

/// A local pond reads its log's newest commit and `_last_checkpoint` in
/// place, from the path its URL names: under a folder whose name needs
/// percent-encoding in a URL, reads still follow commits from another
/// handle, across the checkpoints written every ten of them.
#[tokio::test]
async fn a_pond_under_an_awkward_path_follows_another_handles_commits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("my pond 100% ü#1");
    let root = root.to_str().unwrap();
    let reader = pond::Pond::create_with_options(root, manual())
        .await
        .unwrap();
    let writer = pond::Pond::open(root).await.unwrap();
    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::new(reader));
    for i in 0..25 {
        writer
            .append_series_data("/plant/boiler", &readings(&[JAN1 + i]), "ts")
            .await
            .unwrap();
        let df = ctx.sql("SELECT count(*) FROM plant.boiler").await.unwrap();
        assert_eq!(count_of(df).await, i + 1, "after append {i}");
    }
    let log = std::path::Path::new(root).join("oplog/_delta_log");
    assert!(
        log.join("_last_checkpoint").exists(),
        "the appends wrote a checkpoint"
    );
}
