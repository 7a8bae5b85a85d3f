//! `CollapseRunsExec` and `RunAggregateExec`: runs of equal group keys
//! folded before a `min`/`max` aggregation, or looked up once by a partial
//! aggregation, never change an answer.
//!
//! A generative differential test: random series whose tags come in runs
//! of random lengths (read as appended, or compacted by a sort key, with or
//! without time buckets), with nullable tags and values and the extremes of
//! their types, and random `GROUP BY` queries: half of `min`/`max` only,
//! half of other aggregates too (`count`, `sum`, `avg`, `bool_or`, and
//! some neither node applies to). Every query runs on the pond table and
//! on a `MemTable` of the same rows in the same session, and the answers
//! must be equal. The test also counts the queries whose runs were folded,
//! looked up once, or handed to DataFusion's aggregation, so that it cannot
//! pass without exercising each.
//!
//! The floats summed (`w`) are whole numbers, so that their sums are exact
//! in any order: the `MemTable`'s rows come in other batches and
//! partitions than the pond table's. (As a group key, `w` holds no `-0.0`,
//! which groups with `0.0` and shows as whichever row came first.)
//!
//! `POND_RUNS_CASES` sets the number of series (default 12), and
//! `POND_RUNS_SEED` the seed.
//!
//! NaN and `-0.0` are left out of the generated values: DataFusion's own
//! `min`/`max` answers for them depend on the order rows arrive in (a NaN
//! replaces any value and any value a NaN), so the pond table and the
//! `MemTable` may differ without the fold. The fold passes a batch with a
//! NaN through whole (see `src/runs.rs`).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use pond::{CollapseRunsExec, CompactOptions, Pond, RunAggregateExec, SeriesExt};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::common::*;

fn context(pond: Arc<Pond>) -> SessionContext {
    // Small batches: many of them, some split inside a run.
    session(pond, 3, 700)
}

/// Every `CollapseRunsExec` in `plan`.
fn collapses(plan: &Arc<dyn ExecutionPlan>) -> Vec<&CollapseRunsExec> {
    nodes::<CollapseRunsExec>(plan)
}

/// How many batches the folds of `plan` folded.
fn batches_folded(plan: &Arc<dyn ExecutionPlan>) -> usize {
    collapses(plan)
        .iter()
        .filter_map(|c| c.metrics()?.sum_by_name("batches_folded"))
        .map(|v| v.as_usize())
        .sum()
}

/// A pond with the series `/runs/s` of 5,000 rows of two hosts, and the
/// generator that wrote them.
async fn two_hosts() -> (tempfile::TempDir, Pond, StdRng, Vec<String>) {
    let (dir, pond) = temp_pond().await;
    let hosts = vec!["a".to_string(), "b".to_string()];
    let mut rng = StdRng::seed_from_u64(7);
    let batch = rows(&mut rng, JAN1, 5_000, &hosts);
    pond.append_series_data("/runs/s", &batch, "ts")
        .await
        .unwrap();
    (dir, pond, rng, hosts)
}

/// The nodes `T` of the plan of `sql`, each on a line of its own.
async fn shown<T: ExecutionPlan + 'static>(ctx: &SessionContext, sql: &str) -> String {
    let (_, plan) = run_plan(ctx, sql).await;
    let found: Vec<String> = nodes::<T>(&plan)
        .iter()
        .map(|node| {
            datafusion::physical_plan::displayable(*node)
                .one_line()
                .to_string()
        })
        .collect();
    found.join("; ")
}

/// The sum over the run aggregations of `plan` of their metric `name`.
fn run_metric(plan: &Arc<dyn ExecutionPlan>, name: &str) -> usize {
    nodes::<RunAggregateExec>(plan)
        .iter()
        .filter_map(|c| c.metrics()?.sum_by_name(name))
        .map(|v| v.as_usize())
        .sum()
}

/// `rows` rows from `start`, a second apart (now and then the same
/// second twice), whose tags change in runs of random length.
fn rows(rng: &mut StdRng, start: i64, rows: usize, hosts: &[String]) -> RecordBatch {
    let (mut ts, mut host, mut rack, mut ok, mut v, mut n, mut w) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut t = start;
    let longest = *[2, 20, 400].choose(rng).unwrap();
    while ts.len() < rows {
        let run = rng.random_range(1..=longest);
        let h = hosts.choose(rng).unwrap().clone();
        let r = match rng.random_range(0..10) {
            0 => None,
            r => Some(r % 3),
        };
        let b = rng.random_bool(0.5).then_some(rng.random_bool(0.5));
        for _ in 0..run {
            if !rng.random_bool(0.1) {
                t += SECOND;
            }
            ts.push(t);
            host.push(h.clone());
            rack.push(r);
            ok.push(b);
            v.push(match rng.random_range(0..20) {
                0 => None,
                1 => Some(f64::INFINITY),
                2 => Some(f64::NEG_INFINITY),
                3 => Some(0.0),
                // No NaN: DataFusion 55's grouped min and max replace a NaN
                // kept with the next value (`partial_cmp` is None), so
                // their answer depends on the order rows come in, which
                // differs between a series and the reference table.
                _ => Some(rng.random_range(-1e3..1e3)),
            });
            n.push(match rng.random_range(0..20) {
                0 => None,
                1 => Some(i64::MIN),
                2 => Some(i64::MAX),
                _ => Some(rng.random_range(-50..50)),
            });
            w.push(match rng.random_range(0..10) {
                0 => None,
                // A key NaN equal to itself, as DataFusion groups it.
                1 if rng.random_bool(0.3) => Some(f64::NAN),
                _ => Some(rng.random_range(-1_000..1_000) as f64),
            });
        }
    }
    let ts = TimestampMicrosecondArray::from(ts).with_timezone("UTC");
    // Every column but the time nullable, whether or not it holds a null.
    RecordBatch::try_from_iter_with_nullable([
        ("ts", Arc::new(ts) as ArrayRef, false),
        ("host", Arc::new(StringArray::from(host)), true),
        ("rack", Arc::new(Int64Array::from(rack)), true),
        ("ok", Arc::new(BooleanArray::from(ok)), true),
        ("v", Arc::new(Float64Array::from(v)), true),
        ("n", Arc::new(Int64Array::from(n)), true),
        ("w", Arc::new(Float64Array::from(w)), true),
    ])
    .unwrap()
}

/// A random `GROUP BY` query of `table`.
fn query(rng: &mut StdRng, table: &str, hosts: &[String]) -> String {
    let keys = [
        "host",
        "rack",
        "ok",
        "host; rack",
        "rack; host",
        "upper(host)",
        "date_trunc('minute', ts)",
        "host; ok",
        "host; date_trunc('minute', ts)",
        "date_trunc('hour', ts); rack",
        // A float and a dictionary: looked up by runs, not folded.
        "w",
        "arrow_cast(host, 'Dictionary(Int32, Utf8)'); rack",
    ];
    let keys = *keys.choose(rng).unwrap();
    let extremes = [
        "max(ts)", "min(ts)", "max(v)", "min(v)", "max(n)", "min(n)", "max(ts)", "min(v)",
    ];
    let others = [
        // The fold does not apply with these; the run aggregation does.
        "count(*)",
        "sum(n)",
        "max(host)",
        "count(v)",
        "avg(w)",
        "sum(w)",
        "bool_or(ok)",
        // Neither applies with these.
        "count(DISTINCT rack)",
        "avg(w) FILTER (WHERE n > 0)",
        "array_agg(n ORDER BY ts, n)",
    ];
    let only_extremes = rng.random_bool(0.5);
    let mut aggregates: Vec<String> = Vec::new();
    for i in 0..rng.random_range(1..=3) {
        let aggregate = match only_extremes || rng.random_bool(0.3) {
            true => extremes.choose(rng),
            false => others.choose(rng),
        };
        aggregates.push(format!("{} AS a{i}", aggregate.unwrap()));
    }
    let filter = match rng.random_range(0..4) {
        0 => format!(" WHERE host <> '{}'", hosts.choose(rng).unwrap()),
        1 => format!(
            " WHERE ts >= to_timestamp_micros({}) AT TIME ZONE 'UTC'",
            JAN1 + rng.random_range(0..3_000) * SECOND
        ),
        2 => " WHERE v > 0".to_string(),
        _ => String::new(),
    };
    let keys: Vec<&str> = keys.split("; ").collect();
    let named: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} AS k{i}"))
        .collect();
    let positions: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
    format!(
        "SELECT {}, {} FROM {table}{filter} GROUP BY {} ORDER BY {}",
        named.join(", "),
        aggregates.join(", "),
        keys.join(", "),
        positions.join(", ")
    )
}

#[tokio::test]
async fn folded_runs_agree_with_datafusion_on_random_series_and_queries() {
    let cases = env("POND_RUNS_CASES").unwrap_or(12);
    let seed = env("POND_RUNS_SEED").unwrap_or(20_261_126_u64);
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut planned, mut folded, mut queries) = (0, 0, 0);
    let (mut run_planned, mut runs_looked_up, mut handed_over) = (0, 0, 0);
    let mut sorted_looked_up = 0;
    for case in 0..cases {
        let path = format!("/runs/s{case}");
        // Names past 12 bytes are not inline in a string view.
        let prefix = ["", "a-host-name-of-some-length-"]
            .choose(&mut rng)
            .unwrap();
        let hosts: Vec<String> = (0..rng.random_range(1..12))
            .map(|h| format!("{prefix}host_{h}"))
            .collect();
        let mut batches = Vec::new();
        let mut start = JAN1;
        for _ in 0..rng.random_range(1..6) {
            let count = rng.random_range(1..3_000);
            let batch = rows(&mut rng, start, count, &hosts);
            start += batch.num_rows() as i64 * SECOND;
            pond.append_series_data(&path, &batch, "ts").await.unwrap();
            batches.push(batch);
        }
        let layout = match rng.random_range(0..4) {
            0 => "as appended",
            1 => {
                pond.set_sort_key(&path, &["host"]).await.unwrap();
                "sorted by host"
            }
            2 => {
                pond.set_sort_key_with_bucket(&path, &["rack", "host"], 600 * SECOND)
                    .await
                    .unwrap();
                "sorted by rack and host in 10-minute buckets"
            }
            _ => "compacted by time",
        };
        if layout != "as appended" {
            let options = CompactOptions::default().with_target_file_bytes(40_000);
            pond.compact_with_options(&path, &options).await.unwrap();
        }
        let reference = format!("reference_{case}");
        let schema = batches[0].schema();
        let table = MemTable::try_new(schema, vec![batches]).unwrap();
        ctx.register_table(reference.as_str(), Arc::new(table))
            .unwrap();
        let table = format!("runs.s{case}");
        // DataFusion's probe for partial aggregations that do not reduce,
        // within reach of these series' few thousand rows: partitions
        // handed to DataFusion may skip aggregating, and so may the rest
        // of a partition that stops coming in runs.
        let probe = rng.random_range(300..6_000);
        ctx.sql(&format!(
            "SET datafusion.execution.skip_partial_aggregation_probe_rows_threshold = {probe}"
        ))
        .await
        .unwrap();
        for _ in 0..40 {
            let sql = query(&mut rng, "{t}", &hosts);
            let (answer, plan) = run_plan(&ctx, &sql.replace("{t}", &table)).await;
            let (expected, _) = run_plan(&ctx, &sql.replace("{t}", &reference)).await;
            assert_eq!(
                answer, expected,
                "seed {seed}, case {case} ({layout}): {sql}"
            );
            queries += 1;
            if !collapses(&plan).is_empty() {
                planned += 1;
            }
            if batches_folded(&plan) > 0 {
                folded += 1;
            }
            if !nodes::<RunAggregateExec>(&plan).is_empty() {
                run_planned += 1;
            }
            if run_metric(&plan, "runs_looked_up") > 0 {
                runs_looked_up += 1;
            }
            if run_metric(&plan, "partitions_handed_over") > 0 {
                handed_over += 1;
            }
            let sorted = nodes::<RunAggregateExec>(&plan).iter().any(|node| {
                let shown = datafusion::physical_plan::displayable(*node).one_line();
                shown.to_string().contains("ordering_mode=Sorted")
            });
            if sorted && run_metric(&plan, "runs_looked_up") > 0 {
                sorted_looked_up += 1;
            }
        }
    }
    // The fold is planned for most queries, and folds rows in many.
    assert!(planned * 3 > queries, "{planned} of {queries} planned");
    assert!(folded * 6 > queries, "{folded} of {queries} folded");
    // The run aggregation is planned for many, looks up runs in some, and
    // hands partitions to DataFusion in some.
    assert!(run_planned * 5 > queries, "{run_planned} of {queries}");
    assert!(
        runs_looked_up * 12 > queries,
        "{runs_looked_up} of {queries}"
    );
    assert!(handed_over * 12 > queries, "{handed_over} of {queries}");
    // Some over rows sorted by the keys (by time, grouped by minute).
    assert!(sorted_looked_up > 0, "{sorted_looked_up} of {queries}");
}

#[tokio::test]
async fn the_fold_stands_only_under_min_and_max_of_columns() {
    let (_dir, pond, _, _) = two_hosts().await;
    let ctx = context(Arc::new(pond));
    let plan = |sql| shown::<CollapseRunsExec>(&ctx, sql);
    assert_eq!(
        plan("SELECT host, max(ts), min(v), max(n) FROM runs.s GROUP BY host").await,
        "CollapseRunsExec: keys=[host@1], min=[v@2], max=[ts@0, n@3]\n"
    );
    // A key column aggregated is the same over its run.
    assert_eq!(
        plan("SELECT host, rack, max(rack) FROM runs.s GROUP BY host, rack").await,
        "CollapseRunsExec: keys=[host@0, rack@1]\n"
    );
    for sql in [
        // Both ends of one column.
        "SELECT host, min(v), max(v) FROM runs.s GROUP BY host",
        // Other aggregates.
        "SELECT host, count(*) FROM runs.s GROUP BY host",
        "SELECT host, max(ts), sum(n) FROM runs.s GROUP BY host",
        // Of an expression, with a filter, of a string.
        "SELECT host, max(n + 1) FROM runs.s GROUP BY host",
        "SELECT host, max(n) FILTER (WHERE v > 0) FROM runs.s GROUP BY host",
        "SELECT rack, max(host) FROM runs.s GROUP BY rack",
        // Grouped by a float, or by nothing.
        "SELECT v, max(n) FROM runs.s GROUP BY v",
        "SELECT max(n) FROM runs.s WHERE v > 0",
    ] {
        assert_eq!(plan(sql).await, "", "{sql}");
    }
}

#[tokio::test]
async fn the_run_aggregation_stands_for_partial_aggregations_datafusion_would_run_alike() {
    let (_dir, pond, mut rng, hosts) = two_hosts().await;
    // Two appends, compacted into one file sorted by the hosts, so that
    // no order by time holds.
    let batch = rows(&mut rng, JAN1 + 10_000 * SECOND, 5_000, &hosts);
    pond.append_series_data("/runs/s", &batch, "ts")
        .await
        .unwrap();
    pond.set_sort_key("/runs/s", &["host"]).await.unwrap();
    pond.compact("/runs/s").await.unwrap();
    // And one as appended, in order of time.
    pond.append_series_data("/runs/t", &batch, "ts")
        .await
        .unwrap();
    let ctx = context(Arc::new(pond));
    let plan = |sql| shown::<RunAggregateExec>(&ctx, sql);
    assert_eq!(
        plan("SELECT host, date_trunc('hour', ts), avg(w), count(*) FROM runs.s GROUP BY 1, 2")
            .await,
        "RunAggregateExec: mode=Partial, gby=[host@1 as host, date_trunc(hour, ts@0) as \
         date_trunc(Utf8(\"hour\"),runs.s.ts)], aggr=[avg(runs.s.w), count(Int64(1))]\n"
    );
    assert_eq!(
        plan("SELECT rack, sum(n), max(ts) FROM runs.s WHERE v > 0 GROUP BY rack").await,
        "RunAggregateExec: mode=Partial, gby=[rack@1 as rack], aggr=[sum(runs.s.n), max(runs.s.ts)]\n"
    );
    // Over rows sorted by time, grouped by time: the groups go out as they
    // end.
    assert_eq!(
        plan("SELECT date_trunc('minute', ts), sum(n) FROM runs.t GROUP BY 1").await,
        "RunAggregateExec: mode=Partial, gby=[date_trunc(minute, ts@0) as \
         date_trunc(Utf8(\"minute\"),runs.t.ts)], aggr=[sum(runs.t.n)], ordering_mode=Sorted\n"
    );
    for sql in [
        // Folded by `CollapseRunsExec` instead.
        "SELECT host, max(ts), min(v) FROM runs.s GROUP BY host",
        // DISTINCT (of two columns: one DataFusion would rewrite as a
        // grouping), FILTER, ORDER BY.
        "SELECT host, count(DISTINCT rack), count(DISTINCT n) FROM runs.s GROUP BY host",
        "SELECT host, sum(n) FILTER (WHERE v > 0) FROM runs.s GROUP BY host",
        "SELECT host, array_agg(n ORDER BY ts) FROM runs.s GROUP BY host",
        // Grouped by nothing, or by grouping sets.
        "SELECT sum(n) FROM runs.s",
        "SELECT host, rack, sum(n) FROM runs.s GROUP BY ROLLUP (host, rack)",
        // Rows sorted by some of the keys only: DataFusion's aggregation
        // streams on them.
        "SELECT date_trunc('minute', ts), host, sum(n) FROM runs.t GROUP BY 1, 2",
        // Not of a series.
        "SELECT x, count(*) FROM (VALUES (1), (2), (1)) AS t(x) GROUP BY x",
    ] {
        assert_eq!(plan(sql).await, "", "{sql}");
    }
}
