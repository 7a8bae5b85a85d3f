//! The schema rules of a series.
//!
//! The first append fixes the schema and the timestamp column. A later append
//! must agree with it column by column (by name, in any order); it may leave
//! out nullable columns (they read as NULL) and may add new nullable columns,
//! which widens the series' schema. Nothing else changes a schema.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions, new_null_array};
use arrow::datatypes::{FieldRef, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::transform_schema_to_view;

use crate::error::{Error, Result};
use crate::time::timestamp_unit;

/// The schema a new version is written with.
#[derive(Debug, Clone)]
pub(crate) struct SchemaPlan {
    /// The series' schema once the version is committed.
    pub(crate) schema: SchemaRef,
    /// Whether that differs from the series' schema before the append.
    pub(crate) changed: bool,
}

/// The series' schema as it stands before an append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Existing<'a> {
    pub(crate) schema: &'a Schema,
    pub(crate) timestamp_column: &'a str,
}

/// Decides the schema of an append of `incoming` data to `path`.
pub(crate) fn plan_schema(
    path: &str,
    existing: Option<Existing<'_>>,
    incoming: &Schema,
    timestamp_column: &str,
) -> Result<SchemaPlan> {
    let mismatch = |reason: String| Error::schema_mismatch(path, reason);
    // A second column of one name would be written, then refused by every
    // query of the series.
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = (incoming.fields().iter()).find(|f| !names.insert(f.name().as_str())) {
        return Err(Error::invalid_data(
            path,
            format!("column {:?} appears twice", twice.name()),
        ));
    }
    let ts = incoming.field_with_name(timestamp_column).map_err(|_| {
        Error::invalid_data(
            path,
            format!(
                "timestamp column {timestamp_column:?} is missing (columns: {})",
                column_names(incoming)
            ),
        )
    })?;
    if timestamp_unit(ts.data_type()).is_none() {
        return Err(Error::invalid_data(
            path,
            format!(
                "timestamp column {timestamp_column:?} has type {}, not a timestamp",
                ts.data_type()
            ),
        ));
    }
    let Some(existing) = existing else {
        // The time column is never NULL, so the schema says so.
        let fields: Vec<FieldRef> = incoming
            .fields()
            .iter()
            .map(|f| {
                if f.name() == timestamp_column {
                    Arc::new(f.as_ref().clone().with_nullable(false))
                } else {
                    Arc::clone(f)
                }
            })
            .collect();
        return Ok(SchemaPlan {
            schema: Arc::new(Schema::new(fields)),
            changed: true,
        });
    };
    if existing.timestamp_column != timestamp_column {
        return Err(mismatch(format!(
            "the series' timestamp column is {:?}, not {timestamp_column:?}",
            existing.timestamp_column
        )));
    }
    let mut fields: Vec<FieldRef> = existing.schema.fields().iter().cloned().collect();
    for field in existing.schema.fields() {
        match incoming.field_with_name(field.name()) {
            Ok(new) if new.data_type() != field.data_type() => {
                return Err(mismatch(format!(
                    "column {:?} has type {}, the series has {}",
                    field.name(),
                    new.data_type(),
                    field.data_type()
                )));
            }
            Ok(_) => {}
            Err(_) if field.is_nullable() => {}
            Err(_) => {
                return Err(mismatch(format!(
                    "non-nullable column {:?} is missing",
                    field.name()
                )));
            }
        }
    }
    let mut changed = false;
    for field in incoming.fields() {
        if existing.schema.field_with_name(field.name()).is_err() {
            // SQL folds unquoted names to lower case: `Value` beside `value`
            // is a typo far more often than a second column.
            if let Some(same) = (existing.schema.fields().iter())
                .find(|e| e.name().eq_ignore_ascii_case(field.name()))
            {
                return Err(mismatch(format!(
                    "new column {:?} differs from the series' column {:?} only in case; \
                     name it as the series does",
                    field.name(),
                    same.name()
                )));
            }
            if !field.is_nullable() {
                return Err(mismatch(format!(
                    "new column {:?} must be nullable (older versions have no values for it)",
                    field.name()
                )));
            }
            fields.push(Arc::clone(field));
            changed = true;
        }
    }
    Ok(SchemaPlan {
        schema: Arc::new(Schema::new(fields)),
        changed,
    })
}

/// The timestamp column pond picks when none is named: the first of `timestamp`,
/// `ts`, `time`, `event_time` (any case) that exists, else the first column of
/// a timestamp type.
pub fn default_timestamp_column(schema: &Schema) -> Option<String> {
    let fields = schema.fields();
    ["timestamp", "ts", "time", "event_time"]
        .iter()
        .find_map(|name| fields.iter().find(|f| f.name().eq_ignore_ascii_case(name)))
        .or_else(|| {
            fields
                .iter()
                .find(|f| timestamp_unit(f.data_type()).is_some())
        })
        .map(|f| f.name().clone())
}

/// Puts `batch` into the shape of `target`: columns by name in the target's
/// order, NULL columns for nullable target columns the batch lacks. Errors if a
/// column has another type, a non-nullable column is missing or holds NULLs,
/// or the batch has a column the target lacks.
pub(crate) fn conform_batch(
    batch: &RecordBatch,
    target: &SchemaRef,
    path: &str,
) -> Result<RecordBatch> {
    if batch.schema_ref().as_ref() == target.as_ref() {
        return Ok(batch.clone());
    }
    let mismatch = |reason: String| Error::schema_mismatch(path, reason);
    let source = batch.schema();
    if let Some(extra) = source
        .fields()
        .iter()
        .find(|f| target.field_with_name(f.name()).is_err())
    {
        return Err(mismatch(format!("unexpected column {:?}", extra.name())));
    }
    let columns = target
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(col) if col.data_type() != field.data_type() => Err(mismatch(format!(
                "column {:?} has type {}, expected {}",
                field.name(),
                col.data_type(),
                field.data_type()
            ))),
            Some(col) if !field.is_nullable() && col.null_count() > 0 => Err(mismatch(format!(
                "column {:?} is NOT NULL but holds {} NULL value(s)",
                field.name(),
                col.null_count()
            ))),
            Some(col) => Ok(Arc::clone(col)),
            None if field.is_nullable() => Ok(new_null_array(field.data_type(), batch.num_rows())),
            None => Err(mismatch(format!(
                "non-nullable column {:?} is missing",
                field.name()
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(target),
        columns,
        &options,
    )?)
}

/// `schema`, in the types of a series' table (its own with string and
/// binary columns as views, DataFusion's `transform_schema_to_view`), back
/// in the series' own types (`stored`). Columns `stored` lacks are left for
/// the schema rules to judge.
pub(crate) fn unview_schema(schema: &Schema, stored: &Schema) -> SchemaRef {
    let views = transform_schema_to_view(stored);
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|field| {
            let own = stored.field_with_name(field.name());
            let view = views.field_with_name(field.name());
            match (own, view) {
                (Ok(own), Ok(view))
                    if own.data_type() != field.data_type()
                        && view.data_type() == field.data_type() =>
                {
                    Arc::new(
                        field
                            .as_ref()
                            .clone()
                            .with_data_type(own.data_type().clone()),
                    )
                }
                _ => Arc::clone(field),
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` cast column by column to `schema`, which has its columns in its
/// order ([`unview_schema`] of its schema).
pub(crate) fn cast_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}

/// The names of `schema`'s columns, for messages.
pub(crate) fn column_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};

    fn ts() -> Field {
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true)
    }

    fn base() -> Schema {
        Schema::new(vec![
            ts().with_nullable(false),
            Field::new("v", DataType::Float64, false),
            Field::new("note", DataType::Utf8, true),
        ])
    }

    fn existing(schema: &Schema) -> Option<Existing<'_>> {
        Some(Existing {
            schema,
            timestamp_column: "ts",
        })
    }

    #[test]
    fn first_append_makes_time_column_not_null() {
        let incoming = Schema::new(vec![ts(), Field::new("v", DataType::Float64, true)]);
        let plan = plan_schema("/s", None, &incoming, "ts").unwrap();
        assert!(plan.changed);
        assert!(!plan.schema.field(0).is_nullable());
    }

    #[test]
    fn keeps_schema_when_columns_agree_in_any_order() {
        let b = base();
        let incoming = Schema::new(vec![Field::new("v", DataType::Float64, false), ts()]);
        let plan = plan_schema("/s", existing(&b), &incoming, "ts").unwrap();
        assert!(!plan.changed);
        assert_eq!(plan.schema.as_ref(), &b);
    }

    #[test]
    fn widens_with_new_nullable_column() {
        let b = base();
        let mut fields: Vec<Field> = b.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("extra", DataType::Int64, true));
        let plan = plan_schema("/s", existing(&b), &Schema::new(fields), "ts").unwrap();
        assert!(plan.changed);
        assert_eq!(plan.schema.fields().len(), 4);
    }

    #[test]
    fn rejects_type_changes_new_required_columns_and_missing_required_columns() {
        let b = base();
        let retyped = Schema::new(vec![ts(), Field::new("v", DataType::Int64, false)]);
        let err = plan_schema("/s", existing(&b), &retyped, "ts").unwrap_err();
        assert!(err.to_string().contains("\"v\" has type Int64"), "{err}");

        let mut fields: Vec<Field> = b.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("extra", DataType::Int64, false));
        let err = plan_schema("/s", existing(&b), &Schema::new(fields), "ts").unwrap_err();
        assert!(err.to_string().contains("must be nullable"), "{err}");

        let err = plan_schema("/s", existing(&b), &Schema::new(vec![ts()]), "ts").unwrap_err();
        assert!(err.to_string().contains("\"v\" is missing"), "{err}");
    }

    #[test]
    fn rejects_missing_or_non_temporal_time_column() {
        let s = Schema::new(vec![Field::new("v", DataType::Float64, false)]);
        let err = plan_schema("/s", None, &s, "ts").unwrap_err();
        assert!(err.to_string().contains("\"ts\" is missing"), "{err}");
        let s = Schema::new(vec![Field::new("ts", DataType::Int64, false)]);
        let err = plan_schema("/s", None, &s, "ts").unwrap_err();
        assert!(err.to_string().contains("not a timestamp"), "{err}");
        let b = base();
        let mut fields: Vec<Field> = b.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(
            "ts2",
            DataType::Timestamp(TimeUnit::Second, None),
            true,
        ));
        let err = plan_schema("/s", existing(&b), &Schema::new(fields), "ts2").unwrap_err();
        assert!(
            err.to_string().contains("timestamp column is \"ts\""),
            "{err}"
        );
    }

    #[test]
    fn conform_reorders_and_fills_nulls() {
        let target = Arc::new(base());
        let batch = RecordBatch::try_from_iter(vec![
            ("v", Arc::new(Float64Array::from(vec![1.0])) as _),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![5])) as _,
            ),
        ])
        .unwrap();
        let out = conform_batch(&batch, &target, "/s").unwrap();
        assert_eq!(out.schema(), target);
        assert_eq!(out.column(2).null_count(), 1);

        let wrong = RecordBatch::try_from_iter(vec![
            ("v", Arc::new(Int64Array::from(vec![1])) as _),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![5])) as _,
            ),
        ])
        .unwrap();
        assert!(conform_batch(&wrong, &target, "/s").is_err());
    }
}
