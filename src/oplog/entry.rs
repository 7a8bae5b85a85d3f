//! [`OplogEntry`]: one row of the oplog, and its Arrow form.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use deltalake::kernel::{DataType as DeltaType, StructField};

use crate::error::{Error, Result};

/// What an oplog row records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryType {
    /// A series came into being: its id, timestamp column and schema.
    Create,
    /// A version was added: its data file, row count and event-time bounds.
    #[default]
    Append,
    /// A version written by compaction, with the rows of the versions it
    /// supersedes (same columns as `append`).
    Compact,
    /// The version `version` was superseded by the compaction committed in
    /// the same transaction: reads of the series now skip it, reads as of an
    /// earlier version still see it. `file_path` is its data file.
    Supersede,
    /// The data file of the superseded version `version` was deleted by
    /// vacuum; reads as of a version that needed it fail.
    Vacuum,
    /// A setting of the series changed: `extended_attributes` holds it, as
    /// `{"sort_key": [columns], "sort_bucket": µs}` for the order
    /// compaction writes files in (a bucketed key starts with the
    /// pseudo-column `__pond_bucket`).
    Configure,
    /// Rows were deleted: the rows of earlier versions (by precedence) in
    /// `min_event_time..=max_event_time` for which the SQL predicate
    /// `extended_attributes.where` holds (all of them without one). A
    /// tombstone, with a version number of its own and no data file.
    Delete,
}

impl EntryType {
    /// The name stored in the `entry_type` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Append => "append",
            Self::Compact => "compact",
            Self::Supersede => "supersede",
            Self::Vacuum => "vacuum",
            Self::Configure => "configure",
            Self::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(Self::Create),
            "append" => Some(Self::Append),
            "compact" => Some(Self::Compact),
            "supersede" => Some(Self::Supersede),
            "vacuum" => Some(Self::Vacuum),
            "configure" => Some(Self::Configure),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    /// Whether rows of this type add a version with a data file.
    pub fn adds_data(&self) -> bool {
        matches!(self, Self::Append | Self::Compact)
    }
}

impl std::fmt::Display for EntryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the oplog. Times are `i64` microseconds since the epoch, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OplogEntry {
    /// The series path, e.g. `/sensors/site1/temperature`.
    pub series: String,
    /// The series' stable id (a UUID), which names its data directory.
    pub series_id: String,
    /// The per-series version number; 0 for entries that add no data.
    pub version: i64,
    /// What the row records.
    pub entry_type: EntryType,
    /// The data file, relative to the pond root.
    pub file_path: Option<String>,
    /// Bytes of the data file.
    pub size: Option<i64>,
    /// Rows in the data file.
    pub row_count: Option<i64>,
    /// Smallest event time in the data file, rounded down to the microsecond.
    pub min_event_time: Option<i64>,
    /// Largest event time in the data file, rounded up to the microsecond.
    pub max_event_time: Option<i64>,
    /// The name of the series' timestamp column.
    pub timestamp_column: String,
    /// The series' Arrow schema as JSON, on `create` and whenever it changes.
    pub schema: Option<String>,
    /// `sha256:<hex>` of the data file's bytes.
    pub content_hash: Option<String>,
    /// The oplog (Delta) version that committed this row.
    pub txn_seq: i64,
    /// Wall-clock commit time.
    pub created_at: i64,
    /// A JSON object for anything else.
    pub extended_attributes: Option<String>,
}

/// The Arrow schema of the oplog table.
pub fn oplog_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let utf8 = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        let int = |name: &str, nullable| Field::new(name, DataType::Int64, nullable);
        Arc::new(Schema::new(vec![
            utf8("series", false),
            utf8("series_id", false),
            int("version", false),
            utf8("entry_type", false),
            utf8("file_path", true),
            int("size", true),
            int("row_count", true),
            int("min_event_time", true),
            int("max_event_time", true),
            utf8("timestamp_column", false),
            utf8("schema", true),
            utf8("content_hash", true),
            int("txn_seq", false),
            Field::new(
                "created_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            utf8("extended_attributes", true),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// The oplog schema as Delta Lake columns.
pub(crate) fn delta_columns() -> Vec<StructField> {
    oplog_schema()
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Utf8 => DeltaType::STRING,
                DataType::Int64 => DeltaType::LONG,
                DataType::Timestamp(..) => DeltaType::TIMESTAMP,
                other => unreachable!("oplog column type {other}"),
            };
            StructField::new(f.name().clone(), t, f.is_nullable())
        })
        .collect()
}

/// Builds one record batch from entries.
pub(crate) fn entries_to_batch(entries: &[OplogEntry]) -> Result<RecordBatch> {
    fn strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
        Arc::new(it.collect::<StringArray>())
    }
    fn ints(it: impl Iterator<Item = Option<i64>>) -> ArrayRef {
        Arc::new(it.collect::<Int64Array>())
    }
    let e = entries;
    let columns: Vec<ArrayRef> = vec![
        strings(e.iter().map(|e| Some(e.series.as_str()))),
        strings(e.iter().map(|e| Some(e.series_id.as_str()))),
        ints(e.iter().map(|e| Some(e.version))),
        strings(e.iter().map(|e| Some(e.entry_type.as_str()))),
        strings(e.iter().map(|e| e.file_path.as_deref())),
        ints(e.iter().map(|e| e.size)),
        ints(e.iter().map(|e| e.row_count)),
        ints(e.iter().map(|e| e.min_event_time)),
        ints(e.iter().map(|e| e.max_event_time)),
        strings(e.iter().map(|e| Some(e.timestamp_column.as_str()))),
        strings(e.iter().map(|e| e.schema.as_deref())),
        strings(e.iter().map(|e| e.content_hash.as_deref())),
        ints(e.iter().map(|e| Some(e.txn_seq))),
        Arc::new(
            e.iter()
                .map(|e| Some(e.created_at))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
        strings(e.iter().map(|e| e.extended_attributes.as_deref())),
    ];
    Ok(RecordBatch::try_new(oplog_schema(), columns)?)
}

/// Reads entries back from a batch of the oplog table. Columns are found by
/// name and cast to the expected type, so a batch read by any Delta-compatible
/// writer (which may choose views or other string encodings) is accepted.
pub(crate) fn batch_to_entries(batch: &RecordBatch, location: &str) -> Result<Vec<OplogEntry>> {
    let column = |name: &str, to: &DataType| -> Result<ArrayRef> {
        let col = batch
            .column_by_name(name)
            .ok_or_else(|| Error::invalid_oplog(location, format!("missing column {name}")))?;
        Ok(cast(col, to)?)
    };
    let utf8 = |name: &str| column(name, &DataType::Utf8);
    let int = |name: &str| column(name, &DataType::Int64);

    let series = utf8("series")?;
    let series_id = utf8("series_id")?;
    let version = int("version")?;
    let entry_type = utf8("entry_type")?;
    let file_path = utf8("file_path")?;
    let size = int("size")?;
    let row_count = int("row_count")?;
    let min_t = int("min_event_time")?;
    let max_t = int("max_event_time")?;
    let ts_col = utf8("timestamp_column")?;
    let schema = utf8("schema")?;
    let hash = utf8("content_hash")?;
    let txn_seq = int("txn_seq")?;
    let created_at = column(
        "created_at",
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )?;
    let ext = utf8("extended_attributes")?;

    let s = |a: &ArrayRef, i: usize| -> Option<String> {
        let a = a.as_string::<i32>();
        a.is_valid(i).then(|| a.value(i).to_string())
    };
    let n = |a: &ArrayRef, i: usize| -> Option<i64> {
        let a = a.as_primitive::<arrow::datatypes::Int64Type>();
        a.is_valid(i).then(|| a.value(i))
    };
    let required = |v: Option<String>, name: &str, i: usize| {
        v.ok_or_else(|| Error::invalid_oplog(location, format!("row {i}: {name} is NULL")))
    };
    let created = created_at.as_primitive::<TimestampMicrosecondType>();

    (0..batch.num_rows())
        .map(|i| {
            let kind = required(s(&entry_type, i), "entry_type", i)?;
            let entry_type = EntryType::parse(&kind).ok_or_else(|| {
                Error::invalid_oplog(
                    location,
                    format!("row {i}: entry_type {kind:?} is not known to this version of pond"),
                )
            })?;
            Ok(OplogEntry {
                series: required(s(&series, i), "series", i)?,
                series_id: required(s(&series_id, i), "series_id", i)?,
                version: n(&version, i).unwrap_or(0),
                entry_type,
                file_path: s(&file_path, i),
                size: n(&size, i),
                row_count: n(&row_count, i),
                min_event_time: n(&min_t, i),
                max_event_time: n(&max_t, i),
                timestamp_column: required(s(&ts_col, i), "timestamp_column", i)?,
                schema: s(&schema, i),
                content_hash: s(&hash, i),
                txn_seq: n(&txn_seq, i).unwrap_or(0),
                created_at: if created.is_valid(i) {
                    created.value(i)
                } else {
                    0
                },
                extended_attributes: s(&ext, i),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(entry_type: EntryType) -> OplogEntry {
        OplogEntry {
            series: "/a/b".into(),
            series_id: "id".into(),
            version: 1,
            entry_type,
            file_path: Some("data/id/1-x.parquet".into()),
            size: Some(10),
            row_count: Some(3),
            min_event_time: Some(-5),
            max_event_time: Some(7),
            timestamp_column: "ts".into(),
            schema: None,
            content_hash: Some("sha256:00".into()),
            txn_seq: 4,
            created_at: 1_700_000_000_000_000,
            extended_attributes: Some("{}".into()),
        }
    }

    #[test]
    fn entries_round_trip_through_arrow() {
        let entries = vec![
            entry(EntryType::Create),
            entry(EntryType::Append),
            entry(EntryType::Compact),
            entry(EntryType::Supersede),
            entry(EntryType::Vacuum),
        ];
        let batch = entries_to_batch(&entries).unwrap();
        assert_eq!(batch_to_entries(&batch, "test").unwrap(), entries);
    }

    #[test]
    fn unknown_entry_types_are_an_error_not_skipped() {
        let batch = entries_to_batch(&[entry(EntryType::Append)]).unwrap();
        let mut cols = batch.columns().to_vec();
        cols[3] = Arc::new(StringArray::from(vec!["compact_v9"]));
        let batch = RecordBatch::try_new(batch.schema(), cols).unwrap();
        let err = batch_to_entries(&batch, "f.parquet")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("compact_v9") && err.contains("f.parquet"),
            "{err}"
        );
    }
}
