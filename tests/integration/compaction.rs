//! Compaction: answers stay the same, reads open fewer files, time travel
//! across a compaction answers as before, and racing writers (tasks and
//! processes) never lose or duplicate a row; vacuum deletes what no read
//! needs.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::{CompactOptions, EntryType, Error, Pond, SeriesExt};

use crate::common::*;

const MINUTE: i64 = 60_000_000;

/// Appends `versions` versions of 6 rows, one a minute, to `/plant/boiler`,
/// and every seventh a late version overlapping two minutes before it.
async fn small_versions(pond: &Pond, versions: i64) {
    for m in 0..versions {
        let start = if m % 7 == 6 { m - 2 } else { m };
        let times: Vec<i64> = (0..6)
            .map(|i| JAN1 + start * MINUTE + i * 10_000_000 + m)
            .collect();
        pond.append_series_data("/plant/boiler", &readings(&times), "ts")
            .await
            .unwrap();
    }
}

/// Appends one row a version to `/plant/boiler`, at `JAN1 + i` µs for `i`
/// in `from..to`.
async fn one_row_appends(pond: &Pond, from: i64, to: i64) {
    for i in from..to {
        pond.append_series_data("/plant/boiler", &readings(&[JAN1 + i]), "ts")
            .await
            .unwrap();
    }
}

fn context(pond: Arc<Pond>) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    pond::register(&ctx, pond);
    ctx
}

async fn answer(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let c = arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
    c.as_primitive::<Int64Type>().value(0)
}

const QUERIES: [&str; 4] = [
    "SELECT count(*) AS n, sum(CAST(reading * 10 AS BIGINT)) AS s, min(ts) AS a, max(ts) AS b \
     FROM plant.boiler",
    "SELECT date_trunc('minute', ts) AS m, count(*), max(reading) FROM plant.boiler \
     WHERE ts >= '2024-01-01T00:10:00Z' AND ts < '2024-01-01T00:20:00Z' GROUP BY 1 ORDER BY 1",
    "SELECT ts, reading FROM plant.boiler ORDER BY ts DESC, reading LIMIT 4",
    "SELECT count(*) FROM plant.boiler a JOIN plant.boiler b ON a.ts = b.ts",
];

#[tokio::test]
async fn compaction_keeps_every_answer_and_reads_fewer_versions() {
    let (_dir, pond) = temp_pond().await;
    small_versions(&pond, 40).await;
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let mut before = Vec::new();
    for q in QUERIES {
        before.push(answer(&ctx, q).await);
    }
    // A small target, so that the 40 versions make several new ones.
    let options = CompactOptions::default().with_target_file_bytes(10_000);
    let done = pond
        .compact_with_options("/plant/boiler", &options)
        .await
        .unwrap();
    assert_eq!(done.versions_read, 40, "{done:?}");
    assert!(
        (2..10).contains(&done.versions_written),
        "several disjoint new versions: {done:?}"
    );
    let info = pond.series_info("/plant/boiler").unwrap();
    assert_eq!(info.versions, done.versions_written);
    assert_eq!(info.rows, 240);
    for (q, want) in QUERIES.iter().zip(&before) {
        assert_eq!(&answer(&ctx, q).await, want, "{q}");
    }
    // The new versions are disjoint in time, so ORDER BY ts needs no sort.
    let live: Vec<_> = pond
        .versions("/plant/boiler")
        .unwrap()
        .into_iter()
        .filter(|v| v.is_live())
        .collect();
    assert!(live.iter().all(|v| v.entry_type == EntryType::Compact));
    assert!(
        live.windows(2)
            .all(|w| w[0].max_event_time < w[1].min_event_time),
        "{live:?}"
    );
    let plan = answer(&ctx, "EXPLAIN SELECT ts FROM plant.boiler ORDER BY ts").await;
    assert!(!plan.contains("SortExec"), "{plan}");

    // series_versions: 40 superseded appends, then the compaction.
    let sql = "SELECT count(*) FROM series_versions('/plant/boiler') \
               WHERE entry_type = 'append' AND NOT live";
    assert_eq!(count(&ctx, sql).await, 40);

    // As of version 40 (before the compaction) the series reads as before,
    // from the old files.
    let as_of = "SELECT count(*) AS n, sum(CAST(reading * 10 AS BIGINT)) AS s, min(ts) AS a, \
                 max(ts) AS b \
                 FROM series_range('/plant/boiler', NULL, NULL, 40)";
    assert_eq!(answer(&ctx, as_of).await, before[0]);
    let plan = answer(&ctx, &format!("EXPLAIN {as_of}")).await;
    assert!(plan.contains("versions=40/40"), "{plan}");

    // Input bytes overestimate tiny outputs (a Parquet file's fixed cost
    // dominates them), so the new versions may still be small: compacting
    // again merges them, and then there is nothing left to gain.
    let again = pond
        .compact_with_options("/plant/boiler", &options)
        .await
        .unwrap();
    assert!(again.versions_written <= 1, "{again:?}");
    let last = pond
        .compact_with_options("/plant/boiler", &options)
        .await
        .unwrap();
    assert_eq!(last.versions_read, 0, "{last:?}");
    for (q, want) in QUERIES.iter().zip(&before) {
        assert_eq!(&answer(&ctx, q).await, want, "{q}");
    }
    assert!(pond.check().await.unwrap().is_clean());
}

#[tokio::test]
async fn vacuum_deletes_superseded_files_and_old_reads_say_so() {
    let (dir, pond) = temp_pond().await;
    small_versions(&pond, 10).await;
    let pond = Arc::new(pond);
    pond.compact("/plant/boiler").await.unwrap();
    // Retained: nothing is deleted yet.
    let kept = pond.vacuum(Duration::from_secs(3_600)).await.unwrap();
    assert_eq!(kept.superseded_files, 0);
    let done = pond.vacuum(Duration::ZERO).await.unwrap();
    assert_eq!(done.superseded_files, 10);
    let files = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count();
    assert_eq!(files, 1, "only the compacted version's file is left");
    let ctx = context(Arc::clone(&pond));
    assert_eq!(count(&ctx, "SELECT count(*) FROM plant.boiler").await, 60);
    let err = ctx
        .sql("SELECT count(*) FROM series_range('/plant/boiler', NULL, NULL, 5)")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("vacuumed"), "{err}");
    assert!(pond.check().await.unwrap().is_clean());
    // A reopened pond sees the same.
    let reopened = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    assert_eq!(reopened.series_info("/plant/boiler").unwrap().versions, 1);
    assert!(reopened.check().await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_while_compacting_are_never_lost_or_doubled() {
    let (dir, pond) = temp_pond().await;
    small_versions(&pond, 30).await;
    let compactor = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    let appender = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    let appends = tokio::spawn(async move {
        for i in 0..20 {
            let t = JAN1 + 100 * MINUTE + i;
            appender
                .append_batch("/plant/boiler", &readings(&[t]), "ts")
                .await
                .unwrap();
        }
    });
    let compacted = compactor.compact("/plant/boiler").await.unwrap();
    appends.await.unwrap();
    assert!(compacted.versions_read >= 30, "{compacted:?}");
    pond.refresh().await.unwrap();
    let all = read_all(&pond, "/plant/boiler").await;
    assert_eq!(all.num_rows(), 30 * 6 + 20, "every row exactly once");
    let versions = pond.versions("/plant/boiler").unwrap();
    let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as i64).collect::<Vec<_>>(),
        "unique, gapless"
    );
    assert!(pond.check().await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_compactions_of_the_same_versions_cannot_both_land() {
    let (dir, pond) = temp_pond().await;
    small_versions(&pond, 20).await;
    let handles: Vec<Arc<Pond>> = futures::future::join_all((0..3).map(|_| async {
        Arc::new(
            Pond::open_with_options(location(&dir), manual())
                .await
                .unwrap(),
        )
    }))
    .await;
    let tasks: Vec<_> = handles
        .into_iter()
        .map(|p| tokio::spawn(async move { p.compact("/plant/boiler").await }))
        .collect();
    let mut landed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(done) if done.versions_read > 0 => landed += 1,
            Ok(_) | Err(Error::CompactionConflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(landed, 1);
    pond.refresh().await.unwrap();
    assert_eq!(read_all(&pond, "/plant/boiler").await.num_rows(), 120);
    assert_eq!(pond.series_info("/plant/boiler").unwrap().versions, 1);
    let report = pond.check().await.unwrap();
    assert!(
        report.is_clean() && report.pending.is_empty(),
        "the losers deleted their files: {report:?}"
    );
}

fn pond_command(location: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pond"));
    command
        .args(["--pond", location])
        .args(args)
        .env_remove("POND")
        .env("POND_AUTO_COMPACT", "0");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_processes_race_appending_processes() {
    let (dir, pond) = temp_pond().await;
    small_versions(&pond, 20).await;
    let at = location(&dir).to_string();
    let csv = dir.path().join("late.csv");
    std::fs::write(&csv, "ts,reading\n2024-01-02T00:00:00Z,1.5\n").unwrap();
    let csv = csv.to_str().unwrap().to_string();
    let mut children = Vec::new();
    for _ in 0..2 {
        children.push(
            pond_command(&at, &["compact", "/plant/boiler"])
                .spawn()
                .unwrap(),
        );
    }
    for _ in 0..4 {
        children.push(
            pond_command(&at, &["append", "/plant/boiler", &csv])
                .spawn()
                .unwrap(),
        );
    }
    let mut failed = Vec::new();
    for mut child in children {
        let status = child.wait().unwrap();
        if !status.success() {
            failed.push(status);
        }
    }
    // A compaction that lost to the other may fail; appends may not.
    assert!(failed.len() <= 1, "{failed:?}");
    pond.refresh().await.unwrap();
    assert_eq!(read_all(&pond, "/plant/boiler").await.num_rows(), 120 + 4);
    assert!(pond.check().await.unwrap().is_clean());
}

/// 40 versions of 5,000 rows each: enough that a compaction runs a while.
async fn big_series(pond: &Pond) {
    for m in 0..40 {
        let times: Vec<i64> = (0..5_000).map(|i| JAN1 + m * MINUTE + i * 10).collect();
        pond.append_series_data("/plant/boiler", &readings(&times), "ts")
            .await
            .unwrap();
    }
}

/// Runs `pond compact` in a process (aborting at the crash point `crash`,
/// if any), lets `end` kill it or leave it be, waits for it, and checks
/// that the pond still reads every row and has neither garbage nor damage.
/// Returns how many live versions the series has then, and how many files
/// check calls pending.
async fn compact_process(
    at: &str,
    crash: Option<&str>,
    end: impl FnOnce(&mut std::process::Child),
) -> (usize, usize) {
    let mut command = pond_command(at, &["compact", "/plant/boiler"]);
    if let Some(point) = crash {
        command.env("POND_CRASH_AT", point);
    }
    let mut child = command.stderr(std::process::Stdio::null()).spawn().unwrap();
    end(&mut child);
    child.wait().unwrap();
    let reopened = Pond::open_with_options(at, manual()).await.unwrap();
    assert_eq!(
        read_all(&reopened, "/plant/boiler").await.num_rows(),
        200_000
    );
    let report = reopened.check().await.unwrap();
    assert!(
        report.problems.is_empty() && report.garbage.is_empty(),
        "{report:?}"
    );
    let versions = reopened.series_info("/plant/boiler").unwrap().versions;
    (versions, report.pending.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_killed_either_side_of_its_commit_leaves_the_series_readable() {
    let (dir, pond) = temp_pond().await;
    big_series(&pond).await;
    let at = location(&dir);
    // Killed with its file written, before the commit: nothing changed,
    // and the file is an unreferenced one that check calls pending.
    let killed = compact_process(at, Some("compact-before-commit"), |_| {}).await;
    assert_eq!(killed, (40, 1));
    // Killed right after the commit: the compaction stands.
    let killed = compact_process(at, Some("compact-after-commit"), |_| {}).await;
    assert_eq!(killed, (1, 1), "the first one's file is still pending");
    // Once the grace for writes in progress is over, it is garbage.
    let report = pond.check_with_grace(Duration::ZERO).await.unwrap();
    assert_eq!(report.garbage.len(), 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_killed_at_random_times_is_all_or_nothing() {
    let (dir, pond) = temp_pond().await;
    big_series(&pond).await;
    for delay_ms in [30, 100, 250] {
        let (versions, _) = compact_process(location(&dir), None, |child| {
            std::thread::sleep(Duration::from_millis(delay_ms));
            let _ = child.kill();
        })
        .await;
        assert!(
            versions == 40 || versions == 1,
            "all or nothing: {versions}"
        );
    }
}

#[tokio::test]
async fn appends_alone_keep_a_series_compacted() {
    // Default options: compaction after 8 small versions of a level.
    let (_dir, pond) = temp_pond_with(pond::PondOptions::default()).await;
    let mut all = Vec::new();
    for m in 0..65 {
        let times: Vec<i64> = (0..6).map(|i| JAN1 + m * MINUTE + i * 10_000_000).collect();
        all.extend(times.iter().copied());
        pond.append_series_data("/plant/boiler", &readings(&times), "ts")
            .await
            .unwrap();
        let live = pond.series_info("/plant/boiler").unwrap().versions;
        // At most seven small versions of each level stay uncompacted.
        assert!(live <= 14, "after {} appends: {live} live versions", m + 1);
    }
    // 64 appends made eight level-1 versions, the 65th merged them.
    let levels: Vec<u32> = pond
        .versions("/plant/boiler")
        .unwrap()
        .iter()
        .filter(|v| v.is_live())
        .map(|v| v.level)
        .collect();
    assert_eq!(levels, [0, 2]);
    let rows = read_all(&pond, "/plant/boiler").await;
    assert_eq!(raw_i64(&rows, "ts"), all, "every row once, in time order");
    // Compactions take version numbers too.
    let thirtieth = pond
        .versions("/plant/boiler")
        .unwrap()
        .iter()
        .filter(|v| v.entry_type == EntryType::Append)
        .nth(29)
        .unwrap()
        .version;
    let ctx = context(Arc::new(pond));
    let as_of =
        format!("SELECT count(*) FROM series_range('/plant/boiler', NULL, NULL, {thirtieth})");
    assert_eq!(count(&ctx, &as_of).await, 30 * 6, "as of the 30th append");
}

#[tokio::test]
async fn vacuum_keeps_oplog_files_a_merge_replaced_for_the_retention() {
    // An oplog file written long ago, that a merge replaced a moment ago,
    // is still needed by the snapshots before the merge: its age since the
    // merge counts, not since it was written.
    let options = manual().with_compact_oplog_after(16);
    let (dir, pond) = temp_pond_with(options).await;
    one_row_appends(&pond, 0, 15).await;
    let oplog = dir.path().join("oplog");
    let parts = || -> Vec<std::path::PathBuf> {
        let mut parts: Vec<_> = std::fs::read_dir(&oplog)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        parts.sort();
        parts
    };
    let written = parts();
    // Written a month ago, by their dates.
    let month_ago = std::time::SystemTime::now() - Duration::from_secs(30 * 86_400);
    for part in &written {
        let file = std::fs::File::options().write(true).open(part).unwrap();
        file.set_modified(month_ago).unwrap();
    }
    // The next appends merge them into one.
    one_row_appends(&pond, 15, 17).await;
    let week = pond::VacuumOptions::new(Duration::from_secs(7 * 86_400));
    let done = pond.vacuum_with_options(&week).await.unwrap();
    assert_eq!(done.oplog_files, 0, "{done:?}");
    assert!(
        written.iter().all(|p| p.exists()),
        "a merged file was deleted"
    );
    // Once the merge is older than the retention, they go.
    let now = pond::VacuumOptions::new(Duration::ZERO).with_grace(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let done = pond.vacuum_with_options(&now).await.unwrap();
    assert!(done.oplog_files >= 15, "{done:?}");
    assert!(written.iter().all(|p| !p.exists()));
    assert_eq!(read_all(&pond, "/plant/boiler").await.num_rows(), 17);
}

#[tokio::test]
async fn vacuum_bounds_the_oplog_and_lagging_handles_still_follow() {
    let options = manual().with_compact_oplog_after(16);
    let (dir, pond) = temp_pond_with(options).await;
    one_row_appends(&pond, 0, 40).await;
    // A handle that stops following here.
    let lagging = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    one_row_appends(&pond, 40, 90).await;
    let everything = pond::VacuumOptions::new(Duration::ZERO).with_grace(Duration::ZERO);
    let done = pond.vacuum_with_options(&everything).await.unwrap();
    // Everything behind the newest checkpoint (one every 10 commits) is
    // gone: commits, older checkpoints, and the oplog files merges replaced.
    assert!(done.log_files >= 80, "{done:?}");
    assert!(done.oplog_files >= 60, "{done:?}");
    // The lagging handle cannot read the commits after it one by one (they
    // and their oplog files were deleted), and reloads the snapshot.
    lagging.refresh().await.unwrap();
    assert_eq!(lagging.series_info("/plant/boiler").unwrap().versions, 90);
    assert_eq!(read_all(&lagging, "/plant/boiler").await.num_rows(), 90);

    one_row_appends(&pond, 90, 130).await;
    let log = dir.path().join("oplog/_delta_log");
    let count = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();
    let log_before = count(&log);
    let done = pond.vacuum_with_options(&everything).await.unwrap();
    assert!(
        done.log_files >= 30,
        "{done:?}: commits behind the newest checkpoint"
    );
    assert!(
        count(&log) <= log_before - 30,
        "{log_before} -> {}",
        count(&log)
    );
    // Opened afresh, from the checkpoint: every version is there.
    let reopened = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    assert_eq!(read_all(&reopened, "/plant/boiler").await.num_rows(), 130);
    assert!(reopened.check().await.unwrap().is_clean());
}

/// Without any `vacuum`, appends keep the oplog's metadata proportionate:
/// at each checkpoint the Delta commits more than 200 behind, and the
/// oplog files their merges replaced, are deleted, and checkpoints carry
/// no tombstones. A handle that fell further behind than that reloads.
#[tokio::test]
async fn appends_trim_the_oplog_log_and_lagging_handles_reload() {
    let options = manual().with_compact_oplog_after(16);
    let (dir, pond) = temp_pond_with(options).await;
    one_row_appends(&pond, 0, 20).await;
    let lagging = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    one_row_appends(&pond, 20, 420).await;
    let oplog = dir.path().join("oplog");
    let log = oplog.join("_delta_log");
    let names = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let log_files = names(&log);
    // More than 420 commits (appends and oplog merges), of which those
    // more than 200 behind the newest checkpoint are gone.
    assert!(log_files.len() < 300, "{} log files", log_files.len());
    assert!(
        !log_files
            .iter()
            .any(|f| f.starts_with("00000000000000000001.")),
        "the first commits are trimmed"
    );
    // One oplog file per commit, of which the merged ones of commits behind
    // the trimmed log are gone: fewer than three checkpoint intervals' worth
    // (untrimmed, there would be more than 440).
    let oplog_files = names(&oplog).len();
    assert!(oplog_files < 300, "{oplog_files} oplog files and folders");
    // The newest checkpoint holds its live oplog files, the protocol and
    // the metadata: no tombstones of the files merges replaced.
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.join("_last_checkpoint")).unwrap()).unwrap();
    assert_eq!(
        last["size"],
        last["numOfAddFiles"].as_u64().unwrap() + 2,
        "{last}"
    );

    // The lagging handle's next commit is gone from the log: it notices
    // and reloads rather than answering from its stale index.
    assert_eq!(read_all(&lagging, "/plant/boiler").await.num_rows(), 420);
    assert_eq!(lagging.series_info("/plant/boiler").unwrap().versions, 420);
    one_row_appends(&pond, 420, 421).await;
    lagging
        .append_series_data("/plant/boiler", &readings(&[JAN1 + 421]), "ts")
        .await
        .unwrap();
    assert_eq!(read_all(&pond, "/plant/boiler").await.num_rows(), 422);
    assert!(pond.check().await.unwrap().is_clean());
}

/// The footer (with its page index) and the rows of the data file at
/// `path` under the pond's folder.
fn read_file(
    dir: &std::path::Path,
    path: &str,
) -> (
    Arc<parquet::file::metadata::ParquetMetaData>,
    arrow::array::RecordBatch,
) {
    let file = std::fs::File::open(dir.join(path)).unwrap();
    let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
        .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required);
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new_with_options(
            file, options,
        )
        .unwrap();
    let metadata = Arc::clone(reader.metadata());
    let schema = reader.schema().clone();
    let batches = reader
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (
        metadata,
        arrow::compute::concat_batches(&schema, &batches).unwrap(),
    )
}

/// A batch of `(ts, hostname, usage)` rows.
fn host_rows<S: AsRef<str>>(
    times: Vec<i64>,
    hosts: Vec<S>,
    values: Vec<f64>,
) -> arrow::array::RecordBatch {
    let hosts: Vec<&str> = hosts.iter().map(AsRef::as_ref).collect();
    arrow::array::RecordBatch::try_from_iter([
        (
            "ts",
            timestamps(arrow::datatypes::TimeUnit::Microsecond, Some("UTC"), times),
        ),
        (
            "hostname",
            Arc::new(arrow::array::StringArray::from(hosts)) as _,
        ),
        (
            "usage",
            Arc::new(arrow::array::Float64Array::from(values)) as _,
        ),
    ])
    .unwrap()
}

/// Rows of three hosts, interleaved in time as a collector sends them: one
/// row per host every 10 s from minute `m`.
fn hosts_batch(m: i64) -> arrow::array::RecordBatch {
    let mut times = Vec::new();
    let mut hosts = Vec::new();
    let mut values = Vec::new();
    for i in 0..6 {
        for (h, host) in ["host_c", "host_a", "host_b"].iter().enumerate() {
            times.push(JAN1 + m * MINUTE + i * 10_000_000);
            hosts.push(*host);
            values.push((m * 100 + i * 10 + h as i64) as f64);
        }
    }
    host_rows(times, hosts, values)
}

const HOST_QUERIES: [&str; 5] = [
    "SELECT hostname, ts, usage FROM devops.cpu ORDER BY hostname, ts",
    "SELECT ts, hostname, usage FROM devops.cpu ORDER BY ts, hostname",
    "SELECT ts, usage FROM devops.cpu WHERE hostname = 'host_b' \
     AND ts >= '2024-01-01T00:02:00Z' AND ts < '2024-01-01T00:05:00Z' ORDER BY ts",
    "SELECT hostname, max(ts), count(*) FROM devops.cpu GROUP BY hostname ORDER BY hostname",
    "SELECT ts, hostname FROM devops.cpu ORDER BY ts DESC, hostname LIMIT 5",
];

/// A declared sort key over whole files: compaction writes the rows
/// clustered by it, reads answer exactly as before (time order included,
/// though the new file is not in time order), ORDER BY the key needs no
/// sort, and reads as of the versions before the compaction still see them.
#[tokio::test]
async fn a_sort_key_clusters_compacted_files_and_answers_stay_the_same() {
    clusters_by_a_sort_key(0).await;
}

/// The same with the key applied within 2-minute time buckets: the file is
/// sorted by (bucket, hostname, ts), which is not (hostname, ts) order, so
/// it declares no order and ORDER BY the key sorts.
#[tokio::test]
async fn a_sort_key_within_time_buckets_clusters_and_answers_stay_the_same() {
    clusters_by_a_sort_key(2 * MINUTE).await;
}

async fn clusters_by_a_sort_key(bucket: i64) {
    let (_dir, pond) = temp_pond_with(manual()).await;
    let pond = Arc::new(pond);
    for m in 0..8 {
        pond.append_series_data("/devops/cpu", &hosts_batch(m), "ts")
            .await
            .unwrap();
    }
    let ctx = context(Arc::clone(&pond));
    let mut before = Vec::new();
    for sql in HOST_QUERIES {
        before.push(answer(&ctx, sql).await);
    }
    let as_of_4 = "SELECT hostname, ts, usage FROM series_range('/devops/cpu', \
                   '2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z', 4) ORDER BY ts, hostname";
    let as_of_before = answer(&ctx, as_of_4).await;

    // Invalid keys are refused before anything is written.
    let err = pond
        .set_sort_key("/devops/cpu", &["nope"])
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "cannot configure /devops/cpu: the sort key names no column \"nope\" (the columns: "
        ),
        "{err}"
    );
    let err = pond
        .set_sort_key("/devops/cpu", &["ts", "hostname"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only come last"), "{err}");

    pond.set_sort_key_with_bucket("/devops/cpu", &["hostname"], bucket)
        .await
        .unwrap();
    assert_eq!(pond.series_info("/devops/cpu").unwrap().sort_bucket, bucket);
    // `series_list` (and `pond ls`) show the order the key writes.
    let listed = answer(&ctx, "SELECT sort_key FROM series_list('/devops/cpu')").await;
    let order = if bucket == 0 {
        "hostname, ts"
    } else {
        "date_bin(INTERVAL '2 minutes', ts), hostname, ts"
    };
    assert!(listed.contains(order), "{listed}");
    // Declaring the same key again keeps its buckets.
    pond.set_sort_key("/devops/cpu", &["hostname"])
        .await
        .unwrap();
    assert_eq!(pond.series_info("/devops/cpu").unwrap().sort_bucket, bucket);
    let done = pond.compact("/devops/cpu").await.unwrap();
    assert_eq!((done.versions_read, done.versions_written), (8, 1));
    let versions = pond.versions("/devops/cpu").unwrap();
    let live: Vec<_> = versions.iter().filter(|v| v.is_live()).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].sort_key, ["hostname", "ts"]);
    assert_eq!(live[0].sort_bucket, bucket);
    // In the oplog, a bucketed key leads with a column no series has, so
    // that builds older than buckets declare no order for the file.
    let row = pond
        .oplog_entries()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.entry_type == pond::EntryType::Compact)
        .unwrap();
    let attributes: serde_json::Value =
        serde_json::from_str(row.extended_attributes.as_deref().unwrap()).unwrap();
    let recorded: Vec<String> = serde_json::from_value(attributes["sort_key"].clone()).unwrap();
    assert_eq!(
        recorded.first().map(String::as_str),
        Some(if bucket == 0 {
            "hostname"
        } else {
            "__pond_bucket"
        })
    );

    // The file is sorted by (bucket, hostname, ts); only a file sorted by
    // (hostname, ts) as a whole says so in its footer.
    let (metadata, rows) = read_file(_dir.path(), &live[0].file_path);
    let sorting = metadata.row_group(0).sorting_columns().cloned();
    assert_eq!(
        sorting.map(|s| s.len()),
        if bucket == 0 { Some(2) } else { None }
    );
    let hosts = rows.column(1).as_string::<i32>();
    let ts = raw_i64(&rows, "ts");
    let bucket_of = |t: i64| if bucket == 0 { 0 } else { t.div_euclid(bucket) };
    let mut whole_file_order = true;
    for i in 1..rows.num_rows() {
        let key = |i: usize| (bucket_of(ts[i]), hosts.value(i), ts[i]);
        assert!(
            key(i - 1) <= key(i),
            "row {i} out of (bucket, hostname, ts) order"
        );
        whole_file_order &= (hosts.value(i - 1), ts[i - 1]) <= (hosts.value(i), ts[i]);
    }
    assert_eq!(whole_file_order, bucket == 0);

    for (sql, want) in HOST_QUERIES.iter().zip(&before) {
        assert_eq!(&answer(&ctx, sql).await, want, "{sql}");
    }
    assert_eq!(answer(&ctx, as_of_4).await, as_of_before);
    let plan = answer(&ctx, &format!("EXPLAIN {}", HOST_QUERIES[0])).await;
    assert_eq!(
        plan.contains("SortExec"),
        bucket > 0,
        "ORDER BY the key sorts only rows clustered within buckets:\n{plan}"
    );
    let plan = answer(&ctx, &format!("EXPLAIN {}", HOST_QUERIES[1])).await;
    assert!(plan.contains("SortExec"), "ORDER BY ts must sort:\n{plan}");

    // A later append is in time order only: the series mixes orders and
    // every answer stays right.
    pond.append_series_data("/devops/cpu", &hosts_batch(8), "ts")
        .await
        .unwrap();
    let twin = {
        let (_twin_dir, plain) = temp_pond_with(manual()).await;
        for m in 0..9 {
            plain
                .append_series_data("/devops/cpu", &hosts_batch(m), "ts")
                .await
                .unwrap();
        }
        let ctx = context(Arc::new(plain));
        let mut answers = Vec::new();
        for sql in HOST_QUERIES {
            answers.push(answer(&ctx, sql).await);
        }
        answers
    };
    for (sql, want) in HOST_QUERIES.iter().zip(&twin) {
        assert_eq!(&answer(&ctx, sql).await, want, "{sql}");
    }
}

/// Rows of a big host (one a second) and of ten small ones (200 each an
/// hour), for hours `h0..h1`, in time order as a collector sends them.
fn uneven_hosts_batch(h0: i64, h1: i64) -> arrow::array::RecordBatch {
    let (mut times, mut hosts, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for h in h0..h1 {
        for s in 0..3_600 {
            let t = JAN1 + h * 60 * MINUTE + s * 1_000_000;
            times.push(t);
            hosts.push("big".to_string());
            values.push(s as f64);
            if s % 18 == 0 {
                for small in 0..10 {
                    times.push(t);
                    hosts.push(format!("small_{small}"));
                    values.push((h * 10_000 + s + small) as f64);
                }
            }
        }
    }
    host_rows(times, hosts, values)
}

/// A file clustered by a sort key within time buckets starts its pages
/// where a host's run of an hour starts (runs shorter than 1,024 rows share
/// a page, none holds more than 2,048 rows), so the page index finds one
/// host's hour without its neighbours'; no row is lost or doubled by the
/// cutting, which carries runs across the sort's batches.
#[tokio::test]
async fn clustered_pages_start_where_a_hosts_hour_starts() {
    let (dir, pond) = clustered_hours().await;
    assert_pages_start_at_runs(dir.path(), &pond);
}

/// Three hours of [`uneven_hosts_batch`] appended to `/devops/cpu` an hour
/// a version, then compacted clustered by host within hours.
async fn clustered_hours() -> (tempfile::TempDir, Arc<Pond>) {
    let (dir, pond) = temp_pond_with(manual()).await;
    let pond = Arc::new(pond);
    for h in 0..3 {
        pond.append_series_data("/devops/cpu", &uneven_hosts_batch(h, h + 1), "ts")
            .await
            .unwrap();
    }
    compact_clustered_keeping_answers(&pond).await;
    (dir, pond)
}

/// The same for a series whose columns are all nullable, as one ingested
/// from CSV is: where the file holds no NULL, its columns are written
/// required (parquet 59 would write a nullable column's page per row when
/// pages are cut so), and the series keeps its nullable schema: a NULL
/// appended later is read, and compacted again into a file whose column is
/// nullable again, with pages cut by count.
#[tokio::test]
async fn a_nullable_series_gets_pages_cut_at_runs_where_it_holds_no_null() {
    let (dir, pond) = temp_pond_with(manual()).await;
    let pond = Arc::new(pond);
    for h in 0..3 {
        let rows = all_nullable(uneven_hosts_batch(h, h + 1));
        pond.append_series_data("/devops/cpu", &rows, "ts")
            .await
            .unwrap();
    }
    compact_clustered_keeping_answers(&pond).await;
    let file = assert_pages_start_at_runs(dir.path(), &pond);
    assert!(file.schema().fields().iter().all(|f| !f.is_nullable()));

    // A NULL after the required file: the table stays nullable.
    let mut times = vec![JAN1 + 3 * 60 * MINUTE];
    times.extend(std::iter::repeat_n(JAN1 + 3 * 60 * MINUTE + 1_000_000, 9));
    let late = all_nullable(host_rows(times, vec!["big"; 10], vec![1.0; 10]));
    let usage: arrow::array::Float64Array = (0..10).map(|i| (i != 4).then_some(i as f64)).collect();
    let mut columns = late.columns().to_vec();
    columns[2] = Arc::new(usage);
    let late = arrow::array::RecordBatch::try_new(late.schema(), columns).unwrap();
    pond.append_series_data("/devops/cpu", &late, "ts")
        .await
        .unwrap();
    let ctx = context(Arc::clone(&pond));
    let table = ctx.table("devops.cpu").await.unwrap();
    assert!(
        table
            .schema()
            .field_with_name(None, "usage")
            .unwrap()
            .is_nullable()
    );
    let counts = "SELECT count(*), count(usage), sum(usage) FROM devops.cpu";
    let want = answer(&ctx, counts).await;
    assert!(want.contains("| 16810    | 16809 "), "{want}");
    let union = "SELECT count(*), count(usage) FROM series_union('/devops/*')";
    let got = answer(&ctx, union).await;
    assert!(got.contains("| 16810    | 16809 "), "{got}");

    // Compacted again, the NULL stays; the file's column is nullable, and
    // its pages are cut by count, not one per row.
    compact_clustered_keeping_answers(&pond).await;
    assert_eq!(answer(&ctx, counts).await, want);
    let live = pond.versions("/devops/cpu").unwrap();
    let live = live.iter().find(|v| v.is_live()).unwrap();
    let (metadata, rows) = read_file(dir.path(), &live.file_path);
    assert!(
        rows.schema()
            .field_with_name("usage")
            .unwrap()
            .is_nullable()
    );
    assert_eq!(rows.column_by_name("usage").unwrap().null_count(), 1);
    for column in &metadata.offset_index().unwrap()[0] {
        let pages = column.page_locations().len();
        assert!(pages < 40, "{pages} pages for 16,810 rows");
    }
}

/// `rows` with every column declared nullable.
fn all_nullable(rows: arrow::array::RecordBatch) -> arrow::array::RecordBatch {
    let fields: Vec<_> = rows
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    arrow::array::RecordBatch::try_new(schema, rows.columns().to_vec()).unwrap()
}

/// Declares `/devops/cpu` clustered by host within hours and compacts it
/// into one file, checking that queries answer as before.
async fn compact_clustered_keeping_answers(pond: &Arc<Pond>) {
    pond.set_sort_key_with_bucket("/devops/cpu", &["hostname"], 60 * MINUTE)
        .await
        .unwrap();
    let ctx = context(Arc::clone(pond));
    let queries = [
        "SELECT hostname, ts, usage FROM devops.cpu ORDER BY hostname, ts, usage",
        "SELECT hostname, count(*), count(usage), sum(usage) FROM devops.cpu GROUP BY hostname ORDER BY 1",
        "SELECT ts, usage FROM devops.cpu WHERE hostname = 'small_3' \
         AND ts >= '2024-01-01T00:30:00Z' AND ts < '2024-01-01T02:10:00Z' ORDER BY ts",
    ];
    let mut before = Vec::new();
    for sql in queries {
        before.push(answer(&ctx, sql).await);
    }
    let done = pond.compact("/devops/cpu").await.unwrap();
    assert_eq!(done.versions_written, 1);
    for (sql, want) in queries.iter().zip(&before) {
        assert_eq!(&answer(&ctx, sql).await, want, "{sql}");
    }
}

/// Checks that the pages of the live file of `/devops/cpu` (the rows of
/// [`uneven_hosts_batch`], clustered by host within hours) start at runs:
/// see `clustered_pages_start_where_a_hosts_hour_starts`. Returns the
/// file's rows.
fn assert_pages_start_at_runs(dir: &std::path::Path, pond: &Pond) -> arrow::array::RecordBatch {
    let live = pond.versions("/devops/cpu").unwrap();
    let live = live.iter().find(|v| v.is_live()).unwrap();
    let (metadata, rows) = read_file(dir, &live.file_path);
    let hosts = rows.column(1).as_string::<i32>();
    let ts = raw_i64(&rows, "ts");
    let run = |i: usize| (ts[i].div_euclid(60 * MINUTE), hosts.value(i));
    // Where each page of each column starts, as a row of the file.
    let offsets = metadata.offset_index().expect("a page index");
    let mut first_row = 0;
    for (group, columns) in offsets.iter().enumerate() {
        let group_rows = metadata.row_group(group).num_rows();
        for pages in columns {
            let starts: Vec<i64> = pages
                .page_locations()
                .iter()
                .map(|p| first_row + p.first_row_index)
                .collect();
            for (k, &start) in starts.iter().enumerate() {
                let end = starts.get(k + 1).copied().unwrap_or(first_row + group_rows);
                assert!(end - start <= 2_048, "a page of {} rows", end - start);
                let start = start as usize;
                // A page starts at a run, or inside a run longer than a page.
                if start > 0 && run(start - 1) == run(start) {
                    assert_eq!(
                        hosts.value(start),
                        "big",
                        "page at row {start} splits a run"
                    );
                }
            }
            // Each hour of the big host (3,600 rows) starts a page.
            for i in 1..rows.num_rows() {
                if hosts.value(i) == "big" && run(i - 1) != run(i) {
                    assert!(starts.contains(&(i as i64)), "big host's hour at row {i}");
                }
            }
        }
        first_row += group_rows;
    }
    assert_eq!(first_row as usize, rows.num_rows());
    // The small hosts' runs (200 rows) share pages: about 1,000 rows each.
    let ts_pages = offsets[0][0].page_locations().len();
    assert!(ts_pages < 20, "{ts_pages} pages for 16,800 rows");
    rows
}

/// A hole in the log behind a checkpoint (a trim that another process
/// overtook, or one killed half-way) must not pass for the end of the log:
/// a handle whose next commit is missing while a newer checkpoint exists
/// reloads, and its next append lands after the newest commit.
#[tokio::test]
async fn a_missing_commit_behind_a_checkpoint_is_not_the_end_of_the_log() {
    let (dir, pond) = temp_pond_with(manual()).await;
    one_row_appends(&pond, 0, 5).await;
    let lagging = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    let seen = lagging.oplog_version();
    one_row_appends(&pond, 5, 30).await;
    let next = dir
        .path()
        .join(format!("oplog/_delta_log/{:020}.json", seen + 1));
    std::fs::remove_file(&next).unwrap();

    lagging.refresh().await.unwrap();
    assert_eq!(lagging.series_info("/plant/boiler").unwrap().versions, 30);
    lagging
        .append_series_data("/plant/boiler", &readings(&[JAN1 + 30]), "ts")
        .await
        .unwrap();
    let fresh = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    assert_eq!(read_all(&fresh, "/plant/boiler").await.num_rows(), 31);
}

#[tokio::test]
async fn compacted_files_keep_to_their_day() {
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    // Six versions a day, fewer than a tier's eight: without windows they
    // would wait for a tier, or be merged across days. Each is 300 rows,
    // one every 10 s, so that file sizes follow row counts.
    let batch_at = |start: i64| -> Vec<i64> { (0..300).map(|i| start + i * 10_000_000).collect() };
    let appends = |pond: Pond| async move {
        let mut all = Vec::new();
        for h in (0..=72).step_by(4) {
            let times = batch_at(JAN1 + h * HOUR);
            all.extend(times.iter().copied());
            pond.append_series_data("/plant/boiler", &readings(&times), "ts")
                .await
                .unwrap();
        }
        (pond, all)
    };
    let days = |pond: &Pond| -> Vec<(i64, usize)> {
        let live: Vec<_> = pond
            .versions("/plant/boiler")
            .unwrap()
            .into_iter()
            .filter(|v| v.is_live())
            .collect();
        let mut days: Vec<(i64, usize)> = live
            .iter()
            .map(|v| {
                let day = (v.min_event_time - JAN1).div_euclid(DAY);
                assert_eq!(day, (v.max_event_time - JAN1).div_euclid(DAY), "{v:?}");
                (day, v.row_count as usize)
            })
            .collect();
        days.sort();
        days
    };
    // A target of 16 such versions: a day (6) weighs more than the eighth
    // of it that a window must hold before it cuts, and fits in it.
    let (_dir, probe) = temp_pond().await;
    probe
        .append_series_data("/plant/boiler", &readings(&batch_at(JAN1)), "ts")
        .await
        .unwrap();
    let size = probe.versions("/plant/boiler").unwrap()[0].size;
    let options = CompactOptions::default().with_target_file_bytes(16 * size);

    // Automatic: once a day has ended, its six versions become one.
    let automatic = pond::PondOptions::default().with_auto_compact_options(options.clone());
    let (_dir, pond) = temp_pond_with(automatic).await;
    let (pond, all) = appends(pond).await;
    assert_eq!(days(&pond), [(0, 1800), (1, 1800), (2, 1800), (3, 300)]);
    let rows = read_all(&pond, "/plant/boiler").await;
    assert_eq!(raw_i64(&rows, "ts"), all, "every row once, in time order");

    // On demand, a file a day; with no window, one file for all.
    let (_dir, pond) = temp_pond().await;
    let (pond, all) = appends(pond).await;
    pond.compact_with_options("/plant/boiler", &options)
        .await
        .unwrap();
    assert_eq!(days(&pond), [(0, 1800), (1, 1800), (2, 1800), (3, 300)]);
    let rows = read_all(&pond, "/plant/boiler").await;
    assert_eq!(raw_i64(&rows, "ts"), all);
    let done = pond
        .compact_with_options("/plant/boiler", &options.clone().with_window_micros(0))
        .await
        .unwrap();
    assert_eq!((done.versions_read, done.versions_written), (4, 1));
    let rows = read_all(&pond, "/plant/boiler").await;
    assert_eq!(raw_i64(&rows, "ts"), all);

    // Sparse data, under an eighth of the target a day (the default
    // target, 128 MiB): the days are not cut, the tiers merge across them.
    let (_dir, pond) = temp_pond_with(pond::PondOptions::default()).await;
    let (pond, all) = appends(pond).await;
    let live: Vec<_> = pond
        .versions("/plant/boiler")
        .unwrap()
        .into_iter()
        .filter(|v| v.is_live())
        .collect();
    // 19 appends: two tiers of eight, and three appends.
    assert_eq!(live.len(), 2 + 3, "{live:?}");
    let first = &live.iter().find(|v| v.level == 1).unwrap();
    assert!(
        first.max_event_time - first.min_event_time > DAY,
        "a tier across days: {first:?}"
    );
    let rows = read_all(&pond, "/plant/boiler").await;
    assert_eq!(raw_i64(&rows, "ts"), all);
}

#[tokio::test]
async fn a_plan_made_before_a_compaction_reads_what_it_planned() {
    // A hash join prunes its probe side's versions when it starts, by the
    // build side's keys: by then a compaction may have superseded the files
    // the plan holds, and the answer must not lose them.
    let (_dir, pond) = temp_pond().await;
    small_versions(&pond, 12).await;
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let sql = "SELECT count(*) FROM plant.boiler a JOIN plant.boiler b ON a.ts = b.ts \
               WHERE b.reading > 0";
    let expected = count(&ctx, sql).await;
    assert!(expected > 0);
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    // The probe side holds the join's dynamic filter, which is what prunes
    // versions when execution starts.
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    assert!(shown.contains("DynamicFilter"), "{shown}");
    let done = pond.compact("/plant/boiler").await.unwrap();
    assert!(done.versions_read > 1, "{done:?}");
    let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx())
        .await
        .unwrap();
    let c = arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
    assert_eq!(c.as_primitive::<Int64Type>().value(0), expected);
}

/// A count over whole hours of a file clustered within hours comes from its
/// page index (the pages end where the hours do): the plan is a constant,
/// no scan. Over part of an hour the rows are read. Both are the rows'
/// own counts.
#[tokio::test]
async fn a_count_over_whole_hours_of_a_clustered_file_reads_no_page() {
    let (_dir, pond) = clustered_hours().await;
    let ctx = context(pond);
    let hour = |h: i64| format!("'2024-01-01T0{h}:00:00Z'");
    // An hour holds 3,600 rows of the big host and 200 of each small one.
    let cases = [
        (format!("ts >= {}", hour(1)), 11_200, true),
        (
            format!("ts >= {} AND ts < {}", hour(1), hour(2)),
            5_600,
            true,
        ),
        (format!("ts < {}", hour(1)), 5_600, true),
        (
            format!("ts BETWEEN {} AND '2024-01-01T01:59:59Z'", hour(1)),
            5_600,
            true,
        ),
        (
            format!("{} <= ts AND ts < {}", hour(0), hour(3)),
            16_800,
            true,
        ),
        (format!("ts > {}", hour(3)), 0, true),
        // Half an hour: 1,800 rows of the big host, 100 of each small one.
        ("ts >= '2024-01-01T01:30:00Z'".to_string(), 8_400, false),
        (
            format!("ts >= {} AND hostname = 'big'", hour(1)),
            7_200,
            false,
        ),
    ];
    for (filter, rows, from_index) in cases {
        let sql = format!("SELECT count(*) FROM devops.cpu WHERE {filter}");
        assert_eq!(count(&ctx, &sql).await, rows, "{sql}");
        let plan = answer(&ctx, &format!("EXPLAIN {sql}")).await;
        assert_eq!(
            !plan.contains("SeriesScanExec"),
            from_index,
            "{sql}\n{plan}"
        );
    }
    let window = format!(
        "SELECT count(*) FROM series_range('/devops/cpu', TIMESTAMP {}, TIMESTAMP {})",
        hour(1),
        hour(2)
    );
    let union = format!(
        "SELECT count(*) FROM series_union('/devops/*') WHERE ts >= {} AND ts < {}",
        hour(1),
        hour(2)
    );
    for sql in [window, union] {
        assert_eq!(count(&ctx, &sql).await, 5_600, "{sql}");
        let plan = answer(&ctx, &format!("EXPLAIN {sql}")).await;
        assert!(!plan.contains("SeriesScanExec"), "{sql}\n{plan}");
    }
}

/// Random time ranges over series in seconds, milliseconds, microseconds
/// and nanoseconds (never counted from pages: the oplog rounds them), in
/// 2024 and across the epoch, clustered within hours and compacted, each
/// alone and all four as one
/// `series_union`: every count is the count over `MemTable`s of the same
/// rows, and those whose bounds fall on page bounds come from the page
/// index.
#[tokio::test]
async fn random_counts_over_clustered_files_agree_with_the_rows() {
    use arrow::datatypes::TimeUnit;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let (_dir, pond) = temp_pond_with(manual()).await;
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let units = [
        ("s", TimeUnit::Second),
        ("ms", TimeUnit::Millisecond),
        ("us", TimeUnit::Microsecond),
        ("ns", TimeUnit::Nanosecond),
    ];
    // The same rows in 2024, and moved to span the epoch (from 01:30
    // before it to 01:30 after), where rounding toward zero and down part.
    let shift = -JAN1 - 90 * MINUTE;
    for ((name, unit), (era, moved)) in units
        .into_iter()
        .flat_map(|u| [(u, ("cpu", 0)), (u, ("old", shift))])
    {
        let path = format!("/devops/{era}_{name}");
        let mut batches = Vec::new();
        for h in 0..3 {
            let rows = uneven_hosts_batch(h, h + 1);
            let mut columns = rows.columns().to_vec();
            let utc = DataType::Timestamp(unit, Some("UTC".into()));
            let micros = arrow::compute::cast(&columns[0], &DataType::Int64).unwrap();
            let micros = arrow::compute::kernels::numeric::add(
                &micros,
                &arrow::array::Int64Array::new_scalar(moved),
            )
            .unwrap();
            let micros = arrow::compute::cast(
                &micros,
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            )
            .unwrap();
            columns[0] = arrow::compute::cast(&micros, &utc).unwrap();
            let mut fields: Vec<_> = rows.schema().fields().iter().cloned().collect();
            fields[0] = Arc::new(fields[0].as_ref().clone().with_data_type(utc));
            let schema = Arc::new(arrow::datatypes::Schema::new(fields));
            let rows = arrow::array::RecordBatch::try_new(schema, columns).unwrap();
            pond.append_series_data(&path, &rows, "ts").await.unwrap();
            batches.push(rows);
        }
        pond.set_sort_key_with_bucket(&path, &["hostname"], 60 * MINUTE)
            .await
            .unwrap();
        assert_eq!(pond.compact(&path).await.unwrap().versions_written, 1);
        let rows = datafusion::datasource::MemTable::try_new(batches[0].schema(), vec![batches]);
        ctx.register_table(
            format!("datafusion.public.ref_{era}_{name}"),
            Arc::new(rows.unwrap()),
        )
        .unwrap();
    }

    let mut rng = StdRng::seed_from_u64(21);
    let (mut from_index, cases) = (0, 200);
    for case in 0..cases {
        let (name, _) = units[case % units.len()];
        let (era, start) = match (case / units.len()) % 2 {
            0 => ("cpu", JAN1),
            _ => ("old", JAN1 + shift),
        };
        // An hour's start (of the epoch's hours), or a time within the
        // three hours; then a step of a second, a millisecond or a
        // microsecond either way, or none.
        let mut instant = || {
            let base = match rng.random_bool(0.6) {
                true => {
                    (start + rng.random_range(0..=3) * 60 * MINUTE).div_euclid(60 * MINUTE)
                        * 60
                        * MINUTE
                }
                false => start + rng.random_range(0..3 * 3_600) * 1_000_000,
            };
            let step = *[0, 0, 0, 1, -1, 1_000, -1_000, 1_000_000, -1_000_000]
                .get(rng.random_range(0..9))
                .unwrap();
            format!("'{}'", pond::format_micros(base + step))
        };
        let (a, b) = (instant(), instant());
        let filter = match case % 5 {
            0 => format!("ts >= {a}"),
            1 => format!("ts < {b}"),
            2 => format!("ts >= {a} AND ts < {b}"),
            3 => format!("ts BETWEEN {a} AND {b}"),
            _ => format!("ts > {a} AND ts <= {b}"),
        };
        let sql = |table: &str| format!("SELECT count(*) FROM {table} WHERE {filter}");
        let table = format!("devops.{era}_{name}");
        let got = count(&ctx, &sql(&table)).await;
        let want = count(&ctx, &sql(&format!("datafusion.public.ref_{era}_{name}"))).await;
        assert_eq!(got, want, "{}", sql(&table));
        let plan = answer(&ctx, &format!("EXPLAIN {}", sql(&table))).await;
        from_index += usize::from(!plan.contains("SeriesScanExec"));
        // The four as one table, whose `ts` is in µs: each holds the same
        // rows, in whole seconds.
        let union = sql(&format!("series_union('/devops/{era}_*')"));
        let want = 4 * count(&ctx, &sql(&format!("datafusion.public.ref_{era}_us"))).await;
        assert_eq!(count(&ctx, &union).await, want, "{union}");
    }
    // Hours' starts make a good share of the bounds (78 of 200 here; none
    // of the nanosecond series).
    assert!(
        from_index >= cases / 4,
        "{from_index} of {cases} from the page index"
    );
}

/// The codecs of the column chunks of a live version's file.
fn codecs(dir: &std::path::Path, version: &pond::FileInfo) -> Vec<parquet::basic::Compression> {
    let (metadata, _) = read_file(dir, &version.file_path);
    let mut codecs: Vec<_> = metadata
        .row_groups()
        .iter()
        .flat_map(|g| g.columns().iter().map(|c| c.compression()))
        .collect();
    codecs.dedup();
    codecs
}

/// A series declares its codec: the files written from then on use it,
/// appends and compactions, and those before keep theirs; declaring it
/// keeps the sort key and declaring a sort key keeps it; both outlive a
/// reopen, `series_list` shows it, and the answers do not change.
#[tokio::test]
async fn a_series_declares_its_compression_and_the_files_written_after_use_it() {
    use parquet::basic::{Compression as Codec, ZstdLevel};
    use pond::Compression;

    let (dir, pond) = temp_pond_with(manual()).await;
    let pond = Arc::new(pond);
    let path = "/devops/cpu";
    for h in 0..2 {
        pond.append_series_data(path, &uneven_hosts_batch(h, h + 1), "ts")
            .await
            .unwrap();
    }
    let ctx = context(Arc::clone(&pond));
    let query = "SELECT hostname, count(*), sum(usage) FROM devops.cpu GROUP BY 1 ORDER BY 1";
    let before = answer(&ctx, query).await;
    pond.set_sort_key(path, &["hostname"]).await.unwrap();
    pond.set_compression(path, Compression::Lz4).await.unwrap();
    let info = |pond: &Pond| {
        let s = pond.series_info(path).unwrap();
        (s.sort_key, s.sort_bucket, s.compression)
    };
    let declared = (
        vec!["hostname".to_string(), "ts".to_string()],
        pond::DEFAULT_SORT_BUCKET,
        Compression::Lz4,
    );
    assert_eq!(info(&pond), declared);

    // An append after the declaration is written with it; those before
    // keep zstd.
    pond.append_series_data(path, &uneven_hosts_batch(2, 3), "ts")
        .await
        .unwrap();
    let live = pond.versions(path).unwrap();
    let zstd = vec![Codec::ZSTD(ZstdLevel::default())];
    assert_eq!(codecs(dir.path(), &live[0]), zstd);
    assert_eq!(codecs(dir.path(), &live[2]), vec![Codec::LZ4_RAW]);

    // A compaction too, clustered as declared.
    assert_eq!(pond.compact(path).await.unwrap().versions_written, 1);
    let live: Vec<_> = pond.versions(path).unwrap();
    let live: Vec<_> = live.into_iter().filter(|v| v.is_live()).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(codecs(dir.path(), &live[0]), vec![Codec::LZ4_RAW]);
    assert_eq!(live[0].sort_key, declared.0);
    let rows = "SELECT count(*) FROM devops.cpu";
    let appended = uneven_hosts_batch(0, 3).num_rows() as i64;
    assert_eq!(count(&ctx, rows).await, appended);
    let after_all = answer(&ctx, query).await;
    assert_ne!(before, after_all, "the third hour adds rows");

    // Declaring a sort key keeps the codec; declaring the codec again
    // commits nothing.
    let commits = pond.oplog_version();
    pond.set_compression(path, Compression::Lz4).await.unwrap();
    pond.set_sort_key(path, &["hostname"]).await.unwrap();
    assert_eq!(pond.oplog_version(), commits);
    pond.set_sort_key(path, &["ts"]).await.unwrap();
    assert_eq!(info(&pond), (Vec::new(), 0, Compression::Lz4));

    // Both outlive a reopen; series_list shows the codec.
    drop(ctx);
    let reopened = Arc::new(
        Pond::open_with_options(dir.path().to_str().unwrap(), manual())
            .await
            .unwrap(),
    );
    assert_eq!(info(&reopened), (Vec::new(), 0, Compression::Lz4));
    let ctx = context(Arc::clone(&reopened));
    assert_eq!(answer(&ctx, query).await, after_all);
    let listed = answer(&ctx, "SELECT compression FROM series_list()").await;
    assert!(listed.contains("| lz4 "), "{listed}");
    reopened
        .set_compression(path, Compression::None)
        .await
        .unwrap();
    reopened
        .append_series_data(path, &uneven_hosts_batch(3, 4), "ts")
        .await
        .unwrap();
    let live = reopened.versions(path).unwrap();
    let newest = live
        .iter()
        .filter(|v| v.is_live())
        .max_by_key(|v| v.version);
    assert_eq!(
        codecs(dir.path(), newest.unwrap()),
        vec![Codec::UNCOMPRESSED]
    );
    assert_eq!("LZ4".parse::<Compression>(), Ok(Compression::Lz4));
    let err = "brotli".parse::<Compression>().unwrap_err();
    assert!(err.contains("zstd, lz4, snappy, none"), "{err}");
}
