//! `SeriesTimePruning`: time filters that exist only in the physical plan
//! (a `FilterExec` the logical optimizer left alone, a TopK's dynamic filter,
//! a hash join's build side) prune versions too, and never change answers.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::{Pond, SeriesExt, SeriesScanExec};

use crate::common::*;

const MINUTE: i64 = 60_000_000;

/// A series `/big` of `versions` disjoint versions, one per minute, of 6
/// rows ten seconds apart.
async fn big_pond(versions: i64) -> (tempfile::TempDir, Arc<Pond>) {
    let (dir, pond) = temp_pond().await;
    for m in 0..versions {
        let times: Vec<i64> = (0..6).map(|i| JAN1 + m * MINUTE + i * 10_000_000).collect();
        pond.append_series_data("/big", &readings(&times), "ts")
            .await
            .unwrap();
    }
    (dir, Arc::new(pond))
}

fn context(pond: Arc<Pond>) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    pond::register(&ctx, pond);
    ctx
}

/// Every series scan in `plan`.
fn scans(plan: &Arc<dyn ExecutionPlan>) -> Vec<&SeriesScanExec> {
    nodes::<SeriesScanExec>(plan)
}

/// The sum of the counter `name` over the scan's partitions.
fn counter(scan: &SeriesScanExec, name: &str) -> usize {
    scan.metrics()
        .unwrap()
        .sum_by_name(name)
        .map_or(0, |v| v.as_usize())
}

/// What the Parquet scan's pruning counter `name` kept, and all it looked
/// at (files, row groups or rows), summed over its partitions.
fn pruning(scan: &SeriesScanExec, name: &str) -> (usize, usize) {
    scan.metrics()
        .unwrap()
        .iter()
        .filter_map(|m| match m.value() {
            MetricValue::PruningMetrics {
                name: n,
                pruning_metrics,
            } if n == name => Some((
                pruning_metrics.matched(),
                pruning_metrics.matched() + pruning_metrics.pruned(),
            )),
            _ => None,
        })
        .fold((0, 0), |(m, t), (a, b)| (m + a, t + b))
}

/// How many files the Parquet scan opened (the rest it skipped by their
/// oplog bounds, before reading a footer).
fn files_opened(scan: &SeriesScanExec) -> usize {
    pruning(scan, "files_ranges_pruned_statistics").0
}

#[tokio::test]
async fn a_filter_left_above_the_scan_prunes_versions() {
    let (_dir, pond) = big_pond(20).await;
    let ctx = context(Arc::clone(&pond));
    let sql = "SELECT count(*), min(ts), max(ts) FROM big \
               WHERE ts >= '2024-01-01T00:05:00Z' AND ts < '2024-01-01T00:08:30Z'";
    let (expected, plan) = run_plan(&ctx, sql).await;
    assert_eq!(scans(&plan)[0].versions(), (4, 20), "logical pushdown");

    // Without the logical pushdown the filter reaches the scan only as a
    // FilterExec in the physical plan.
    let ctx = context(pond);
    assert!(ctx.remove_optimizer_rule("push_down_filter"));
    let (answer, plan) = run_plan(&ctx, sql).await;
    assert_eq!(answer, expected);
    assert!(expected.contains("| 21 "), "{expected}");
    assert_eq!(scans(&plan)[0].versions(), (4, 20), "physical pushdown");
}

#[tokio::test]
async fn order_by_time_desc_limit_opens_only_the_newest_versions() {
    let started = Instant::now();
    let (_dir, pond) = big_pond(1_000).await;
    eprintln!("1,000 appends took {:?}", started.elapsed());
    let ctx = context(pond);
    let (answer, plan) = run_plan(&ctx, "SELECT ts FROM big ORDER BY ts DESC LIMIT 10").await;
    let scan = scans(&plan)[0];
    assert_eq!(scan.versions(), (1_000, 1_000), "no time filter in the SQL");
    // The newest version holds 6 rows, the one before it the other 4.
    assert!(answer.contains("2024-01-01T16:39:50Z"), "{answer}");
    assert!(answer.contains("2024-01-01T16:38:20Z"), "{answer}");
    assert!(!answer.contains("16:38:10"), "{answer}");
    let opened = files_opened(scan);
    eprintln!("ORDER BY ts DESC LIMIT 10 opened {opened} of 1,000 files");
    assert!(
        opened <= 12,
        "the TopK filter must skip all but the newest files, opened {opened}"
    );
}

#[tokio::test]
async fn a_hash_join_build_side_prunes_probe_versions_at_execution() {
    let (_dir, pond) = big_pond(200).await;
    // A small series whose three rows fall in minutes 100 and 101.
    let times = [
        JAN1 + 100 * MINUTE,
        JAN1 + 100 * MINUTE + 30_000_000,
        JAN1 + 101 * MINUTE + 10_000_000,
    ];
    pond.append_series_data("/events", &readings(&times), "ts")
        .await
        .unwrap();
    let ctx = context(Arc::clone(&pond));
    let sql = "SELECT e.ts, b.reading FROM events e JOIN big b ON b.ts = e.ts ORDER BY e.ts";
    let (answer, plan) = run_plan(&ctx, sql).await;
    let big = scans(&plan)
        .into_iter()
        .find(|s| s.versions().1 == 200)
        .unwrap();
    let pruned = counter(big, "versions_pruned_dynamic");
    assert!(
        pruned >= 190,
        "the join's bounds must rule out all but a few versions, pruned {pruned}"
    );
    // The same join without any pruning: the rows of a MemTable.
    let plain = SessionContext::new();
    for path in ["/big", "/events"] {
        let all = read_all(&pond, path).await;
        let table = datafusion::datasource::MemTable::try_new(all.schema(), vec![vec![all]]);
        plain
            .register_table(&path[1..], Arc::new(table.unwrap()))
            .unwrap();
    }
    let (expected, _) = run_plan(&plain, sql).await;
    assert_eq!(answer, expected);
    assert_eq!(
        answer.lines().count(),
        3 + 4,
        "three matching rows\n{answer}"
    );

    // Without an order, partitions share the files of one scan; pruning
    // must not let two of them read the same file.
    let sql = "SELECT count(*), sum(b.reading) FROM events e JOIN big b ON b.ts = e.ts";
    let (answer, plan) = run_plan(&ctx, sql).await;
    let (expected, _) = run_plan(&plain, sql).await;
    assert_eq!(answer, expected);
    assert!(answer.contains("| 3 "), "{answer}");
    let big = scans(&plan).into_iter().find(|s| s.versions().1 == 200);
    assert!(counter(big.unwrap(), "versions_pruned_dynamic") >= 190);
}

#[tokio::test]
async fn a_join_on_two_columns_prunes_the_probe_sides_pages() {
    use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    let (_dir, pond) = temp_pond().await;
    // One version of 20,000 rows of two hosts, a second apart: its pages
    // hold a few thousand rows each.
    let rows = 20_000;
    let table = |times: Vec<i64>, hosts: Vec<&str>| {
        let values = Int64Array::from_iter_values(0..times.len() as i64);
        RecordBatch::try_from_iter([
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
            ),
            ("host", Arc::new(StringArray::from(hosts)) as ArrayRef),
            ("v", Arc::new(values) as ArrayRef),
        ])
        .unwrap()
    };
    let times: Vec<i64> = (0..rows).map(|i| JAN1 + i * 1_000_000).collect();
    let hosts: Vec<&str> = (0..rows).map(|i| ["a", "b"][i as usize % 2]).collect();
    let big = table(times, hosts);
    pond.append_series_data("/big", &big, "ts").await.unwrap();
    // Two readings to look up, near the end.
    let wanted = table(
        vec![
            JAN1 + (rows - 10) * 1_000_000,
            JAN1 + (rows - 3) * 1_000_000,
        ],
        vec!["a", "b"],
    );
    pond.append_series_data("/wanted", &wanted, "ts")
        .await
        .unwrap();
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let sql = "SELECT w.host, w.ts, b.v FROM wanted w JOIN big b \
               ON b.host = w.host AND b.ts = w.ts ORDER BY w.ts";
    let (answer, plan) = run_plan(&ctx, sql).await;
    let probe = scans(&plan)
        .into_iter()
        .find(|s| {
            let line = datafusion::physical_plan::displayable(*s).one_line();
            line.to_string().contains("series=/big")
        })
        .unwrap();
    let (kept, all) = pruning(probe, "page_index_rows_pruned");
    assert!(
        all == rows as usize && kept < all / 4,
        "the join's bounds on ts must rule out most pages: kept {kept} of {all} rows"
    );
    let plain = SessionContext::new();
    for (name, rows) in [("big", big), ("wanted", wanted)] {
        let table = datafusion::datasource::MemTable::try_new(rows.schema(), vec![vec![rows]]);
        plain
            .register_table(name, Arc::new(table.unwrap()))
            .unwrap();
    }
    let (expected, _) = run_plan(&plain, sql).await;
    assert_eq!(answer, expected);
    assert!(
        answer.contains("| 19990 ") && answer.contains("| 19997 "),
        "{answer}"
    );
}

#[tokio::test]
async fn a_time_range_is_split_among_partitions_at_the_row_groups_it_reads() {
    // One compacted file of ten row groups of 100 rows, ten seconds apart,
    // clustered within time buckets: in no order a scan can declare, so
    // pond splits it by the query's time range.
    let (_dir, pond) = temp_pond_with(manual().with_row_group_rows(100)).await;
    for v in 0..10 {
        let times: Vec<i64> = (0..100)
            .map(|i| JAN1 + (v * 100 + i) * 10 * SECOND)
            .collect();
        pond.append_series_data("/s", &readings(&times), "ts")
            .await
            .unwrap();
    }
    pond.set_sort_key_with_bucket("/s", &["reading"], 100 * 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(pond.compact("/s").await.unwrap().versions_written, 1);
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .set_usize("datafusion.optimizer.repartition_file_min_size", 0);
    let ctx = SessionContext::new_with_config(config);
    pond::register(&ctx, Arc::new(pond));
    let window = |first: i64, end: i64| {
        format!(
            "SELECT count(reading), min(ts), max(ts) FROM s \
             WHERE ts >= to_timestamp_micros({}) AND ts < to_timestamp_micros({})",
            JAN1 + first * 10 * SECOND,
            JAN1 + end * 10 * SECOND
        )
    };
    // Rows 250 to 649: five row groups, of which the first and last in part.
    let sql = window(250, 650);
    // Before any query has read the file's footer, the cuts are estimated
    // from the file's first and last time: two pieces per partition, each
    // an opening of the file.
    let (cold, plan) = run_plan(&ctx, &sql).await;
    assert!(cold.contains("| 400 "), "{cold}");
    assert_eq!(files_opened(scans(&plan)[0]), 4, "estimated cuts");
    // Then the footer is in the session's cache: one piece per partition,
    // cut where a row group of the range starts. (Which partition reads a
    // piece is DataFusion's to decide: an idle one takes a busy one's.)
    let (warm, plan) = run_plan(&ctx, &sql).await;
    assert_eq!(warm, cold);
    let scan = scans(&plan)[0];
    assert_eq!(files_opened(scan), 2, "cut at row groups");
    assert_eq!(pruning(scan, "row_groups_pruned_statistics"), (5, 10));
    // A range within one row group is read by one partition, in one piece.
    let (answer, plan) = run_plan(&ctx, &window(420, 480)).await;
    assert!(answer.contains("| 60 "), "{answer}");
    assert_eq!(files_opened(scans(&plan)[0]), 1);
}

#[tokio::test]
async fn small_files_stay_spread_over_the_partitions_once_their_footers_are_read() {
    // Eight small versions, their times interleaved: no order to declare,
    // far under `repartition_file_min_size` together.
    let (_dir, pond) = temp_pond().await;
    for v in 0..8 {
        let times: Vec<i64> = (0..50).map(|i| JAN1 + (i * 8 + v) * 10 * SECOND).collect();
        pond.append_series_data("/s", &readings(&times), "ts")
            .await
            .unwrap();
    }
    // Each partition reads the files it was given, and no other's.
    let config = SessionConfig::new().with_target_partitions(2).set_bool(
        "datafusion.execution.enable_file_stream_work_stealing",
        false,
    );
    let ctx = SessionContext::new_with_config(config);
    pond::register(&ctx, Arc::new(pond));
    let sql = "SELECT count(reading) FROM s WHERE ts >= '2024-01-01T00:10:00Z'";
    for run in ["cold", "warm"] {
        let (answer, plan) = run_plan(&ctx, sql).await;
        assert!(answer.contains("| 340 "), "{run}: {answer}");
        let scan = scans(&plan)[0];
        assert_eq!(scan.versions(), (8, 8));
        let opened: Vec<usize> = (0..2)
            .map(|partition| {
                (scan.metrics().unwrap().iter())
                    .filter(|m| {
                        m.partition() == Some(partition) && m.value().name() == "files_opened"
                    })
                    .map(|m| m.value().as_usize())
                    .sum()
            })
            .collect();
        assert_eq!(opened, [4, 4], "{run}");
    }
}
