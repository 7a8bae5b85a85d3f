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

use std::collections::HashSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};

/// Columns with more distinct values than this in one file are not counted.
pub(crate) const MAX_DISTINCT: usize = 1024;

/// The distinct values seen so far in each counted column.
#[derive(Debug)]
pub(crate) struct DistinctCounter {
    columns: Vec<(usize, String, Values)>,
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
                Some((i, f.name().clone(), values))
            })
            .collect();
        Self { columns }
    }

    /// Counts the values of `batch`, which has the counter's schema.
    pub(crate) fn update(&mut self, batch: &RecordBatch) {
        for (i, _, values) in &mut self.columns {
            let column = batch.column(*i);
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
                    let fits = cast(column, &DataType::Int64).is_ok_and(|c| {
                        c.as_primitive::<Int64Type>().iter().flatten().all(|v| {
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

    /// The distinct count of each column that has at most [`MAX_DISTINCT`]
    /// values, by name.
    pub(crate) fn finish(self) -> Vec<(String, u64)> {
        self.columns
            .into_iter()
            .filter_map(|(_, name, values)| {
                let n = match values {
                    Values::Strings(seen) => seen.len(),
                    Values::Integers(seen) => seen.len(),
                    Values::Booleans(seen) => seen.iter().filter(|&&b| b).count(),
                    Values::Many => return None,
                };
                Some((name, n as u64))
            })
            .collect()
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
        assert_eq!(
            counter.finish(),
            vec![
                ("host".to_string(), 3),
                ("code".to_string(), 3),
                ("ok".to_string(), 1)
            ]
        );
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
        assert_eq!(counter.finish(), vec![("ok".to_string(), 1)]);
    }
}
