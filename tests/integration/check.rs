//! A failure between the data file and the commit leaves no visible version;
//! `check` reports garbage and corruption.

use std::time::Duration;

use futures::StreamExt;
use pond::{Pond, Problem, SeriesExt};

use crate::common::*;

/// Writes the data file of an append of `batch` without committing it.
async fn stage(pond: &Pond, path: &str, batch: arrow::array::RecordBatch) -> pond::StagedAppend {
    let schema = batch.schema();
    pond.stage_append(
        path,
        schema,
        futures::stream::iter([Ok(batch)]).boxed(),
        "ts",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn crash_before_commit_leaves_no_version_and_check_reports_garbage() {
    let (dir, pond) = temp_pond().await;
    pond.append_series_data("/c/s", &readings(&[1, 2]), "ts")
        .await
        .unwrap();
    let version_before = pond.oplog_version();

    // The process "dies" after writing the data file: the staged append is
    // never committed.
    let b = readings(&[3, 4]);
    let staged = stage(&pond, "/c/s", b).await;
    let orphan = staged.file_path();
    assert!(
        dir.path().join(&orphan).exists(),
        "the data file was written"
    );
    drop(staged);

    // A crash while creating a series leaves no series either.
    let b = readings(&[5]);
    let staged = stage(&pond, "/c/new", b).await;
    let orphan_new = staged.file_path();
    drop(staged);

    let reopened = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    assert_eq!(reopened.oplog_version(), version_before);
    assert_eq!(reopened.versions("/c/s").unwrap().len(), 1);
    assert!(reopened.series_info("/c/new").is_err());
    assert_eq!(
        raw_i64(&read_all(&reopened, "/c/s").await, "ts"),
        vec![1, 2]
    );

    // Just written: an append might still be in progress.
    let report = reopened.check().await.unwrap();
    assert!(
        report.garbage.is_empty() && report.pending.len() == 2,
        "{report:?}"
    );
    let report = reopened.check_with_grace(Duration::ZERO).await.unwrap();
    let mut expected = vec![orphan.clone(), orphan_new];
    expected.sort();
    assert_eq!(report.garbage, expected);
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.files_checked, 1);

    // Files pond did not name (a user's own `data/` folder where the pond
    // was made) are neither garbage nor deleted by vacuum.
    let foreign = dir.path().join("data").join("notes.txt");
    std::fs::write(&foreign, "mine").unwrap();
    let nested = dir.path().join("data").join("other").join("1-x.parquet");
    std::fs::create_dir_all(nested.parent().unwrap()).unwrap();
    std::fs::write(&nested, "mine").unwrap();
    let report = reopened.check_with_grace(Duration::ZERO).await.unwrap();
    assert_eq!(report.garbage, expected);
    let options = pond::VacuumOptions::new(Duration::ZERO).with_grace(Duration::ZERO);
    let done = reopened.vacuum_with_options(&options).await.unwrap();
    assert_eq!(done.garbage_files, 2);
    assert!(foreign.exists() && nested.exists());
    assert!(!dir.path().join(&orphan).exists());

    // The next append is unaffected and takes version 2.
    let outcome = reopened
        .append_batch("/c/s", &readings(&[9]), "ts")
        .await
        .unwrap();
    assert_eq!(outcome.version, 2);
}

#[tokio::test]
async fn aborted_stage_removes_its_file() {
    let (dir, pond) = temp_pond().await;
    let b = readings(&[1]);
    let staged = stage(&pond, "/a/s", b).await;
    let path = dir.path().join(staged.file_path());
    pond.abort_append(staged).await;
    assert!(!path.exists());
    assert!(
        pond.check_with_grace(Duration::ZERO)
            .await
            .unwrap()
            .is_clean()
    );
}

#[tokio::test]
async fn a_file_that_waited_too_long_for_its_commit_is_not_committed() {
    // A vacuum may have taken such a file for garbage: committing it could
    // make a version without its data.
    let dir = tempfile::tempdir().unwrap();
    let options = manual().with_commit_within(Duration::from_millis(300));
    let pond = Pond::create_with_options(location(&dir), options)
        .await
        .unwrap();
    pond.append_series_data("/w/s", &readings(&[1]), "ts")
        .await
        .unwrap();
    let staged = stage(&pond, "/w/s", readings(&[2])).await;
    let file = dir.path().join(staged.file_path());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let refused = pond.commit_append(staged).await;
    assert!(
        matches!(&refused, Err(pond::Error::StaleWrite { path, .. }) if path == "/w/s"),
        "{refused:?}"
    );
    assert!(!file.exists(), "the refused file is removed");
    assert_eq!(raw_i64(&read_all(&pond, "/w/s").await, "ts"), vec![1]);
    assert!(
        pond.check_with_grace(Duration::ZERO)
            .await
            .unwrap()
            .is_clean()
    );
    // Committed in time, it lands.
    let staged = stage(&pond, "/w/s", readings(&[3])).await;
    pond.commit_append(staged).await.unwrap();
    assert_eq!(raw_i64(&read_all(&pond, "/w/s").await, "ts"), vec![1, 3]);
}

#[tokio::test]
async fn check_reports_missing_changed_and_truncated_files() {
    let (dir, pond) = temp_pond().await;
    for i in 0..3 {
        pond.append_series_data("/k/s", &readings(&[i * 10, i * 10 + 1]), "ts")
            .await
            .unwrap();
    }
    let files = pond.versions("/k/s").unwrap();
    std::fs::remove_file(dir.path().join(&files[0].file_path)).unwrap();
    // Same size, other bytes.
    let p1 = dir.path().join(&files[1].file_path);
    let mut bytes = std::fs::read(&p1).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&p1, &bytes).unwrap();
    let p2 = dir.path().join(&files[2].file_path);
    let bytes = std::fs::read(&p2).unwrap();
    std::fs::write(&p2, &bytes[..bytes.len() - 10]).unwrap();

    let report = pond.check().await.unwrap();
    assert!(report.garbage.is_empty());
    let problems: Vec<(i64, &Problem)> = report
        .problems
        .iter()
        .map(|p| (p.version, &p.problem))
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_eq!(problems[0], (1, &Problem::Missing));
    assert!(
        matches!(problems[1], (2, Problem::HashMismatch { .. })),
        "{problems:?}"
    );
    assert!(
        matches!(problems[2], (3, Problem::SizeMismatch { .. })),
        "{problems:?}"
    );
}
