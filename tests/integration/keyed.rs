//! Keyed series: one row per key, the newest append's, through every read
//! (SQL tables, `series_range`, `SeriesStream`), across compactions and
//! time travel; and a differential test of random operation sequences
//! against an oracle.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::prelude::SessionContext;
use pond::{AppendOptions, CompactOptions, Pond, SeriesExt};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::common::*;

const SECOND: i64 = 1_000_000;

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
    let explain = ctx
        .sql("EXPLAIN SELECT * FROM fleet.cpu WHERE v > 2")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&explain)
        .unwrap()
        .to_string();
    assert!(
        text.contains("LastWriterWinsExec: key=[hostname, ts], merged versions=2 in 1 runs"),
        "{text}"
    );
    // The version that overlaps nothing is read as it is.
    assert!(text.contains("versions=1/3"), "{text}");

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

#[tokio::test]
async fn keys_are_declared_once_and_checked() {
    let (_dir, pond) = temp_pond().await;
    let batch = rows(&[(0, "a", 1)]);
    let err = pond
        .append_batch_with_options(
            "/k/a",
            &batch,
            "ts",
            &AppendOptions::default().with_key(["nope"]),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the key names no column \"nope\""), "{err}");
    assert!(pond.series_info("/k/a").is_err(), "nothing was created");

    pond.append_batch("/k/plain", &batch, "ts").await.unwrap();
    let err = pond
        .append_batch_with_options("/k/plain", &batch, "ts", &keyed())
        .await
        .unwrap_err()
        .to_string();
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
    let err = pond
        .append_batch_with_options(
            "/k/b",
            &batch,
            "ts",
            &AppendOptions::default().with_key(["v"]),
        )
        .await
        .unwrap_err()
        .to_string();
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

/// What reads must return: of every key, the value of the newest append
/// that held it (within one append, its last row for the key). This is
/// `row_number() OVER (PARTITION BY hostname, ts ORDER BY version DESC,
/// row DESC) = 1` over every appended row.
#[derive(Default, Clone)]
struct Oracle {
    rows: BTreeMap<(i64, String), i64>,
}

impl Oracle {
    fn append(&mut self, rows: &[(i64, &str, i64)]) {
        for &(t, h, v) in rows {
            self.rows.insert((t, h.to_string()), v);
        }
    }

    fn select(&self, keep: impl Fn(i64, &str, i64) -> bool) -> Vec<(i64, String, i64)> {
        self.rows
            .iter()
            .filter(|((t, h), v)| keep(*t, h, **v))
            .map(|((t, h), v)| (*t, h.clone(), *v))
            .collect()
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

/// One sequence: appends (overlapping, re-delivered, out of order) and
/// compactions of a keyed series, every read checked after each step.
async fn run_sequence(pond: &Arc<Pond>, ctx: &SessionContext, seed: u64, case: usize) {
    let mut rng = StdRng::seed_from_u64(seed ^ (case as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let path = format!("/gen/s{case}");
    let table = format!("gen.s{case}");
    let mut oracle = Oracle::default();
    let mut history: Vec<(i64, Oracle)> = Vec::new();
    let steps = rng.random_range(2..=6);
    let clustered = rng.random_bool(0.3);
    for step in 0..steps {
        let what = if step == 0 {
            0
        } else {
            rng.random_range(0..10)
        };
        let label = format!("seed {seed} case {case} step {step}");
        if what < 7 {
            let batch = random_rows(&mut rng);
            let options = if step == 0 {
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

/// `POND_KEYED_CASES` sets the number of sequences (default 2,000) and
/// `POND_KEYED_SEED` the seed.
#[tokio::test]
async fn keyed_reads_equal_the_oracle_over_random_operation_sequences() {
    let cases: usize = std::env::var("POND_KEYED_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let seed: u64 = std::env::var("POND_KEYED_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_126);
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = session(&pond).await;
    for case in 0..cases {
        run_sequence(&pond, &ctx, seed, case).await;
    }
}
