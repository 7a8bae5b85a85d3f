//! `pond ls`, `describe` and `log`: what a pond holds, as tables.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use crate::{Pond, SeriesInfo};
use anyhow::Result;
use arrow::array::TimestampMicrosecondArray;
use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};

use super::output::{OutputFormat, print};

fn times(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

fn strings<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// The series `pond ls` lists: those under `filter`, a path whose whole
/// segments must begin theirs (`/sites/site1` is not `/sites/site10`), or
/// a pattern as `series_list` takes one (`/fleet/*/cpu`); all without one.
pub(crate) fn ls(
    pond: &Pond,
    filter: Option<&str>,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<()> {
    let keep: Box<dyn Fn(&str) -> bool> = match filter {
        None => Box::new(|_| true),
        Some(f) if f.contains(['*', '{', '}']) => {
            let pattern = crate::SeriesPattern::parse(f)?;
            Box::new(move |path| pattern.matches(path))
        }
        Some(f) => {
            anyhow::ensure!(
                f.starts_with('/'),
                "a prefix is a series path, like /{f}: it starts with '/'"
            );
            let prefix = f.trim_end_matches('/').to_string();
            Box::new(move |path| {
                path.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
        }
    };
    let series: Vec<SeriesInfo> = pond.list_series_where(keep);
    print(out, &crate::udtf::series_list_batch(&series)?, format)
}

pub(crate) fn describe(
    pond: &Pond,
    path: &str,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<()> {
    let info = pond.series_info(path)?;
    let fields = info.schema.fields();
    let columns = RecordBatch::try_from_iter([
        ("column", strings(fields.iter().map(|f| f.name().as_str()))),
        (
            "type",
            Arc::new(StringArray::from_iter_values(
                fields.iter().map(|f| f.data_type().to_string()),
            )) as ArrayRef,
        ),
        (
            "nullable",
            Arc::new(BooleanArray::from_iter(
                fields.iter().map(|f| Some(f.is_nullable())),
            )) as ArrayRef,
        ),
        (
            "timestamp_column",
            Arc::new(BooleanArray::from_iter(
                fields
                    .iter()
                    .map(|f| Some(f.name() == &info.timestamp_column)),
            )) as ArrayRef,
        ),
        (
            "key",
            Arc::new(BooleanArray::from_iter(
                fields.iter().map(|f| Some(info.key.contains(f.name()))),
            )) as ArrayRef,
        ),
    ])?;
    let key = if info.key.is_empty() {
        "none (every row is kept)".to_string()
    } else {
        info.key.join(", ")
    };
    match format {
        OutputFormat::Table => {
            let time = |t: Option<i64>| t.map_or_else(|| "-".to_string(), crate::format_micros);
            writeln!(out, "series:           {}", info.path)?;
            writeln!(
                out,
                "table:            {}",
                crate::sql_table_name(&info.path)
            )?;
            writeln!(out, "timestamp column: {}", info.timestamp_column)?;
            writeln!(out, "key:              {key}")?;
            writeln!(
                out,
                "versions:         {} ({} rows, {} bytes)",
                info.versions, info.rows, info.bytes
            )?;
            writeln!(
                out,
                "time:             {} to {}",
                time(info.min_event_time),
                time(info.max_event_time)
            )?;
            print(out, &columns, format)
        }
        OutputFormat::Json => {
            let object = serde_json::json!({
                "series": info.path,
                "table": crate::sql_table_name(&info.path),
                "timestamp_column": info.timestamp_column,
                "key": info.key,
                "versions": info.versions,
                "rows": info.rows,
                "bytes": info.bytes,
                "min_time": info.min_event_time.map(crate::format_micros),
                "max_time": info.max_event_time.map(crate::format_micros),
                "columns": fields.iter().map(|f| serde_json::json!({
                    "column": f.name(),
                    "type": f.data_type().to_string(),
                    "nullable": f.is_nullable(),
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{object}")?;
            Ok(())
        }
        OutputFormat::Csv | OutputFormat::Ndjson => print(out, &columns, format),
    }
}

/// The oplog's transactions, newest first: the last `limit` of them.
pub(crate) async fn log(
    pond: &Pond,
    limit: Option<usize>,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<()> {
    let mut entries = pond.oplog_entries().await?;
    entries.sort_by_key(|e| std::cmp::Reverse((e.txn_seq, e.version)));
    if let Some(limit) = limit {
        let transactions: BTreeSet<i64> = entries.iter().map(|e| e.txn_seq).collect();
        let keep: BTreeSet<i64> = transactions.into_iter().rev().take(limit).collect();
        entries.retain(|e| keep.contains(&e.txn_seq));
    }
    let batch = RecordBatch::try_from_iter([
        (
            "txn_seq",
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|e| e.txn_seq),
            )) as ArrayRef,
        ),
        (
            "created_at",
            times(entries.iter().map(|e| Some(e.created_at))),
        ),
        ("series", strings(entries.iter().map(|e| e.series.as_str()))),
        (
            "entry_type",
            strings(entries.iter().map(|e| e.entry_type.as_str())),
        ),
        (
            "version",
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|e| e.version),
            )) as ArrayRef,
        ),
        (
            "rows",
            Arc::new(Int64Array::from_iter(entries.iter().map(|e| e.row_count))) as ArrayRef,
        ),
        (
            "bytes",
            Arc::new(Int64Array::from_iter(entries.iter().map(|e| e.size))) as ArrayRef,
        ),
        ("min_time", times(entries.iter().map(|e| e.min_event_time))),
        ("max_time", times(entries.iter().map(|e| e.max_event_time))),
        (
            "file",
            Arc::new(StringArray::from_iter(
                entries.iter().map(|e| e.file_path.as_deref()),
            )) as ArrayRef,
        ),
    ])?;
    print(out, &batch, format)
}
