//! Commands of the `pond` binary.

mod demo;

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use pond::{Pond, format_micros};

/// Versioned time series in Parquet with a Delta Lake oplog.
#[derive(Debug, Parser)]
#[command(name = "pond", version, about, long_about = None)]
pub(crate) struct Args {
    /// The pond: a local directory or a URL.
    #[arg(long, global = true, env = "POND", default_value = "./pond")]
    pond: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty pond (an error if one exists).
    ///
    /// Example: pond --pond /data/pond init
    Init,
    /// List the series: path, SQL table, versions, rows, time range, bytes.
    ///
    /// Example: pond ls /sites/site1
    Ls {
        /// Only series whose path starts with this.
        prefix: Option<String>,
    },
    /// Verify every data file against the oplog: reports garbage left by
    /// failed writes, and missing or altered files.
    Check,
    /// Build a demo pond of synthetic sensor data and run showcase reads.
    ///
    /// Example: pond demo ./pond-demo
    Demo {
        /// Where to build it; an existing demo pond there is reused.
        #[arg(default_value = "./pond-demo")]
        dir: String,
        /// Hours of data per series (one version per hour).
        #[arg(long, default_value_t = 96)]
        hours: i64,
    },
}

pub(crate) async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Init => {
            Pond::create(&args.pond).await?;
            eprintln!("created an empty pond at {}", args.pond);
            Ok(())
        }
        Command::Ls { prefix } => {
            let pond = Pond::open(&args.pond).await?;
            let mut out = std::io::stdout().lock();
            print_series(&pond, prefix.as_deref().unwrap_or(""), &mut out)?;
            Ok(())
        }
        Command::Check => {
            let pond = Pond::open(&args.pond).await?;
            let report = pond.check().await?;
            let mut out = std::io::stdout().lock();
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
        Command::Demo { dir, hours } => demo::run(&dir, hours).await,
    }
}

/// The series table printed by `ls` and `demo`.
pub(crate) fn print_series(pond: &Pond, prefix: &str, out: &mut impl Write) -> Result<()> {
    let rows: Vec<[String; 7]> = pond
        .list_series()
        .into_iter()
        .filter(|s| s.path.starts_with(prefix))
        .map(|s| {
            let (schema, table) = pond::schema_and_table(&s.path);
            [
                s.path.clone(),
                format!("\"{schema}\".{table}"),
                s.versions.to_string(),
                s.rows.to_string(),
                s.min_event_time.map(format_micros).unwrap_or_default(),
                s.max_event_time.map(format_micros).unwrap_or_default(),
                s.bytes.to_string(),
            ]
        })
        .collect();
    let header = [
        "series", "table", "versions", "rows", "min_time", "max_time", "bytes",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(&header).trim_end())?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells).trim_end())?;
    }
    out.flush().context("writing to stdout")
}

/// An error and its causes on one line, for `error: …`.
pub(crate) fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}
