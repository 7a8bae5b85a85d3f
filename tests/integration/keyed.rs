//! Keyed series: one row per key, the newest append's, through every read
//! (SQL tables, `series_range`, `SeriesStream`), across compactions and
//! time travel; and a differential test of random operation sequences
//! against an oracle.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::prelude::SessionContext;
use pond::{AppendOptions, CompactOptions, MAX_TIME, MIN_TIME, Pond, SeriesExt};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::common::*;

/// `(ts µs, hostname, v)` rows as a batch.
fn rows(rows: &[(i64, &str, i64)]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "ts",
            timestamps(
                TimeUnit::Microsecond,
                Some("UTC"),
                rows.iter().map(|r| r.0).collect(),
            ),
        ),
        (
            "hostname",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))) as ArrayRef,
        ),
        (
            "v",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))) as ArrayRef,
        ),
    ])
    .unwrap()
}

fn keyed() -> AppendOptions {
    AppendOptions::default().with_key(["hostname"])
}

/// The `(ts, hostname, v)` rows of batches, sorted.
fn triples(batches: &[RecordBatch]) -> Vec<(i64, String, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let ts = arrow::compute::cast(b.column_by_name("ts").unwrap(), &DataType::Int64).unwrap();
        let host =
            arrow::compute::cast(b.column_by_name("hostname").unwrap(), &DataType::Utf8).unwrap();
        let v = b.column_by_name("v").unwrap();
        let (ts, host, v) = (
            ts.as_primitive::<Int64Type>(),
            host.as_string::<i32>(),
            v.as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            out.push((ts.value(i), host.value(i).to_string(), v.value(i)));
        }
    }
    out.sort();
    out
}

async fn sql(ctx: &SessionContext, query: &str) -> Vec<(i64, String, i64)> {
    let batches = ctx.sql(query).await.unwrap().collect().await.unwrap();
    triples(&batches)
}

/// The plan of `query`, as text.
async fn explain(ctx: &SessionContext, query: &str) -> String {
    let plan = ctx.sql(query).await.unwrap().collect().await.unwrap();
    arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string()
}

async fn session(pond: &Arc<Pond>) -> SessionContext {
    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::clone(pond));
    ctx
}

fn owned(rows: &[(i64, &str, i64)]) -> Vec<(i64, String, i64)> {
    let mut out: Vec<_> = rows.iter().map(|r| (r.0, r.1.to_string(), r.2)).collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_newest_append_wins_and_overlapping_versions_alone_are_merged() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let s = "/fleet/cpu";
    // One append holding a key twice keeps the later row.
    let first = rows(&[(0, "a", 1), (0, "b", 2), (SECOND, "a", 3), (SECOND, "a", 4)]);
    pond.append_batch_with_options(s, &first, "ts", &keyed())
        .await
        .unwrap();
    // A re-delivery of one reading, and a new one.
    let second = rows(&[(SECOND, "a", 30), (2 * SECOND, "b", 50)]);
    pond.append_batch(s, &second, "ts").await.unwrap();
    // A version far away overlaps nothing.
    let third = rows(&[(3600 * SECOND, "a", 7)]);
    pond.append_batch(s, &third, "ts").await.unwrap();

    let expected = owned(&[
        (0, "a", 1),
        (0, "b", 2),
        (SECOND, "a", 30),
        (2 * SECOND, "b", 50),
        (3600 * SECOND, "a", 7),
    ]);
    let ctx = session(&pond).await;
    assert_eq!(sql(&ctx, "SELECT * FROM fleet.cpu").await, expected);
    assert_eq!(triples(&[read_all(&pond, s).await]), expected);

    // A filter on a value column applies after the newest row is chosen:
    // the replaced 4 and 3 must not come back.
    assert_eq!(
        sql(&ctx, "SELECT * FROM fleet.cpu WHERE v < 10 AND v > 2").await,
        owned(&[(3600 * SECOND, "a", 7)])
    );
    let text = explain(&ctx, "EXPLAIN SELECT * FROM fleet.cpu WHERE v > 2").await;
    assert!(
        text.contains("LastWriterWinsExec: key=[hostname, ts], merged versions=2 in 1 runs"),
        "{text}"
    );
    // The version that overlaps nothing is read as it is.
    assert!(text.contains("versions=1/3"), "{text}");
    // The merged versions are in time order, whichever columns are read:
    // they are merged, not sorted.
    for query in ["SELECT * FROM fleet.cpu", "SELECT v FROM fleet.cpu"] {
        let plan = explain(&ctx, &format!("EXPLAIN {query}")).await;
        assert!(plan.contains("SortPreservingMergeExec"), "{plan}");
        assert!(!plan.contains("SortExec"), "{plan}");
    }
    // The merged runs' requests count on the scan, even when every version
    // it keeps is merged.
    let analyzed = explain(
        &ctx,
        "EXPLAIN ANALYZE SELECT * FROM fleet.cpu WHERE ts < '1970-01-01T00:10:00Z'",
    )
    .await;
    let gets = analyzed
        .split("store_get_requests=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(gets.is_some_and(|n| n >= 2), "{analyzed}");

    // Time travel: before the re-delivery, the first append's rows.
    assert_eq!(
        sql(
            &ctx,
            "SELECT * FROM series_range('/fleet/cpu', NULL, NULL, 1)"
        )
        .await,
        owned(&[(0, "a", 1), (0, "b", 2), (SECOND, "a", 4)])
    );
    let window = sql(
        &ctx,
        "SELECT * FROM series_range('/fleet/cpu', '1970-01-01T00:00:01Z', '1970-01-01T00:00:02Z')",
    )
    .await;
    assert_eq!(window, owned(&[(SECOND, "a", 30)]));

    // Compaction materializes the winners: the same answers, no merging.
    let outcome = pond.compact(s).await.unwrap();
    assert!(outcome.versions_written >= 1, "{outcome:?}");
    assert_eq!(sql(&ctx, "SELECT * FROM fleet.cpu").await, expected);
    assert_eq!(triples(&[read_all(&pond, s).await]), expected);
    let info = pond.series_info(s).unwrap();
    assert_eq!(info.rows, expected.len() as i64);
}

#[tokio::test]
async fn a_compaction_never_lets_older_rows_win_over_a_newer_version_it_left_out() {
    let (_dir, pond) = temp_pond().await;
    let s = "/k/s";
    // Small, big, small: the big version in the middle is not one that
    // compaction rewrites, but it overlaps both small ones.
    pond.append_batch_with_options(s, &rows(&[(0, "a", 1)]), "ts", &keyed())
        .await
        .unwrap();
    // Values that do not compress, so that the version is big.
    let big: Vec<(i64, &str, i64)> = (0..20_000)
        .map(|i| (i * SECOND / 100, "a", (i * 2_654_435_761) % 1_000_003))
        .collect();
    pond.append_batch(s, &rows(&big), "ts").await.unwrap();
    pond.append_batch(s, &rows(&[(5, "b", 3)]), "ts")
        .await
        .unwrap();
    let before = triples(&[read_all(&pond, s).await]);
    assert!(before.contains(&(0, "a".to_string(), 0)));
    // The big version is not small enough to rewrite; the others are.
    let big_size = pond.versions(s).unwrap()[1].size;
    let options = CompactOptions::default().with_target_file_bytes(big_size);
    let outcome = pond.compact_with_options(s, &options).await.unwrap();
    assert_eq!(
        outcome.versions_read, 3,
        "the big version joins: {outcome:?}"
    );
    assert_eq!(triples(&[read_all(&pond, s).await]), before);
}

/// The error of appending `batch` to `path` with `key`.
async fn append_error(pond: &Pond, path: &str, key: &[&str]) -> String {
    let options = AppendOptions::default().with_key(key.iter().copied());
    pond.append_batch_with_options(path, &rows(&[(0, "a", 1)]), "ts", &options)
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn keys_are_declared_once_and_checked() {
    let (_dir, pond) = temp_pond().await;
    let batch = rows(&[(0, "a", 1)]);
    let err = append_error(&pond, "/k/a", &["nope"]).await;
    assert!(err.contains("the key names no column \"nope\""), "{err}");
    assert!(pond.series_info("/k/a").is_err(), "nothing was created");
    // A float is no identity: 0.0 and -0.0 are one value to SQL, two to a
    // sort.
    let floats = RecordBatch::try_from_iter([
        (
            "ts",
            timestamps(TimeUnit::Microsecond, Some("UTC"), vec![0]),
        ),
        (
            "k",
            Arc::new(arrow::array::Float64Array::from(vec![-0.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let options = AppendOptions::default().with_key(["k"]);
    let err = pond
        .append_batch_with_options("/k/f", &floats, "ts", &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("floating-point values are no identities"),
        "{err}"
    );

    pond.append_batch("/k/plain", &batch, "ts").await.unwrap();
    let err = append_error(&pond, "/k/plain", &["hostname"]).await;
    assert!(err.contains("created without a key"), "{err}");

    pond.append_batch_with_options("/k/b", &batch, "ts", &keyed())
        .await
        .unwrap();
    assert_eq!(pond.series_info("/k/b").unwrap().key, ["hostname", "ts"]);
    // The same key, in any order, or none: fine.
    let same = AppendOptions::default().with_key(["ts", "hostname"]);
    pond.append_batch_with_options("/k/b", &batch, "ts", &same)
        .await
        .unwrap();
    let err = append_error(&pond, "/k/b", &["v"]).await;
    assert!(err.contains("keyed by (hostname, ts)"), "{err}");
    // An unkeyed series keeps every row.
    pond.append_batch("/k/plain", &batch, "ts").await.unwrap();
    assert_eq!(read_all(&pond, "/k/plain").await.num_rows(), 2);
    assert_eq!(read_all(&pond, "/k/b").await.num_rows(), 1);
}

#[tokio::test]
async fn create_table_with_a_primary_key_makes_a_keyed_series() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = session(&pond).await;
    ctx.sql(
        "CREATE TABLE plant.boiler (ts TIMESTAMP NOT NULL, hostname TEXT NOT NULL, v BIGINT, \
         PRIMARY KEY (hostname, ts))",
    )
    .await
    .unwrap()
    .collect()
    .await
    .unwrap();
    assert_eq!(
        pond.series_info("/plant/boiler").unwrap().key,
        ["hostname", "ts"]
    );
    for v in [1, 2] {
        ctx.sql(&format!(
            "INSERT INTO plant.boiler VALUES (TIMESTAMP '2026-01-01T00:00:00', 'a', {v})"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    }
    let got = sql(&ctx, "SELECT * FROM plant.boiler").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, 2);
}

// ---------------------------------------------------------------------------
// The differential test.

const HOSTS: [&str; 3] = ["a", "b", "c"];

/// What reads must return. Of a keyed series: of every key, the value of
/// the newest append that held it (within one append, its last row for the
/// key), i.e. `row_number() OVER (PARTITION BY hostname, ts ORDER BY
/// version DESC, row DESC) = 1` over every appended row. Of an unkeyed
/// series, every appended row. A delete removes the rows it matches as the
/// series is then.
#[derive(Default, Clone)]
struct Oracle {
    keyed: bool,
    rows: Vec<(i64, String, i64)>,
}

impl Oracle {
    fn append(&mut self, rows: &[(i64, &str, i64)]) {
        for &(t, h, v) in rows {
            if self.keyed {
                self.rows.retain(|r| !(r.0 == t && r.1 == h));
            }
            self.rows.push((t, h.to_string(), v));
        }
    }

    fn delete(&mut self, deleted: impl Fn(i64, &str, i64) -> bool) {
        self.rows.retain(|(t, h, v)| !deleted(*t, h, *v));
    }

    fn select(&self, keep: impl Fn(i64, &str, i64) -> bool) -> Vec<(i64, String, i64)> {
        let mut out: Vec<_> = self
            .rows
            .iter()
            .filter(|(t, h, v)| keep(*t, h, *v))
            .cloned()
            .collect();
        out.sort();
        out
    }
}

/// A random delete: a time range, and maybe a predicate on the host (a
/// key column) or the value (not one), as SQL and as a test.
#[allow(clippy::type_complexity)]
fn random_delete(
    rng: &mut StdRng,
) -> (
    i64,
    i64,
    Option<String>,
    Box<dyn Fn(i64, &str, i64) -> bool + Send + Sync>,
) {
    let start = rng.random_range(0..70) * SECOND;
    let end = start + rng.random_range(1..40) * SECOND;
    let host = *HOSTS.choose(rng).unwrap();
    let bound = rng.random_range(0..VALUES);
    match rng.random_range(0..3) {
        0 => (
            start,
            end,
            None,
            Box::new(move |t, _, _| t >= start && t < end),
        ),
        1 => (
            start,
            end,
            Some(format!("hostname = '{host}'")),
            Box::new(move |t, h, _| t >= start && t < end && h == host),
        ),
        _ => (
            start,
            end,
            Some(format!("v >= {bound}")),
            Box::new(move |t, _, v| t >= start && t < end && v >= bound),
        ),
    }
}

/// Values are drawn from this range, so that a newer row may hold a
/// smaller value than the one it replaces (filters on values must not
/// bring the older one back).
const VALUES: i64 = 100;

/// A random append: a few rows near one of a few instants, some keys
/// repeated, in random order.
fn random_rows(rng: &mut StdRng) -> Vec<(i64, &'static str, i64)> {
    let n = rng.random_range(1..=12);
    let center = rng.random_range(0..6) * 10;
    let spread = *[1, 3, 12].choose(rng).unwrap();
    (0..n)
        .map(|_| {
            let t = (center + rng.random_range(0..spread)) * SECOND;
            (t, *HOSTS.choose(rng).unwrap(), rng.random_range(0..VALUES))
        })
        .collect()
}

/// One sequence: appends (overlapping, re-delivered, out of order),
/// deletes and compactions of a keyed or unkeyed series, every read checked
/// after each step.
async fn run_sequence(pond: &Arc<Pond>, ctx: &SessionContext, seed: u64, case: usize) {
    let mut rng = StdRng::seed_from_u64(seed ^ (case as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let path = format!("/gen/s{case}");
    let table = format!("gen.s{case}");
    let keyed_series = rng.random_bool(0.75);
    let mut oracle = Oracle {
        keyed: keyed_series,
        ..Oracle::default()
    };
    let mut history: Vec<(i64, Oracle)> = Vec::new();
    let steps = rng.random_range(2..=7);
    let clustered = rng.random_bool(0.3);
    for step in 0..steps {
        let what = if step == 0 {
            0
        } else {
            rng.random_range(0..10)
        };
        let label = format!("seed {seed} case {case} step {step} (keyed: {keyed_series})");
        if what < 6 {
            let batch = random_rows(&mut rng);
            let options = if step == 0 && keyed_series {
                keyed()
            } else {
                AppendOptions::default()
            };
            let outcome = pond
                .append_batch_with_options(&path, &rows(&batch), "ts", &options)
                .await
                .unwrap();
            oracle.append(&batch);
            history.push((outcome.version, oracle.clone()));
            if step == 0 && clustered {
                pond.set_sort_key(&path, &["hostname"]).await.unwrap();
            }
        } else if what < 8 {
            let (start, end, predicate, deleted) = random_delete(&mut rng);
            let version = if rng.random_bool(0.5) {
                pond.delete(&path, start, end, predicate.as_deref())
                    .await
                    .unwrap()
                    .version
            } else {
                let mut query = format!(
                    "DELETE FROM {table} WHERE ts >= to_timestamp_micros({start}) \
                     AND ts < to_timestamp_micros({end})"
                );
                if let Some(p) = &predicate {
                    query.push_str(&format!(" AND {p}"));
                }
                let expected = oracle.select(|t, h, v| deleted(t, h, v)).len() as u64;
                let counted = ctx.sql(&query).await.unwrap().collect().await.unwrap();
                let counted = counted[0]
                    .column(0)
                    .as_primitive::<arrow::datatypes::UInt64Type>();
                assert_eq!(counted.value(0), expected, "{label}: {query}");
                last_version(ctx, &path).await
            };
            oracle.delete(|t, h, v| deleted(t, h, v));
            history.push((version, oracle.clone()));
        } else {
            let window = *[0, 10 * SECOND, 30 * SECOND].choose(&mut rng).unwrap();
            let options = CompactOptions::default()
                .with_target_file_bytes(rng.random_range(1_000..20_000))
                .with_window_micros(window);
            pond.compact_with_options(&path, &options).await.unwrap();
        }

        // Every row.
        let all = oracle.select(|_, _, _| true);
        assert_eq!(
            sql(ctx, &format!("SELECT * FROM {table}")).await,
            all,
            "{label}"
        );
        // A time window through SeriesStream.
        let (start, end) = {
            let a = rng.random_range(0..70) * SECOND;
            (a, a + rng.random_range(1..30) * SECOND)
        };
        let stream = pond
            .read_series_time_range(&path, start, end)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            triples(&stream),
            oracle.select(|t, _, _| t >= start && t < end),
            "{label}: SeriesStream [{start}, {end})"
        );
        // A filter on the time, the host and the value at once.
        let host = *HOSTS.choose(&mut rng).unwrap();
        let bound = rng.random_range(0..VALUES);
        let query = format!(
            "SELECT * FROM {table} WHERE ts >= to_timestamp_micros({start}) \
             AND hostname <> '{host}' AND v >= {bound}"
        );
        assert_eq!(
            sql(ctx, &query).await,
            oracle.select(|t, h, v| t >= start && h != host && v >= bound),
            "{label}: {query}"
        );
        // Other shapes of query, each through the paths pond takes for it
        // (counts from the oplog or the page index, the newest time per
        // key from recorded values, join and TopK filters pushed under
        // the merge), with Parquet's row filtering on or off: half of them
        // at each step, at random (all four doubled the test's time).
        let pushdown = rng.random_bool(0.5);
        ctx.sql(&format!(
            "SET datafusion.execution.parquet.pushdown_filters = {pushdown}"
        ))
        .await
        .unwrap();
        let label = format!("{label} (pushdown_filters: {pushdown})");
        let shapes: Vec<bool> = (0..4).map(|_| rng.random_bool(0.5)).collect();
        if shapes[0] {
            let query = format!(
                "SELECT count(*) AS ts, 'n' AS hostname, coalesce(sum(v), -1) AS v FROM {table} \
                 WHERE ts >= to_timestamp_micros({start}) AND ts < to_timestamp_micros({end})"
            );
            let within = oracle.select(|t, _, _| t >= start && t < end);
            let sum = within.iter().map(|r| r.2).sum::<i64>();
            let sum = if within.is_empty() { -1 } else { sum };
            assert_eq!(
                sql(ctx, &query).await,
                vec![(within.len() as i64, "n".to_string(), sum)],
                "{label}: {query}"
            );
        }
        let mut newest: Vec<(i64, String, i64)> = Vec::new();
        for host in HOSTS {
            let rows = oracle.select(|_, h, _| h == host);
            if let Some(last) = rows.iter().map(|r| r.0).max() {
                newest.push((last, host.to_string(), rows.len() as i64));
            }
        }
        newest.sort();
        if shapes[1] {
            let query = format!(
                "SELECT max(ts) AS ts, hostname, count(*) AS v FROM {table} GROUP BY hostname"
            );
            assert_eq!(sql(ctx, &query).await, newest, "{label}: {query}");
        }
        if shapes[2] {
            let query = format!(
                "SELECT c.ts, c.hostname, c.v FROM {table} c JOIN \
                 (SELECT hostname, max(ts) AS ts FROM {table} GROUP BY hostname) l \
                 ON c.hostname = l.hostname AND c.ts = l.ts"
            );
            let last = oracle.select(|t, h, _| newest.iter().any(|n| n.0 == t && n.1 == h));
            assert_eq!(sql(ctx, &query).await, last, "{label}: {query}");
        }
        if shapes[3] {
            let query = format!("SELECT * FROM {table} ORDER BY ts DESC, hostname, v LIMIT 3");
            let mut top = oracle.select(|_, _, _| true);
            top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            top.truncate(3);
            top.sort();
            assert_eq!(sql(ctx, &query).await, top, "{label}: {query}");
        }
        // The series as of an earlier append.
        if let Some((version, then)) = history.choose(&mut rng) {
            let query = format!("SELECT * FROM series_range('{path}', NULL, NULL, {version})");
            assert_eq!(
                sql(ctx, &query).await,
                then.select(|_, _, _| true),
                "{label}: {query}"
            );
        }
    }
}

/// The newest version number of a series, deletes included.
async fn last_version(ctx: &SessionContext, path: &str) -> i64 {
    let query = format!("SELECT max(version) FROM series_versions('{path}')");
    let batches = ctx.sql(&query).await.unwrap().collect().await.unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// `POND_KEYED_CASES` sets the number of sequences (default 2,000) and
/// `POND_KEYED_SEED` the seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_reads_equal_the_oracle_over_random_operation_sequences() {
    let cases: usize = std::env::var("POND_KEYED_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let seed: u64 = std::env::var("POND_KEYED_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_126);
    // Two ponds, each with half of the sequences, side by side.
    let halves = (0..2).map(|half| {
        tokio::spawn(async move {
            let (_dir, pond) = temp_pond().await;
            let pond = Arc::new(pond);
            let ctx = session(&pond).await;
            for case in (half..cases).step_by(2) {
                run_sequence(&pond, &ctx, seed, case).await;
            }
        })
    });
    for half in halves.collect::<Vec<_>>() {
        half.await.unwrap();
    }
}

// ---------------------------------------------------------------------------
// Deletes.

/// Every `v` of every data file on disk of the series, read as Parquet.
fn values_on_disk(dir: &tempfile::TempDir) -> Vec<i64> {
    let mut values = Vec::new();
    let mut stack = vec![dir.path().join("data")];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let file = std::fs::File::open(&path).unwrap();
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .unwrap()
                        .build()
                        .unwrap();
                for batch in reader {
                    let batch = batch.unwrap();
                    values.extend(raw_i64(&batch, "v"));
                }
            }
        }
    }
    values.sort();
    values
}

#[tokio::test]
async fn deletes_survive_reopen_travel_back_and_leave_the_disk_after_compaction_and_vacuum() {
    let (dir, pond) = temp_pond().await;
    let s = "/fleet/cpu";
    let day: Vec<(i64, &str, i64)> = (0..10)
        .flat_map(|i| [(i * SECOND, "a", i), (i * SECOND, "b", 100 + i)])
        .collect();
    pond.append_batch(s, &rows(&day[..10]), "ts").await.unwrap();
    pond.append_batch(s, &rows(&day[10..]), "ts").await.unwrap();
    // Host b between 2 s and 6 s, and every row of value 8 or 9.
    let first = pond
        .delete(s, 2 * SECOND, 6 * SECOND, Some("hostname = 'b'"))
        .await
        .unwrap();
    assert_eq!(first.version, 3);
    let second = pond
        .delete(s, MIN_TIME, MAX_TIME, Some("v IN (8, 9)"))
        .await
        .unwrap();
    // A later append in the deleted range is kept.
    pond.append_batch(s, &rows(&[(3 * SECOND, "b", 777)]), "ts")
        .await
        .unwrap();
    let expected: Vec<(i64, String, i64)> = {
        let mut rows: Vec<_> = day
            .iter()
            .filter(|(t, h, _)| !(*h == "b" && *t >= 2 * SECOND && *t < 6 * SECOND))
            .filter(|(_, _, v)| *v != 8 && *v != 9)
            .map(|(t, h, v)| (*t, h.to_string(), *v))
            .collect();
        rows.push((3 * SECOND, "b".to_string(), 777));
        rows.sort();
        rows
    };
    assert_eq!(triples(&[read_all(&pond, s).await]), expected);
    drop(pond);

    let pond = Arc::new(Pond::open(location(&dir)).await.unwrap());
    let ctx = session(&pond).await;
    assert_eq!(sql(&ctx, "SELECT * FROM fleet.cpu").await, expected);
    // As of the version before the first delete, every row.
    let before = sql(
        &ctx,
        "SELECT * FROM series_range('/fleet/cpu', NULL, NULL, 2)",
    )
    .await;
    assert_eq!(before.len(), day.len());
    let between = sql(
        &ctx,
        &format!(
            "SELECT * FROM series_range('/fleet/cpu', NULL, NULL, {})",
            second.version - 1
        ),
    )
    .await;
    assert_eq!(between.len(), day.len() - 4);

    // The rows are still on disk until compaction rewrites the versions
    // and vacuum removes the old files.
    assert!(values_on_disk(&dir).contains(&104));
    pond.compact(s).await.unwrap();
    assert_eq!(sql(&ctx, "SELECT * FROM fleet.cpu").await, expected);
    // The compacted version holds no deleted row: the deletes no longer
    // apply to it, and it is read as it is.
    let plan = explain(&ctx, "EXPLAIN SELECT * FROM fleet.cpu").await;
    assert!(!plan.contains("__pond_precedence"), "{plan}");
    pond.vacuum(std::time::Duration::ZERO).await.unwrap();
    let on_disk = values_on_disk(&dir);
    for gone in [102, 103, 104, 105, 8, 9] {
        assert!(
            !on_disk.contains(&gone),
            "{gone} is still on disk: {on_disk:?}"
        );
    }
    assert_eq!(sql(&ctx, "SELECT * FROM fleet.cpu").await, expected);
}

/// A version under a delete is rewritten by compaction whatever its size:
/// alone in its group, or larger than half the target (a compacted day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_rewrites_any_version_under_a_delete() {
    let (dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = session(&pond).await;
    let all: Vec<(i64, &str, i64)> = (0..10).map(|i| (i * SECOND, "a", i)).collect();
    let kept = owned(&all[..5]);
    let cases = [
        ("/one/small", CompactOptions::default()),
        (
            "/one/large",
            CompactOptions::default().with_target_file_bytes(1),
        ),
    ];
    for (path, options) in &cases {
        pond.append_batch(path, &rows(&all), "ts").await.unwrap();
        // Nothing to rewrite before the delete.
        let done = pond.compact_with_options(path, options).await.unwrap();
        assert_eq!(done.versions_read, 0, "{path}");
        pond.delete(path, MIN_TIME, MAX_TIME, Some("v >= 5"))
            .await
            .unwrap();
        let done = pond.compact_with_options(path, options).await.unwrap();
        assert_eq!(
            (done.versions_read, done.versions_written),
            (1, 1),
            "{path}"
        );
        let table = path.trim_start_matches('/').replace('/', ".");
        assert_eq!(sql(&ctx, &format!("SELECT * FROM {table}")).await, kept);
        // Once rewritten, the delete no longer applies: nothing to do.
        let again = pond.compact_with_options(path, options).await.unwrap();
        assert_eq!(again.versions_read, 0, "{path}");
    }
    pond.vacuum(std::time::Duration::ZERO).await.unwrap();
    let on_disk = values_on_disk(&dir);
    assert_eq!(on_disk, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
}

#[tokio::test]
async fn reads_as_of_the_newest_version_after_a_compaction_that_wrote_nothing() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let all: Vec<(i64, &str, i64)> = (0..4).map(|i| (i * SECOND, "a", i)).collect();
    pond.append_batch("/x", &rows(&all), "ts").await.unwrap();
    pond.delete("/x", MIN_TIME, MAX_TIME, None).await.unwrap();
    // Every row deleted: the compaction supersedes the version and writes
    // none, and vacuum then removes its file.
    let done = pond.compact("/x").await.unwrap();
    assert_eq!((done.versions_read, done.versions_written), (1, 0));
    pond.vacuum(std::time::Duration::ZERO).await.unwrap();
    let ctx = session(&pond).await;
    let count = "SELECT count(*) AS n FROM x";
    assert_eq!(one_count(&ctx, count).await, 0);
    for version in [2, 99] {
        let as_of = format!("SELECT count(*) AS n FROM series_range('/x', NULL, NULL, {version})");
        assert_eq!(one_count(&ctx, &as_of).await, 0, "as of {version}");
    }
    ctx.sql("SET pond.as_of = '2999-01-01T00:00:00Z'")
        .await
        .unwrap();
    assert_eq!(one_count(&ctx, count).await, 0);
    // Before the delete, the version's file is gone: an error that says so.
    let before = "SELECT count(*) AS n FROM series_range('/x', NULL, NULL, 1)";
    let err = ctx.sql(before).await.unwrap().collect().await.unwrap_err();
    assert!(err.to_string().contains("vacuumed"), "{err}");
}

/// The one integer of `sql`'s answer.
async fn one_count(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn a_version_wholly_deleted_is_not_read_and_sql_delete_counts_rows() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let s = "/plant/boiler";
    for hour in 0..4 {
        let t = hour * 3600 * SECOND;
        pond.append_batch(s, &rows(&[(t, "a", hour), (t + SECOND, "a", hour)]), "ts")
            .await
            .unwrap();
    }
    let ctx = session(&pond).await;
    let deleted = ctx
        .sql("DELETE FROM plant.boiler WHERE ts >= '1970-01-01T01:00:00Z' AND ts < '1970-01-01T03:00:00Z'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let count = deleted[0]
        .column(0)
        .as_primitive::<arrow::datatypes::UInt64Type>();
    assert_eq!(count.value(0), 4);
    assert_eq!(sql(&ctx, "SELECT * FROM plant.boiler").await.len(), 4);
    // A delete from the command line's form: a range and no predicate.
    pond.delete(s, 3 * 3600 * SECOND, 4 * 3600 * SECOND, None)
        .await
        .unwrap();
    let plan = explain(&ctx, "EXPLAIN SELECT * FROM plant.boiler").await;
    // The hour the range-only delete covers is not read at all; the two
    // the SQL delete covers are read through its predicate.
    assert!(plan.contains("versions=1/4"), "{plan}");
    assert!(plan.contains("__pond_precedence@"), "{plan}");
    assert_eq!(sql(&ctx, "SELECT * FROM plant.boiler").await.len(), 2);

    let err = pond
        .delete(s, 0, SECOND, Some("nope > 1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot delete from /plant/boiler"), "{err}");
    let err = pond
        .delete(s, SECOND, SECOND, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the time range is empty"), "{err}");
}

// ---------------------------------------------------------------------------
// Cases a review found.

#[tokio::test]
async fn a_compaction_under_a_delete_with_a_predicate_takes_the_older_versions_along() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let s = "/r/a";
    // A big old version holding (0, a) = 1.
    let mut big: Vec<(i64, &str, i64)> = (1..20_000)
        .map(|i| (i * SECOND / 100, "a", (i * 2_654_435_761) % 1_000_003))
        .collect();
    big.push((0, "a", 1));
    pond.append_batch_with_options(s, &rows(&big), "ts", &keyed())
        .await
        .unwrap();
    // A small newer one replaces it with 150.
    pond.append_batch(s, &rows(&[(0, "a", 150)]), "ts")
        .await
        .unwrap();
    // Delete where v >= 100: the newest row of (0, a) is 150, so the key goes.
    pond.delete(s, 0, SECOND, Some("v >= 100")).await.unwrap();
    pond.append_batch(s, &rows(&[(5, "b", 3)]), "ts")
        .await
        .unwrap();
    let ctx = session(&pond).await;
    let before = sql(&ctx, "SELECT * FROM r.a WHERE ts < to_timestamp_micros(10)").await;
    assert_eq!(before, owned(&[(5, "b", 3)]), "before compaction");
    let big_size = pond.versions(s).unwrap()[0].size;
    let options = CompactOptions::default().with_target_file_bytes(big_size);
    let outcome = pond.compact_with_options(s, &options).await.unwrap();
    assert!(
        outcome.versions_read >= 3,
        "the big version joins: {outcome:?}"
    );
    let after = sql(&ctx, "SELECT * FROM r.a WHERE ts < to_timestamp_micros(10)").await;
    assert_eq!(after, before, "after compaction");
}

#[tokio::test]
async fn an_append_out_of_time_order_keeps_the_last_row_of_a_key() {
    let (_dir, pond) = temp_pond().await;
    let s = "/r/b";
    // 300 rows out of time order, each key once except (0, "a"): 1 first, 2 last.
    let hosts: Vec<String> = (0..300).map(|i| format!("h{i}")).collect();
    let mut input: Vec<(i64, &str, i64)> = (0..300)
        .map(|i| (((300 - i) % 3) as i64 * SECOND, hosts[i].as_str(), i as i64))
        .collect();
    input[1] = (0, "a", 1);
    input[298] = (0, "a", 2);
    pond.append_batch_with_options(s, &rows(&input), "ts", &keyed())
        .await
        .unwrap();
    let got = triples(&[read_all(&pond, s).await]);
    let a: Vec<_> = got.iter().filter(|r| r.1 == "a").collect();
    assert_eq!(a, vec![&(0, "a".to_string(), 2)]);
}

#[tokio::test]
async fn appends_of_many_rows_out_of_order_keep_the_last_row_of_a_key() {
    let (_dir, pond) = temp_pond().await;
    let hosts: Vec<String> = (0..2000).map(|i| format!("h{i}")).collect();
    let mut failures = Vec::new();
    for case in 0..40usize {
        let s = format!("/r/c{case}");
        let n = 100 + case * 37;
        let mut rng = StdRng::seed_from_u64(case as u64);
        let mut input: Vec<(i64, &str, i64)> = (0..n)
            .map(|i| (rng.random_range(0..3) * SECOND, hosts[i].as_str(), i as i64))
            .collect();
        let p = rng.random_range(0..n / 2);
        let q = rng.random_range(n / 2..n);
        input[p] = (0, "a", 1);
        input[q] = (0, "a", 2);
        input[0].0 = 5 * SECOND; // not in time order
        pond.append_batch_with_options(&s, &rows(&input), "ts", &keyed())
            .await
            .unwrap();
        let got = triples(&[read_all(&pond, &s).await]);
        let a: Vec<_> = got.iter().filter(|r| r.1 == "a").cloned().collect();
        if a != vec![(0, "a".to_string(), 2)] {
            failures.push((case, a));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[tokio::test]
async fn deletes_refuse_volatile_predicates_and_a_session_read_as_of() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    pond.append_batch("/r/v", &rows(&[(0, "a", 1)]), "ts")
        .await
        .unwrap();
    // random() is volatile; now() stable, but no less another time at
    // every read (and not folded there: it made every read fail).
    for predicate in ["random() < 0.5", "ts < now() - INTERVAL '1 day'"] {
        let err = pond
            .delete("/r/v", 0, SECOND, Some(predicate))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the same at every read"), "{err}");
    }
    assert_eq!(read_all(&pond, "/r/v").await.num_rows(), 1);
    let ctx = session(&pond).await;
    ctx.sql("SET pond.as_of = '2020-01-01T00:00:00Z'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let err = ctx
        .sql("DELETE FROM r.v")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("pond.as_of"), "{err}");
    assert_eq!(read_all(&pond, "/r/v").await.num_rows(), 1);
}

/// Deletes compare a range given in µs with time columns of every unit, at
/// the edges: a bound between two ticks of the column's unit takes the
/// ticks inside the range only.
#[tokio::test]
async fn deletes_bound_every_time_unit_exactly() {
    let (_dir, pond) = temp_pond().await;
    for (i, (unit, zone)) in [
        (TimeUnit::Second, None),
        (TimeUnit::Millisecond, Some("+01:00")),
        (TimeUnit::Microsecond, Some("UTC")),
        (TimeUnit::Nanosecond, None),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/units/u{i}");
        let per_micro: f64 = match unit {
            TimeUnit::Second => 1e-6,
            TimeUnit::Millisecond => 1e-3,
            TimeUnit::Microsecond => 1.0,
            TimeUnit::Nanosecond => 1e3,
        };
        // Ticks around zero, before and after 1970 included.
        let raw: Vec<i64> = (-6..=6).collect();
        let batch = RecordBatch::try_from_iter([
            ("ts", timestamps(unit, zone, raw.clone())),
            (
                "v",
                Arc::new(Int64Array::from_iter_values(raw.iter().copied())) as ArrayRef,
            ),
        ])
        .unwrap();
        pond.append_batch(&path, &batch, "ts").await.unwrap();
        // Bounds in µs that fall between ticks of coarse units, and on them.
        let tick = (1.0 / per_micro).max(1.0) as i64;
        let (start, end) = (-2 * tick - tick / 2, 3 * tick + tick / 2 + 1);
        pond.delete(&path, start, end, None).await.unwrap();
        let kept = raw_i64(&read_all(&pond, &path).await, "v");
        let expected: Vec<i64> = raw
            .iter()
            .copied()
            .filter(|&t| {
                // The row's instant in µs, exactly, as a rational t / per_micro.
                let micros = t as f64 / per_micro;
                !(micros >= start as f64 && micros < end as f64)
            })
            .collect();
        assert_eq!(kept, expected, "{unit:?} {zone:?}: [{start}, {end}) µs");
    }
}

/// A SQL `DELETE` is kept as SQL text and read back at every read. Its
/// time bounds must mean the same instants when read back, whatever the
/// column's unit and zone: the count `DELETE` returns is the drop in
/// `count(*)`, and the rows left are those outside the range. Bounds far
/// from 1970 (beyond what nanoseconds hold) included.
#[tokio::test]
async fn sql_deletes_keep_their_bounds_in_every_unit_and_zone() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = session(&pond).await;
    let hour = 3_600i64;
    let cases = [
        (TimeUnit::Microsecond, Some("+05:30")),
        (TimeUnit::Second, Some("-03:00")),
        (TimeUnit::Millisecond, Some("America/New_York")),
        (TimeUnit::Nanosecond, Some("Asia/Kolkata")),
        (TimeUnit::Microsecond, None),
        (TimeUnit::Microsecond, Some("UTC")),
    ];
    for (i, (unit, zone)) in cases.into_iter().enumerate() {
        let path = format!("/zones/t{i}");
        let per_second: i64 = match unit {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        };
        // Hourly rows over two days from 2024-01-01T00:00:00Z.
        let start = 1_704_067_200i64;
        let seconds: Vec<i64> = (0..48).map(|h| start + h * hour).collect();
        let batch = RecordBatch::try_from_iter([
            (
                "ts",
                timestamps(unit, zone, seconds.iter().map(|s| s * per_second).collect()),
            ),
            (
                "v",
                Arc::new(Int64Array::from_iter_values(0..48)) as ArrayRef,
            ),
        ])
        .unwrap();
        pond.append_batch(&path, &batch, "ts").await.unwrap();
        let table = format!("zones.t{i}");
        let count = |ctx: &SessionContext, table: &str| {
            let sql = format!("SELECT count(*) FROM {table}");
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                batches[0].column(0).as_primitive::<Int64Type>().value(0)
            }
        };
        // Each delete: its SQL, and which hours (0..48, also each row's v) it takes.
        type Gone = fn(i64) -> bool;
        let deletes: [(String, Gone); 3] = [
            (
                // 2024-01-01T18:30:00Z written with an offset: hours 0..=18.
                format!("DELETE FROM {table} WHERE ts <= '2024-01-02T00:00:00+05:30'"),
                |h| h <= 18,
            ),
            (
                // [2024-01-02T03:00Z, 2024-01-02T05:00Z) and an odd v: hour 27.
                format!(
                    "DELETE FROM {table} WHERE ts >= '2024-01-01T22:00:00-05:00' \
                     AND ts < '2024-01-02T05:00:00Z' AND v % 2 = 1"
                ),
                |h| (27..29).contains(&h) && h % 2 == 1,
            ),
            (
                // A bound beyond what nanoseconds hold (the year 3000), for
                // the other units; 2255 for nanoseconds.
                format!(
                    "DELETE FROM {table} WHERE ts >= '2024-01-02T20:00:00Z' \
                     AND ts < to_timestamp_seconds({})",
                    if unit == TimeUnit::Nanosecond {
                        9_000_000_000i64
                    } else {
                        32_503_680_000
                    }
                ),
                |h| h >= 44,
            ),
        ];
        let mut expected: Vec<i64> = (0..48).collect();
        for (sql, gone) in &deletes {
            let before = count(&ctx, &table).await;
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let deleted = batches[0]
                .column(0)
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .value(0) as i64;
            expected.retain(|&h| !gone(h));
            let after = count(&ctx, &table).await;
            assert_eq!(
                before - after,
                deleted,
                "{unit:?} {zone:?}: {sql} said {deleted} rows, count(*) dropped by {}",
                before - after
            );
            let kept = raw_i64(&read_all(&pond, &path).await, "v");
            assert_eq!(kept, expected, "{unit:?} {zone:?}: {sql}");
        }
    }
}
