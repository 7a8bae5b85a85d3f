//! SQL over series: the catalog, the pruning scan, and a randomized check of
//! pruned answers against the same rows in a `MemTable`.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::{Pond, SeriesExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::*;

const HOUR: i64 = 3_600_000_000;

/// A pond whose series `/sensors/site1/temperature` has 20 hourly versions of
/// 6 rows each, and a root series `/status`.
async fn hourly_pond() -> (tempfile::TempDir, Arc<Pond>) {
    let (dir, pond) = temp_pond().await;
    for h in 0..20 {
        let times: Vec<i64> = (0..6)
            .map(|i| JAN1 + h * HOUR + i * 10 * 60_000_000)
            .collect();
        pond.append_series_data("/sensors/site1/temperature", &readings(&times), "ts")
            .await
            .unwrap();
    }
    pond.append_series_data("/status", &readings(&[JAN1]), "ts")
        .await
        .unwrap();
    (dir, Arc::new(pond))
}

fn context(pond: Arc<Pond>) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    pond::register(&ctx, pond);
    ctx
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

/// The answer of `sql`, pretty-printed.
async fn answer(ctx: &SessionContext, sql: &str) -> String {
    arrow::util::pretty::pretty_format_batches(&rows(ctx, sql).await)
        .unwrap()
        .to_string()
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = rows(ctx, sql).await;
    let column =
        arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    column.as_primitive::<Int64Type>().value(0)
}

async fn explain(ctx: &SessionContext, sql: &str) -> String {
    answer(ctx, &format!("EXPLAIN {sql}")).await
}

#[tokio::test]
async fn every_series_is_a_table_in_the_pond_catalog() {
    let (_dir, pond) = hourly_pond().await;
    let ctx = context(pond);
    let tables = rows(
        &ctx,
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_catalog = 'pond' ORDER BY table_schema, table_name",
    )
    .await;
    let pairs: Vec<(String, String)> = tables
        .iter()
        .flat_map(|b| {
            let (s, t) = (
                b.column(0).as_string::<i32>(),
                b.column(1).as_string::<i32>(),
            );
            (0..b.num_rows())
                .map(|i| (s.value(i).to_string(), t.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|(s, _)| s != "information_schema")
        .collect();
    let expected = [("public", "status"), ("sensors/site1", "temperature")];
    assert_eq!(pairs, expected.map(|(s, t)| (s.to_string(), t.to_string())));
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM \"sensors/site1\".temperature").await,
        120
    );
    assert_eq!(count(&ctx, "SELECT count(*) FROM status").await, 1);
}

#[tokio::test]
async fn a_series_created_after_registration_is_visible() {
    let (dir, pond) = hourly_pond().await;
    let ctx = context(pond);
    let other = Pond::open_with_options(location(&dir), manual())
        .await
        .unwrap();
    other
        .append_series_data("/late/arrival", &readings(&[1, 2, 3]), "ts")
        .await
        .unwrap();
    assert_eq!(count(&ctx, "SELECT count(*) FROM late.arrival").await, 3);
}

#[tokio::test]
async fn explain_shows_exactly_the_overlapping_versions() {
    let (_dir, pond) = hourly_pond().await;
    let ctx = context(pond);
    // Hours 5, 6 and 7 overlap [05:30, 07:10).
    let sql = "SELECT count(*) FROM \"sensors/site1\".temperature \
               WHERE ts >= '2024-01-01T05:30:00Z' AND ts < '2024-01-01T07:10:00Z'";
    let plan = explain(&ctx, sql).await;
    assert!(plan.contains("versions=3/20"), "{plan}");
    // 05:30, 05:40, 05:50, 06:00..06:50 (6), 07:00: 10 rows.
    assert_eq!(count(&ctx, sql).await, 10);
    let analyzed = explain(&ctx, &format!("ANALYZE {sql}")).await;
    assert!(
        analyzed.contains("versions_total=20") && analyzed.contains("versions_pruned=17"),
        "{analyzed}"
    );

    let plan = explain(
        &ctx,
        "SELECT * FROM \"sensors/site1\".temperature WHERE ts > '2030-01-01'",
    )
    .await;
    assert!(plan.contains("versions=0/20"), "{plan}");
    let plan = explain(
        &ctx,
        "SELECT * FROM \"sensors/site1\".temperature WHERE reading > 1",
    )
    .await;
    assert!(plan.contains("versions=20/20"), "{plan}");
}

#[tokio::test]
async fn pruned_sql_answers_equal_a_memtable_of_the_same_rows() {
    let (_dir, pond) = hourly_pond().await;
    let ctx = context(Arc::clone(&pond));
    let all = read_all(&pond, "/sensors/site1/temperature").await;
    let mem = MemTable::try_new(all.schema(), vec![vec![all]]).unwrap();
    ctx.register_table("datafusion.public.reference", Arc::new(mem))
        .unwrap();

    let mut rng = StdRng::seed_from_u64(42);
    let t = |rng: &mut StdRng| {
        let us = JAN1 + rng.random_range(-HOUR..21 * HOUR);
        format!("to_timestamp_micros({us})")
    };
    for _ in 0..40 {
        let predicate = match rng.random_range(0..6) {
            0 => format!("ts >= {} AND ts < {}", t(&mut rng), t(&mut rng)),
            1 => format!("ts BETWEEN {} AND {}", t(&mut rng), t(&mut rng)),
            2 => format!("ts < {} OR ts > {}", t(&mut rng), t(&mut rng)),
            3 => format!("NOT (ts <= {})", t(&mut rng)),
            4 => format!(
                "ts = {} OR ts IN ({}, {})",
                t(&mut rng),
                t(&mut rng),
                t(&mut rng)
            ),
            _ => format!(
                "(ts > {} AND reading > 100000) OR ts <= {}",
                t(&mut rng),
                t(&mut rng)
            ),
        };
        // Aggregates (answered in part from the oplog's statistics), and a
        // TopK whose dynamic filter prunes files while the query runs.
        let shapes = [
            "SELECT count(*) AS n, sum(reading) AS s, min(ts) AS a, max(ts) AS b FROM {table} WHERE {p}",
            "SELECT ts, reading FROM {table} WHERE {p} ORDER BY ts DESC LIMIT 7",
            "SELECT ts FROM {table} WHERE {p} ORDER BY ts LIMIT 5",
        ];
        for shape in shapes {
            let q = |table: &str| shape.replace("{table}", table).replace("{p}", &predicate);
            let pruned = answer(&ctx, &q("\"sensors/site1\".temperature")).await;
            let reference = answer(&ctx, &q("datafusion.public.reference")).await;
            assert_eq!(pruned, reference, "{}", q("…"));
        }
    }
    // No filter at all: count, min and max straight from the oplog.
    let q = |table: &str| format!("SELECT count(*) AS n, min(ts) AS a, max(ts) AS b FROM {table}");
    let pruned = answer(&ctx, &q("\"sensors/site1\".temperature")).await;
    let reference = answer(&ctx, &q("datafusion.public.reference")).await;
    assert_eq!(pruned, reference);
}

#[tokio::test]
async fn series_range_reads_a_window_and_travels_in_time() {
    let (_dir, pond) = hourly_pond().await;
    let ctx = context(pond);
    let window = "series_range('/sensors/site1/temperature', \
                  '2024-01-01T05:30:00Z', TIMESTAMP '2024-01-01 07:10:00')";
    assert_eq!(
        count(&ctx, &format!("SELECT count(*) FROM {window}")).await,
        10
    );
    let plan = explain(&ctx, &format!("SELECT * FROM {window}")).await;
    assert!(plan.contains("versions=3/20"), "{plan}");
    // Only the time column is in the window filter, not the output.
    let only_reading = rows(
        &ctx,
        &format!("SELECT reading FROM {window} ORDER BY reading LIMIT 2"),
    )
    .await;
    assert_eq!(only_reading[0].num_columns(), 1);

    let open_start = "series_range('/sensors/site1/temperature', NULL, '2024-01-01T07:10:00Z')";
    assert_eq!(
        count(&ctx, &format!("SELECT count(*) FROM {open_start}")).await,
        43
    );
    let both_open = "series_range('/sensors/site1/temperature', NULL, NULL, 5)";
    assert_eq!(
        count(&ctx, &format!("SELECT count(*) FROM {both_open}")).await,
        30
    );
    let plan = explain(&ctx, &format!("SELECT * FROM {both_open}")).await;
    assert!(plan.contains("versions=5/5"), "{plan}");
    let filtered = format!("SELECT count(*) FROM {window} WHERE ts >= '2024-01-01T06:00:00Z'");
    assert_eq!(count(&ctx, &filtered).await, 7);
    let recent = "SELECT count(*) FROM series_range('/status', now() - INTERVAL '1 hour', NULL)";
    assert_eq!(count(&ctx, recent).await, 0);
}

#[tokio::test]
async fn series_range_rejects_bad_arguments_by_name() {
    let (_dir, pond) = hourly_pond().await;
    let ctx = context(pond);
    for (sql, needle) in [
        (
            "SELECT * FROM series_range('/sensors/site1/temperature', NULL)",
            "3 or 4 arguments",
        ),
        (
            "SELECT * FROM series_range('/nope', NULL, NULL)",
            "unknown series /nope",
        ),
        (
            "SELECT * FROM series_range('relative', NULL, NULL)",
            "must start with '/'",
        ),
        (
            "SELECT * FROM series_range(42, NULL, NULL)",
            "path must be a string",
        ),
        (
            "SELECT * FROM series_range('/status', 'yesterday-ish', NULL)",
            "start",
        ),
        (
            "SELECT * FROM series_range('/status', NULL, NULL, -1)",
            "as_of must be a version",
        ),
        (
            "SELECT * FROM series_range('/status', NULL, NULL, 'last week')",
            "as_of last week is not an RFC 3339 timestamp",
        ),
        ("SELECT * FROM series_versions()", "1 argument"),
    ] {
        let err = match ctx.sql(sql).await {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        assert!(err.to_string().contains(needle), "{sql}: {err}");
    }
}

#[tokio::test]
async fn series_versions_lists_every_version() {
    let (_dir, pond) = hourly_pond().await;
    let ctx = context(pond);
    let sql = "SELECT count(*) FROM series_versions('/sensors/site1/temperature') \
               WHERE entry_type = 'append' AND row_count = 6";
    assert_eq!(count(&ctx, sql).await, 20);
    let sql = "SELECT max(version) FROM series_versions('/sensors/site1/temperature') \
               WHERE max_event_time < TIMESTAMP '2024-01-01T03:00:00Z'";
    assert_eq!(count(&ctx, sql).await, 3);
}

#[tokio::test]
async fn create_table_and_insert_write_series() {
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    rows(
        &ctx,
        "CREATE TABLE plant.boiler (ts TIMESTAMP NOT NULL, temp DOUBLE)",
    )
    .await;
    assert_eq!(pond.series_info("/plant/boiler").unwrap().versions, 0);
    let inserted = "INSERT INTO plant.boiler VALUES \
                    ('2024-01-01T00:00:00', 1.5), ('2024-01-01T01:00:00', 2.5)";
    assert_eq!(count(&ctx, inserted).await, 2);
    rows(
        &ctx,
        "INSERT INTO plant.boiler VALUES ('2024-01-02T00:00:00', 3.5)",
    )
    .await;
    assert_eq!(count(&ctx, "SELECT count(*) FROM plant.boiler").await, 3);
    assert_eq!(
        pond.versions("/plant/boiler").unwrap().len(),
        2,
        "one version per INSERT"
    );

    rows(
        &ctx,
        "CREATE TABLE plant.hot AS SELECT * FROM plant.boiler WHERE temp > 2",
    )
    .await;
    assert_eq!(count(&ctx, "SELECT count(*) FROM plant.hot").await, 2);
    assert_eq!(pond.versions("/plant/hot").unwrap().len(), 1);

    let err = ctx
        .sql("CREATE TABLE plant.bad (v DOUBLE)")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("needs a timestamp column"),
        "{err}"
    );
    let err = match ctx.sql("INSERT INTO plant.boiler VALUES (NULL, 1.0)").await {
        Ok(df) => df.collect().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(err.to_string().to_lowercase().contains("null"), "{err}");
    assert_eq!(
        pond.versions("/plant/boiler").unwrap().len(),
        2,
        "a failed INSERT writes nothing"
    );
}

/// The randomized differential over SQL: random series (every unit, with
/// and without zones, overlapping and disjoint versions) and random time
/// predicates in several query shapes, against a `MemTable` of the same rows.
#[tokio::test]
async fn random_series_and_predicates_agree_with_a_memtable() {
    use arrow::datatypes::TimeUnit;
    let seed: u64 = env("POND_TEST_SEED").unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
    pond::register(&ctx, Arc::clone(&pond));
    let units = [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ];
    let per_second = |unit: TimeUnit| match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000i64,
    };
    let zones = [None, Some("UTC"), Some("+05:30"), Some("America/New_York")];
    for s in 0..4 {
        let unit = units[rng.random_range(0..4)];
        let zone = zones[rng.random_range(0..4)];
        let path = format!("/random/s{s}");
        let k = per_second(unit);
        let base = JAN1 / 1_000_000 * k;
        for v in 0..rng.random_range(8..20) {
            // Mostly one hour each, in order; now and then a late version
            // that overlaps earlier ones.
            let start = if rng.random_bool(0.2) {
                rng.random_range(0..v.max(1)) * 3_600
            } else {
                v * 3_600
            };
            let mut times: Vec<i64> = (0..rng.random_range(1..40))
                .map(|_| base + start * k + rng.random_range(0..3_600 * k))
                .collect();
            times.sort_unstable();
            let batch = batch(unit, zone, times, v * 100);
            pond.append_series_data(&path, &batch, "ts").await.unwrap();
        }
        let all = read_all(&pond, &path).await;
        let reference = format!("datafusion.public.reference_{s}");
        let mem = MemTable::try_new(all.schema(), vec![vec![all]]).unwrap();
        ctx.register_table(reference.as_str(), Arc::new(mem))
            .unwrap();

        let t = |rng: &mut StdRng| {
            let second = JAN1 / 1_000_000 + rng.random_range(-3_600..22 * 3_600);
            let nanos = rng.random_range(0..1_000_000_000i64);
            match rng.random_range(0..5) {
                0 => format!("to_timestamp_nanos({})", second * 1_000_000_000 + nanos),
                1 => format!(
                    "to_timestamp_millis({})",
                    second * 1_000 + nanos / 1_000_000
                ),
                2 => format!(
                    "'{}'",
                    chrono::DateTime::from_timestamp(second, nanos as u32)
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%S%.9f+00:00")
                ),
                3 => format!(
                    "'{}'",
                    (chrono::DateTime::from_timestamp(second, 0).unwrap()
                        + chrono::Duration::hours(2))
                    .format("%Y-%m-%dT%H:%M:%S+02:00")
                ),
                // No zone: DataFusion reads it in the column's zone.
                _ => format!(
                    "'{}'",
                    chrono::DateTime::from_timestamp(second, 0)
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%S")
                ),
            }
        };
        for _ in 0..12 {
            let predicate = match rng.random_range(0..6) {
                0 => format!("ts >= {} AND ts < {}", t(&mut rng), t(&mut rng)),
                1 => format!("ts BETWEEN {} AND {}", t(&mut rng), t(&mut rng)),
                2 => format!("ts < {} OR ts > {}", t(&mut rng), t(&mut rng)),
                3 => format!("NOT (ts <= {})", t(&mut rng)),
                4 => format!("ts > {} AND value % 3 = 0", t(&mut rng)),
                _ => format!("ts IN ({}, {})", t(&mut rng), t(&mut rng)),
            };
            let table = format!("random.s{s}");
            for shape in [
                "SELECT count(*) AS n, sum(value) AS s, min(ts) AS a, max(ts) AS b FROM {t} WHERE {p}",
                "SELECT ts, value FROM {t} WHERE {p} ORDER BY ts DESC, value LIMIT 5",
                "SELECT value FROM {t} WHERE {p} ORDER BY value",
            ] {
                let q = |t: &str| shape.replace("{t}", t).replace("{p}", &predicate);
                let got = answer(&ctx, &q(&table)).await;
                let want = answer(&ctx, &q(&reference)).await;
                assert_eq!(got, want, "seed {seed}, {unit:?} {zone:?}: {}", q(&table));
            }
        }
    }
}

/// Strings read as views, as DataFusion reads Parquet, while the series keeps
/// its own types; and each file's distinct counts of its tags reach the
/// planner, which sizes `GROUP BY`s and picks hash join sides with them.
#[tokio::test]
async fn strings_read_as_views_and_tags_carry_distinct_counts() {
    use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::common::stats::Precision;
    use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("host", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
    ]));
    for v in 0..3i64 {
        // Hosts 0..10 in every version, 20 rows each.
        let times: Vec<i64> = (0..20).map(|i| JAN1 + v * HOUR + i).collect();
        let hosts: Vec<String> = (0..20).map(|i| format!("host_{}", i % 10)).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(times)),
            Arc::new(StringArray::from(hosts)),
            Arc::new(Float64Array::from(vec![1.0; 20])),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        pond.append_series_data("/fleet/cpu", &batch, "ts")
            .await
            .unwrap();
    }
    let ctx = context(Arc::clone(&pond));
    assert_eq!(
        answer(
            &ctx,
            "SELECT arrow_typeof(host) AS t FROM fleet.cpu LIMIT 1"
        )
        .await,
        "+----------+\n| t        |\n+----------+\n| Utf8View |\n+----------+"
    );

    let plan = ctx
        .sql("SELECT host, ts FROM fleet.cpu")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let stats = StatisticsContext::new()
        .compute(plan.as_ref(), &StatisticsArgs::new())
        .unwrap();
    assert_eq!(
        stats.column_statistics[0].distinct_count,
        Precision::Inexact(10)
    );
    assert_eq!(stats.column_statistics[1].distinct_count, Precision::Absent);
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM (SELECT host FROM fleet.cpu GROUP BY host)"
        )
        .await,
        10
    );

    // Rows inserted by SQL arrive as views and are written as the series'
    // strings: the schema does not change.
    rows(
        &ctx,
        "INSERT INTO fleet.cpu VALUES ('2024-01-02T00:00:00', 'host_x', 2.0)",
    )
    .await;
    assert_eq!(
        pond.series_info("/fleet/cpu")
            .unwrap()
            .schema
            .field(1)
            .data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM fleet.cpu WHERE host = 'host_x'").await,
        1
    );
}

/// The session's Parquet settings reach the series scan: with `pruning`
/// off, the Parquet reader no longer skips row groups by their statistics.
#[tokio::test]
async fn session_parquet_settings_reach_the_scan() {
    let (_dir, pond) = hourly_pond().await;
    let ctx = context(pond);
    let sql = "EXPLAIN ANALYZE SELECT count(*) FROM \"sensors/site1\".temperature \
               WHERE reading > 170410320000000";
    let row_groups = |plan: &str| {
        let at = plan
            .find("row_groups_pruned_statistics=")
            .expect("the scan's metrics")
            + 29;
        plan[at..].split(',').next().unwrap().to_string()
    };
    let pruning = row_groups(&answer(&ctx, sql).await);
    // Readings grow with time: the first 10 hours' row groups are skipped.
    assert!(pruning.starts_with("20 total → 10 matched"), "{pruning}");
    rows(&ctx, "SET datafusion.execution.parquet.pruning = false").await;
    let not_pruning = row_groups(&answer(&ctx, sql).await);
    assert_eq!(not_pruning, "20 total → 20 matched");
}

/// Now, µs UTC, as RFC 3339, after a pause on either side so that commits
/// before and after it have distinct times.
async fn moment() -> String {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    now
}

#[tokio::test]
async fn time_travel_by_time_reads_each_series_as_its_commits_left_it() {
    let (_dir, pond) = temp_pond().await;
    let before = moment().await;
    pond.append_series_data("/plant/boiler", &readings(&[JAN1, JAN1 + 1]), "ts")
        .await
        .unwrap();
    let first = moment().await;
    pond.append_series_data(
        "/plant/boiler",
        &readings(&[JAN1 + 2, JAN1 + 3, JAN1 + 4]),
        "ts",
    )
    .await
    .unwrap();
    let second = moment().await;
    // The compaction supersedes both versions; reads as of a time before it
    // still see them.
    pond.compact("/plant/boiler").await.unwrap();
    let ctx = context(Arc::new(pond));
    let range = |as_of: &str| {
        format!("SELECT count(*) FROM series_range('/plant/boiler', NULL, NULL, {as_of})")
    };
    assert_eq!(count(&ctx, &range(&format!("'{before}'"))).await, 0);
    assert_eq!(count(&ctx, &range(&format!("'{first}'"))).await, 2);
    assert_eq!(
        count(&ctx, &range(&format!("TIMESTAMP '{first}'"))).await,
        2
    );
    assert_eq!(count(&ctx, &range(&format!("'{second}'"))).await, 5);
    assert_eq!(count(&ctx, &range("NULL")).await, 5);

    // The session setting reads every table as of the time; a version
    // given to series_range wins.
    rows(&ctx, &format!("SET pond.as_of = '{first}'")).await;
    assert_eq!(count(&ctx, "SELECT count(*) FROM plant.boiler").await, 2);
    let no_as_of = "SELECT count(*) FROM series_range('/plant/boiler', NULL, NULL)";
    assert_eq!(count(&ctx, no_as_of).await, 2);
    assert_eq!(count(&ctx, &range("2")).await, 5);
    rows(&ctx, "SET pond.as_of = ''").await;
    assert_eq!(count(&ctx, "SELECT count(*) FROM plant.boiler").await, 5);
    rows(&ctx, "SET pond.as_of = 'yesterday'").await;
    let err = ctx
        .sql("SELECT count(*) FROM plant.boiler")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an RFC 3339"), "{err}");
}

/// A time column of seconds, milliseconds or microseconds compared with a
/// finer constant answers exactly, on a series and on a `MemTable` alike:
/// DataFusion 55 alone rounds the constant to the column's unit (toward
/// zero, or down for text), which kept or dropped the row at the bound's
/// whole unit. The reference is integer arithmetic on the rows' values.
/// A random comparison of `ts` with constants near the rows of `sets`
/// (times in ns, with their unit's length): at a row, or a nanosecond, half
/// a unit or a unit less a nanosecond beside it, written as
/// `to_timestamp_nanos`, zoned as `now()` is, or RFC 3339 text; and which
/// times it holds for.
fn time_predicate(
    rng: &mut StdRng,
    sets: &[(&Vec<i64>, i64)],
) -> (String, Box<dyn Fn(i64) -> bool>) {
    let mut constant = || -> (i64, String) {
        let (rows, nanos_per) = sets[rng.random_range(0..sets.len())];
        let row = rows[rng.random_range(0..rows.len())];
        let offset =
            [0, 1, -1, nanos_per / 2, nanos_per - 1, -(nanos_per / 2)][rng.random_range(0..6)];
        let nanos = row + offset;
        let text = if rng.random_bool(0.3) {
            format!("to_timestamp_nanos({nanos})")
        } else if rng.random_bool(0.4) {
            // Zoned as now() is: a column without a zone is cast to it.
            format!(
                "arrow_cast(to_timestamp_nanos({nanos}), \
                 'Timestamp(Nanosecond, Some(\"+00:00\"))')"
            )
        } else {
            let time = chrono::DateTime::from_timestamp(
                nanos.div_euclid(1_000_000_000),
                nanos.rem_euclid(1_000_000_000) as u32,
            )
            .unwrap();
            format!("'{}'", time.format("%Y-%m-%dT%H:%M:%S%.9fZ"))
        };
        (nanos, text)
    };
    let (a, a_text) = constant();
    let (b, b_text) = constant();
    match rng.random_range(0..12) {
        10 => (
            format!("ts IS NOT DISTINCT FROM {a_text}"),
            Box::new(move |t| t == a),
        ),
        11 => (
            format!("NOT (ts IS DISTINCT FROM {a_text})"),
            Box::new(move |t| t == a),
        ),
        0 => (format!("ts >= {a_text}"), Box::new(move |t| t >= a)),
        1 => (format!("ts > {a_text}"), Box::new(move |t| t > a)),
        2 => (format!("ts < {a_text}"), Box::new(move |t| t < a)),
        3 => (format!("ts <= {a_text}"), Box::new(move |t| t <= a)),
        4 => (format!("ts = {a_text}"), Box::new(move |t| t == a)),
        5 => (format!("ts <> {a_text}"), Box::new(move |t| t != a)),
        6 => (
            format!("ts BETWEEN {a_text} AND {b_text}"),
            Box::new(move |t| a <= t && t <= b),
        ),
        7 => (
            format!("ts NOT BETWEEN {a_text} AND {b_text}"),
            Box::new(move |t| t < a || t > b),
        ),
        8 => (
            format!("ts IN ({a_text}, {b_text})"),
            Box::new(move |t| t == a || t == b),
        ),
        _ => (
            format!("ts NOT IN ({a_text}, {b_text})"),
            Box::new(move |t| t != a && t != b),
        ),
    }
}

#[tokio::test]
async fn comparisons_with_finer_constants_are_exact() {
    use arrow::datatypes::TimeUnit;
    let seed: u64 = env("POND_TEST_SEED").unwrap_or(11);
    let mut rng = StdRng::seed_from_u64(seed);
    let (_dir, pond) = temp_pond().await;
    let pond = Arc::new(pond);
    let ctx = context(Arc::clone(&pond));
    let cases = [
        (TimeUnit::Second, None, 1_000_000_000i64),
        (TimeUnit::Second, Some("UTC"), 1_000_000_000),
        (TimeUnit::Millisecond, Some("UTC"), 1_000_000),
        (TimeUnit::Millisecond, None, 1_000_000),
        (TimeUnit::Microsecond, Some("UTC"), 1_000),
    ];
    for (s, (unit, zone, nanos_per)) in cases.into_iter().enumerate() {
        // Twenty consecutive values of the unit, after 2024 or, for every
        // other series, around 1970 (truncation toward zero differs from
        // rounding down below it).
        let first = if s % 2 == 0 {
            JAN1 / 1_000 * 1_000_000 / nanos_per
        } else {
            -10
        };
        let values: Vec<i64> = (first..first + 20).collect();
        let path = format!("/exact/s{s}");
        let data = batch(unit, zone, values.clone(), 0);
        pond.append_series_data(&path, &data, "ts").await.unwrap();
        let reference = format!("datafusion.public.exact_{s}");
        let mem = MemTable::try_new(data.schema(), vec![vec![data]]).unwrap();
        ctx.register_table(reference.as_str(), Arc::new(mem))
            .unwrap();

        let rows: Vec<i64> = values.iter().map(|v| v * nanos_per).collect();
        for _ in 0..40 {
            let (predicate, holds) = time_predicate(&mut rng, &[(&rows, nanos_per)]);
            let want = rows.iter().filter(|t| holds(**t)).count() as i64;
            for table in [format!("exact.s{s}"), reference.clone()] {
                let sql = format!("SELECT count(*) FROM {table} WHERE {predicate}");
                assert_eq!(
                    count(&ctx, &sql).await,
                    want,
                    "seed {seed}, {unit:?} {zone:?}: {sql}"
                );
            }
            let sql = format!(
                "SELECT count(*) FROM (SELECT ts FROM exact.s{s} WHERE {predicate} \
                 ORDER BY ts DESC LIMIT 3)"
            );
            assert_eq!(count(&ctx, &sql).await, want.min(3), "seed {seed}: {sql}");
        }
    }
    // A union of seconds (around 1970) and milliseconds (2024): the filter
    // reaches each scan through the union's cast of its column.
    let seconds: Vec<i64> = (-10..10).map(|v| v * 1_000_000_000).collect();
    let millis: Vec<i64> = (0..20).map(|v| (JAN1 / 1_000 + v) * 1_000_000).collect();
    for _ in 0..60 {
        let sets = [(&seconds, 1_000_000_000), (&millis, 1_000_000)];
        let (predicate, holds) = time_predicate(&mut rng, &sets);
        let want = seconds.iter().chain(&millis).filter(|t| holds(**t)).count() as i64;
        let sql = format!(
            "SELECT count(*) FROM (SELECT ts FROM exact.s1 UNION ALL SELECT ts FROM exact.s2) \
             WHERE {predicate}"
        );
        assert_eq!(count(&ctx, &sql).await, want, "seed {seed}: {sql}");
    }
    // As text of milliseconds, the union's unit: the row at 4 s counts.
    let sql = "SELECT count(*) FROM (SELECT ts FROM exact.s1 UNION ALL SELECT ts FROM exact.s2) \
               WHERE ts < '1970-01-01T00:00:04.5Z'";
    assert_eq!(count(&ctx, sql).await, 15);
    // A cast the query writes itself means what it says: the text to
    // whole seconds (4), then the comparison.
    let explicit = "SELECT count(*) FROM exact.s0 \
         WHERE ts >= CAST('2024-01-01T00:00:04.5' AS TIMESTAMP(0))";
    assert_eq!(count(&ctx, explicit).await, 16);
    // Long IN lists stay lists: 2,000 items, every tenth a whole second.
    let items: Vec<String> = (0..2_000)
        .map(|i| format!("'2024-01-01T00:00:{:02}.{}Z'", i / 100, i % 10))
        .collect();
    for (negated, want) in [("", 20), ("NOT ", 0)] {
        let sql = format!(
            "SELECT count(*) FROM exact.s0 WHERE ts {negated}IN ({})",
            items.join(", ")
        );
        assert_eq!(count(&ctx, &sql).await, want, "{negated}IN");
    }
    // Inside a grouping set too: of -10..9 s, 0 is before 0.5 s.
    let grouped = rows(
        &ctx,
        "SELECT ts >= '1970-01-01T00:00:00.5Z' AS late, count(*) AS n FROM exact.s1 \
         GROUP BY ROLLUP(ts >= '1970-01-01T00:00:00.5Z')",
    )
    .await;
    let text = arrow::util::pretty::pretty_format_batches(&grouped)
        .unwrap()
        .to_string();
    let mut counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        ["|       | 20 |", "| false | 11 |", "| true  | 9  |"],
        "{text}"
    );
    // series_range's bounds finer than µs: a row of whole µs is in the
    // window exactly when it is at or after the start and before the end.
    let first = count(&ctx, "SELECT CAST(min(ts) AS BIGINT) FROM exact.s4").await;
    for (start, end, text) in [
        ((first + 2) * 1_000 + 500, (first + 5) * 1_000 + 500, false),
        ((first + 2) * 1_000 + 1, (first + 5) * 1_000 + 999, true),
        ((first + 2) * 1_000, (first + 6) * 1_000, true),
    ] {
        let bound = |nanos: i64| {
            if text {
                let time = chrono::DateTime::from_timestamp(
                    nanos.div_euclid(1_000_000_000),
                    nanos.rem_euclid(1_000_000_000) as u32,
                )
                .unwrap();
                format!("'{}'", time.format("%Y-%m-%dT%H:%M:%S%.9fZ"))
            } else {
                format!("to_timestamp_nanos({nanos})")
            }
        };
        let window = format!(
            "FROM series_range('/exact/s4', {}, {})",
            bound(start),
            bound(end)
        );
        let low = count(&ctx, &format!("SELECT CAST(min(ts) AS BIGINT) {window}")).await;
        let high = count(&ctx, &format!("SELECT CAST(max(ts) AS BIGINT) {window}")).await;
        let whole = start % 1_000 == 0;
        assert_eq!(low - first, if whole { 2 } else { 3 }, "{window}");
        assert_eq!(high - first, 5, "{window}");
    }
    // The rewrite keeps a projected comparison's name.
    let named = rows(
        &ctx,
        "SELECT ts > to_timestamp_nanos(1500000000) FROM exact.s1 LIMIT 1",
    )
    .await;
    assert_eq!(
        named[0].schema().field(0).name(),
        "exact.s1.ts > to_timestamp_nanos(Int64(1500000000))"
    );
}
