//! The pond is readable without pond: the oplog by Delta Lake's own DataFusion
//! scan, every data file by the plain (synchronous) Parquet reader, and the
//! row counts and exact µs bounds they show agree with the oplog.

use arrow::array::{AsArray, Int64Array};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pond::SeriesExt;

use crate::common::*;

#[tokio::test]
async fn oplog_and_data_files_read_by_independent_readers() {
    let (dir, pond) = temp_pond().await;
    // Nanosecond data, so exact bounds need rounding outwards.
    for v in 0..3i64 {
        let times = vec![
            v * 1_000_000 + 999,
            v * 1_000_000 + 1_501,
            v * 1_000_000 - 1,
        ];
        pond.append_series_data(
            "/interop/ns",
            &batch(TimeUnit::Nanosecond, Some("UTC"), times, 0),
            "ts",
        )
        .await
        .unwrap();
    }
    pond.append_series_data("/interop/us", &readings(&[10, 20]), "ts")
        .await
        .unwrap();

    let (table, ctx) = oplog_context(&dir).await;
    let rows = ctx
        .sql(
            "SELECT series, version, file_path, row_count, min_event_time, max_event_time, txn_seq \
             FROM oplog WHERE entry_type = 'append' ORDER BY series, version",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let rows = arrow::compute::concat_batches(&rows[0].schema(), &rows).unwrap();
    assert_eq!(rows.num_rows(), 4);
    let creates = ctx
        .sql("SELECT count(*) FROM oplog WHERE entry_type = 'create'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(creates[0].column(0).as_primitive::<Int64Type>().value(0), 2);

    let col = |name: &str| {
        let c = arrow::compute::cast(rows.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
        c.as_string::<i32>()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let int = |name: &str| {
        let c = arrow::compute::cast(rows.column_by_name(name).unwrap(), &DataType::Int64).unwrap();
        c.as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    };
    let (series, files) = (col("series"), col("file_path"));
    let (counts, mins, maxes, txns) = (
        int("row_count"),
        int("min_event_time"),
        int("max_event_time"),
        int("txn_seq"),
    );
    assert_eq!(int("version"), vec![1, 2, 3, 1]);
    // txn_seq is the Delta version that committed the row: the table was
    // created at version 0 and each append is one commit after it.
    assert_eq!(txns, vec![1, 2, 3, 4]);
    assert_eq!(table.version(), Some(4));

    for i in 0..rows.num_rows() {
        let file = std::fs::File::open(dir.path().join(&files[i])).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader.map(Result::unwrap).collect();
        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(n as i64, counts[i], "{}", files[i]);
        let ts: Vec<i64> = batches.iter().flat_map(|b| raw_i64(b, "ts")).collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "sorted by time: {}",
            files[i]
        );
        let unit_ns: i128 = if series[i].ends_with("ns") { 1 } else { 1_000 };
        let lo = *ts.iter().min().unwrap() as i128 * unit_ns;
        let hi = *ts.iter().max().unwrap() as i128 * unit_ns;
        let floor = lo.div_euclid(1_000) as i64;
        let ceil = (-((-hi).div_euclid(1_000))) as i64;
        assert_eq!(
            (mins[i], maxes[i]),
            (floor, ceil),
            "exact bounds of {}",
            files[i]
        );
    }
    assert_eq!(
        (mins[0], maxes[0]),
        (-1, 2),
        "ns -1 floors to -1µs, 1501ns ceils to 2µs"
    );
}
