//! `pond append`: CSV, Parquet and NDJSON files (or stdin) into ONE new
//! version of a series, streamed in bounded memory.
//!
//! Every input is read with arrow's readers on a blocking thread and handed
//! to [`Pond::append_stream`] batch by batch through a small channel, so
//! memory holds a few batches and the writer's current row group, not the
//! input. Types: a new series takes the types the readers infer, with
//! timestamps in microseconds (or nanoseconds, if the input has them) and
//! UTC, and text for a column with no value in the records read to infer
//! them; a later append is read straight into the series' types where it
//! names the same columns, so `1` becomes `1.0` in a float column, and any
//! value that does not convert without loss is an error naming its column.
//!
//! Where arrow's readers would convert a value with loss (a time finer than
//! its column's unit, a JSON `2.5` into an integer column, a JSON number
//! into a time column), the column is read as text and converted here,
//! exactly or not at all: times by RFC 3339 (text without an offset is
//! UTC, whatever zone the column displays in), integers by their digits
//! (`3.0` is 3, `2.5` an error).

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use crate::series::schema::column_names;
use crate::{Pond, SeriesInfo, format_micros, validate_series_path};
use anyhow::{Context, Result, anyhow, bail};
use arrow::array::{
    Array, ArrayRef, AsArray, PrimitiveArray, RecordBatch, StringArray, new_null_array,
};
use arrow::compute::kernels::cast_utils::{Parser, string_to_datetime};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    ArrowTimestampType, DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::util::display::FormatOptions;
use clap::ValueEnum;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::sync::mpsc;

/// Rows per batch read from an input.
const BATCH_ROWS: usize = 8_192;
/// Records read to infer the types of CSV and NDJSON input.
const INFER_RECORDS: usize = 1_000;

/// The format of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line.
    Ndjson,
}

impl InputFormat {
    /// The format a file name's extension implies.
    fn of(name: &str) -> Option<Self> {
        let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "parquet" | "parq" | "pq" => Some(Self::Parquet),
            "ndjson" | "jsonl" | "json" => Some(Self::Ndjson),
            _ => None,
        }
    }
}

/// What `pond append` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct AppendRequest {
    pub(crate) series: String,
    pub(crate) inputs: Vec<String>,
    pub(crate) format: Option<InputFormat>,
    pub(crate) timestamp_column: Option<String>,
    /// The key a first append declares (the time column is added).
    pub(crate) key: Option<Vec<String>>,
}

/// An input in its turn: the first is opened before the append starts (its
/// columns plan the series'), the others when the reader gets to them.
enum Turn {
    Open(String, InputFormat, Batches),
    Later(String),
}

/// One input, opened: its name for messages, its format and its bytes.
struct Input {
    name: String,
    format: InputFormat,
    source: Source,
}

enum Source {
    /// A byte stream, with the records read for type inference in front.
    Stream(Box<dyn BufRead + Send>),
    /// A Parquet file (stdin is spooled to a temporary file first).
    Parquet(File),
}

pub(crate) async fn append(pond: &Pond, request: AppendRequest) -> Result<()> {
    let series = request.series.as_str();
    validate_series_path(series)?;
    let existing = pond.series_info(series).ok();
    if let (Some(info), Some(asked)) = (&existing, &request.timestamp_column)
        && &info.timestamp_column != asked
    {
        bail!(
            "series {series} has timestamp column {:?}, not {asked:?}",
            info.timestamp_column
        );
    }
    if request.inputs.iter().filter(|i| *i == "-").count() > 1 {
        bail!("stdin (-) can be read only once");
    }
    let progress = progress_bar(&request.inputs);
    // A missing input is an error before anything is written. Inputs are
    // opened one at a time, though: thousands of them must not hold a
    // file and a buffer each.
    let (first, rest) = request
        .inputs
        .split_first()
        .ok_or_else(|| anyhow!("no input given"))?;
    for name in rest {
        if name != "-" {
            File::open(name).with_context(|| format!("cannot open {name}"))?;
        }
    }
    let input = open(first, request.format, &progress)?;
    let (name, format) = (input.name.clone(), input.format);
    let (first_reader, schema) =
        super::guarded(&name, || reader(input, existing.as_ref(), &request, None))?;
    let mut readers = vec![Turn::Open(name, format, first_reader)];
    readers.extend(rest.iter().cloned().map(Turn::Later));
    let timestamp_column = match (&existing, &request.timestamp_column) {
        (Some(info), _) => info.timestamp_column.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => crate::default_timestamp_column(&schema).ok_or_else(|| {
            anyhow!(
                "no timestamp column: name it with --timestamp-column, or call it \
                 timestamp, ts, time or event_time (columns: {}; none is of a timestamp type)",
                column_names(&schema)
            )
        })?,
    };

    // Batches flow from the readers' blocking thread through a small
    // channel, so memory holds only a few of them.
    let (tx, rx) = mpsc::channel::<Result<RecordBatch>>(2);
    let target = Arc::clone(&schema);
    let ts = timestamp_column.clone();
    let (plan, bar, later, asked) = (
        Arc::clone(&schema),
        progress.clone(),
        existing.clone(),
        request.clone(),
    );
    let reading = tokio::task::spawn_blocking(move || {
        for turn in readers {
            let next = match turn {
                Turn::Open(name, format, reader) => Ok((name, format, reader)),
                Turn::Later(name) => open(&name, asked.format, &bar).and_then(|input| {
                    let (name, format) = (input.name.clone(), input.format);
                    super::guarded(&name, || reader(input, later.as_ref(), &asked, Some(&plan)))
                        .map(|(reader, _)| (name, format, reader))
                }),
            };
            let (name, format, mut reader) = match next {
                Ok(next) => next,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            let mut rows = 0;
            loop {
                // A reader that panics must end the stream with an error:
                // ending it quietly would commit the rows read so far.
                let next = super::guarded(&name, || Ok(reader.next()));
                let batch = match next {
                    Ok(None) => break,
                    Ok(Some(batch)) => batch.and_then(|b| {
                        no_null_times(&b, &ts, rows, &name, format)?;
                        rows += b.num_rows();
                        conform(&b, &target)
                    }),
                    Err(e) => Err(e),
                };
                let failed = batch.is_err();
                if tx.blocking_send(batch).is_err() || failed {
                    return;
                }
            }
        }
    });
    let stream = tokio_stream(rx).map(|r| {
        r.map_err(|e| crate::Error::from(DataFusionError::External(Box::new(DataError(e)))))
    });
    let options = crate::AppendOptions {
        key: request.key.clone(),
        ..Default::default()
    };
    let outcome = pond
        .append_stream_with_options(series, schema, stream, &timestamp_column, &options)
        .await
        .map_err(unwrap_data_error);
    progress.finish_and_clear();
    // On failure the reader is not waited for: it may be blocked on a
    // stdin that never ends (`tail -f … | pond append`).
    let outcome = outcome?;
    reading.await.context("the input reader panicked")?;
    // A mistyped path makes a new series: say so.
    let created = if existing.is_none() && outcome.version == 1 {
        "created the series; "
    } else {
        ""
    };
    eprintln!(
        "{created}appended version {} of {}: {} rows, {} to {}",
        outcome.version,
        outcome.series,
        outcome.row_count,
        format_micros(outcome.min_event_time),
        format_micros(outcome.max_event_time)
    );
    Ok(())
}

/// A reader's error, carried through the pond's error type unchanged.
#[derive(Debug)]
struct DataError(anyhow::Error);

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", super::one_line(&self.0))
    }
}

impl std::error::Error for DataError {}

/// The reader's own message when the append failed because of it.
fn unwrap_data_error(e: crate::Error) -> anyhow::Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(data) = err.downcast_ref::<DataError>() {
            return anyhow!("{data}");
        }
        source = err.source();
    }
    e.into()
}

fn tokio_stream<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A byte-count progress bar over all inputs, shown only on a terminal.
fn progress_bar(inputs: &[String]) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let sizes: Option<u64> = inputs
        .iter()
        .map(|i| (i != "-").then(|| std::fs::metadata(i).ok().map(|m| m.len()))?)
        .sum();
    // Cleared however the append ends: an error's line is then not
    // printed under a bar left on the screen.
    let bar = match sizes {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec}, {eta} left",
            )
            .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} read, {bytes_per_sec}")
                .expect("a valid template"),
        ),
    };
    bar.with_finish(ProgressFinish::AndClear)
}

fn open(name: &str, format: Option<InputFormat>, progress: &ProgressBar) -> Result<Input> {
    let format = match format.or_else(|| InputFormat::of(name)) {
        Some(f) => f,
        None if name == "-" => InputFormat::Csv,
        None => {
            bail!("{name}: cannot tell the format from the name; use --format csv|parquet|ndjson")
        }
    };
    let display = if name == "-" {
        "stdin".to_string()
    } else {
        name.to_string()
    };
    let file = (name != "-")
        .then(|| File::open(name).with_context(|| format!("cannot open {name}")))
        .transpose()?;
    let source = match (format, file) {
        (InputFormat::Parquet, Some(file)) => Source::Parquet(file),
        (InputFormat::Parquet, None) => {
            // Parquet needs to seek (its footer is at the end).
            let mut spool = tempfile::tempfile().context("spooling stdin to a temporary file")?;
            let stdin = progress.wrap_read(std::io::stdin());
            std::io::copy(&mut BufReader::new(stdin), &mut spool)
                .context("spooling stdin to a temporary file")?;
            Source::Parquet(spool)
        }
        (InputFormat::Csv | InputFormat::Ndjson, file) => {
            let bytes: Box<dyn Read + Send> = match file {
                Some(file) => Box::new(file),
                None => Box::new(std::io::stdin()),
            };
            let bytes = progress.wrap_read(bytes);
            Source::Stream(Box::new(BufReader::with_capacity(1 << 20, bytes)))
        }
    };
    Ok(Input {
        name: display,
        format,
        source,
    })
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// The batches of `input`, and the schema its rows are read into: the
/// series' types for the columns it has, inferred types for the rest. With
/// `first` (the schema of the inputs before it), every input must agree.
fn reader(
    input: Input,
    existing: Option<&SeriesInfo>,
    request: &AppendRequest,
    first: Option<&SchemaRef>,
) -> Result<(Batches, SchemaRef)> {
    let name = input.name.clone();
    let with_name = move |e: arrow::error::ArrowError| {
        let hint = if e.to_string().contains("missing from schema") {
            format!(
                " (a field first seen after the {INFER_RECORDS} records read to infer the \
                 columns; give it in an early record, or append it separately)"
            )
        } else {
            String::new()
        };
        anyhow!("{name}: {e}{hint}")
    };
    let (batches, schema): (Batches, SchemaRef) = match input.source {
        Source::Parquet(file) => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| anyhow!("{}: not a readable Parquet file: {e}", input.name))?;
            let schema = Arc::clone(builder.schema());
            let reader = builder
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| anyhow!("{}: {e}", input.name))?;
            let target = target_schema(&schema, existing, first);
            let (name, into) = (input.name.clone(), Arc::clone(&target));
            // A series' time column holds no NULL: say where one is before
            // the conversion into its type refuses it with no place.
            let time = existing.map(|info| info.timestamp_column.clone());
            let mut before = 0;
            let batches = reader.map(move |b| {
                let b = b.map_err(|e| anyhow!("{name}: {e}"))?;
                if let Some(time) = &time {
                    no_null_times(&b, time, before, &name, InputFormat::Parquet)?;
                }
                before += b.num_rows();
                cast_lossless(&b, &into).map_err(|e| anyhow!("{name}: {e}"))
            });
            (Box::new(batches), target)
        }
        Source::Stream(mut bytes) => {
            let (sample, whole) = sample_lines(&mut bytes, INFER_RECORDS + 1)
                .with_context(|| format!("reading {}", input.name))?;
            let mut header_only = false;
            let records = &sample[..whole];
            let inferred = match input.format {
                InputFormat::Csv => {
                    let format = arrow::csv::reader::Format::default().with_header(true);
                    let (inferred, rows) = format
                        .infer_schema(Cursor::new(records), Some(INFER_RECORDS))
                        .map_err(|e| anyhow!("{}: not readable as CSV: {e}", input.name))?;
                    // A header alone in a whole sample (not one record cut
                    // at its limit) types nothing.
                    header_only = rows == 0 && whole == sample.len();
                    inferred
                }
                _ => {
                    arrow::json::reader::infer_json_schema(
                        Cursor::new(records),
                        Some(INFER_RECORDS),
                    )
                    .map_err(|e| anyhow!("{}: not readable as NDJSON: {e}", input.name))?
                    .0
                }
            };
            if inferred.fields().is_empty() {
                bail!("{}: no columns (an empty input?)", input.name);
            }
            if let Some(f) = (inferred.fields().iter()).find(|f| f.name().trim() != f.name()) {
                bail!(
                    "{}: the column name {:?} begins or ends with a space (a header written \
                     as `a, b`? its values would keep the space too)",
                    input.name,
                    f.name()
                );
            }
            if inferred.fields().iter().any(|f| f.name().is_empty()) {
                bail!("{}: a column has no name", input.name);
            }
            let inferred = match input.format {
                InputFormat::Ndjson => {
                    nanoseconds_where_written(inferred, records, existing, request)
                }
                _ => inferred,
            };
            let schema = read_schema(&inferred, existing, request, first, &input.name)?;
            // The columns this input is the first to type: every one of a
            // new series, the series' new ones otherwise.
            let new: Vec<&Field> = (inferred.fields().iter())
                .filter(|f| first.is_none() && known_field(f.name(), existing, None).is_none())
                .map(|f| f.as_ref())
                .collect();
            // They would be text for good.
            if header_only && !new.is_empty() {
                bail!(
                    "{}: no row after the header, and a series takes the types of its \
                     columns from the first input that has them: put an input with rows \
                     first",
                    input.name
                );
            }
            let empty: Vec<&str> = (new.iter())
                .filter(|f| f.data_type() == &DataType::Null)
                .filter(|f| {
                    schema
                        .field_with_name(f.name())
                        .is_ok_and(|s| s.data_type() == &DataType::Utf8)
                })
                .map(|f| f.name().as_str())
                .collect();
            if !empty.is_empty() {
                eprintln!(
                    "note: {}: no value in the records read to infer types (up to \
                     {INFER_RECORDS}) for {}; the series stores {} as text",
                    input.name,
                    empty.join(", "),
                    if empty.len() == 1 { "it" } else { "them" }
                );
            }
            let wire = wire_schema(&schema, input.format);
            let all = Cursor::new(sample).chain(bytes);
            let batches: Batches = match input.format {
                InputFormat::Csv => Box::new(
                    arrow::csv::ReaderBuilder::new(Arc::clone(&wire))
                        .with_header(true)
                        .with_batch_size(BATCH_ROWS)
                        .build(all)
                        .map_err(with_name.clone())?
                        .map(move |b| b.map_err(with_name.clone())),
                ),
                _ => Box::new(
                    arrow::json::ReaderBuilder::new(Arc::clone(&wire))
                        .with_batch_size(BATCH_ROWS)
                        // A field first seen after the inferred records is an
                        // error, not silently dropped.
                        .with_strict_mode(true)
                        // Numbers into the columns read as text keep their
                        // digits, for `convert` to judge.
                        .with_coerce_primitive(true)
                        .build(BufReader::new(all))
                        .map_err(with_name.clone())?
                        .map(move |b| b.map_err(with_name.clone())),
                ),
            };
            let (name, format, into) = (input.name.clone(), input.format, Arc::clone(&schema));
            let mut before = 0;
            let batches = batches.map(move |b| {
                let b = b?;
                let converted = convert(&b, &into, before, &name, format);
                before += b.num_rows();
                converted
            });
            (Box::new(batches), schema)
        }
    };
    if let Some(first) = first
        && !same_columns(first, &schema)
    {
        bail!(
            "{}: its columns ({}) differ from the first input's ({}); inputs of one append must agree",
            input.name,
            column_names(&schema),
            column_names(first)
        );
    }
    Ok((batches, schema))
}

/// Bytes read at most to infer types: an input without `\n` (line ends of
/// `\r` alone, or one long line) is not read whole.
const SAMPLE_BYTES: u64 = 16 << 20;

/// The first `lines` lines of `bytes` (at most [`SAMPLE_BYTES`]), for type
/// inference; the reader goes on after them. With the length of the
/// sample's whole records: a record cut at the limit is not inferred from.
fn sample_lines(bytes: &mut dyn BufRead, lines: usize) -> std::io::Result<(Vec<u8>, usize)> {
    let mut sample = Vec::new();
    for _ in 0..lines {
        let room = SAMPLE_BYTES.saturating_sub(sample.len() as u64);
        if room == 0 || (&mut *bytes).take(room).read_until(b'\n', &mut sample)? == 0 {
            break;
        }
    }
    let whole = if sample.len() as u64 >= SAMPLE_BYTES && !sample.ends_with(b"\n") {
        sample
            .iter()
            .rposition(|&b| b == b'\n' || b == b'\r')
            .map_or(sample.len(), |end| end + 1)
    } else {
        sample.len()
    };
    Ok((sample, whole))
}

/// The schema text input is parsed into: per column, in the input's order,
/// the series' type if the series has the column, else the inferred type
/// with timestamps in UTC and at least microseconds; the timestamp column
/// of a new series is parsed as a timestamp even where inference saw text.
fn read_schema(
    inferred: &Schema,
    existing: Option<&SeriesInfo>,
    request: &AppendRequest,
    first: Option<&SchemaRef>,
    name: &str,
) -> Result<SchemaRef> {
    let ts = match existing {
        Some(info) => Some(info.timestamp_column.clone()),
        None => request
            .timestamp_column
            .clone()
            .or_else(|| crate::default_timestamp_column(inferred)),
    };
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| {
            let known = known_field(f.name(), existing, first);
            let data_type = match known {
                Some(k) => k.data_type().clone(),
                // Text, dates only, or no value in the records sampled: the
                // time column of a new series is read as times all the same.
                None if ts.as_deref() == Some(f.name().as_str()) => match f.data_type() {
                    DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Date32
                    | DataType::Date64
                    | DataType::Null => {
                        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                    }
                    other => utc(other),
                },
                None => utc(f.data_type()),
            };
            Field::new(f.name(), data_type, true)
        })
        .collect();
    if let Some(ts) = &ts
        && !fields.iter().any(|f| f.name() == ts)
    {
        bail!(
            "{name}: timestamp column {ts:?} is missing (columns: {})",
            column_names(inferred)
        );
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The column `name` as the first input of this append, else the series,
/// already has it.
fn known_field<'a>(
    name: &str,
    existing: Option<&'a SeriesInfo>,
    first: Option<&'a SchemaRef>,
) -> Option<&'a Field> {
    first
        .and_then(|s| s.field_with_name(name).ok())
        .or_else(|| existing.and_then(|i| i.schema.field_with_name(name).ok()))
}

/// Timestamps without a zone are UTC, and no coarser than microseconds; a
/// column with no value in the records sampled is text (arrow's readers
/// would read every later value of a `Null` column as NULL).
fn utc(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(unit, _) => {
            let unit = match unit {
                TimeUnit::Nanosecond => TimeUnit::Nanosecond,
                _ => TimeUnit::Microsecond,
            };
            DataType::Timestamp(unit, Some("UTC".into()))
        }
        DataType::Null => DataType::Utf8,
        other => other.clone(),
    }
}

/// `inferred` (from NDJSON, which infers no times) with the time column of
/// a new series as nanoseconds if a time in `sample` has more than six
/// digits of fraction, as arrow's CSV inference does.
fn nanoseconds_where_written(
    inferred: Schema,
    sample: &[u8],
    existing: Option<&SeriesInfo>,
    request: &AppendRequest,
) -> Schema {
    let Some(ts) = (match existing {
        Some(_) => None,
        None => (request.timestamp_column.clone())
            .or_else(|| crate::default_timestamp_column(&inferred)),
    }) else {
        return inferred;
    };
    let fine = sample.split(|b| *b == b'\n').any(|line| {
        serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|record| Some(fraction_digits(record.get(&ts)?.as_str()?) > 6))
            .unwrap_or(false)
    });
    if !fine {
        return inferred;
    }
    let fields: Vec<Field> = (inferred.fields().iter())
        .map(|f| match f.data_type() {
            DataType::Utf8 if f.name() == &ts => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(TimeUnit::Nanosecond, None)),
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new(fields)
}

/// Digits after the seconds' point of an RFC 3339 time (`…:SS.fff…`).
fn fraction_digits(text: &str) -> usize {
    match text.as_bytes().get(19) {
        Some(b'.') => text[20..].bytes().take_while(u8::is_ascii_digit).count(),
        _ => 0,
    }
}

/// The schema an input of `format` is read with: `schema`, but text where
/// arrow's reader would convert with loss (see [`convert`]): times, dates
/// and decimals, and for NDJSON integers; and text for a `Null` column of the series, whose
/// values must all be empty.
fn wire_schema(schema: &SchemaRef, format: InputFormat) -> SchemaRef {
    let fields: Vec<Field> = (schema.fields().iter())
        .map(|f| {
            let text = match f.data_type() {
                DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
                | DataType::Null => true,
                t => format == InputFormat::Ndjson && t.is_integer(),
            };
            let data_type = if text {
                DataType::Utf8
            } else {
                f.data_type().clone()
            };
            Field::new(f.name(), data_type, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch`, read with [`wire_schema`], in `target`'s types: every value
/// converted exactly, or an error naming its column and line. `before`
/// records of the input came before `batch`.
fn convert(
    batch: &RecordBatch,
    target: &SchemaRef,
    before: usize,
    name: &str,
    format: InputFormat,
) -> Result<RecordBatch> {
    let columns = (batch.columns().iter().zip(target.fields()))
        .map(|(column, field)| {
            let to = field.data_type();
            if column.data_type() == to {
                return Ok(Arc::clone(column));
            }
            let text = column.as_string::<i32>();
            let at = |row: usize| {
                format!(
                    "{name}: {}: column {:?}: {:?}",
                    place(format, before + row),
                    field.name(),
                    text.value(row)
                )
            };
            match to {
                DataType::Timestamp(unit, zone) => {
                    let zone = zone.clone();
                    match unit {
                        TimeUnit::Second => times::<TimestampSecondType>(text, zone, &at),
                        TimeUnit::Millisecond => times::<TimestampMillisecondType>(text, zone, &at),
                        TimeUnit::Microsecond => times::<TimestampMicrosecondType>(text, zone, &at),
                        TimeUnit::Nanosecond => times::<TimestampNanosecondType>(text, zone, &at),
                    }
                }
                DataType::Date32 | DataType::Date64 => dates(text, to, &at),
                DataType::Time32(unit) | DataType::Time64(unit) => {
                    // Read to the nanosecond, then kept only if exact in
                    // the column's unit (arrow's parser would cut digits).
                    let nanos = DataType::Time64(TimeUnit::Nanosecond);
                    let read = parsed(column, &nanos, text, &at, "not a time of day of type")?;
                    let per_tick: i64 = match unit {
                        TimeUnit::Second => 1_000_000_000,
                        TimeUnit::Millisecond => 1_000_000,
                        TimeUnit::Microsecond => 1_000,
                        TimeUnit::Nanosecond => 1,
                    };
                    let values = read.as_primitive::<arrow::datatypes::Time64NanosecondType>();
                    if let Some(row) = (0..values.len())
                        .find(|&row| values.is_valid(row) && values.value(row) % per_tick != 0)
                    {
                        bail!("{}: finer than the column's unit ({unit:?})", at(row));
                    }
                    Ok(cast_with_options(&read, to, &CastOptions::default())?)
                }
                DataType::Null => match (0..text.len()).find(|&row| text.is_valid(row)) {
                    None => Ok(new_null_array(to, text.len())),
                    Some(row) => bail!(
                        "{}: the series' column has no type (it was empty wherever it was \
                         written), so no value can be stored in it",
                        at(row)
                    ),
                },
                DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale) => {
                    // arrow's parser drops digits past the scale.
                    let scale = usize::try_from(*scale).unwrap_or(0);
                    let cut = (0..text.len()).find(|&row| {
                        text.is_valid(row)
                            && text
                                .value(row)
                                .split_once('.')
                                .is_some_and(|(_, fraction)| {
                                    let digits = fraction.trim_end();
                                    digits.bytes().all(|b| b.is_ascii_digit())
                                        && digits.bytes().skip(scale).any(|b| b != b'0')
                                })
                    });
                    if let Some(row) = cut {
                        bail!("{}: more digits than the column's scale ({scale})", at(row));
                    }
                    parsed(column, to, text, &at, "not a number of type")
                }
                _ => {
                    // A JSON number written with a zero fraction or an
                    // exponent (`3.0`, `1e3`) is the integer it is exactly.
                    let whole: StringArray = text.iter().map(|v| v.map(whole_number)).collect();
                    parsed(&whole, to, text, &at, "not a whole number of type")
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(target), columns).map_err(Into::into)
}

/// `input` (text) cast to `to`; text that does not convert is an error
/// naming its place (`at`) and `what` it is not.
fn parsed(
    input: &dyn Array,
    to: &DataType,
    text: &StringArray,
    at: &dyn Fn(usize) -> String,
    what: &str,
) -> Result<ArrayRef> {
    // Invalid text becomes NULL here, and an error below.
    let cast = cast_with_options(input, to, &CastOptions::default())?;
    match (0..text.len()).find(|&row| text.is_valid(row) && cast.is_null(row)) {
        None => Ok(cast),
        Some(row) => bail!("{}: {what} {to}", at(row)),
    }
}

/// The digits of the integer `text` writes with a zero fraction or an
/// exponent (`3.0`, `1e3`), else `text`.
fn whole_number(text: &str) -> std::borrow::Cow<'_, str> {
    if let Some((int, fraction)) = text.split_once('.')
        && !int.is_empty()
        && fraction.bytes().all(|b| b == b'0')
    {
        return int.into();
    }
    if text.contains(['e', 'E'])
        && let Ok(value) = text.parse::<f64>()
        // Below 2^53, where every integer is a float exactly.
        && value.fract() == 0.0
        && value.abs() < 9_007_199_254_740_992.0
    {
        return format!("{}", value as i64).into();
    }
    text.into()
}

/// Times as text into `T`'s unit, exactly: text without an offset is UTC;
/// a time finer than the unit, or beyond its range, is an error.
fn times<T: ArrowTimestampType>(
    text: &StringArray,
    zone: Option<Arc<str>>,
    at: &dyn Fn(usize) -> String,
) -> Result<ArrayRef> {
    let nanos_per_unit = i128::from(crate::time::nanos_per(T::UNIT));
    let values = (0..text.len())
        .map(|row| {
            if text.is_null(row) {
                return Ok(None);
            }
            let value = text.value(row);
            // Text without an offset is UTC (DESIGN.md), whatever zone the
            // column displays in.
            let parsed = string_to_datetime(&chrono::Utc, value)
                .map(|t| (t.timestamp(), t.timestamp_subsec_nanos()));
            let (seconds, subsecond) = parsed.map_err(|e| {
                let reason = e.to_string();
                let reason = reason.rsplit(": ").next().unwrap_or_default();
                anyhow!(
                    "{}: not a time ({reason}; RFC 3339, such as 2024-01-01T00:00:00Z)",
                    at(row)
                )
            })?;
            // arrow's parser skips digits past the ninth.
            if value.get(29..).is_some_and(|rest| {
                rest.bytes()
                    .take(fraction_digits(value).saturating_sub(9))
                    .any(|b| b != b'0')
            }) {
                bail!("{}: finer than nanoseconds; nothing is rounded", at(row));
            }
            let nanos = i128::from(seconds) * 1_000_000_000 + i128::from(subsecond);
            if nanos % nanos_per_unit != 0 {
                bail!(
                    "{}: finer than the column's unit ({}); nothing is rounded",
                    at(row),
                    unit_name(T::UNIT)
                );
            }
            i64::try_from(nanos / nanos_per_unit)
                .map(Some)
                .map_err(|_| anyhow!("{}: beyond the range of {}", at(row), unit_name(T::UNIT)))
        })
        .collect::<Result<PrimitiveArray<T>>>()?;
    Ok(Arc::new(values.with_timezone_opt(zone)))
}

/// Dates as text (`2024-01-31`, or a time at midnight) into `to`, a
/// `Date32` or `Date64`: a time of day is an error, not dropped.
fn dates(text: &StringArray, to: &DataType, at: &dyn Fn(usize) -> String) -> Result<ArrayRef> {
    let days = (0..text.len())
        .map(|row| {
            if text.is_null(row) {
                return Ok(None);
            }
            let value = text.value(row);
            // A date alone, in the forms arrow reads (`2024-1-5`,
            // `+10000-01-01`).
            if value.len() <= 10 || value.starts_with(['+', '-']) {
                return arrow::datatypes::Date32Type::parse(value)
                    .map(|days| Some(i64::from(days)))
                    .ok_or_else(|| anyhow!("{}: not a date (such as 2024-01-31)", at(row)));
            }
            let time = string_to_datetime(&chrono::Utc, value)
                .map_err(|_| anyhow!("{}: not a date (such as 2024-01-31)", at(row)))?;
            let seconds = time.timestamp();
            if seconds.rem_euclid(86_400) != 0 || time.timestamp_subsec_nanos() != 0 {
                bail!("{}: has a time of day; the column holds dates", at(row));
            }
            Ok(Some(seconds.div_euclid(86_400)))
        })
        .collect::<Result<Vec<Option<i64>>>>()?;
    Ok(match to {
        DataType::Date64 => Arc::new(arrow::array::Date64Array::from_iter(
            days.into_iter().map(|d| d.map(|d| d * 86_400_000)),
        )),
        _ => Arc::new(arrow::array::Date32Array::from_iter(
            days.into_iter()
                .map(|d| d.map(i32::try_from).transpose())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| anyhow!("a date beyond the range of Date32"))?,
        )),
    })
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "seconds",
        TimeUnit::Millisecond => "milliseconds",
        TimeUnit::Microsecond => "microseconds",
        TimeUnit::Nanosecond => "nanoseconds",
    }
}

/// The schema a Parquet input is converted to: the series' types for the
/// columns the series has, the file's own for the rest.
fn target_schema(
    file: &Schema,
    existing: Option<&SeriesInfo>,
    first: Option<&SchemaRef>,
) -> SchemaRef {
    let fields: Vec<Field> = file
        .fields()
        .iter()
        .map(|f| {
            let known = known_field(f.name(), existing, first);
            let data_type = known.map_or_else(
                || match f.data_type() {
                    DataType::Null => DataType::Utf8,
                    other => other.clone(),
                },
                |k| k.data_type().clone(),
            );
            // A column the series lacks is new and must be nullable.
            Field::new(f.name(), data_type, known.is_none_or(|k| k.is_nullable()))
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` with each column converted to `target`'s type, if every value
/// converts without loss (converting it back gives the same value).
fn cast_lossless(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            let to = field.data_type();
            if column.data_type() == to {
                return Ok(Arc::clone(column));
            }
            let refused = || {
                anyhow!(
                    "column {:?}: values of type {} do not convert to the series' type {to} without loss",
                    field.name(),
                    column.data_type()
                )
            };
            if let Some(why) = not_the_same_kind(column.data_type(), to) {
                bail!(
                    "column {:?}: values of type {} are not stored in the series' type {to}: {why}",
                    field.name(),
                    column.data_type()
                );
            }
            // A time without a zone is UTC to pond, and a zone only says
            // how a time displays: the instants stay and the zone is
            // relabelled (arrow's cast would move naive wall-clock times
            // into the zone).
            let relabelled;
            let column = match (column.data_type(), to) {
                (DataType::Timestamp(_, from_zone), DataType::Timestamp(_, to_zone))
                    if from_zone != to_zone =>
                {
                    relabelled = relabel_zone(column, to_zone.clone());
                    &relabelled
                }
                _ => column,
            };
            let cast: ArrayRef = cast_with_options(column, to, &options).map_err(|_| refused())?;
            let back = cast_with_options(&cast, column.data_type(), &options).map_err(|_| refused())?;
            if back.as_ref() != column.as_ref() {
                return Err(refused());
            }
            Ok(cast)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(target), columns).map_err(Into::into)
}

/// Why values of type `from` are never stored in a column of type `to`,
/// though arrow casts them: numbers are not times (an epoch count would
/// become ticks of the column's unit), and flags are not numbers.
fn not_the_same_kind(from: &DataType, to: &DataType) -> Option<&'static str> {
    let temporal = |t: &DataType| {
        t.is_temporal() || matches!(t, DataType::Duration(_) | DataType::Interval(_))
    };
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    if text(from) || text(to) {
        // Text converts when it reads back the same.
        return None;
    }
    if temporal(to) && !temporal(from) {
        return Some("numbers are not times (convert them to a timestamp type first)");
    }
    if temporal(from) && !temporal(to) {
        return Some("times are not numbers");
    }
    if (*from == DataType::Boolean) != (*to == DataType::Boolean) {
        return Some("true and false are not numbers");
    }
    None
}

/// `times` (timestamps) with `zone`, the same instants.
fn relabel_zone(times: &ArrayRef, zone: Option<Arc<str>>) -> ArrayRef {
    use arrow::datatypes::{
        TimestampMicrosecondType as Us, TimestampMillisecondType as Ms,
        TimestampNanosecondType as Ns, TimestampSecondType as S,
    };
    match times.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            Arc::new(times.as_primitive::<S>().clone().with_timezone_opt(zone))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Arc::new(times.as_primitive::<Ms>().clone().with_timezone_opt(zone))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Arc::new(times.as_primitive::<Us>().clone().with_timezone_opt(zone))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Arc::new(times.as_primitive::<Ns>().clone().with_timezone_opt(zone))
        }
        _ => Arc::clone(times),
    }
}

/// An error naming the input and line of the first row without a time;
/// `before` rows of the input came before `batch`.
fn no_null_times(
    batch: &RecordBatch,
    column: &str,
    before: usize,
    name: &str,
    format: InputFormat,
) -> Result<()> {
    let Some(times) = batch.column_by_name(column) else {
        return Ok(());
    };
    let Some(row) = (0..times.len()).find(|&i| times.is_null(i)) else {
        return Ok(());
    };
    bail!(
        "{name}: {}: the timestamp column {column:?} is empty (NULL)",
        place(format, before + row)
    )
}

/// Where record `row` (from 0) of an input is, for messages.
fn place(format: InputFormat, row: usize) -> String {
    match format {
        // The header is line 1.
        InputFormat::Csv => format!("line {}", row + 2),
        InputFormat::Ndjson => format!("line {}", row + 1),
        InputFormat::Parquet => format!("row {}", row + 1),
    }
}

/// A batch as read, in the schema of the first input (inputs after the
/// first may order their columns differently).
fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == target.fields() {
        return Ok(batch.clone());
    }
    let columns = target
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .ok_or_else(|| anyhow!("column {:?} is missing", f.name()))
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(target), columns).map_err(Into::into)
}

fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().all(|f| {
            b.field_with_name(f.name())
                .is_ok_and(|g| g.data_type() == f.data_type())
        })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array};

    use super::*;

    fn one_column(array: ArrayRef) -> RecordBatch {
        RecordBatch::try_from_iter([("v", array)]).unwrap()
    }

    fn target(data_type: DataType) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", data_type, true)]))
    }

    #[test]
    fn integers_go_into_a_float_column() {
        let batch = one_column(Arc::new(Int64Array::from(vec![1, -2, 3])));
        let cast = cast_lossless(&batch, &target(DataType::Float64)).unwrap();
        let values = cast
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(values.values(), &[1.0, -2.0, 3.0]);
    }

    #[test]
    fn fractions_do_not_go_into_an_integer_column() {
        let batch = one_column(Arc::new(Float64Array::from(vec![1.0, 2.5])));
        let err = cast_lossless(&batch, &target(DataType::Int64)).unwrap_err();
        assert!(err.to_string().contains("without loss"), "{err}");
        let whole = one_column(Arc::new(Float64Array::from(vec![1.0, 2.0])));
        assert!(cast_lossless(&whole, &target(DataType::Int64)).is_ok());
    }

    #[test]
    fn huge_integers_do_not_go_into_a_float_column() {
        let batch = one_column(Arc::new(Int64Array::from(vec![(1 << 53) + 1])));
        assert!(cast_lossless(&batch, &target(DataType::Float64)).is_err());
    }

    #[test]
    fn fraction_digits_are_counted_after_the_seconds() {
        assert_eq!(fraction_digits("2024-01-01T00:00:00Z"), 0);
        assert_eq!(fraction_digits("2024-01-01T00:00:00.5-03:00"), 1);
        assert_eq!(fraction_digits("2024-01-01 00:00:00.123456789Z"), 9);
        assert_eq!(fraction_digits("2024-01-01"), 0);
        assert_eq!(fraction_digits("2024-01-01T00:00:00."), 0);
    }

    #[test]
    fn formats_follow_extensions() {
        assert_eq!(InputFormat::of("a/b.CSV"), Some(InputFormat::Csv));
        assert_eq!(InputFormat::of("x.parquet"), Some(InputFormat::Parquet));
        assert_eq!(InputFormat::of("x.jsonl"), Some(InputFormat::Ndjson));
        assert_eq!(InputFormat::of("x.txt"), None);
    }
}
