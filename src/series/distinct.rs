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
//! (within [`MAX_RECORDED_BYTES`] per file), each with the first and last
//! time it holds: they let a query for the newest row of each tag value
//! skip versions, row groups and pages that hold none (see
//! [`crate::pruning::groups`]).

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};

use crate::time::{ceil_micros, floor_micros, raw_values, timestamp_unit};

/// Columns with more distinct values than this in one file are not counted.
pub(crate) const MAX_DISTINCT: usize = 1024;

/// Columns with more distinct values than this in one file have their
/// count recorded, not their values.
pub(crate) const MAX_RECORDED_VALUES: usize = 256;

/// The most bytes of values (a string's length, 8 per integer) one file
/// records, over all its columns: in schema order, a column whose values
/// would go beyond it is not recorded.
pub(crate) const MAX_RECORDED_BYTES: usize = 4096;

/// The most values one file records the times of, over all its columns:
/// in schema order, a column whose values would go beyond it records its
/// values alone. Their offsets (see [`crate::series`]'s writer) are
/// mostly small numbers; this keeps an oplog row within a few KiB of them
/// however many tags a series has.
pub(crate) const MAX_TIMED_VALUES: usize = 512;

/// Every value of one column of a data file, sorted, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ColumnValues {
    /// Of a string column.
    Strings(Vec<Box<str>>),
    /// Of an integer column, as `i64`.
    Integers(Vec<i64>),
}

impl ColumnValues {
    /// How many values there are.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Strings(values) => values.len(),
            Self::Integers(values) => values.len(),
        }
    }

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

/// The values a file records of one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordedColumn {
    pub(crate) name: String,
    pub(crate) values: ColumnValues,
    /// The first and last time of each value, in the values' order: µs,
    /// rounded inwards (up for the first, down for the last), so that a row
    /// of the value lies at or before the first and at or after the last.
    /// Empty if the time column is not a timestamp, or for a column past
    /// the file's [`MAX_TIMED_VALUES`].
    pub(crate) first: Vec<i64>,
    pub(crate) last: Vec<i64>,
}

/// What a [`DistinctCounter`] found in a file.
#[derive(Debug, Default)]
pub(crate) struct ColumnSummary {
    /// The distinct count of each column with at most [`MAX_DISTINCT`]
    /// values, by name.
    pub(crate) distinct: Vec<(String, u64)>,
    /// The values of the columns that record them.
    pub(crate) values: Vec<RecordedColumn>,
}

/// The distinct values seen so far in each counted column, with the first
/// and last time of each, and whether the column held a null.
#[derive(Debug)]
pub(crate) struct DistinctCounter {
    columns: Vec<(usize, String, Values, bool)>,
    /// The time column and its unit, if it is a timestamp.
    time: Option<(usize, TimeUnit)>,
}

/// The first and last time of a value, in the time column's unit.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: i64,
    last: i64,
}

impl Span {
    fn at(t: i64) -> Self {
        Self { first: t, last: t }
    }

    fn add(&mut self, t: i64) {
        self.first = self.first.min(t);
        self.last = self.last.max(t);
    }
}

#[derive(Debug)]
enum Values {
    Strings(HashMap<Box<str>, Span>),
    Integers(HashMap<i64, Span>),
    Booleans([bool; 2]),
    /// More than [`MAX_DISTINCT`]: no longer counted.
    Many,
}

impl DistinctCounter {
    /// A counter for the string, integer and boolean columns of `schema`
    /// other than the time column.
    pub(crate) fn new(schema: &SchemaRef, timestamp_column: &str) -> Self {
        let time = schema.index_of(timestamp_column).ok().and_then(|i| {
            let unit = timestamp_unit(schema.field(i).data_type())?;
            Some((i, unit))
        });
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name() != timestamp_column)
            .filter_map(|(i, f)| {
                let values = match f.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                        Values::Strings(HashMap::new())
                    }
                    t if t.is_integer() => Values::Integers(HashMap::new()),
                    DataType::Boolean => Values::Booleans([false; 2]),
                    _ => return None,
                };
                Some((i, f.name().clone(), values, false))
            })
            .collect();
        Self { columns, time }
    }

    /// Counts the values of `batch`, which has the counter's schema (and a
    /// time column without nulls, as the writer checks).
    pub(crate) fn update(&mut self, batch: &RecordBatch) {
        let untimed;
        let times = match self.time {
            Some((i, _)) => raw_values(batch.column(i).as_ref()),
            None => {
                untimed = vec![0; batch.num_rows()];
                &untimed
            }
        };
        for (i, _, values, nulls) in &mut self.columns {
            let column = batch.column(*i);
            *nulls |= column.null_count() > 0;
            match values {
                Values::Strings(seen) => {
                    let fits = match column.data_type() {
                        DataType::Utf8 => insert_all(seen, column.as_string::<i32>().iter(), times),
                        DataType::LargeUtf8 => {
                            insert_all(seen, column.as_string::<i64>().iter(), times)
                        }
                        DataType::Utf8View => {
                            insert_all(seen, column.as_string_view().iter(), times)
                        }
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
                            && (c.as_primitive::<Int64Type>().iter().zip(times)).all(|(v, &t)| {
                                let Some(v) = v else { return true };
                                seen.entry(v)
                                    .and_modify(|span| span.add(t))
                                    .or_insert_with(|| Span::at(t));
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
        let (mut bytes, mut timed) = (0, 0);
        let unit = self.time.map(|(_, unit)| unit);
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
            let (recorded, spans, size): (_, Vec<Span>, _) = match values {
                Values::Strings(seen) => {
                    let size = seen.keys().map(|v| v.len()).sum();
                    let mut sorted: Vec<(Box<str>, Span)> = seen.into_iter().collect();
                    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    let (values, spans) = sorted.into_iter().unzip();
                    (ColumnValues::Strings(values), spans, size)
                }
                Values::Integers(seen) => {
                    let mut sorted: Vec<(i64, Span)> = seen.into_iter().collect();
                    sorted.sort_unstable_by_key(|(v, _)| *v);
                    let (values, spans) = sorted.into_iter().unzip();
                    (ColumnValues::Integers(values), spans, 8 * n)
                }
                Values::Booleans(_) | Values::Many => continue,
            };
            if bytes + size > MAX_RECORDED_BYTES {
                continue;
            }
            bytes += size;
            // The writer checked that every time fits in µs.
            let (first, last) = match unit {
                Some(unit) if timed + spans.len() <= MAX_TIMED_VALUES => (
                    (spans.iter())
                        .map(|s| ceil_micros(s.first, unit).unwrap_or(crate::MAX_TIME))
                        .collect(),
                    (spans.iter())
                        .map(|s| floor_micros(s.last, unit).unwrap_or(crate::MIN_TIME))
                        .collect(),
                ),
                _ => (Vec::new(), Vec::new()),
            };
            timed += first.len();
            summary.values.push(RecordedColumn {
                name,
                values: recorded,
                first,
                last,
            });
        }
        summary
    }
}

/// Adds the strings of `values`, at `times`, to `seen`; false once it holds
/// more than [`MAX_DISTINCT`].
fn insert_all<'a>(
    seen: &mut HashMap<Box<str>, Span>,
    values: impl Iterator<Item = Option<&'a str>>,
    times: &[i64],
) -> bool {
    for (v, &t) in values.zip(times) {
        let Some(v) = v else { continue };
        match seen.get_mut(v) {
            Some(span) => span.add(t),
            None => {
                seen.insert(v.into(), Span::at(t));
                if seen.len() > MAX_DISTINCT {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int32Array, StringArray, TimestampSecondArray,
    };
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(hosts: Vec<Option<&str>>, codes: Vec<i32>, flags: Vec<bool>) -> RecordBatch {
        let n = hosts.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampSecondArray::from(
                (0..n as i64).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(hosts)),
            Arc::new(Int32Array::from(codes)),
            Arc::new(BooleanArray::from(flags)),
            Arc::new(Float64Array::from(vec![1.0; n])),
        ];
        let schema = Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), false),
            Field::new("host", DataType::Utf8, true),
            Field::new("code", DataType::Int32, false),
            Field::new("ok", DataType::Boolean, false),
            Field::new("value", DataType::Float64, false),
        ]);
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    fn names_and_values(summary: &ColumnSummary) -> Vec<(String, ColumnValues)> {
        (summary.values.iter())
            .map(|c| (c.name.clone(), c.values.clone()))
            .collect()
    }

    #[test]
    fn times_are_rounded_inwards_to_microseconds() {
        let ts = arrow::array::TimestampNanosecondArray::from(vec![1_500, 2_500, 999]);
        let host = StringArray::from(vec!["a", "a", "b"]);
        let batch = RecordBatch::try_from_iter([
            ("ts", Arc::new(ts) as ArrayRef),
            ("host", Arc::new(host)),
        ])
        .unwrap();
        let mut counter = DistinctCounter::new(&batch.schema(), "ts");
        counter.update(&batch);
        let summary = counter.finish();
        let [host] = &summary.values[..] else {
            panic!("one column recorded: {summary:?}")
        };
        // a's first time 1.5 µs up, its last 2.5 µs down; b's 0.999 µs.
        assert_eq!(
            (&host.first[..], &host.last[..]),
            (&[2, 1][..], &[2, 0][..])
        );
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
            names_and_values(&summary),
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
            names_and_values(&summary),
            vec![
                (
                    "host".to_string(),
                    ColumnValues::Strings(vec!["a".into(), "b".into()])
                ),
                ("code".to_string(), ColumnValues::Integers(vec![1, 3])),
            ]
        );
        for column in &summary.values {
            assert_eq!(
                ColumnValues::from_json(&column.values.to_json()).as_ref(),
                Some(&column.values)
            );
            // a at 1 s; b at 0 and 2 s.
            assert_eq!(column.first, [1_000_000, 0]);
            assert_eq!(column.last, [1_000_000, 2_000_000]);
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
        assert_eq!(summary.values[0].name, "host");
    }

    #[test]
    fn gives_up_on_integers_beyond_i64() {
        let big = arrow::array::UInt64Array::from(vec![1, u64::MAX]);
        let ts = TimestampSecondArray::from(vec![0, 1]);
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
