//! Runs every `sqllogictests/*.slt` file against a fresh pond, created by the
//! SQL in the file itself, registered in a fresh DataFusion session with two
//! target partitions. What SQL cannot create (a series whose schema widens)
//! comes from a fixture that a file asks for by name (`# fixture: evolving`).
//!
//! Built with the feature `cluster`, every file runs a second time with its
//! queries on an Apache Ballista cluster in this process (standalone mode:
//! plans go through pond's codecs and gRPC to a scheduler and an executor),
//! and must give the same answers. Statements that change the pond
//! (`CREATE`, `INSERT`, `DELETE`, `DROP`), `DESCRIBE` and `SHOW`, and
//! `EXPLAIN`, whose plans differ on a cluster by design, run in a local
//! session on the same pond; `SET` goes to both. The two sessions share
//! DataFusion's own catalog, so the memory tables and views a file makes
//! there are read on the cluster too (pond's codec sends memory tables'
//! rows). Records marked
//! `skipif cluster` (with the reason beside them) run locally only.
//!
//! `cargo test --test sqllogictests` checks the files;
//! `cargo test --test sqllogictests -- --complete` rewrites their expected
//! output (review the diff before committing it). Further arguments select
//! files whose name contains them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use datafusion::prelude::{SessionConfig, SessionContext};
use pond::Pond;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

impl From<datafusion::error::DataFusionError> for DbError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self(e.to_string())
    }
}

/// One session over one pond; with `local`, the session `ctx` is a
/// cluster's, and `local` runs what does not go to the cluster.
struct PondDb {
    ctx: SessionContext,
    local: Option<SessionContext>,
}

#[async_trait]
impl AsyncDB for PondDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let keyword = sql.split_whitespace().next().unwrap_or("").to_uppercase();
        let ctx = match &self.local {
            Some(local) if keyword == "SET" => {
                local.sql(sql).await?.collect().await?;
                &self.ctx
            }
            Some(local)
                if matches!(
                    keyword.as_str(),
                    "CREATE" | "INSERT" | "DELETE" | "DROP" | "EXPLAIN" | "DESCRIBE" | "SHOW"
                ) =>
            {
                local
            }
            _ => &self.ctx,
        };
        let df = ctx.sql(sql).await?;
        let schema = Arc::clone(df.schema().inner());
        let batches = df.collect().await?;
        if matches!(keyword.as_str(), "CREATE" | "INSERT" | "DROP" | "SET") {
            let n = batches.first().and_then(count_of).unwrap_or(0);
            return Ok(DBOutput::StatementComplete(n));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t if t.is_integer() => DefaultColumnType::Integer,
                t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
                    DefaultColumnType::FloatingPoint
                }
                _ => DefaultColumnType::Text,
            })
            .collect();
        Ok(DBOutput::Rows {
            types,
            rows: format_rows(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "pond"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn count_of(batch: &RecordBatch) -> Option<u64> {
    let col = arrow::compute::cast(batch.columns().first()?, &DataType::UInt64).ok()?;
    let col = col.as_any().downcast_ref::<arrow::array::UInt64Array>()?;
    (col.len() == 1).then(|| col.value(0))
}

fn format_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, DbError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DbError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| match f.value(row).to_string() {
                    text if text.is_empty() => "(empty)".to_string(),
                    text => mask_uuids(&text),
                })
                .collect();
            rows.extend(expand_lines(cells));
        }
    }
    Ok(rows)
}

/// `text` with every UUID (the ids in data file names, which differ from
/// run to run) written as `<uuid>`.
fn mask_uuids(text: &str) -> String {
    const SHAPE: &[u8] = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    let bytes = text.as_bytes();
    let is_uuid = |at: usize| {
        bytes.get(at..at + SHAPE.len()).is_some_and(|window| {
            window.iter().zip(SHAPE).all(|(&b, &s)| match s {
                b'-' => b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
        })
    };
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        if is_uuid(at) {
            out.push_str("<uuid>");
            at += SHAPE.len();
        } else {
            let c = text[at..].chars().next().expect("in bounds");
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// A row whose cells span lines (EXPLAIN plans) becomes one row per line:
/// the first line of every cell, then each further line on a row of its own,
/// without trailing white space, so expected output stays readable.
fn expand_lines(cells: Vec<String>) -> Vec<Vec<String>> {
    if !cells.iter().any(|c| c.contains('\n')) {
        return vec![cells];
    }
    let mut first = Vec::new();
    let mut rest = Vec::new();
    for cell in &cells {
        let mut lines = cell.lines().map(str::trim_end).filter(|l| !l.is_empty());
        first.push(lines.next().unwrap_or("(empty)").to_string());
        rest.extend(lines.map(|l| vec![l.to_string()]));
    }
    std::iter::once(first).chain(rest).collect()
}

/// Where a file's queries run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A DataFusion session in this process.
    Local,
    /// A Ballista cluster in this process (feature `cluster`).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Cluster,
}

async fn run_file(path: &Path, complete: bool, mode: Mode) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pond = Pond::create(dir.path().to_str().expect("utf-8 temp path"))
        .await
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if text.lines().any(|l| l.trim() == "# fixture: evolving") {
        evolving_fixture(&pond).await.map_err(|e| e.to_string())?;
    }
    let pond = Arc::new(pond);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    pond::register(&ctx, Arc::clone(&pond));
    let (ctx, local) = match mode {
        Mode::Local => (ctx, None),
        Mode::Cluster => {
            let cluster = cluster_session(pond).await?;
            if let Some(own) = ctx.catalog("datafusion") {
                cluster.register_catalog("datafusion", own);
            }
            (cluster, Some(ctx))
        }
    };
    let mut runner = Runner::new(move || {
        let (ctx, local) = (ctx.clone(), local.clone());
        async move { Ok::<_, DbError>(PondDb { ctx, local }) }
    });
    if mode == Mode::Cluster {
        runner.add_label("cluster");
    }
    if complete {
        runner
            .update_test_file(
                path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(path)
            .await
            .map_err(|e| e.display(true).to_string())
    }
}

/// For files with the line `# fixture: evolving`: the series
/// `/weather/station`, whose schema SQL cannot widen, appended through the
/// Rust API in three versions: `(ts, temp)`; `(ts, temp, humidity)`, which
/// adds a column; `(ts, humidity)`, which leaves `temp` out.
async fn evolving_fixture(pond: &Pond) -> pond::Result<()> {
    use arrow::array::{ArrayRef, Float64Array, TimestampMicrosecondArray};
    use pond::SeriesExt;
    const HOUR: i64 = 3_600_000_000;
    const JAN1: i64 = 1_704_067_200_000_000;
    let ts = |hour: i64| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                JAN1 + hour * HOUR,
                JAN1 + hour * HOUR + HOUR / 2,
            ])
            .with_timezone("UTC"),
        )
    };
    let values = |a: f64, b: f64| -> ArrayRef { Arc::new(Float64Array::from(vec![a, b])) };
    let versions = [
        vec![("ts", ts(0), false), ("temp", values(20.0, 20.5), true)],
        vec![
            ("ts", ts(1), false),
            ("temp", values(21.0, 21.5), true),
            ("humidity", values(40.0, 41.0), true),
        ],
        vec![("ts", ts(2), false), ("humidity", values(42.0, 43.0), true)],
    ]
    .map(RecordBatch::try_from_iter_with_nullable);
    for batch in versions {
        let batch = batch.expect("fixture batch");
        pond.append_series_data("/weather/station", &batch, "ts")
            .await?;
    }
    Ok(())
}

/// A session on a Ballista cluster in this process over `pond`.
#[cfg(feature = "cluster")]
async fn cluster_session(pond: Arc<Pond>) -> Result<SessionContext, String> {
    let ctx = pond::cluster::standalone(pond)
        .await
        .map_err(|e| e.to_string())?;
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .target_partitions = 2;
    Ok(ctx)
}

#[cfg(not(feature = "cluster"))]
async fn cluster_session(_pond: Arc<Pond>) -> Result<SessionContext, String> {
    Err("built without the feature cluster".to_string())
}

fn slt_files(filters: &[String]) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sqllogictests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sqllogictests/ exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    files.sort();
    files
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let files = slt_files(&filters);
    let (mut passed, mut failed) = (0, 0);
    let mut modes = vec![Mode::Local];
    if cfg!(feature = "cluster") && !complete {
        modes.push(Mode::Cluster);
    }
    for mode in modes {
        let suffix = if mode == Mode::Cluster {
            " (cluster)"
        } else {
            ""
        };
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy();
            match runtime.block_on(run_file(file, complete, mode)) {
                Ok(()) => {
                    passed += 1;
                    println!("sqllogictest {name}{suffix} ... ok");
                }
                Err(e) => {
                    failed += 1;
                    println!("sqllogictest {name}{suffix} ... FAILED\n{e}");
                }
            }
        }
    }
    println!("\nsqllogictest: {passed} passed, {failed} failed");
    if failed > 0 || files.is_empty() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
