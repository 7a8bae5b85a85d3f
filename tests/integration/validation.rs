//! Bad input gets a clear error and leaves the pond exactly as it was.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::TimeUnit;
use pond::{Error, Pond, SeriesExt};

use crate::common::*;

/// Oplog version and every file under the pond, to compare before and after.
async fn snapshot(pond: &Pond, dir: &tempfile::TempDir) -> (i64, Vec<String>) {
    pond.refresh().await.unwrap();
    let mut files = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.display().to_string());
            }
        }
    }
    files.sort();
    (pond.oplog_version(), files)
}

#[tokio::test]
async fn rejects_bad_input_and_writes_nothing() {
    let (dir, pond) = temp_pond().await;
    pond.append_series_data("/s/ok", &readings(&[1, 2, 3]), "ts")
        .await
        .unwrap();
    let before = snapshot(&pond, &dir).await;

    let null_ts = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![Some(1), None])) as ArrayRef,
        ),
        (
            "reading",
            Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let int_ts = RecordBatch::try_from_iter([
        ("ts", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        (
            "reading",
            Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let retyped = RecordBatch::try_from_iter([
        (
            "ts",
            timestamps(TimeUnit::Microsecond, Some("UTC"), vec![9]),
        ),
        ("reading", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
    ])
    .unwrap();
    let other_unit = batch(TimeUnit::Nanosecond, None, vec![9], 0);
    let empty = readings(&[]);

    let cases: Vec<(&str, RecordBatch, &str, &str)> = vec![
        ("/s/ok", null_ts.clone(), "ts", "NULL"),
        ("/s/new", null_ts, "ts", "NULL"),
        ("/s/new", int_ts, "ts", "not a timestamp"),
        ("/s/new", readings(&[1]), "time", "\"time\" is missing"),
        ("/s/ok", retyped, "ts", "\"reading\" has type Int64"),
        ("/s/ok", other_unit, "ts", "\"ts\" has type Timestamp(ns)"),
        ("/s/ok", empty, "ts", "no rows"),
        ("", readings(&[1]), "ts", "empty"),
        ("relative/path", readings(&[1]), "ts", "must start with '/'"),
        ("/a/../b", readings(&[1]), "ts", "'..'"),
        ("/a/./b", readings(&[1]), "ts", "'.'"),
        ("/a//b", readings(&[1]), "ts", "empty"),
        ("/a/b c", readings(&[1]), "ts", "' '"),
        ("/a/b;drop", readings(&[1]), "ts", "';'"),
    ];
    for (path, batch, ts, needle) in cases {
        let err = pond
            .append_series_data(path, &batch, ts)
            .await
            .expect_err(path)
            .to_string();
        assert!(
            err.contains(needle),
            "{path:?}: {err:?} should mention {needle:?}"
        );
        assert!(
            path.is_empty() || err.contains(path),
            "{err:?} names the series {path:?}"
        );
        assert_eq!(
            snapshot(&pond, &dir).await,
            before,
            "{path:?} {needle:?} left the pond as it was"
        );
    }
    assert_eq!(pond.versions("/s/ok").unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_series_not_a_pond_and_existing_pond_are_errors() {
    let (dir, pond) = temp_pond().await;
    let err = pond.read_series_all("/nope").await.unwrap_err();
    assert!(matches!(err, Error::UnknownSeries { .. }), "{err}");
    assert!(err.to_string().contains("/nope"));

    let err = Pond::create(location(&dir)).await.unwrap_err();
    assert!(matches!(err, Error::PondExists { .. }), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = Pond::open(location(&empty)).await.unwrap_err();
    assert!(matches!(err, Error::NotAPond { .. }), "{err}");
    assert!(err.to_string().contains(location(&empty)), "{err}");

    let missing = empty.path().join("not-here");
    let err = Pond::open(missing.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::NotAPond { .. }), "{err}");
    assert!(!missing.exists(), "open does not create anything");

    let file = empty.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = Pond::open(file.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::NotAPond { .. }), "{err}");
}
