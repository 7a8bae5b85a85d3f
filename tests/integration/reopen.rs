//! Re-opening a pond, following other writers incrementally, and keeping the
//! oplog small enough to open fast.

use pond::{Pond, SeriesExt};

use crate::common::*;

#[tokio::test]
async fn reopen_sees_the_same_series_and_versions() {
    let (dir, pond) = temp_pond().await;
    for i in 0..4 {
        pond.append_series_data("/a/x", &readings(&[i * 100, i * 100 + 5]), "ts")
            .await
            .unwrap();
    }
    pond.append_series_data("/b", &readings(&[7]), "ts")
        .await
        .unwrap();

    let again = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    assert_eq!(again.oplog_version(), pond.oplog_version());
    assert_eq!(
        again.versions("/a/x").unwrap(),
        pond.versions("/a/x").unwrap()
    );
    let paths: Vec<String> = again.list_series().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, vec!["/a/x", "/b"]);
    let info = again.series_info("/a/x").unwrap();
    assert_eq!((info.versions, info.rows), (4, 8));
    assert_eq!(
        (info.min_event_time, info.max_event_time),
        (Some(0), Some(305))
    );
    assert_eq!(
        again
            .scan_time_range("/a/x", 100, 201)
            .unwrap()
            .iter()
            .map(|f| f.version)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
}

#[tokio::test]
async fn refresh_reads_only_new_commits() {
    let (dir, writer) = temp_pond().await;
    writer
        .append_series_data("/inc", &readings(&[1]), "ts")
        .await
        .unwrap();
    let reader = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    assert_eq!(reader.versions("/inc").unwrap().len(), 1);

    // Make every oplog data file that exists now unreadable: a reader that
    // re-read the whole oplog would fail; one that reads only the new
    // commits does not.
    let oplog = dir.path().join("oplog");
    let mut old = Vec::new();
    for e in std::fs::read_dir(&oplog).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "parquet") {
            std::fs::rename(&p, p.with_extension("hidden")).unwrap();
            old.push(p);
        }
    }
    assert!(!old.is_empty());

    writer
        .append_series_data("/inc", &readings(&[2]), "ts")
        .await
        .unwrap();
    writer
        .append_series_data("/other", &readings(&[3]), "ts")
        .await
        .unwrap();
    reader.refresh().await.unwrap();
    assert_eq!(reader.oplog_version(), writer.oplog_version());
    assert_eq!(reader.versions("/inc").unwrap().len(), 2);
    assert_eq!(reader.list_series().len(), 2);
    // Nothing new: refresh is a no-op.
    reader.refresh().await.unwrap();
    assert_eq!(reader.oplog_version(), writer.oplog_version());

    for p in old {
        std::fs::rename(p.with_extension("hidden"), &p).unwrap();
    }
}

#[tokio::test]
async fn oplog_compaction_keeps_file_count_bounded_and_rows_intact() {
    let options = manual().with_compact_oplog_after(16);
    let (dir, pond) = temp_pond_with(options).await;
    for i in 0..110 {
        pond.append_series_data(&format!("/many/s{}", i % 3), &readings(&[i]), "ts")
            .await
            .unwrap();
    }
    // Compaction ran and a checkpoint was written at Delta version 100.
    let table = open_oplog_with_deltalake(&dir).await;
    let log_data = table.snapshot().unwrap().log_data();
    let active = log_data.num_files();
    // Tiers come from the row counts the commits record.
    let rows: Vec<usize> = log_data.iter().map(|f| f.num_records().unwrap()).collect();
    assert!(rows.iter().any(|&r| r >= 16), "{rows:?}");
    // At most 15 unmerged files of each tier: 110 one-row files make
    // tier-1 files of 16 rows.
    assert!(active < 2 * 16, "{active} active oplog files");
    let log = dir.path().join("oplog/_delta_log");
    let checkpoints = std::fs::read_dir(&log)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("checkpoint")
        })
        .count();
    assert!(checkpoints >= 1, "a checkpoint exists");

    let again = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    let entries = again.oplog_entries().await.unwrap();
    let appends = entries
        .iter()
        .filter(|e| e.entry_type == pond::EntryType::Append)
        .count();
    assert_eq!(appends, 110, "compaction neither loses nor duplicates rows");
    let total: usize = (0..3)
        .map(|s| again.versions(&format!("/many/s{s}")).unwrap().len())
        .sum();
    assert_eq!(total, 110);
}
