//! pond on Apache Ballista, in this process: a standalone cluster (a
//! scheduler and an executor on 127.0.0.1, plans sent through pond's
//! codecs and gRPC), and the codecs on their own. The sqllogictest files
//! run on such a cluster too (`tests/sqllogictests.rs`), and
//! `crates/pond-ballista/tests` runs the real binaries.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::SessionContext;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::AsExecutionPlan;
use datafusion_proto::protobuf::PhysicalPlanNode;
use pond::cluster::PondCodec;
use pond::{Pond, RunAggregateExec, SeriesExt, SeriesTable};
use prost::Message;

use crate::common::*;

const HOUR: i64 = 3_600_000_000;

/// `n` readings one minute apart from hour `hour` of 2024-01-01.
fn hour_of_readings(hour: i64, n: i64) -> RecordBatch {
    let times: Vec<i64> = (0..n)
        .map(|i| JAN1 + hour * HOUR + i * 60_000_000)
        .collect();
    readings(&times)
}

async fn sql_rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

/// `pond` shared, with a local session and a standalone cluster on it.
async fn local_and_cluster(pond: Pond) -> (Arc<Pond>, SessionContext, SessionContext) {
    let pond = Arc::new(pond);
    let local = SessionContext::new();
    pond::register(&local, Arc::clone(&pond));
    let cluster = pond::cluster::standalone(Arc::clone(&pond)).await.unwrap();
    (pond, local, cluster)
}

fn count_of(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

fn text_of(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_answers_as_a_local_session_and_explains_the_pruned_scan() {
    let (_dir, pond) = temp_pond().await;
    for hour in 0..6 {
        pond.append_series_data("/plant/boiler", &hour_of_readings(hour, 60), "ts")
            .await
            .unwrap();
    }
    let (pond, local, cluster) = local_and_cluster(pond).await;

    let window = "WHERE ts >= '2024-01-01T02:00:00Z' AND ts < '2024-01-01T03:00:00Z'";
    for sql in [
        format!("SELECT count(*), sum(reading), min(ts), max(ts) FROM plant.boiler {window}"),
        // Counted from the oplog, with no file opened.
        format!("SELECT count(*) FROM plant.boiler {window}"),
        "SELECT date_trunc('hour', ts) AS h, avg(reading) FROM plant.boiler GROUP BY h ORDER BY h"
            .to_string(),
        "SELECT ts, reading FROM plant.boiler ORDER BY ts DESC LIMIT 3".to_string(),
        "SELECT count(*) FROM series_range('/plant/boiler', '2024-01-01T01:30:00', \
         '2024-01-01T04:00:00')"
            .to_string(),
        RUNS.to_string(),
    ] {
        let here = text_of(&sql_rows(&local, &sql).await);
        let there = text_of(&sql_rows(&cluster, &sql).await);
        assert_eq!(here, there, "{sql}");
    }

    // The scheduler plans with pond's rule: the oplog keeps one version of
    // six before any file is opened.
    let plan = text_of(
        &sql_rows(
            &cluster,
            &format!("EXPLAIN SELECT count(*), sum(reading) FROM plant.boiler {window}"),
        )
        .await,
    );
    assert!(
        plan.contains("SeriesScanExec: series=/plant/boiler"),
        "{plan}"
    );
    assert!(plan.contains("versions=1/6"), "{plan}");
    // And with pond's nodes, which go to the executor through pond's codec.
    let plan = text_of(&sql_rows(&cluster, &format!("EXPLAIN {RUNS}")).await);
    assert!(plan.contains("RunAggregateExec: mode=Partial"), "{plan}");

    // Through pond's codec a plan keeps its run aggregation (rather than
    // the plain aggregation it stands for) and answers the same.
    let codec = PondCodec::new().with_pond(Arc::clone(&pond));
    let plan = local.sql(RUNS).await.unwrap();
    let plan = plan.create_physical_plan().await.unwrap();
    assert_eq!(nodes::<RunAggregateExec>(&plan).len(), 1);
    let bytes = PhysicalPlanNode::try_from_physical_plan(Arc::clone(&plan), &codec)
        .unwrap()
        .encode_to_vec();
    let decoded = PhysicalPlanNode::decode(bytes.as_slice())
        .unwrap()
        .try_into_physical_plan(&local.task_ctx(), &codec)
        .unwrap();
    // Down to the scan (a decoded scan shows its Parquet scan below it).
    let shown = |plan: &Arc<dyn ExecutionPlan>| {
        let text = displayable(plan.as_ref()).indent(false).to_string();
        let lines: Vec<String> = text.lines().take(7).map(str::to_string).collect();
        lines.join("\n")
    };
    assert_eq!(shown(&decoded), shown(&plan));
    assert!(shown(&plan).ends_with("projection=[ts, reading]"));
    assert_eq!(nodes::<RunAggregateExec>(&decoded).len(), 1);
    let answer = collect(decoded, local.task_ctx()).await.unwrap();
    assert_eq!(text_of(&answer), text_of(&sql_rows(&local, RUNS).await));
}

/// A scan that returns no column, its rows counted from the page index (a
/// plan of that many rows of no column), goes to an executor and answers
/// as here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_counted_from_the_page_index_go_to_a_cluster() {
    let (_dir, pond) = temp_pond().await;
    // Two hours, one reading a second: pages of 2,048 rows.
    let times: Vec<i64> = (0..7_200).map(|s| JAN1 + s * 1_000_000).collect();
    pond.append_series_data("/plant/boiler", &readings(&times), "ts")
        .await
        .unwrap();
    let (_pond, local, cluster) = local_and_cluster(pond).await;

    // The second page starts at 00:34:08.
    let from = "ts >= '2024-01-01T00:34:08Z'";
    let count = format!("SELECT count(*) FROM plant.boiler WHERE {from}");
    let plan = text_of(&sql_rows(&local, &format!("EXPLAIN {count}")).await);
    assert!(!plan.contains("SeriesScanExec"), "{plan}");
    let rows = format!("SELECT 1 AS one FROM plant.boiler WHERE {from}");
    let plan = text_of(&sql_rows(&cluster, &format!("EXPLAIN {rows}")).await);
    let sent = plan.split("distributed_plan").nth(1).unwrap_or_default();
    assert!(sent.contains("partition_sizes=[1]"), "{plan}");
    for sql in [
        count,
        // A plan of the rows themselves, sent as they are.
        format!(
            "SELECT one, count(*) FROM (SELECT 1 AS one FROM plant.boiler WHERE {from}) GROUP BY one"
        ),
        "SELECT count(*) FROM plant.boiler WHERE ts >= '2030-01-01T00:00:00Z'".to_string(),
    ] {
        let here = sql_rows(&local, &sql).await;
        assert_eq!(
            text_of(&here),
            text_of(&sql_rows(&cluster, &sql).await),
            "{sql}"
        );
        if sql.contains("00:34:08") {
            // 7,200 rows but the first page's 2,048.
            assert!(
                text_of(&here).contains("| 5152 "),
                "{sql}\n{}",
                text_of(&here)
            );
        }
    }
}

/// A grouping by a key that comes in runs (the readings rise with time):
/// a [`pond::RunAggregateExec`] aggregates it.
const RUNS: &str = "SELECT reading >= 170407800000000 AS late, count(*), \
                    sum(CAST(reading AS BIGINT)), min(ts) FROM plant.boiler GROUP BY 1 ORDER BY 1";

/// Encodes `table` as a client does, for a scheduler.
fn encode(codec: &PondCodec, table: SeriesTable) -> Vec<u8> {
    let mut buf = Vec::new();
    codec
        .try_encode_table_provider(&TableReference::bare("boiler"), Arc::new(table), &mut buf)
        .unwrap();
    buf
}

/// Decodes what [`encode`] wrote, as a scheduler does, and counts its rows.
async fn decode_and_count(codec: &PondCodec, bytes: &[u8], planned: &SeriesTable) -> i64 {
    decode_and_count_in(&SessionContext::new(), codec, bytes, planned).await
}

async fn decode_and_count_in(
    ctx: &SessionContext,
    codec: &PondCodec,
    bytes: &[u8],
    planned: &SeriesTable,
) -> i64 {
    let table = decode(codec, bytes, planned);
    ctx.read_table(table).unwrap().count().await.unwrap() as i64
}

fn decode(codec: &PondCodec, bytes: &[u8], planned: &SeriesTable) -> Arc<dyn TableProvider> {
    codec
        .try_decode_table_provider(
            bytes,
            &TableReference::bare("boiler"),
            planned.schema(),
            &TaskContext::default(),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_reads_the_series_as_the_client_planned_it() {
    let (dir, pond) = temp_pond().await;
    pond.append_series_data("/plant/boiler", &hour_of_readings(0, 60), "ts")
        .await
        .unwrap();
    // A scheduler's handle, opened before the client's planned.
    let stale = Arc::new(Pond::open(location(&dir)).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let after_first = pond::format_micros(now.unwrap().as_micros() as i64);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    pond.append_series_data("/plant/boiler", &hour_of_readings(1, 60), "ts")
        .await
        .unwrap();

    let client = Arc::new(pond);
    let planned = SeriesTable::try_new(Arc::clone(&client), "/plant/boiler").unwrap();
    let bytes = encode(&PondCodec::new(), planned.clone());

    // Appends land after the client planned.
    let writer = Pond::open(location(&dir)).await.unwrap();
    writer
        .append_series_data("/plant/boiler", &hour_of_readings(2, 60), "ts")
        .await
        .unwrap();
    let fresh = Arc::new(Pond::open(location(&dir)).await.unwrap());
    assert_eq!(fresh.versions("/plant/boiler").unwrap().len(), 3);

    // A scheduler that has seen the later append reads as of the plan; one
    // that had not seen what the client saw catches up to it; one with no
    // handle opens the pond itself.
    for scheduler in [
        PondCodec::new().with_pond(Arc::clone(&fresh)),
        PondCodec::new().with_pond(Arc::clone(&stale)),
        PondCodec::new(),
    ] {
        assert_eq!(decode_and_count(&scheduler, &bytes, &planned).await, 120);
    }
    // The session's `pond.as_of` still holds, on a scheduler that has seen
    // the later append or not.
    let session = SessionContext::new();
    pond::register(&session, Arc::clone(&fresh));
    let set = format!("SET pond.as_of = '{after_first}'");
    session.sql(&set).await.unwrap().collect().await.unwrap();
    for scheduler in [&fresh, &stale] {
        let scheduler = PondCodec::new().with_pond(Arc::clone(scheduler));
        let count = decode_and_count_in(&session, &scheduler, &bytes, &planned).await;
        assert_eq!(count, 60);
    }
    // Writes run where they were planned: a table sent to a scheduler
    // takes none.
    let sent = decode(
        &PondCodec::new().with_pond(Arc::clone(&fresh)),
        &bytes,
        &planned,
    );
    let state = SessionContext::new().state();
    let err = sent.delete_from(&state, vec![]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("run in the process that planned them"),
        "{err}"
    );
    // A table read as of a version keeps it.
    let bytes = encode(&PondCodec::new(), planned.clone().with_max_version(1));
    let scheduler = PondCodec::new().with_pond(fresh);
    assert_eq!(decode_and_count(&scheduler, &bytes, &planned).await, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_distributed_query_answers_as_of_its_plan_while_appends_land() {
    let (dir, pond) = temp_pond().await;
    pond.append_series_data("/plant/boiler", &hour_of_readings(0, 50), "ts")
        .await
        .unwrap();
    let pond = Arc::new(pond);
    let cluster = pond::cluster::standalone(Arc::clone(&pond)).await.unwrap();

    // Another handle keeps appending versions of 50 rows, each within one
    // hour.
    let writer = Pond::open(location(&dir)).await.unwrap();
    let appending = tokio::spawn(async move {
        for hour in 1..=24 {
            writer
                .append_series_data("/plant/boiler", &hour_of_readings(hour, 50), "ts")
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let mut answers = Vec::new();
    while !appending.is_finished() {
        let sql = "SELECT count(*), count(DISTINCT date_trunc('hour', ts)) FROM plant.boiler";
        let batches = sql_rows(&cluster, sql).await;
        let rows = count_of(&batches);
        let hours = batches[0].column(1).as_primitive::<Int64Type>().value(0);
        // Whole versions only, and every row of each.
        assert_eq!(
            rows,
            hours * 50,
            "a version half read: {rows} rows in {hours} hours"
        );
        answers.push(rows);
    }
    appending.await.unwrap();
    assert!(answers.windows(2).all(|w| w[0] <= w[1]), "{answers:?}");
    let batches = sql_rows(&cluster, "SELECT count(*) FROM plant.boiler").await;
    assert_eq!(count_of(&batches), 1250);
    assert!(answers.len() > 1, "no query ran while appends landed");
}
