//! The newest (or oldest) time of each group: versions whose every group
//! value comes again beyond them are skipped, and no answer changes.
//!
//! A generative differential test: random series appended in random
//! windows (mostly one after another, now and then back in time or
//! overlapping), with random subsets of hosts and racks per append, now
//! and then a null or more host names than a version records, read as
//! appended or compacted, keyed or not, with or without deletes; times in
//! seconds, microseconds or nanoseconds, racks of several integer types,
//! now and then added after the first appends. Random
//! `max(ts)` / `min(ts)` per host or rack queries (with filters that allow
//! the skip and filters that must stop it, and the last reading per host
//! as a join), and filters on hosts and racks that prune versions by the
//! values they record (`=`, `IN`, `NOT IN`, `<>`), run on the pond table
//! and on a `MemTable` of the series' rows as the pond reads them
//! (`SELECT *`, which no aggregation prunes); the answers must be equal.
//! The test also counts the queries whose scans skipped versions, so that
//! it cannot pass without exercising the rule.
//!
//! `POND_GROUPS_CASES` sets the number of series (default 16), and
//! `POND_GROUPS_SEED` the seed.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use pond::{AppendOptions, CompactOptions, Pond, SeriesScanExec, SeriesTimePruning};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::common::*;

fn context(pond: Arc<Pond>) -> SessionContext {
    session(pond, 3, 500)
}

/// Versions read by the scans of `plan`.
fn versions_read(plan: &Arc<dyn ExecutionPlan>) -> usize {
    nodes::<SeriesScanExec>(plan)
        .iter()
        .map(|s| s.versions().0)
        .sum()
}

/// `rows` rows from `start` over `span` seconds, of a random subset of
/// `hosts` (now and then a null host or rack).
fn rows(rng: &mut StdRng, start: i64, span: i64, rows: usize, hosts: &[String]) -> RecordBatch {
    let subset: Vec<&String> = hosts
        .iter()
        .filter(|_| rng.random_bool(0.6))
        .chain(hosts.first())
        .collect();
    let null_host = rng.random_bool(0.1);
    let null_rack = rng.random_bool(0.2);
    let (mut ts, mut host, mut rack, mut v) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rows {
        ts.push(start + rng.random_range(0..=span) * SECOND);
        host.push(if null_host && rng.random_bool(0.05) {
            None
        } else {
            Some(subset.choose(rng).unwrap().to_string())
        });
        rack.push(if null_rack && rng.random_bool(0.05) {
            None
        } else {
            Some(rng.random_range(0..4_i64))
        });
        v.push(rng.random_range(-100.0..100.0));
    }
    RecordBatch::try_from_iter_with_nullable([
        (
            "ts",
            timestamps(TimeUnit::Microsecond, Some("UTC"), ts),
            false,
        ),
        ("host", Arc::new(StringArray::from(host)) as ArrayRef, true),
        ("rack", Arc::new(Int64Array::from(rack)), true),
        ("v", Arc::new(Float64Array::from(v)), false),
    ])
    .unwrap()
}

/// How a case's series stores its rows: the time column's unit, the rack
/// column's integer type, and how many appends come before the rack column
/// is added.
struct Shape {
    unit: TimeUnit,
    rack: DataType,
    rackless: usize,
}

impl Shape {
    fn random(rng: &mut StdRng) -> Self {
        Self {
            unit: *[
                TimeUnit::Second,
                TimeUnit::Microsecond,
                TimeUnit::Nanosecond,
            ]
            .choose(rng)
            .unwrap(),
            rack: [DataType::Int64, DataType::Int32, DataType::UInt16]
                .choose(rng)
                .unwrap()
                .clone(),
            rackless: *[0, 0, 2].choose(rng).unwrap(),
        }
    }

    /// `batch` of [`rows`], the `append`th of its series, in this shape.
    fn of(&self, batch: &RecordBatch, append: usize) -> RecordBatch {
        let ts = DataType::Timestamp(self.unit, Some("UTC".into()));
        let mut columns = vec![("ts", cast(batch.column(0), &ts).unwrap(), false)];
        columns.push(("host", Arc::clone(batch.column(1)), true));
        if append >= self.rackless {
            columns.push(("rack", cast(batch.column(2), &self.rack).unwrap(), true));
        }
        columns.push(("v", Arc::clone(batch.column(3)), false));
        RecordBatch::try_from_iter_with_nullable(columns).unwrap()
    }
}

/// A random query of the newest or oldest time per group of `{t}`, and
/// its filter.
fn query(rng: &mut StdRng, hosts: &[String], end: i64) -> (String, String) {
    let at = |rng: &mut StdRng| {
        format!(
            "to_timestamp_micros({}) AT TIME ZONE 'UTC'",
            JAN1 + rng.random_range(0..=(end - JAN1) / SECOND) * SECOND
        )
    };
    let host = |rng: &mut StdRng| format!("'{}'", hosts.choose(rng).unwrap());
    let filter = match rng.random_range(0..14) {
        0 => format!(" WHERE ts >= {}", at(rng)),
        1 => format!(" WHERE ts > {}", at(rng)),
        2 => format!(" WHERE ts < {}", at(rng)),
        3 => format!(" WHERE ts >= {} AND ts < {}", at(rng), at(rng)),
        4 => format!(" WHERE host <> {}", host(rng)),
        5 => " WHERE v > 0".to_string(),
        // Filters the values each version records may prune by.
        6 => format!(" WHERE host = {}", host(rng)),
        7 => format!(" WHERE host IN ({}, {})", host(rng), host(rng)),
        8 => format!(" WHERE NOT host IN ({}, {})", host(rng), host(rng)),
        9 => format!(" WHERE rack = {}", rng.random_range(0..5)),
        10 => format!(
            " WHERE rack IN (1, 3) OR host = {} OR ts < {}",
            host(rng),
            at(rng)
        ),
        11 => format!(" WHERE host IS NULL OR host = {}", host(rng)),
        _ => String::new(),
    };
    let key = *["host", "rack"].choose(rng).unwrap();
    let extreme = *["max", "min"].choose(rng).unwrap();
    let sql = match rng.random_range(0..6) {
        5 => format!(
            "SELECT count(*) AS n, count(host) AS h, min(ts) AS a, max(ts) AS b, \
             sum(CAST(v * 1000 AS BIGINT)) AS v \
             FROM {{t}}{filter}"
        ),
        0 => format!(
            "SELECT c.{key}, c.ts, c.v FROM {{t}} c JOIN \
             (SELECT {key}, {extreme}(ts) AS ts FROM {{t}}{filter} GROUP BY {key}) l \
             ON c.{key} = l.{key} AND c.ts = l.ts ORDER BY 1, 2, 3"
        ),
        1 => format!(
            "SELECT {key}, {extreme}(ts) AS a, {extreme}(ts) AS b FROM {{t}}{filter} \
             GROUP BY {key} ORDER BY 1 NULLS FIRST"
        ),
        // Not the time: the rule must not apply.
        2 => format!(
            "SELECT {key}, {extreme}(v) AS a FROM {{t}}{filter} GROUP BY {key} ORDER BY 1 NULLS FIRST"
        ),
        _ => format!(
            "SELECT {key}, {extreme}(ts) AS a FROM {{t}}{filter} GROUP BY {key} ORDER BY 1 NULLS FIRST"
        ),
    };
    (sql, filter)
}

#[tokio::test]
async fn skipped_versions_never_change_the_newest_or_oldest_time_per_group() {
    let cases = env("POND_GROUPS_CASES").unwrap_or(16);
    let seed = env("POND_GROUPS_SEED").unwrap_or(20_261_127_u64);
    // Row groups of a few dozen rows: the bound on the time prunes them.
    let (_dir, pond) = temp_pond_with(manual().with_row_group_rows(40)).await;
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut skipping, mut queries) = (0, 0);
    for case in 0..cases {
        // With filters pushed into the Parquet scan, the bound drops rows
        // as well as row groups and pages.
        let pushdown = rng.random_bool(0.5);
        ctx.sql(&format!(
            "SET datafusion.execution.parquet.pushdown_filters = {pushdown}"
        ))
        .await
        .unwrap();
        let path = format!("/groups/s{case}");
        // Some series have more host names than a version records.
        let n = *[3, 8, 8, 300].choose(&mut rng).unwrap();
        let hosts: Vec<String> = (0..n).map(|h| format!("host_{h}")).collect();
        let keyed = rng.random_bool(0.25);
        let options = if keyed {
            AppendOptions::default().with_key(["host", "ts"])
        } else {
            AppendOptions::default()
        };
        let mut start = JAN1;
        let mut end = JAN1;
        let mut layout = vec![if keyed { "keyed" } else { "unkeyed" }];
        let shape = Shape::random(&mut rng);
        for append in 0..rng.random_range(2..12).max(shape.rackless + 1) {
            let span = rng.random_range(1..600);
            let from = if rng.random_bool(0.15) {
                // Back in time, or overlapping the previous append.
                start - rng.random_range(0..1_200) * SECOND
            } else {
                start
            };
            let count = rng.random_range(1..400);
            let batch = shape.of(&rows(&mut rng, from, span, count, &hosts), append);
            pond.append_batch_with_options(&path, &batch, "ts", &options)
                .await
                .unwrap();
            start = from + (span + 1) * SECOND;
            end = end.max(start);
        }
        if rng.random_bool(0.2) {
            let host = hosts.choose(&mut rng).unwrap();
            let from = JAN1 + rng.random_range(0..=(end - JAN1) / SECOND) * SECOND;
            let predicate = format!("host = '{host}'");
            pond.delete(&path, from, from + 600 * SECOND, Some(&predicate))
                .await
                .unwrap();
            layout.push("with a delete");
        }
        if rng.random_bool(0.4) {
            let options = CompactOptions::default().with_target_file_bytes(20_000);
            pond.compact_with_options(&path, &options).await.unwrap();
            layout.push("compacted");
        }
        let table = format!("groups.s{case}");
        let rows = ctx
            .sql(&format!("SELECT * FROM {table}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let reference = format!("reference_{case}");
        let schema = rows[0].schema();
        let memory = MemTable::try_new(schema, vec![rows]).unwrap();
        ctx.register_table(reference.as_str(), Arc::new(memory))
            .unwrap();
        for _ in 0..30 {
            let (sql, filter) = query(&mut rng, &hosts, end);
            let (answer, plan) = run_plan(&ctx, &sql.replace("{t}", &table)).await;
            let (expected, _) = run_plan(&ctx, &sql.replace("{t}", &reference)).await;
            let layout = format!("{}, pushdown {pushdown}", layout.join(", "));
            assert_eq!(
                answer, expected,
                "seed {seed}, case {case} ({layout}): {sql}"
            );
            queries += 1;
            // Each scan reads the versions the filter keeps unless skipping.
            let (_, rows) = run_plan(&ctx, &format!("SELECT * FROM {table}{filter}")).await;
            let scans = nodes::<SeriesScanExec>(&plan).len();
            if versions_read(&plan) < scans * versions_read(&rows) {
                skipping += 1;
            }
        }
    }
    assert!(
        skipping * 25 > queries,
        "{skipping} of {queries} skipped versions"
    );
}

/// Rows of each of `hosts` every hour of day `day`.
fn day(day: i64, hosts: &[&str]) -> RecordBatch {
    let (mut ts, mut host) = (vec![], vec![]);
    for hour in 0..24 {
        for h in hosts {
            ts.push(JAN1 + (day * 24 + hour) * 3_600 * SECOND);
            host.push(*h);
        }
    }
    let n = ts.len();
    RecordBatch::try_from_iter([
        ("ts", timestamps(TimeUnit::Microsecond, Some("UTC"), ts)),
        ("host", Arc::new(StringArray::from(host)) as ArrayRef),
        ("rack", Arc::new(Int64Array::from(vec![1; n]))),
        ("v", Arc::new(Float64Array::from(vec![1.0; n]))),
    ])
    .unwrap()
}

#[tokio::test]
async fn only_versions_that_may_hold_a_hosts_last_time_are_read() {
    let (_dir, pond) = temp_pond().await;
    for (d, hosts) in [
        (0, &["a", "b", "c"][..]),
        (1, &["a", "b"]),
        (2, &["a", "b", "c"]),
        (3, &["a"]),
    ] {
        pond.append_batch("/groups/s", &day(d, hosts), "ts")
            .await
            .unwrap();
    }
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let read = |sql: &str| {
        let (ctx, sql) = (ctx.clone(), sql.to_string());
        async move { versions_read(&run_plan(&ctx, &sql).await.1) }
    };
    // b and c were last seen on day 2, a on day 3; all first on day 0.
    let newest = "SELECT host, max(ts) FROM groups.s";
    assert_eq!(read(&format!("{newest} GROUP BY host")).await, 2);
    assert_eq!(
        read("SELECT host, min(ts) FROM groups.s GROUP BY host").await,
        1
    );
    assert_eq!(
        read(&format!("{newest} WHERE ts >= '2024-01-02' GROUP BY host")).await,
        2
    );
    // Other filters, aggregates and groups read every version they keep.
    for (sql, versions) in [
        (format!("{newest} WHERE ts < '2024-01-04' GROUP BY host"), 3),
        // The version of a alone is skipped by the filter itself.
        (format!("{newest} WHERE host <> 'a' GROUP BY host"), 3),
        (format!("{newest} GROUP BY host, rack"), 4),
        ("SELECT host, max(v) FROM groups.s GROUP BY host".into(), 4),
        (
            "SELECT host, max(ts), min(ts) FROM groups.s GROUP BY host".into(),
            4,
        ),
        (
            "SELECT host, max(ts), count(*) FROM groups.s GROUP BY host".into(),
            4,
        ),
    ] {
        assert_eq!(read(&sql).await, versions, "{sql}");
    }
    // Under a limit, the rows depend on the versions read: the first row
    // in time is day 0's, and the newest time of its host among the rows
    // the limit keeps is day 0's, not day 3's.
    let limited = "SELECT host, max(ts) FROM (SELECT host, ts FROM groups.s \
                   WHERE ts >= '2024-01-01' ORDER BY ts LIMIT 1) t GROUP BY host";
    for partitions in [1, 3] {
        let ctx = session(Arc::clone(&pond), partitions, 500);
        let (answer, plan) = run_plan(&ctx, limited).await;
        assert!(
            answer.contains("2024-01-01T00:00:00Z"),
            "{answer}\n{}",
            datafusion::physical_plan::displayable(plan.as_ref()).indent(true)
        );
    }
}

#[tokio::test]
async fn filters_on_tags_skip_the_versions_whose_recorded_values_cannot_match() {
    let (_dir, pond) = temp_pond().await;
    for (d, hosts) in [
        (0, &["a", "b"][..]),
        (1, &["c"]),
        (2, &["a"]),
        (3, &["b", "c"]),
    ] {
        pond.append_batch("/groups/s", &day(d, hosts), "ts")
            .await
            .unwrap();
    }
    let batches: Vec<RecordBatch> = [
        (0, &["a", "b"][..]),
        (1, &["c"]),
        (2, &["a"]),
        (3, &["b", "c"]),
    ]
    .into_iter()
    .map(|(d, hosts)| day(d, hosts))
    .collect();
    let ctx = context(Arc::new(pond));
    let memory = MemTable::try_new(batches[0].schema(), vec![batches]).unwrap();
    ctx.register_table("reference", Arc::new(memory)).unwrap();
    for (filter, versions) in [
        ("host = 'a'", 2),
        ("host IN ('b', 'c')", 3),
        ("host <> 'c'", 3),
        ("NOT host IN ('a', 'b')", 2),
        ("host = 'z'", 0),
        ("rack = 1", 4),
        ("rack = 2", 0),
        // DataFusion reads values only from conjunctions.
        ("host = 'c' OR ts < '2024-01-02'", 4),
        ("host = 'c' AND ts < '2024-01-03'", 1),
        // Not a comparison of the column with a literal.
        ("upper(host) = 'A'", 4),
        ("host LIKE 'a%'", 4),
    ] {
        let sql = format!("SELECT host, ts, v FROM {{t}} WHERE {filter} ORDER BY host, ts");
        let (answer, plan) = run_plan(&ctx, &sql.replace("{t}", "groups.s")).await;
        let (expected, _) = run_plan(&ctx, &sql.replace("{t}", "reference")).await;
        assert_eq!(answer, expected, "{filter}");
        assert_eq!(versions_read(&plan), versions, "{filter}");
    }
}

#[tokio::test]
async fn rows_before_every_hosts_newest_time_are_not_read() {
    // Row groups of 8 hours of three hosts.
    let (_dir, pond) = temp_pond_with(manual().with_row_group_rows(24)).await;
    for d in 0..2 {
        pond.append_batch("/groups/s", &day(d, &["a", "b", "c"]), "ts")
            .await
            .unwrap();
    }
    let hosts = ["a", "b", "c"];
    let batches = vec![day(0, &hosts), day(1, &hosts)];
    let ctx = context(Arc::new(pond));
    let memory = MemTable::try_new(batches[0].schema(), vec![batches]).unwrap();
    ctx.register_table("reference", Arc::new(memory)).unwrap();
    // Each host's newest time is day 1's last hour: day 0 is skipped, and
    // day 1's row groups before that hour are pruned (one row group read).
    // Its oldest is day 0's first hour: day 0's first row group.
    for (sql, bound) in [
        (
            "SELECT host, max(ts) AS t FROM {t} GROUP BY host ORDER BY host",
            "ts@0 >= 1704236400000000",
        ),
        (
            "SELECT host, min(ts) AS t FROM {t} WHERE ts <= '2024-01-01T20:00:00Z' \
             GROUP BY host ORDER BY host",
            "ts@0 <= 1704067200000000",
        ),
    ] {
        let (answer, plan) = run_plan(&ctx, &sql.replace("{t}", "groups.s")).await;
        let (expected, _) = run_plan(&ctx, &sql.replace("{t}", "reference")).await;
        assert_eq!(answer, expected, "{sql}");
        let scans = nodes::<SeriesScanExec>(&plan);
        let [scan] = &scans[..] else {
            panic!("one scan: {scans:?}")
        };
        assert_eq!(scan.versions().0, 1, "{sql}");
        let shown = datafusion::physical_plan::displayable(*scan)
            .one_line()
            .to_string();
        assert!(shown.contains(bound), "{sql}: {shown}");
        let read = scan.metrics().and_then(|m| m.output_rows());
        assert_eq!(read, Some(24), "{sql}: {shown}");
        // A second pass of the rule finds nothing more to add.
        let again = SeriesTimePruning::new()
            .optimize(Arc::clone(&plan), ctx.state().config_options())
            .unwrap();
        let plan_text = |p: &Arc<dyn ExecutionPlan>| {
            datafusion::physical_plan::displayable(p.as_ref())
                .indent(false)
                .to_string()
        };
        assert_eq!(plan_text(&again), plan_text(&plan), "{sql}");
    }
}

/// 512 rows of day `d`, a minute apart, of `hosts` in turn, with two
/// columns of 256 values each before the hosts.
fn crowded_day(d: i64, hosts: &[&str]) -> RecordBatch {
    let (mut ts, mut a, mut b, mut host) = (vec![], vec![], vec![], vec![]);
    for i in 0..512_i64 {
        ts.push(JAN1 + (d * 86_400 + i * 60) * SECOND);
        a.push(format!("a{}", i % 256));
        b.push(format!("b{}", i % 256));
        host.push(hosts[i as usize % hosts.len()]);
    }
    RecordBatch::try_from_iter([
        ("ts", timestamps(TimeUnit::Microsecond, Some("UTC"), ts)),
        ("a", Arc::new(StringArray::from(a)) as ArrayRef),
        ("b", Arc::new(StringArray::from(b))),
        ("host", Arc::new(StringArray::from(host))),
    ])
    .unwrap()
}

#[tokio::test]
async fn versions_whose_values_have_no_times_are_bounded_by_their_own() {
    // `a` and `b` take every value a file records the times of: the hosts
    // record their values alone, as versions written before times were.
    let (dir, pond) = temp_pond().await;
    let days = [(0, &["x", "y"][..]), (1, &["x"]), (2, &["y", "x"])];
    for (d, hosts) in days {
        pond.append_batch("/groups/s", &crowded_day(d, hosts), "ts")
            .await
            .unwrap();
    }
    let (attributes, _) = run_plan(
        &oplog_context(&dir).await.1,
        "SELECT extended_attributes FROM oplog WHERE entry_type = 'append'",
    )
    .await;
    assert!(attributes.contains(r#""host":["x","y"]"#), "{attributes}");
    assert!(attributes.contains(r#""a":{"first""#), "{attributes}");
    assert!(!attributes.contains(r#""host":{"first""#), "{attributes}");

    let batches = days
        .iter()
        .map(|(d, hosts)| crowded_day(*d, hosts))
        .collect();
    let ctx = context(Arc::new(pond));
    let memory = MemTable::try_new(crowded_day(0, &["x"]).schema(), vec![batches]).unwrap();
    ctx.register_table("reference", Arc::new(memory)).unwrap();
    // Each host is in day 2, which starts after days 0 and 1 end: they are
    // skipped by their bounds. For the oldest, day 0 holds both hosts and
    // ends before the others start.
    for (sql, versions) in [
        (
            "SELECT host, max(ts) AS t FROM {t} GROUP BY host ORDER BY host",
            1,
        ),
        (
            "SELECT host, min(ts) AS t FROM {t} GROUP BY host ORDER BY host",
            1,
        ),
        (
            "SELECT a, max(ts) AS t FROM {t} WHERE ts >= '2024-01-02' GROUP BY a ORDER BY a",
            1,
        ),
    ] {
        let (answer, plan) = run_plan(&ctx, &sql.replace("{t}", "groups.s")).await;
        let (expected, _) = run_plan(&ctx, &sql.replace("{t}", "reference")).await;
        assert_eq!(answer, expected, "{sql}");
        assert_eq!(versions_read(&plan), versions, "{sql}");
    }
}
