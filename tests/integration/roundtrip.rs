//! Appending and reading back: every timestamp unit and zone, exact bounds,
//! sorting, streaming appends, and the shape of the data files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use parquet::basic::Encoding;
use parquet::file::reader::{FileReader, SerializedFileReader};
use pond::SeriesExt;

use crate::common::*;

const UNITS: [TimeUnit; 4] = [
    TimeUnit::Second,
    TimeUnit::Millisecond,
    TimeUnit::Microsecond,
    TimeUnit::Nanosecond,
];
const ZONES: [Option<&str>; 4] = [None, Some("UTC"), Some("+05:30"), Some("America/New_York")];

fn micros_per(unit: TimeUnit) -> f64 {
    match unit {
        TimeUnit::Second => 1e6,
        TimeUnit::Millisecond => 1e3,
        TimeUnit::Microsecond => 1.0,
        TimeUnit::Nanosecond => 1e-3,
    }
}

#[tokio::test]
async fn every_unit_and_zone_round_trips_sorted() {
    let (_dir, pond) = temp_pond().await;
    for (u, unit) in UNITS.into_iter().enumerate() {
        for (z, zone) in ZONES.into_iter().enumerate() {
            let path = format!("/units/u{u}/z{z}");
            // Out of order, negative (before 1970) and positive times.
            let times = vec![1_700_000_123, -86_400, 5, 1_700_000_000];
            let (min, max) = pond
                .append_series_data(&path, &batch(unit, zone, times.clone(), 0), "ts")
                .await
                .unwrap();
            let scale = micros_per(unit);
            assert_eq!(min, (-86_400.0 * scale).floor() as i64, "{path}");
            assert_eq!(max, (1_700_000_123.0 * scale).ceil() as i64, "{path}");

            let back = read_all(&pond, &path).await;
            let ts_field = back.schema().field_with_name("ts").unwrap().clone();
            assert_eq!(
                ts_field.data_type(),
                &DataType::Timestamp(unit, zone.map(Into::into)),
                "{path}: unit and zone are kept"
            );
            assert!(!ts_field.is_nullable(), "{path}: time column is NOT NULL");
            assert_eq!(
                raw_i64(&back, "ts"),
                vec![-86_400, 5, 1_700_000_000, 1_700_000_123]
            );
            assert_eq!(
                raw_i64(&back, "value"),
                vec![1, 2, 3, 0],
                "{path}: rows move with their time"
            );
        }
    }
}

#[tokio::test]
async fn nanosecond_bounds_are_exact_at_the_microsecond() {
    let (_dir, pond) = temp_pond().await;
    let b = batch(
        TimeUnit::Nanosecond,
        None,
        vec![1_500, 2_000_999, -1_500],
        0,
    );
    let (min, max) = pond.append_series_data("/ns", &b, "ts").await.unwrap();
    assert_eq!((min, max), (-2, 2_001), "floor of min, ceiling of max");
    let versions = pond.versions("/ns").unwrap();
    assert_eq!(
        (versions[0].min_event_time, versions[0].max_event_time),
        (-2, 2_001)
    );

    // A range that starts inside the last microsecond keeps the version but
    // drops the rows before the start.
    let rows = pond
        .read_series_time_range("/ns", 2_001, 3_000)
        .await
        .unwrap();
    assert_eq!(rows.versions().len(), 1);
    let total: usize = rows
        .try_collect()
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(total, 0, "2000.999µs is before 2001µs");
    let rows = pond
        .read_series_time_range("/ns", 2_000, 2_001)
        .await
        .unwrap();
    let got = rows.try_collect().await.unwrap();
    assert_eq!(raw_i64(&got[0], "ts"), vec![2_000_999]);
}

#[tokio::test]
async fn time_range_reads_only_matching_rows_and_versions() {
    let (_dir, pond) = temp_pond().await;
    for v in 0..5i64 {
        let times: Vec<i64> = (0..10).map(|i| v * 100 + i * 10).collect();
        pond.append_series_data("/r", &readings(&times), "ts")
            .await
            .unwrap();
    }
    let stream = pond.read_series_time_range("/r", 150, 250).await.unwrap();
    assert_eq!(stream.total_versions(), 5);
    assert_eq!(stream.time_range(), (150, 250));
    let opened: Vec<i64> = stream.versions().iter().map(|f| f.version).collect();
    assert_eq!(opened, vec![2, 3]);
    assert_eq!(stream.schema_info().timestamp_column, "ts");
    let batches = stream.try_collect().await.unwrap();
    let ts: Vec<i64> = batches.iter().flat_map(|b| raw_i64(b, "ts")).collect();
    assert_eq!(ts, vec![150, 160, 170, 180, 190, 200, 210, 220, 230, 240]);
}

#[tokio::test]
async fn streamed_append_is_one_version_and_sorts_out_of_order_input_with_spilling() {
    let options = manual()
        .with_sort_memory_bytes(2 * 1024 * 1024)
        .with_row_group_rows(10_000);
    let (dir, pond) = temp_pond_with(options).await;
    // 40 batches of 5,000 rows, in descending time order overall.
    let batches: Vec<RecordBatch> = (0..40i64)
        .rev()
        .map(|b| {
            let times: Vec<i64> = (0..5_000).map(|i| b * 5_000 + i).collect();
            readings(&times)
        })
        .collect();
    let schema = batches[0].schema();
    let input = futures::stream::iter(batches.into_iter().map(Ok)).boxed();
    let input = Box::pin(RecordBatchStreamAdapter::new(schema, input));
    let outcome = pond
        .append_series_stream("/big", input, "ts")
        .await
        .unwrap();
    assert_eq!(outcome.version, 1);
    assert_eq!(outcome.row_count, 200_000);
    assert_eq!(
        (outcome.min_event_time, outcome.max_event_time),
        (0, 199_999)
    );

    let back = read_all(&pond, "/big").await;
    let ts = raw_i64(&back, "ts");
    assert_eq!(ts, (0..200_000).collect::<Vec<_>>());

    // The data file is sorted, declares it, and has statistics and a page index.
    let file = std::fs::File::open(dir.path().join(&outcome.file_path)).unwrap();
    let options = parquet::file::serialized_reader::ReadOptionsBuilder::new()
        .with_page_index()
        .build();
    let reader = SerializedFileReader::new_with_options(file, options).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.num_row_groups(), 20);
    assert!(meta.column_index().is_some() && meta.offset_index().is_some());
    let rg = meta.row_group(0);
    assert!(rg.column(0).statistics().is_some());
    let sorting = rg.sorting_columns().unwrap();
    assert_eq!((sorting[0].column_idx, sorting[0].descending), (0, false));
    // Times delta-encoded, floats plain: neither has a dictionary page.
    let (ts, reading) = (rg.column(0), rg.column(1));
    assert!(
        ts.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED),
        "{:?}",
        ts.encodings().collect::<Vec<_>>()
    );
    assert_eq!(ts.dictionary_page_offset(), None);
    assert_eq!(reading.dictionary_page_offset(), None);
    let staged_left: Vec<_> = walk(dir.path().join("data"))
        .into_iter()
        .filter(|p| !p.ends_with(".parquet"))
        .collect();
    assert!(
        staged_left.is_empty(),
        "no staging files left: {staged_left:?}"
    );
}

fn walk(dir: std::path::PathBuf) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn schema_widens_with_nullable_columns_and_old_versions_read_null() {
    let (_dir, pond) = temp_pond().await;
    pond.append_series_data("/w", &readings(&[1, 2]), "ts")
        .await
        .unwrap();
    let mut wide = readings(&[3]);
    let extra: Arc<dyn arrow::array::Array> =
        Arc::new(arrow::array::StringArray::from(vec![Some("calibrated")]));
    let mut fields: Vec<_> = wide.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(arrow::datatypes::Field::new(
        "note",
        DataType::Utf8,
        true,
    )));
    let mut cols = wide.columns().to_vec();
    cols.push(extra);
    wide = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols).unwrap();
    pond.append_series_data("/w", &wide, "ts").await.unwrap();
    // A later append may leave the nullable column out again.
    pond.append_series_data("/w", &readings(&[4]), "ts")
        .await
        .unwrap();

    let info = pond.series_info("/w").unwrap();
    assert_eq!(info.schema.fields().len(), 3);
    let back = read_all(&pond, "/w").await;
    let notes = back
        .column_by_name("note")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let notes: Vec<Option<&str>> = notes.iter().collect();
    assert_eq!(notes, vec![None, None, Some("calibrated"), None]);

    let entries = pond.oplog_entries().await.unwrap();
    let with_schema: Vec<(String, i64)> = entries
        .iter()
        .filter(|e| e.schema.is_some())
        .map(|e| (e.entry_type.to_string(), e.version))
        .collect();
    assert_eq!(
        with_schema,
        vec![("create".into(), 0), ("append".into(), 2)],
        "the schema is recorded on create and where it changed"
    );
}
