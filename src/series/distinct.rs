//! Distinct counts of a data file's low-cardinality columns, for the planner.
//!
//! DataFusion sizes a `GROUP BY` by the distinct counts of its columns and
//! builds a hash join on the side it expects to be smaller. Without them, an
//! aggregate over a series looks as large as the series itself, and a join of
//! a series with its own `GROUP BY hostname` builds its hash table from
//! millions of rows instead of a hundred. Tags (hosts, sensors, regions) have
//! few values; each data file records how many of them it holds, and the scan
//! hands them to DataFusion as inexact file statistics, which it merges
//! across files itself.
//!
//! Counting is exact up to [`MAX_DISTINCT`] values per column and gives up
//! beyond: a column with more is not a tag, and its count is left unknown, as
//! it was before. Only strings, integers and booleans are counted; nulls are
//! not values.
//!
//! A string or integer column with no nulls and at most
//! [`MAX_RECORDED_VALUES`] values also has the values themselves recorded
//! (within [`MAX_RECORDED_BYTES`] per file): they let a query for the newest
//! row of each tag value skip versions whose every tag value comes again
//! later (see [`crate::pruning::groups`]).

use std::collections::HashSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};

/// Columns with more distinct values than this in one file are not counted.
pub(crate) const MAX_DISTINCT: usize = 1024;

/// Columns with more distinct values than this in one file have their
/// count recorded, not their values.
pub(crate) const MAX_RECORDED_VALUES: usize = 256;

/// The most bytes of values (a string's length, 8 per integer) one file
/// records, over all its columns: in schema order, a column whose values
/// would go beyond it is not recorded.
pub(crate) const MAX_RECORDED_BYTES: usize = 4096;

/// Every value of one column of a data file, sorted, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ColumnValues {
    /// Of a string column.
    Strings(Vec<Box<str>>),
    /// Of an integer column, as `i64`.
    Integers(Vec<i64>),
}

impl ColumnValues {
    /// As an oplog row records them: a JSON array of strings or integers.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Strings(values) => values.iter().map(|v| v.as_ref()).collect(),
            Self::Integers(values) => values.iter().copied().collect(),
        }
    }

    /// Read back from [`Self::to_json`]'s array; `None` for anything else.
    pub(crate) fn from_json(json: &serde_json::Value) -> Option<Self> {
        let array = json.as_array()?;
        if let Some(strings) = array.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>() {
            return Some(Self::Strings(strings.into_iter().map(Box::from).collect()));
        }
        array
            .iter()
            .map(|v| v.as_i64())
            .collect::<Option<Vec<_>>>()
            .map(Self::Integers)
    }
}

/// What a [`DistinctCounter`] found in a file.
#[derive(Debug, Default)]
pub(crate) struct ColumnSummary {
    /// The distinct count of each column with at most [`MAX_DISTINCT`]
    /// values, by name.
    pub(crate) distinct: Vec<(String, u64)>,
    /// The values of the columns that record them, by name.
    pub(crate) values: Vec<(String, ColumnValues)>,
}

/// The distinct values seen so far in each counted column, and whether it
/// held a null.
#[derive(Debug)]
pub(crate) struct DistinctCounter {
    columns: Vec<(usize, String, Values, bool)>,
}

#[derive(Debug)]
enum Values {
    Strings(HashSet<Box<str>>),
    Integers(HashSet<i64>),
    Booleans([bool; 2]),
    /// More than [`MAX_DISTINCT`]: no longer counted.
    Many,
}

impl DistinctCounter {
    /// A counter for the string, integer and boolean columns of `schema`
    /// other than the time column.
    pub(crate) fn new(schema: &SchemaRef, timestamp_column: &str) -> Self {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name() != timestamp_column)
            .filter_map(|(i, f)| {
                let values = match f.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                        Values::Strings(HashSet::new())
                    }
                    t if t.is_integer() => Values::Integers(HashSet::new()),
                    DataType::Boolean => Values::Booleans([false; 2]),
                    _ => return None,
                };
                Some((i, f.name().clone(), values, false))
            })
            .collect();
        Self { columns }
    }

    /// Counts the values of `batch`, which has the counter's schema.
    pub(crate) fn update(&mut self, batch: &RecordBatch) {
        for (i, _, values, nulls) in &mut self.columns {
            let column = batch.column(*i);
            *nulls |= column.null_count() > 0;
            match values {
                Values::Strings(seen) => {
                    let fits = match column.data_type() {
                        DataType::Utf8 => insert_all(seen, column.as_string::<i32>().iter()),
                        DataType::LargeUtf8 => insert_all(seen, column.as_string::<i64>().iter()),
                        DataType::Utf8View => insert_all(seen, column.as_string_view().iter()),
                        _ => false,
                    };
                    if !fits {
                        *values = Values::Many;
                    }
                }
                Values::Integers(seen) => {
                    // A `u64` beyond `i64` casts to a null: such a column
                    // is not counted, lest its values be recorded without it.
                    let fits = cast(column, &DataType::Int64).is_ok_and(|c| {
                        c.null_count() == column.null_count()
                            && c.as_primitive::<Int64Type>().iter().flatten().all(|v| {
                                seen.insert(v);
                                seen.len() <= MAX_DISTINCT
                            })
                    });
                    if !fits {
                        *values = Values::Many;
                    }
                }
                Values::Booleans(seen) => {
                    for v in column.as_boolean().iter().flatten() {
                        seen[usize::from(v)] = true;
                    }
                }
                Values::Many => {}
            }
        }
    }

    /// The distinct counts, and the values of the columns that record
    /// them.
    pub(crate) fn finish(self) -> ColumnSummary {
        let mut summary = ColumnSummary::default();
        let mut bytes = 0;
        for (_, name, values, nulls) in self.columns {
            let n = match &values {
                Values::Strings(seen) => seen.len(),
                Values::Integers(seen) => seen.len(),
                Values::Booleans(seen) => seen.iter().filter(|&&b| b).count(),
                Values::Many => continue,
            };
            summary.distinct.push((name.clone(), n as u64));
            if nulls || n > MAX_RECORDED_VALUES {
                continue;
            }
            let (recorded, size) = match values {
                Values::Strings(seen) => {
                    let size = seen.iter().map(|v| v.len()).sum();
                    let mut sorted: Vec<Box<str>> = seen.into_iter().collect();
                    sorted.sort_unstable();
                    (ColumnValues::Strings(sorted), size)
                }
                Values::Integers(seen) => {
                    let mut sorted: Vec<i64> = seen.into_iter().collect();
                    sorted.sort_unstable();
                    (ColumnValues::Integers(sorted), 8 * n)
                }
                Values::Booleans(_) | Values::Many => continue,
            };
            if bytes + size <= MAX_RECORDED_BYTES {
                bytes += size;
                summary.values.push((name, recorded));
            }
        }
        summary
    }
}

/// Adds the strings of `values` to `seen`; false once it holds more than
/// [`MAX_DISTINCT`].
fn insert_all<'a>(
    seen: &mut HashSet<Box<str>>,
    values: impl Iterator<Item = Option<&'a str>>,
) -> bool {
    for v in values.flatten() {
        if !seen.contains(v) {
            seen.insert(v.into());
            if seen.len() > MAX_DISTINCT {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(hosts: Vec<Option<&str>>, codes: Vec<i32>, flags: Vec<bool>) -> RecordBatch {
        let n = hosts.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from((0..n as i32).collect::<Vec<_>>())),
            Arc::new(StringArray::from(hosts)),
            Arc::new(Int32Array::from(codes)),
            Arc::new(BooleanArray::from(flags)),
            Arc::new(Float64Array::from(vec![1.0; n])),
        ];
        let schema = Schema::new(vec![
            Field::new("ts", DataType::Int32, false),
            Field::new("host", DataType::Utf8, true),
            Field::new("code", DataType::Int32, false),
            Field::new("ok", DataType::Boolean, false),
            Field::new("value", DataType::Float64, false),
        ]);
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn counts_tags_across_batches_without_nulls_or_the_time_column() {
        let first = batch(
            vec![Some("a"), Some("b"), None],
            vec![1, 1, 2],
            vec![true, true, true],
        );
        let mut counter = DistinctCounter::new(&first.schema(), "ts");
        counter.update(&first);
        counter.update(&batch(
            vec![Some("b"), Some("c")],
            vec![3, 1],
            vec![true, true],
        ));
        let summary = counter.finish();
        assert_eq!(
            summary.distinct,
            vec![
                ("host".to_string(), 3),
                ("code".to_string(), 3),
                ("ok".to_string(), 1)
            ]
        );
        // The hosts held a null: only the codes' values are recorded.
        assert_eq!(
            summary.values,
            vec![("code".to_string(), ColumnValues::Integers(vec![1, 2, 3]))]
        );
    }

    #[test]
    fn records_values_of_columns_without_nulls_within_the_bounds() {
        let hosts = vec![Some("b"), Some("a"), Some("b")];
        let mut counter = DistinctCounter::new(
            &batch(hosts.clone(), vec![3; 3], vec![true; 3]).schema(),
            "ts",
        );
        counter.update(&batch(hosts, vec![3, 1, 3], vec![true, false, true]));
        let summary = counter.finish();
        assert_eq!(
            summary.values,
            vec![
                (
                    "host".to_string(),
                    ColumnValues::Strings(vec!["a".into(), "b".into()])
                ),
                ("code".to_string(), ColumnValues::Integers(vec![1, 3])),
            ]
        );
        for (_, values) in &summary.values {
            assert_eq!(
                ColumnValues::from_json(&values.to_json()).as_ref(),
                Some(values)
            );
        }

        // Too many values for the record, or too many bytes over the file.
        let n = MAX_RECORDED_VALUES + 1;
        let names: Vec<String> = (0..n).map(|i| format!("{i:>20}")).collect();
        let hosts = names.iter().map(|s| Some(s.as_str())).collect();
        let within = batch(hosts, (0..n as i32).collect(), vec![false; n]);
        let mut counter = DistinctCounter::new(&within.schema(), "ts");
        counter.update(&within);
        assert!(counter.finish().values.is_empty());
        let few = MAX_RECORDED_BYTES / 20;
        let hosts = names[..few].iter().map(|s| Some(s.as_str())).collect();
        let within = batch(hosts, (0..few as i32).collect(), vec![false; few]);
        let mut counter = DistinctCounter::new(&within.schema(), "ts");
        counter.update(&within);
        let summary = counter.finish();
        assert_eq!(
            summary.values.len(),
            1,
            "the codes' bytes go beyond the bound"
        );
        assert_eq!(summary.values[0].0, "host");
    }

    #[test]
    fn gives_up_on_integers_beyond_i64() {
        let big = arrow::array::UInt64Array::from(vec![1, u64::MAX]);
        let ts = Int32Array::from(vec![0, 1]);
        let batch =
            RecordBatch::try_from_iter([("ts", Arc::new(ts) as ArrayRef), ("u", Arc::new(big))])
                .unwrap();
        let mut counter = DistinctCounter::new(&batch.schema(), "ts");
        counter.update(&batch);
        let summary = counter.finish();
        assert!(summary.distinct.is_empty() && summary.values.is_empty());
    }

    #[test]
    fn gives_up_on_columns_with_many_values() {
        let n = MAX_DISTINCT + 1;
        let names: Vec<String> = (0..n).map(|i| format!("h{i}")).collect();
        let hosts = names.iter().map(|s| Some(s.as_str())).collect();
        let codes = (0..n as i32).collect();
        let within = batch(hosts, codes, vec![false; n]);
        let mut counter = DistinctCounter::new(&within.schema(), "ts");
        counter.update(&within);
        assert_eq!(counter.finish().distinct, vec![("ok".to_string(), 1)]);
    }
}
