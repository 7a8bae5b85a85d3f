//! Writers racing for the same series: every append lands exactly once, with
//! unique, gapless version numbers.

use std::collections::BTreeSet;
use std::sync::Arc;

use pond::{Pond, SeriesExt};

use crate::common::*;

async fn race(handles: Vec<Arc<Pond>>, appends_each: i64) -> Vec<pond::AppendOutcome> {
    let tasks: Vec<_> = handles
        .into_iter()
        .enumerate()
        .map(|(w, pond)| {
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..appends_each {
                    // Writer w's i-th append holds one row whose time says who wrote it.
                    let t = (w as i64) * 1_000 + i;
                    let outcome = pond
                        .append_batch("/race/s", &readings(&[t]), "ts")
                        .await
                        .unwrap();
                    outcomes.push(outcome);
                }
                outcomes
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

fn assert_exactly_once(pond: &Pond, outcomes: &[pond::AppendOutcome], writers: i64, each: i64) {
    let n = writers * each;
    let versions: BTreeSet<i64> = outcomes.iter().map(|o| o.version).collect();
    assert_eq!(versions, (1..=n).collect(), "unique and gapless");
    let txns: BTreeSet<i64> = outcomes.iter().map(|o| o.txn_seq).collect();
    assert_eq!(txns.len() as i64, n, "one oplog commit per append");
    let files = pond.versions("/race/s").unwrap();
    assert_eq!(files.len() as i64, n);
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f.version, i as i64 + 1);
        assert!(
            f.file_path.contains(&format!("/{}-", f.version)),
            "file renamed to its final version: {}",
            f.file_path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_handles_race_and_every_append_lands_once() {
    // Compaction commits race with appends too.
    let options = manual().with_compact_oplog_after(8);
    let (dir, first) = temp_pond_with(options.clone()).await;
    let mut handles = vec![Arc::new(first)];
    for _ in 0..2 {
        let p = Pond::open_with_options(location(&dir), options.clone())
            .await
            .unwrap();
        handles.push(Arc::new(p));
    }
    let outcomes = race(handles, 8).await;
    assert!(
        outcomes.iter().any(|o| o.conflicts > 0),
        "the writers really raced (some commit lost at least once)"
    );

    let reader = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    assert_exactly_once(&reader, &outcomes, 3, 8);
    let mut times = raw_i64(&read_all(&reader, "/race/s").await, "ts");
    times.sort_unstable();
    let want: Vec<i64> = (0..3)
        .flat_map(|w| (0..8).map(move |i| w * 1_000 + i))
        .collect();
    assert_eq!(times, want, "every row once");
    let appends = reader
        .oplog_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry_type == pond::EntryType::Append)
        .count();
    assert_eq!(
        appends, 24,
        "the oplog itself holds each append once, compactions included"
    );
    let report = reader
        .check_with_grace(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_shared_handle_serves_concurrent_tasks() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let outcomes = race(vec![Arc::clone(&pond); 3], 5).await;
    assert_exactly_once(&pond, &outcomes, 3, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creators_agree_on_one_series() {
    let (dir, first) = temp_pond().await;
    let second = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    let (one, two) = (readings(&[1]), readings(&[2]));
    let (a, b) = tokio::join!(
        first.append_series_data("/new/s", &one, "ts"),
        second.append_series_data("/new/s", &two, "ts"),
    );
    a.unwrap();
    b.unwrap();
    let reader = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    let info = reader.series_info("/new/s").unwrap();
    assert_eq!(info.versions, 2);
    let entries = reader.oplog_entries().await.unwrap();
    let creates = entries
        .iter()
        .filter(|e| e.entry_type == pond::EntryType::Create)
        .count();
    assert_eq!(
        creates, 1,
        "the loser of the race appended to the winner's series"
    );
    assert!(entries.iter().all(|e| e.series_id == info.id));
    assert!(
        reader
            .check_with_grace(std::time::Duration::ZERO)
            .await
            .unwrap()
            .is_clean()
    );
}
