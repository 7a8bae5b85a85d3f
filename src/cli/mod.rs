//! The `pond` command line (the default cargo feature `cli`).
//!
//! It lives in the library, behind the feature, so that the binary is one
//! line and tests can drive the very same code in-process: [`execute`] is
//! what `main` runs, without the process around it.

mod demo;
mod ingest;
mod inspect;
mod output;
mod sql;

use std::cell::Cell;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::Pond;
use anyhow::Result;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use output::OutputFormat;

/// Versioned time series in Parquet with a Delta Lake oplog, queried with SQL.
#[derive(Debug, Parser)]
#[command(name = "pond", version, about, long_about = None)]
pub struct Args {
    /// The pond: a local directory or a URL.
    #[arg(long, global = true, env = "POND", default_value = "./pond")]
    pond: String,

    /// Compact a series after an append once this many small versions of
    /// one level have gathered; 0 never does on its own.
    #[arg(long, global = true, env = "POND_AUTO_COMPACT", default_value_t = 8)]
    auto_compact: usize,

    /// An option of the pond's object store, KEY=VALUE; repeatable. For
    /// s3:// the AWS_* variables' names in lower case (aws_endpoint_url,
    /// aws_region, aws_allow_http, …), which win over the environment.
    #[arg(long = "storage-option", global = true, value_name = "KEY=VALUE", value_parser = key_value)]
    storage_options: Vec<(String, String)>,

    #[command(subcommand)]
    command: Command,

    /// Whether `--pond` was on the command line (not from $POND or the
    /// default): `pond demo` builds there then.
    #[arg(skip)]
    pond_given: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty pond (an error if one exists).
    #[command(after_help = "Example:\n  pond --pond /data/pond init")]
    Init,
    /// Append CSV, Parquet or NDJSON as ONE new version of a series,
    /// atomically; the first append creates the series.
    ///
    /// CSV has a header row; its types are inferred, times are RFC 3339 /
    /// ISO 8601 (without a zone, UTC) and empty cells are NULL. Later
    /// appends are converted to the series' types where no value changes
    /// (integers into a float column) and refused otherwise.
    #[command(after_help = "Examples:\n  \
        pond append /sites/site1/temperature readings.csv\n  \
        pond append /sites/site1/temperature day1.csv day2.csv\n  \
        curl -s https://example.com/export.ndjson | pond append /weather/oslo - --format ndjson\n  \
        pond append /trades/eurusd trades.parquet --timestamp-column executed_at\n  \
        pond append /fleet/cpu readings.csv --key hostname")]
    Append {
        /// The series path, like /sites/site1/temperature.
        series: String,
        /// Input files; `-` is stdin.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// The inputs' format (default: from the file extension; CSV for stdin).
        #[arg(long, value_enum)]
        format: Option<ingest::InputFormat>,
        /// The time column (default: the first of timestamp, ts, time,
        /// event_time, in any case, else the first column of a timestamp
        /// type; for an existing series, its own).
        #[arg(long)]
        timestamp_column: Option<String>,
        /// Key the series by these columns (comma-separated; the time column
        /// is always part of the key): reads return one row per key, the
        /// newest append's. Only the first append declares it.
        #[arg(long, value_delimiter = ',')]
        key: Option<Vec<String>>,
    },
    /// Run SQL against the pond: one statement or many, from the command
    /// line, a file or stdin; with none of them (stdin a terminal), the
    /// interactive datafusion-cli REPL.
    ///
    /// Every series is a table: /a/b/c is "a/b".c, and a series at the root
    /// is in schema public. series_range(path, start, end),
    /// series_versions(path), series_list([pattern]) and
    /// series_union(pattern) are table functions.
    #[command(after_help = "Examples:\n  \
        pond sql 'SELECT count(*) FROM \"sites/site1\".temperature'\n  \
        pond sql \"SELECT * FROM series_range('/sites/site1/temperature', now() - INTERVAL '1 day', NULL)\" --format csv\n  \
        pond sql -f report.sql --format json\n  \
        echo 'SELECT 1; SELECT 2' | pond sql --format csv\n  \
        pond sql                                  # the REPL")]
    Sql {
        /// SQL to run; `;` separates statements.
        #[arg(conflicts_with = "file")]
        sql: Option<String>,
        /// A file of SQL statements to run; `-` is stdin.
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
        /// Print at most this many rows of each result, in the table format
        /// (default: all; 40 in the REPL). For csv and json, write LIMIT.
        #[arg(long)]
        maxrows: Option<usize>,
        /// Read every series as it was at this time (RFC 3339; no zone
        /// means UTC): the session setting `pond.as_of`.
        #[arg(long, value_name = "TIME", value_parser = parse_as_of)]
        as_of: Option<String>,
        /// Run the queries on the Apache Ballista cluster whose scheduler
        /// is at this URL (`df://HOST:PORT`; see `pond-scheduler`). Built
        /// with the cargo feature `cluster`.
        #[arg(long, value_name = "URL")]
        cluster: Option<String>,
    },
    /// List the series: path, SQL table, versions, rows, time range, bytes,
    /// key, sort key and codec.
    #[command(
        after_help = "Examples:\n  pond ls\n  pond ls /sites/site1 --format csv\n  pond ls '/fleet/*/cpu'"
    )]
    Ls {
        /// Only the series under this path (whole segments: /sites/site1
        /// is not /sites/site10), or matching this pattern (`*` within a
        /// segment, `**` across them, `{a,b}`), as series_list takes one.
        prefix: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Show a series: its schema, timestamp column and versions.
    #[command(after_help = "Example:\n  pond describe /sites/site1/temperature --format json")]
    Describe {
        /// The series path.
        series: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// List the oplog's transactions, newest first.
    #[command(after_help = "Example:\n  pond log --limit 10")]
    Log {
        /// Only the newest N transactions.
        #[arg(long)]
        limit: Option<usize>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Rewrite the small versions of a series (of every series, without
    /// one) as few large ones, sorted by time or by the series' sort key.
    /// Reads answer the same, and faster; reads as of an earlier version
    /// still see the old versions until `vacuum` deletes them.
    #[command(
        after_help = "Examples:\n  pond compact /sites/site1/temperature\n  pond compact\n  \
                      pond compact /devops/cpu --sort-key hostname\n  \
                      pond compact /devops/cpu --compression lz4"
    )]
    Compact {
        /// The series path; every series if none is given.
        series: Option<String>,
        /// The size new files aim at, in MiB; versions of half of it or more
        /// stay as they are (unless deletes apply to them).
        #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(i64).range(1..))]
        target_mb: i64,
        /// The time window of a new file (a number and s, m, h or d): the
        /// versions of each window are rewritten apart (once a file holds
        /// an eighth of the target), so a query over an hour opens the
        /// files of one window. 0 for none. Automatic compaction always
        /// uses a day.
        #[arg(long, default_value = "1d", value_parser = parse_duration)]
        window: Duration,
        /// Declare the order the series' compacted files are written in,
        /// comma-separated (the time column is added last), and compact by
        /// it: clustering by the columns queries filter on lets them skip
        /// row groups and pages. The time column alone returns to time
        /// order. The declaration is committed first and stays if the
        /// compaction then fails.
        #[arg(long, value_delimiter = ',', requires = "series")]
        sort_key: Option<Vec<String>>,
        /// With --sort-key: cluster by it within time buckets of this
        /// length, so that queries over the newest minutes of every key
        /// read one bucket (0: sort the whole file by the key, which lets
        /// ORDER BY the key skip its sort). Default: the series' own if
        /// the key is its sort key already, else 1h.
        #[arg(long, value_parser = parse_duration, requires = "sort_key")]
        sort_bucket: Option<Duration>,
        /// Declare the codec of the series' files from now on (appends and
        /// compactions), and compact with it: zstd (the default, the
        /// smallest files), lz4 (faster to read, files about a third
        /// larger), snappy or none. Files written before keep theirs; a
        /// compaction rewrites only versions under half the target size.
        #[arg(long, value_name = "CODEC", requires = "series", value_parser = |s: &str| s.parse::<crate::Compression>())]
        compression: Option<crate::Compression>,
    },
    /// Delete rows of a series: those with --from <= time < --to for which
    /// --where holds. The delete is a version of its own: reads leave the
    /// rows out from then on, reads as of an earlier version still see
    /// them, rows appended later are kept, and compaction then vacuum
    /// remove them from disk.
    #[command(after_help = "Examples:\n  \
        pond delete /sites/site1/temperature --from 2026-11-01T00:00:00Z --to 2026-11-02T00:00:00Z\n  \
        pond delete /fleet/cpu --from 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z --where \"hostname = 'host_7'\"")]
    Delete {
        /// The series path.
        series: String,
        /// The first time deleted (RFC 3339, no zone meaning UTC); the
        /// earliest if not given.
        #[arg(long, value_name = "TIME", value_parser = parse_instant)]
        from: Option<i64>,
        /// The first time kept after the deleted ones; the latest if not
        /// given.
        #[arg(long, value_name = "TIME", value_parser = parse_instant)]
        to: Option<i64>,
        /// A SQL predicate on the series' columns: only rows it holds for
        /// are deleted.
        #[arg(long = "where", value_name = "SQL")]
        predicate: Option<String>,
    },
    /// Delete the data files of versions that compaction superseded longer
    /// ago than the retention, files no commit references (left by failed
    /// or killed writes), and the oplog's old Delta log and merged files
    /// (those only once an hour old).
    #[command(after_help = "Examples:\n  pond vacuum\n  pond vacuum --retain 12h")]
    Vacuum {
        /// How long superseded versions stay readable as of earlier
        /// versions: a number and s, m, h or d.
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        retain: Duration,
    },
    /// Verify every data file against the oplog: reports garbage left by
    /// failed writes, and missing or altered files.
    #[command(after_help = "Example:\n  pond check")]
    Check,
    /// Build a demo pond of synthetic sensor data and run showcase queries.
    #[command(after_help = "Example:\n  pond demo ./pond-demo")]
    Demo {
        /// Where to build it; an existing demo pond there is reused. By
        /// default the `--pond` given on the command line, else
        /// ./pond-demo (never $POND: that names your own pond).
        dir: Option<String>,
        /// Hours of data per series (one version per hour).
        #[arg(long, default_value_t = 96)]
        hours: i64,
    },
}

/// `pond`'s `main`: parses the process's arguments, runs the command on a
/// new runtime, prints `error: …` on failure. Exit status 0, 1 on failure,
/// 2 for usage errors.
pub fn main() -> ExitCode {
    let args = match parse(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    // Warnings of the work a command does on the side (an automatic
    // compaction after an append that failed, a file it could not clean
    // up), on stderr: nothing else would report them.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .try_init();
    // A panic that `guarded` catches becomes an ordinary error; only others
    // reach the default hook.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !CATCHING_PANICS.with(Cell::get) {
            default_hook(info);
        }
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`pond ls | head -1`): as
        // for a command killed by SIGPIPE, there is nothing to report.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Whether `error` is a failed write of results to a closed pipe: pond's
/// own printing (an `io::Error`) or datafusion-cli's (an I/O error, or
/// Arrow's writers' error about one) at the top of the chain. Deeper in it,
/// a broken pipe is something else's (a store's connection) and an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use arrow::error::ArrowError;
    use datafusion::error::DataFusionError;
    let pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    if let Some(e) = error.downcast_ref::<std::io::Error>() {
        return pipe(e);
    }
    match error.downcast_ref::<DataFusionError>() {
        Some(DataFusionError::IoError(e)) => pipe(e),
        Some(DataFusionError::ArrowError(e, _)) => match e.as_ref() {
            ArrowError::IoError(_, e) => pipe(e),
            ArrowError::CsvError(text) | ArrowError::JsonError(text) => {
                text.contains("Broken pipe")
            }
            _ => false,
        },
        _ => false,
    }
}

/// Why [`execute`] failed: what `main` would print and exit with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit status: 1 for a failed command, 2 for a usage error.
    pub status: u8,
    /// The message: for a failed command, the one line printed after
    /// `error: `; for a usage error, clap's text.
    pub message: String,
}

/// Runs the command line with `args` (the first is the program's name) in
/// this process, on the caller's runtime, as `main` would.
pub async fn execute<I, T>(args: I) -> std::result::Result<(), Failure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = parse(args).map_err(|e| Failure {
        status: 2,
        message: e.to_string(),
    })?;
    run(args).await.map_err(|e| Failure {
        status: 1,
        message: one_line(&e),
    })
}

/// The command line's arguments, the first being the program's name.
fn parse<I, T>(args: I) -> std::result::Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Args::command().try_get_matches_from(args)?;
    let mut args = Args::from_arg_matches(&matches)?;
    args.pond_given = matches.value_source("pond") == Some(ValueSource::CommandLine);
    Ok(args)
}

/// A `KEY=VALUE` argument.
fn key_value(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

async fn run(args: Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut options = crate::PondOptions::default().with_auto_compact_versions(args.auto_compact);
    for (key, value) in &args.storage_options {
        options = options.with_storage_option(key, value);
    }
    let location = args.pond.as_str();
    let open = || async {
        Pond::open_with_options(location, options.clone())
            .await
            .map_err(|e| match e {
                crate::Error::NotAPond { .. } => anyhow::anyhow!(
                    "{e} (create one with `pond init`, or name another with --pond or $POND)"
                ),
                e => e.into(),
            })
    };
    match args.command {
        Command::Init => {
            Pond::create_with_options(location, options.clone()).await?;
            eprintln!("created an empty pond at {}", args.pond);
            Ok(())
        }
        Command::Append {
            series,
            inputs,
            format,
            timestamp_column,
            key,
        } => {
            let pond = open().await?;
            let request = ingest::AppendRequest {
                series,
                inputs,
                format,
                timestamp_column,
                key,
            };
            ingest::append(&pond, request).await
        }
        Command::Sql {
            sql,
            file,
            format,
            maxrows,
            as_of,
            cluster,
        } => {
            let pond = open().await?;
            drop(out);
            let request = sql::SqlRequest {
                sql,
                file,
                format,
                maxrows,
                as_of,
                cluster,
            };
            sql::run(pond, request).await
        }
        Command::Ls { prefix, format } => {
            let pond = open().await?;
            inspect::ls(&pond, prefix.as_deref(), format, &mut out)
        }
        Command::Describe { series, format } => {
            let pond = open().await?;
            inspect::describe(&pond, &series, format, &mut out)
        }
        Command::Log { limit, format } => {
            let pond = open().await?;
            inspect::log(&pond, limit, format, &mut out).await
        }
        Command::Check => {
            let pond = open().await?;
            let report = pond.check().await?;
            writeln!(out, "checked {} data files", report.files_checked)?;
            for g in &report.garbage {
                writeln!(out, "garbage (unreferenced, safe to delete): {g}")?;
            }
            for p in &report.pending {
                writeln!(
                    out,
                    "pending (unreferenced, less than an hour old; an append may be in progress): {p}"
                )?;
            }
            for p in &report.problems {
                writeln!(
                    out,
                    "CORRUPT {} version {}: {} ({:?})",
                    p.series, p.version, p.file_path, p.problem
                )?;
            }
            anyhow::ensure!(
                report.problems.is_empty(),
                "{} data file(s) disagree with the oplog",
                report.problems.len()
            );
            Ok(())
        }
        Command::Delete {
            series,
            from,
            to,
            predicate,
        } => {
            anyhow::ensure!(
                from.is_some() || to.is_some() || predicate.is_some(),
                "pond delete needs --from, --to or --where (to delete every row, give a range that holds them all)"
            );
            let pond = open().await?;
            let start = from.unwrap_or(crate::MIN_TIME);
            let end = to.unwrap_or(crate::MAX_TIME);
            let done = pond
                .delete(&series, start, end, predicate.as_deref())
                .await?;
            eprintln!("deleted as version {} of {}", done.version, done.series);
            Ok(())
        }
        Command::Compact {
            series,
            target_mb,
            sort_key,
            sort_bucket,
            compression,
            window,
        } => {
            let pond = open().await?;
            // The key first: a key refused declares nothing.
            if let (Some(path), Some(key)) = (&series, &sort_key) {
                let key: Vec<&str> = key.iter().map(|c| c.trim()).collect();
                match sort_bucket {
                    Some(bucket) => {
                        let micros = i64::try_from(bucket.as_micros()).unwrap_or(i64::MAX);
                        pond.set_sort_key_with_bucket(path, &key, micros).await?;
                    }
                    None => pond.set_sort_key(path, &key).await?,
                }
            }
            if let (Some(path), Some(codec)) = (&series, compression) {
                pond.set_compression(path, codec).await?;
            }
            let options = crate::CompactOptions::default()
                .with_target_file_bytes(target_mb.saturating_mul(1024 * 1024))
                .with_window_micros(i64::try_from(window.as_micros()).unwrap_or(i64::MAX));
            let say = |path: &str, done: &crate::CompactOutcome| {
                if done.versions_read == 0 {
                    eprintln!("{path}: nothing to compact");
                } else {
                    eprintln!(
                        "{path}: {} versions ({} bytes) rewritten as {} ({} bytes)",
                        done.versions_read,
                        done.bytes_read,
                        done.versions_written,
                        done.bytes_written
                    );
                }
            };
            let Some(path) = series else {
                let results = pond
                    .compact_every_series(&options, |path, result| match result {
                        crate::SeriesCompaction::Done(done) => say(path, done),
                        crate::SeriesCompaction::Skipped => {
                            eprintln!("{path}: skipped, another compaction of it landed first")
                        }
                        crate::SeriesCompaction::Failed(e) => {
                            eprintln!("{path}: {}", crate::error_line(e))
                        }
                    })
                    .await?;
                let failed: Vec<String> = (results.into_iter())
                    .filter(|(_, r)| matches!(r, crate::SeriesCompaction::Failed(_)))
                    .map(|(path, _)| path)
                    .collect();
                anyhow::ensure!(
                    failed.is_empty(),
                    "compaction failed for {} series: {}",
                    failed.len(),
                    failed.join(", ")
                );
                return Ok(());
            };
            say(&path, &pond.compact_with_options(&path, &options).await?);
            Ok(())
        }
        Command::Vacuum { retain } => {
            let pond = open().await?;
            let done = pond.vacuum(retain).await?;
            eprintln!(
                "deleted {} superseded data files ({} bytes), {} unreferenced files, \
                 {} old oplog log files and {} merged oplog files",
                done.superseded_files,
                done.superseded_bytes,
                done.garbage_files,
                done.log_files,
                done.oplog_files
            );
            Ok(())
        }
        Command::Demo { dir, hours } => {
            drop(out);
            let dir = match dir {
                Some(dir) => dir,
                None if args.pond_given => args.pond.clone(),
                None => "./pond-demo".to_string(),
            };
            demo::run(&dir, hours).await
        }
    }
}

thread_local! {
    /// Whether this thread runs inside [`guarded`].
    static CATCHING_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into an error about `what`. The readers of
/// Arrow, Parquet, CSV and JSON panic on some damaged input; that must end
/// as an ordinary failure (one line, exit status 1, nothing written), not
/// a crash.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let outer = CATCHING_PANICS.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING_PANICS.with(|c| c.set(outer));
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(anyhow::anyhow!(
            "{what}: damaged input made the reader fail ({message})"
        ))
    })
}

/// A time for `--as-of`: RFC 3339, no zone meaning UTC.
fn parse_as_of(text: &str) -> std::result::Result<String, String> {
    crate::time::parse_time(text)
        .map(|_| text.to_string())
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time like 2026-11-01T00:00:00Z"))
}

/// A time for `--from` and `--to`: RFC 3339, no zone meaning UTC, as µs.
/// A finer one is refused: a delete's range is in µs, and rounding the
/// bound either way would delete a row outside it or keep one inside.
fn parse_instant(text: &str) -> std::result::Result<i64, String> {
    let fraction = text.split_once('.').map(|(_, rest)| {
        rest.bytes()
            .take_while(u8::is_ascii_digit)
            .skip(6)
            .any(|digit| digit != b'0')
    });
    if fraction == Some(true) {
        return Err(format!(
            "{text:?} is finer than a microsecond, which pond delete's range is in \
             (for nanoseconds, use SQL: DELETE FROM … WHERE ts >= … AND ts < …)"
        ));
    }
    crate::time::parse_time(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time like 2026-11-01T00:00:00Z"))
}

/// A duration such as `7d`, `12h`, `30m`, `45s` or `0`.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 7d, 12h, 30m or 45s"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// An error and its causes on one line, for `error: …`.
fn one_line(err: &anyhow::Error) -> String {
    let line = crate::error_line(err.as_ref());
    if missing_data_file(&line) {
        format!(
            "{line} (a data file of the pond is missing: `pond check` lists what the oplog \
             references and the store lacks; a vacuum with a short --retain deletes files \
             that running queries still read)"
        )
    } else {
        line
    }
}

/// Whether `line` reports a pond data file (`data/<series id>/<version>-
/// <uuid>.parquet`) not found, in object_store's words (a Parquet error
/// keeps them as text only).
fn missing_data_file(line: &str) -> bool {
    line.split("Object at location ").skip(1).any(|rest| {
        rest.split_once(" not found").is_some_and(|(location, _)| {
            location
                .rfind("data/")
                .is_some_and(|at| crate::pond::is_data_file(&location[at..]))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_data_file_is_told_from_other_missing_files() {
        let file = "/p/data/aad61bc6-ec4d-45f0-9439-75548756128d/\
                    12-dff524ce-126c-4356-97d4-7a152c377832.parquet";
        let line = |location: &str| {
            format!("Parquet error: Object at location {location} not found: No such file")
        };
        assert!(missing_data_file(&line(file)));
        assert!(missing_data_file(&line(&file[3..])));
        assert!(!missing_data_file(&line("/data/plant/readings.parquet")));
        assert!(!missing_data_file(&line(
            "/data/p/oplog/_delta_log/00000000000000000007.json"
        )));
        assert!(!missing_data_file(&format!(
            "Object at location {file} is busy"
        )));
    }

    #[test]
    fn durations_take_a_unit_of_seconds_to_days() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
