//! `series_union`: a differential test against the `UNION ALL` of the
//! series' own tables, written by hand, over random ponds (time columns of
//! every name and unit, columns some series lack, keyed series, deletes),
//! patterns and predicates; and the shape of its plan.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::util::display::array_value_to_string;
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::{AppendOptions, Pond, schema_and_table};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::common::*;

const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3600 * SECOND;
const PATHS: [&str; 8] = [
    "/f/s0/a",
    "/f/s0/b",
    "/f/s1/a",
    "/f/s1/c",
    "/f/s2/a",
    "/f/s2/b",
    "/f/s2/deep/a",
    "/g/x",
];
const PATTERNS: [&str; 8] = [
    "/f/*/a",
    "/f/**",
    "/f/s{0,2}/*",
    "/f/s1/{a,c}",
    "/**",
    "/f/s2/**",
    "/nothing/*",
    "/f/*/{a,b}",
];

/// A series of a random pond: its path, time column and unit, whether it
/// has the column `n`, and whether it is keyed by `hostname`.
struct Member {
    path: &'static str,
    time: &'static str,
    unit: TimeUnit,
    extra: bool,
    keyed: bool,
}

/// Rows `(µs, hostname, v)` as a batch of `member`'s schema.
fn member_batch(member: &Member, rows: &[(i64, &str, f64)]) -> RecordBatch {
    let raw: Vec<i64> = rows
        .iter()
        .map(|r| match member.unit {
            TimeUnit::Second => r.0 / SECOND,
            TimeUnit::Millisecond => r.0 / 1000,
            TimeUnit::Microsecond => r.0,
            // Below the microsecond, which the union cuts off.
            TimeUnit::Nanosecond => r.0 * 1000 + 999,
        })
        .collect();
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (member.time, timestamps(member.unit, None, raw)),
        (
            "hostname",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ),
        (
            "v",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ),
    ];
    if member.extra {
        columns.push((
            "n",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0 % 7))),
        ));
    }
    RecordBatch::try_from_iter(columns).unwrap()
}

/// A pond of random series, appends and deletes.
/// Also the first and last time of each append, µs.
async fn random_pond(rng: &mut StdRng) -> (tempfile::TempDir, Arc<Pond>, Vec<Member>, Vec<i64>) {
    let (dir, pond) = temp_pond().await;
    let mut members = Vec::new();
    let mut times = Vec::new();
    for path in PATHS {
        if rng.random_bool(0.2) {
            continue;
        }
        let member = Member {
            path,
            time: ["ts", "time", "at"].choose(rng).unwrap(),
            unit: *[
                TimeUnit::Second,
                TimeUnit::Millisecond,
                TimeUnit::Microsecond,
                TimeUnit::Nanosecond,
            ]
            .choose(rng)
            .unwrap(),
            extra: rng.random_bool(0.5),
            keyed: rng.random_bool(0.3),
        };
        let options = if member.keyed {
            AppendOptions::default().with_key(["hostname"])
        } else {
            AppendOptions::default()
        };
        for _ in 0..rng.random_range(1..=4) {
            // Before 1970 too, where truncation and flooring differ.
            let start = rng.random_range(-20..40) * HOUR;
            let rows: Vec<(i64, &str, f64)> = (0..rng.random_range(1..20))
                .map(|_| {
                    (
                        start + rng.random_range(0..8 * 3600) * SECOND,
                        *["h0", "h1", "h2"].choose(rng).unwrap(),
                        rng.random_range(0..100) as f64,
                    )
                })
                .collect();
            // A file's first and last times: where pruning by its
            // statistics decides.
            times.extend(rows.iter().map(|r| r.0).min());
            times.extend(rows.iter().map(|r| r.0).max());
            pond.append_batch_with_options(
                path,
                &member_batch(&member, &rows),
                member.time,
                &options,
            )
            .await
            .unwrap();
        }
        if rng.random_bool(0.3) {
            let start = rng.random_range(0..40) * HOUR;
            let predicate = rng.random_bool(0.5).then_some("v > 50");
            pond.delete(path, start, start + 6 * HOUR, predicate)
                .await
                .unwrap();
        }
        members.push(member);
    }
    (dir, Arc::new(pond), members, times)
}

/// An RFC 3339 time `hours` after the start of the ponds' data.
fn at(hours: i64) -> String {
    pond::format_micros(hours * HOUR)
}

/// A random RFC 3339 time near one of `times`: on it, or a microsecond, a
/// millisecond or half a second off, which members in seconds or
/// milliseconds cannot hold.
fn near(rng: &mut StdRng, times: &[i64]) -> String {
    let off = *[0, 1, -1, 1_000, -1_000, SECOND / 2, -SECOND / 2]
        .choose(rng)
        .unwrap();
    pond::format_micros(times.choose(rng).copied().unwrap_or(0) + off)
}

fn random_predicate(rng: &mut StdRng, times: &[i64]) -> String {
    let (a, b) = {
        let a = rng.random_range(-20..48);
        (a, a + rng.random_range(1..12))
    };
    let path = PATHS.choose(rng).unwrap();
    let other = PATHS.choose(rng).unwrap();
    // Comparisons near rows' times, where units part, in half the cases.
    match rng.random_range(0..16) {
        0 | 9.. => match rng.random_range(0..5) {
            0 => "TRUE".to_string(),
            1 => format!(
                "ts > '{}' AND ts <= '{}'",
                near(rng, times),
                near(rng, times)
            ),
            2 => format!(
                "ts >= '{}' AND ts < '{}'",
                near(rng, times),
                near(rng, times)
            ),
            3 => format!(
                "ts < '{}' OR ts >= '{}'",
                near(rng, times),
                near(rng, times)
            ),
            _ => format!(
                "ts = '{}' OR ts <> '{}'",
                near(rng, times),
                near(rng, times)
            ),
        },
        1 => format!("ts >= '{}' AND ts < '{}'", at(a), at(b)),
        2 => format!("series = '{path}'"),
        3 => format!("series IN ('{path}', '{other}')"),
        4 => format!("series LIKE '{}%'", &path[..path.len().min(5)]),
        5 => format!("v > {}", rng.random_range(0..100)),
        6 => format!("ts < '{}' OR v < {}", at(a), rng.random_range(0..100)),
        7 => format!("series = '{path}' AND ts >= '{}'", at(a)),
        _ => format!("ts BETWEEN '{}' AND '{}' AND hostname = 'h1'", at(a), at(b)),
    }
}

/// The `UNION ALL` of the tables of `members` that match `pattern`, as a
/// user would write it; `None` if none matches.
///
/// Each time goes to µs as integers (as the union's own conversion does):
/// a filter on a plain `CAST` of the column DataFusion 55 rewrites into one
/// on the column and the constant cast to the column's unit, which cuts
/// the constant's fraction off toward zero (`ts > '…17.999Z'` before 1970
/// became `time > …18`), so the reference would drop rows that match.
fn union_all(members: &[Member], pattern: &str) -> Option<String> {
    let pattern = pond::SeriesPattern::parse(pattern).unwrap();
    let parts: Vec<String> = members
        .iter()
        .filter(|m| pattern.matches(m.path))
        .map(|m| {
            let (schema, table) = schema_and_table(m.path);
            let scaled = match m.unit {
                TimeUnit::Second => "* 1000000",
                TimeUnit::Millisecond => "* 1000",
                TimeUnit::Microsecond => "",
                // Toward zero, as arrow's cast of nanoseconds to µs.
                TimeUnit::Nanosecond => "/ 1000",
            };
            format!(
                "SELECT '{}' AS series, \
                 arrow_cast(arrow_cast(\"{}\", 'Int64') {scaled}, 'Timestamp(µs, \"UTC\")') AS ts, \
                 hostname, v FROM \"{schema}\".\"{table}\"",
                m.path, m.time
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" UNION ALL "))
}

/// The rows of `query`, each as text, sorted.
async fn rows(ctx: &SessionContext, query: &str) -> Vec<String> {
    let batches = ctx
        .sql(query)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut out = Vec::new();
    for batch in &batches {
        for i in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| {
                    let c = arrow::compute::cast(c, &DataType::Utf8).unwrap();
                    array_value_to_string(&c, i).unwrap()
                })
                .collect();
            out.push(cells.join(" | "));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_union_equals_the_union_all_of_the_tables() {
    let mut queries = 0;
    for seed in 0..10u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (_dir, pond, members, times) = random_pond(&mut rng).await;
        for _ in 0..30 {
            let partitions = rng.random_range(1..=4);
            let ctx = SessionContext::new_with_config(
                SessionConfig::new().with_target_partitions(partitions),
            );
            pond::register(&ctx, Arc::clone(&pond));
            let pattern = *PATTERNS.choose(&mut rng).unwrap();
            let predicate = random_predicate(&mut rng, &times);
            let Some(all) = union_all(&members, pattern) else {
                let empty = format!("SELECT count(*) FROM series_union('{pattern}')");
                assert_eq!(rows(&ctx, &empty).await, ["0"]);
                queries += 1;
                continue;
            };
            let union = format!(
                "SELECT CAST(series AS TEXT), ts, hostname, v FROM series_union('{pattern}') \
                 WHERE {predicate}"
            );
            let got = rows(&ctx, &union).await;
            let expected = rows(
                &ctx,
                &format!("SELECT series, ts, hostname, v FROM ({all}) WHERE {predicate}"),
            )
            .await;
            assert_eq!(
                got, expected,
                "seed {seed}, {partitions} partitions: {union}"
            );
            // The newest rows, through the TopK's dynamic filter.
            let newest = format!(
                "SELECT ts FROM series_union('{pattern}') WHERE {predicate} \
                 ORDER BY ts DESC LIMIT 3"
            );
            let got = rows(&ctx, &newest).await;
            let mut want: Vec<String> = expected
                .iter()
                .map(|r| r.split(" | ").nth(1).unwrap().to_string())
                .collect();
            want.sort();
            want.reverse();
            want.truncate(3);
            want.sort();
            assert_eq!(got, want, "seed {seed}: {newest}");
            // A count, which the union may take from the oplog or the
            // page index, and the newest time of each series.
            for shape in [
                "count(*) FROM {} WHERE {}",
                "series, max(ts) FROM {} WHERE {} GROUP BY series",
            ] {
                let shaped = |from: &str| {
                    format!(
                        "SELECT {}",
                        shape.replacen("{}", from, 1).replacen("{}", &predicate, 1)
                    )
                };
                let union = shaped(&format!("series_union('{pattern}')"));
                let got = rows(
                    &ctx,
                    &union.replace("SELECT series", "SELECT CAST(series AS TEXT)"),
                )
                .await;
                let expected = rows(&ctx, &shaped(&format!("({all})"))).await;
                assert_eq!(
                    got, expected,
                    "seed {seed}, {partitions} partitions: {union}"
                );
            }
            queries += 1;
        }
    }
    assert_eq!(queries, 300);
}

#[tokio::test]
async fn many_series_are_one_scan_and_filters_on_series_prune_them() {
    let (_dir, pond) = temp_pond().await;
    let member = |path: &'static str, time: &'static str, unit| Member {
        path,
        time,
        unit,
        extra: false,
        keyed: false,
    };
    let members = [
        member("/f/s0/a", "ts", TimeUnit::Microsecond),
        member("/f/s1/a", "time", TimeUnit::Millisecond),
        member("/f/s2/a", "at", TimeUnit::Nanosecond),
    ];
    for m in &members {
        for day in 0..3 {
            let rows = [
                (day * 24 * HOUR, "h0", 1.0),
                (day * 24 * HOUR + HOUR, "h1", 2.0),
            ];
            pond.append_batch(m.path, &member_batch(m, &rows), m.time)
                .await
                .unwrap();
        }
    }
    let pond = Arc::new(pond);
    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::clone(&pond));
    let plan = rows(
        &ctx,
        "EXPLAIN SELECT avg(v) FROM series_union('/f/*/a') WHERE ts >= '1970-01-02T00:00:00Z'",
    )
    .await
    .join("\n");
    assert_eq!(plan.matches("SeriesScanExec").count(), 1, "{plan}");
    assert!(plan.contains("series=3/3"), "{plan}");
    assert!(plan.contains("versions=6/9"), "{plan}");
    let plan = rows(
        &ctx,
        "EXPLAIN SELECT v FROM series_union('/f/*/a') WHERE series IN ('/f/s1/a', '/f/s9/a')",
    )
    .await
    .join("\n");
    assert!(plan.contains("series=1/3"), "{plan}");
    assert!(plan.contains("versions=3/3"), "{plan}");

    // ORDER BY ts DESC LIMIT k reads the newest files and prunes the rest
    // as it goes.
    let analyzed = rows(
        &ctx,
        "EXPLAIN ANALYZE SELECT series, ts FROM series_union('/f/*/a') ORDER BY ts DESC LIMIT 1",
    )
    .await
    .join("\n");
    let matched: usize = analyzed
        .split("files_ranges_pruned_statistics=9 total → ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{analyzed}"));
    assert!(matched < 9, "{analyzed}");
}

/// A union's `ts` is in µs; a series in seconds or milliseconds compares
/// its own values with the bound in its unit, rounded the way that keeps
/// exactly the rows whose µs pass. DataFusion 55's Parquet opener would
/// truncate the bound (`t < CAST(c AS s)`, toward zero), and pruned the
/// row group of the rows at the bound's second: `ts < '…00.000001'` lost
/// them.
#[tokio::test]
async fn comparisons_with_a_fraction_of_a_unit_keep_the_rows_they_match() {
    let (_dir, pond) = temp_pond().await;
    // A row a second from 50 minutes before the epoch to 50 after, in
    // pages of 2,048 rows: the second page holds -952 s to 1,095 s.
    let times: Vec<i64> = (-3_000..3_000).map(|s| s * SECOND).collect();
    for unit in [TimeUnit::Second, TimeUnit::Millisecond] {
        let member = Member {
            path: if unit == TimeUnit::Second {
                "/f/s0/a"
            } else {
                "/f/s0/b"
            },
            time: "ts",
            unit,
            extra: false,
            keyed: false,
        };
        let rows: Vec<(i64, &str, f64)> = times.iter().map(|&t| (t, "h0", 1.0)).collect();
        pond.append_batch(member.path, &member_batch(&member, &rows), "ts")
            .await
            .unwrap();
    }
    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::new(pond));
    let at = |us: i64| format!("'{}'", pond::format_micros(us));
    let bounds = [
        -953 * SECOND - SECOND / 2,
        -952 * SECOND - 1,
        -952 * SECOND,
        -1,
        0,
        1,
        1_095 * SECOND + SECOND / 2,
        1_096 * SECOND + 1,
    ];
    for bound in bounds {
        for op in ["<", "<=", ">", ">=", "=", "<>"] {
            let passes = |t: i64| match op {
                "<" => t < bound,
                "<=" => t <= bound,
                ">" => t > bound,
                ">=" => t >= bound,
                "=" => t == bound,
                _ => t != bound,
            };
            let want = 2 * times.iter().filter(|&&t| passes(t)).count();
            let sql = format!(
                "SELECT count(*) FROM series_union('/f/s0/*') WHERE ts {op} {}",
                at(bound)
            );
            assert_eq!(rows(&ctx, &sql).await, [want.to_string()], "{sql}");
            let sql = format!(
                "SELECT count(v) FROM series_union('/f/s0/*') WHERE ts {op} {}",
                at(bound)
            );
            assert_eq!(rows(&ctx, &sql).await, [want.to_string()], "{sql}");
        }
    }
}

/// The same where a filter on `ts` reaches a member's Parquet scan by
/// another way than the union's own: a TopK's dynamic filter (the bound of
/// the rows it holds), and a filter pushed through a merged member's
/// projection (a series with deletes). `ts` of a member in seconds is its
/// value scaled, not cast, so that no bound is truncated there.
#[tokio::test]
async fn topk_and_merged_members_keep_the_rows_at_a_whole_second() {
    let (_dir, pond) = temp_pond().await;
    // A µs series read first, then one in seconds: its row a half second
    // earlier (later, before 1970), in a file of its own.
    let members = [
        (
            "/t/a",
            TimeUnit::Microsecond,
            [5 * SECOND + SECOND / 2, -5 * SECOND - SECOND / 2],
        ),
        ("/t/b", TimeUnit::Second, [5 * SECOND, -5 * SECOND]),
    ];
    for (path, unit, times) in members {
        let member = Member {
            path,
            time: "ts",
            unit,
            extra: false,
            keyed: false,
        };
        for t in times {
            let rows = member_batch(&member, &[(t, "h0", 1.0)]);
            pond.append_batch(path, &rows, "ts").await.unwrap();
        }
    }
    // A merged member: rows at whole seconds from 10 s, with a delete.
    let member = Member {
        path: "/t/c",
        time: "ts",
        unit: TimeUnit::Second,
        extra: false,
        keyed: false,
    };
    let readings: Vec<(i64, &str, f64)> = (10..20).map(|s| (s * SECOND, "h0", 1.0)).collect();
    pond.append_batch("/t/c", &member_batch(&member, &readings), "ts")
        .await
        .unwrap();
    pond.delete("/t/c", 15 * SECOND, 16 * SECOND, None)
        .await
        .unwrap();
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    pond::register(&ctx, Arc::new(pond));
    let union = "series_union('/t/{a,b}')";
    let first =
        format!("SELECT ts FROM {union} WHERE ts > '1970-01-01T00:00:00Z' ORDER BY ts LIMIT 1");
    assert_eq!(rows(&ctx, &first).await, ["1970-01-01T00:00:05Z"]);
    let last = format!(
        "SELECT ts FROM {union} WHERE ts < '1970-01-01T00:00:00Z' ORDER BY ts DESC LIMIT 1"
    );
    assert_eq!(rows(&ctx, &last).await, ["1969-12-31T23:59:55Z"]);
    let merged =
        "SELECT count(v) FROM series_union('/t/c') WHERE ts < '1970-01-01T00:00:10.000001Z'";
    assert_eq!(rows(&ctx, merged).await, ["1"]);
    let merged = "SELECT count(v) FROM series_union('/t/c') WHERE ts > '1970-01-01T00:00:18.5Z'";
    assert_eq!(rows(&ctx, merged).await, ["1"]);
}
