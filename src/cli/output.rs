//! How commands print results: DataFusion CLI's formats, on stdout only.

use std::io::Write;

use anyhow::Result;
use arrow::array::RecordBatch;
use clap::ValueEnum;
use datafusion::config::FormatOptions;
use datafusion_cli::print_format::PrintFormat;
use datafusion_cli::print_options::MaxRows;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// A table for people.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

impl OutputFormat {
    pub(crate) fn print_format(self) -> PrintFormat {
        match self {
            Self::Table => PrintFormat::Table,
            Self::Csv => PrintFormat::Csv,
            Self::Json => PrintFormat::Json,
            Self::Ndjson => PrintFormat::NdJson,
        }
    }
}

/// Prints `batch` to `out` in `format`. With no rows, CSV is its header
/// and JSON an empty array, so that scripts read an empty result as one
/// (DataFusion CLI prints nothing for them).
pub(crate) fn print(out: &mut impl Write, batch: &RecordBatch, format: OutputFormat) -> Result<()> {
    if batch.num_rows() == 0 {
        match format {
            OutputFormat::Csv => {
                let names: Vec<&str> = batch
                    .schema_ref()
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                writeln!(out, "{}", names.join(","))?;
            }
            OutputFormat::Json => writeln!(out, "[]")?,
            OutputFormat::Table | OutputFormat::Ndjson => {}
        }
    }
    format.print_format().print_batches(
        out,
        batch.schema(),
        std::slice::from_ref(batch),
        MaxRows::Unlimited,
        true,
        &FormatOptions::default(),
    )?;
    out.flush()?;
    Ok(())
}
