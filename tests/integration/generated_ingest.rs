//! A generative test of `pond append`: random mutations of valid CSV, NDJSON
//! and Parquet inputs (truncation, bit flips, wrong types, huge fields,
//! invalid UTF-8, zone-less and zoned times, NULL times, duplicate headers,
//! ragged rows), appended to new and existing series through the command
//! line's own code, in this process (`pond::cli::execute`, which is all the
//! binary's `main` runs). Each case either appends exactly one version, or
//! fails with exit status 1 and one line of error and leaves every file of
//! the pond byte-identical. Nothing panics, and `pond check` finds no
//! garbage and no damage.
//!
//! `POND_GEN_INGEST_CASES` sets the number of cases (default 2,000) and
//! `POND_GEN_SEED` the seed; `POND_GEN_CASE` runs one case.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::TimeUnit;
use futures::FutureExt;
use parquet::arrow::ArrowWriter;
use pond::Pond;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::common::timestamps;

const DEFAULT_CASES: usize = 2_000;
const DEFAULT_SEED: u64 = 20_261_125;
/// Cases per pond: a new pond now and then keeps the snapshots small.
const CASES_PER_POND: usize = 50;
/// The series every pond starts with, whose schema appends must meet.
const BASE: &str = "/fuzz/base";
const BASE_CSV: &str = "ts,temp,label,count\n\
    2024-01-01T00:00:00Z,20.5,a,1\n\
    2024-01-01T00:00:10Z,21.0,,2\n";

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The hashes of files' bytes, by path, size and modification time, so
/// that unchanged files are not read again for every case.
#[derive(Default)]
struct Hashes(HashMap<(std::path::PathBuf, u64, std::time::SystemTime), [u8; 32]>);

impl Hashes {
    /// Every file under `root` with its bytes' hash.
    fn snapshot(&mut self, root: &Path) -> BTreeMap<String, [u8; 32]> {
        let mut files = BTreeMap::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let meta = entry.metadata().unwrap();
                if meta.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let key = (path.clone(), meta.len(), meta.modified().unwrap());
                let hash = *self
                    .0
                    .entry(key)
                    .or_insert_with(|| Sha256::digest(std::fs::read(&path).unwrap()).into());
                let name = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(name, hash);
            }
        }
        files
    }
}

/// A time as a CSV or JSON string, in one of the forms people send.
fn time_text(rng: &mut StdRng, second: i64) -> String {
    let t = chrono::DateTime::from_timestamp(1_704_067_200 + second, 0).unwrap();
    match rng.random_range(0..6) {
        0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        1 => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        2 => t.format("%Y-%m-%dT%H:%M:%S%.6f+05:30").to_string(),
        3 => t.format("%Y-%m-%dT%H:%M:%S.5-03:00").to_string(),
        4 => t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        _ => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
    }
}

fn valid_csv(rng: &mut StdRng, rows: usize) -> String {
    let mut columns = vec!["ts", "temp", "label", "count"];
    if rng.random_bool(0.2) {
        columns.swap(0, 2);
    }
    if rng.random_bool(0.1) {
        columns.pop();
    }
    let mut text = columns.join(",") + "\n";
    let start = rng.random_range(0..100_000);
    for r in 0..rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match *c {
                "ts" => {
                    let second = start + r as i64 * rng.random_range(-5..60);
                    time_text(rng, second)
                }
                "temp" => format!("{:.2}", rng.random_range(-40.0..60.0)),
                "label" => ["a", "b", "", "x y"].choose(rng).unwrap().to_string(),
                _ => rng.random_range(0..1_000).to_string(),
            })
            .collect();
        text += &(cells.join(",") + "\n");
    }
    text
}

fn valid_ndjson(rng: &mut StdRng, rows: usize) -> String {
    let start = rng.random_range(0..100_000);
    (0..rows)
        .map(|r| {
            let mut object = serde_json::Map::new();
            let second = start + r as i64 * rng.random_range(-5..60);
            object.insert("ts".into(), time_text(rng, second).into());
            object.insert("temp".into(), rng.random_range(-40.0..60.0f64).into());
            if rng.random_bool(0.8) {
                object.insert("label".into(), (*["a", "b"].choose(rng).unwrap()).into());
            }
            object.insert("count".into(), rng.random_range(0..1_000).into());
            serde_json::Value::Object(object).to_string() + "\n"
        })
        .collect()
}

fn valid_parquet(rng: &mut StdRng, rows: usize) -> Vec<u8> {
    let units = [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ];
    let unit = *units.choose(rng).unwrap();
    let zone = *[None, Some("UTC"), Some("+05:30")].choose(rng).unwrap();
    let per_second = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let start = 1_704_067_200 + rng.random_range(0..100_000i64);
    let times: Vec<i64> = (0..rows as i64)
        .map(|r| (start + r * rng.random_range(0..60)) * per_second)
        .collect();
    let mut columns: Vec<(&str, ArrayRef)> = vec![("ts", timestamps(unit, zone, times))];
    // Now and then a column of another type than the series has.
    columns.push(match rng.random_range(0..10) {
        0 => (
            "temp",
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|r| format!("t{r}")),
            )),
        ),
        1 => (
            "temp",
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        ),
        _ => (
            "temp",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|r| r as f64 / 4.0),
            )),
        ),
    });
    if rng.random_bool(0.7) {
        columns.push((
            "label",
            Arc::new(StringArray::from_iter(
                (0..rows).map(|r| (r % 3 != 0).then_some("p")),
            )),
        ));
    }
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

/// One random damage to a text input, or to any input's bytes.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>, text: bool) -> &'static str {
    let lines = |bytes: &[u8]| -> Vec<Vec<u8>> {
        bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
    };
    let at = |rng: &mut StdRng, bytes: &[u8]| rng.random_range(0..=bytes.len());
    let choice = if text {
        rng.random_range(0..11)
    } else {
        rng.random_range(0..3)
    };
    match choice {
        0 => {
            let n = at(rng, bytes);
            bytes.truncate(n);
            "truncated"
        }
        1 => {
            for _ in 0..rng.random_range(1..8) {
                if !bytes.is_empty() {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] ^= 1 << rng.random_range(0..8);
                }
            }
            "bits flipped"
        }
        2 => {
            let i = at(rng, bytes);
            bytes.splice(i..i, [0xff, 0xfe, 0xc3]);
            "invalid UTF-8"
        }
        3 => {
            // A huge field.
            let i = at(rng, bytes);
            let big = if rng.random_bool(0.5) {
                "9".repeat(rng.random_range(100..5_000))
            } else {
                "x".repeat(rng.random_range(10_000..300_000))
            };
            bytes.splice(i..i, big.into_bytes());
            "huge field"
        }
        4 => {
            // A value of the wrong type in place of a number or a time.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let wrong = *[
                "abc",
                "NaN",
                "1e999",
                "-",
                "true",
                "2024-13-45T99:99:99Z",
                "null",
                "\"\"",
            ]
            .choose(rng)
            .unwrap();
            let mut out = text.clone();
            if let Some(pos) = text.find(|c: char| c.is_ascii_digit()) {
                let end = text[pos..]
                    .find([',', '\n', '"', '}'])
                    .map_or(text.len(), |e| pos + e);
                out.replace_range(pos..end, wrong);
            }
            *bytes = out.into_bytes();
            "wrong type"
        }
        5 => {
            // A NULL time: the cell emptied, or JSON null.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let out = if text.starts_with('{') || text.contains("\"ts\"") {
                let start = text.find("\"ts\":").map(|p| p + 5);
                match start {
                    Some(s) => {
                        let end = text[s..].find([',', '}']).map_or(text.len(), |e| s + e);
                        format!("{}null{}", &text[..s], &text[end..])
                    }
                    None => text,
                }
            } else {
                let mut ls: Vec<String> = text.lines().map(str::to_string).collect();
                let header: Vec<&str> = ls
                    .first()
                    .map(|h| h.split(',').collect())
                    .unwrap_or_default();
                if let (Some(col), true) = (header.iter().position(|c| *c == "ts"), ls.len() > 1) {
                    let row = rng.random_range(1..ls.len());
                    let mut cells: Vec<String> = ls[row].split(',').map(str::to_string).collect();
                    if col < cells.len() {
                        cells[col].clear();
                    }
                    ls[row] = cells.join(",");
                }
                ls.join("\n") + "\n"
            };
            *bytes = out.into_bytes();
            "NULL time"
        }
        6 => {
            // A duplicate header or key.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let out = if text.starts_with('{') {
                text.replacen("\"temp\":", "\"temp\":1,\"temp\":", 1)
            } else {
                text.replacen("temp", "temp,temp", 1)
            };
            *bytes = out.into_bytes();
            "duplicate column"
        }
        7 => {
            // A ragged row: a cell more or less.
            let mut ls = lines(bytes);
            if ls.len() > 1 {
                let i = rng.random_range(1..ls.len());
                if rng.random_bool(0.5) {
                    ls[i].extend_from_slice(b",extra");
                } else if let Some(p) = ls[i].iter().rposition(|b| *b == b',') {
                    ls[i].truncate(p);
                }
            }
            *bytes = ls.join(&b'\n');
            "ragged row"
        }
        8 => {
            // Only a header, or nothing at all.
            let ls = lines(bytes);
            *bytes = if rng.random_bool(0.5) {
                ls.first().cloned().unwrap_or_default()
            } else {
                Vec::new()
            };
            "no rows"
        }
        9 => {
            // Rows shuffled: out of time order.
            let mut ls = lines(bytes);
            if ls.len() > 2 {
                let i = rng.random_range(1..ls.len());
                let j = rng.random_range(1..ls.len());
                ls.swap(i, j);
            }
            *bytes = ls.join(&b'\n');
            "shuffled"
        }
        _ => {
            // A stray quote.
            let i = at(rng, bytes);
            bytes.insert(i, b'"');
            "stray quote"
        }
    }
}

/// What one case did.
enum Outcome {
    Appended,
    Refused,
    /// Refused because a reader panicked on the damaged input; the command
    /// caught it and failed as for any bad input.
    RefusedReaderPanic,
}

struct Case {
    series: String,
    file: std::path::PathBuf,
    format: Option<&'static str>,
    what: String,
}

fn generate(rng: &mut StdRng, index: usize, dir: &Path) -> Case {
    let series = if rng.random_bool(0.6) {
        BASE.to_string()
    } else {
        format!("/fuzz/new{index}")
    };
    let rows = rng.random_range(1..40);
    let (mut bytes, extension, text) = match rng.random_range(0..20) {
        0..=8 => (valid_csv(rng, rows).into_bytes(), "csv", true),
        9..=14 => (valid_ndjson(rng, rows).into_bytes(), "ndjson", true),
        _ => (valid_parquet(rng, rows), "parquet", false),
    };
    let mut what = vec![extension.to_string()];
    let mutations = *[0, 1, 1, 1, 2, 3].choose(rng).unwrap();
    for _ in 0..mutations {
        what.push(mutate(rng, &mut bytes, text).to_string());
    }
    // A name without the extension now and then: the format is then given.
    let (name, format) = if rng.random_bool(0.2) {
        (format!("input{index}.data"), Some(extension))
    } else {
        (format!("input{index}.{extension}"), None)
    };
    let file = dir.join(name);
    std::fs::write(&file, &bytes).unwrap();
    Case {
        series,
        file,
        format,
        what: what.join(", "),
    }
}

async fn run_case(
    pond: &Pond,
    pond_dir: &Path,
    hashes: &mut Hashes,
    case: &Case,
) -> Result<Outcome, String> {
    let location = pond_dir.to_str().unwrap().to_string();
    let before = hashes.snapshot(pond_dir);
    let versions = |pond: &Pond| pond.series_info(&case.series).map_or(0, |s| s.versions);
    pond.refresh().await.unwrap();
    let versions_before = versions(pond);
    // Without automatic compaction, so that a success is exactly one more
    // version and one more data file.
    let mut args = vec![
        "pond".to_string(),
        "--auto-compact".into(),
        "0".into(),
        "--pond".into(),
        location.clone(),
        "append".into(),
        case.series.clone(),
        case.file.to_str().unwrap().into(),
    ];
    if let Some(format) = case.format {
        args.extend(["--format".into(), format.into()]);
    }
    // A panic shows as one, not as a failed test.
    let result = AssertUnwindSafe(pond::cli::execute(args))
        .catch_unwind()
        .await;
    let after = hashes.snapshot(pond_dir);
    pond.refresh().await.unwrap();
    let versions_after = versions(pond);
    match result {
        Err(panic) => Err(format!(
            "the command panicked: {:?}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
        )),
        Ok(Ok(())) if versions_after == versions_before + 1 => {
            // Files are immutable, but for the log's pointer to its newest
            // checkpoint; an append adds one data file.
            let rewritten: Vec<_> = before
                .iter()
                .filter(|(n, h)| after.get(*n) != Some(h) && !n.ends_with("_last_checkpoint"))
                .map(|(n, _)| n)
                .collect();
            let data_files = after
                .keys()
                .filter(|k| k.starts_with("data") && !before.contains_key(*k))
                .count();
            if !rewritten.is_empty() || data_files != 1 {
                return Err(format!(
                    "an append changed {rewritten:?} and added {data_files} data files"
                ));
            }
            Ok(Outcome::Appended)
        }
        Ok(Ok(())) => Err(format!(
            "success, but the series went from {versions_before} to {versions_after} versions"
        )),
        Ok(Err(failure)) => {
            if failure.status != 1 {
                return Err(format!(
                    "exit status {}: {}",
                    failure.status, failure.message
                ));
            }
            if failure.message.is_empty() || failure.message.contains('\n') {
                return Err(format!("not one line of error: {:?}", failure.message));
            }
            if failure.message.contains("panicked") {
                return Err(format!("a panic inside: {}", failure.message));
            }
            if before != after {
                let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
                let gone: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
                return Err(format!(
                    "refused ({}) but the pond changed: added {added:?}, removed {gone:?}",
                    failure.message
                ));
            }
            Ok(
                if failure
                    .message
                    .contains("damaged input made the reader fail")
                {
                    Outcome::RefusedReaderPanic
                } else {
                    Outcome::Refused
                },
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_ingest_cases_2_000_append_one_version_or_change_nothing() {
    let seed = env("POND_GEN_SEED").unwrap_or(DEFAULT_SEED);
    let cases: usize = env("POND_GEN_INGEST_CASES").unwrap_or(DEFAULT_CASES);
    let only: Option<usize> = env("POND_GEN_CASE");
    let started = Instant::now();
    let inputs = tempfile::tempdir().unwrap();
    let (mut appended, mut refused, mut reader_panics) = (0usize, 0usize, 0usize);
    let mut hashes = Hashes::default();
    let indices: Vec<usize> = match only {
        Some(i) => vec![i],
        None => (0..cases).collect(),
    };
    for chunk in indices.chunks(CASES_PER_POND) {
        let ponds = tempfile::tempdir().unwrap();
        let pond_dir = ponds.path().join("p");
        let pond = Pond::create_with_options(pond_dir.to_str().unwrap(), crate::common::manual())
            .await
            .unwrap();
        let base = inputs.path().join("base.csv");
        std::fs::write(&base, BASE_CSV).unwrap();
        let created = pond::cli::execute([
            "pond",
            "--auto-compact",
            "0",
            "--pond",
            pond_dir.to_str().unwrap(),
            "append",
            BASE,
            base.to_str().unwrap(),
        ])
        .await;
        assert_eq!(created, Ok(()));
        for &index in chunk {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let case = generate(&mut rng, index, inputs.path());
            match run_case(&pond, &pond_dir, &mut hashes, &case).await {
                Ok(Outcome::Appended) => appended += 1,
                Ok(Outcome::Refused) => refused += 1,
                Ok(Outcome::RefusedReaderPanic) => {
                    refused += 1;
                    reader_panics += 1;
                    eprintln!("case {index} ({}): a reader panicked; caught", case.what);
                }
                Err(problem) => {
                    let input = std::fs::read(&case.file).unwrap();
                    panic!(
                        "seed {seed}, case {index} (rerun with POND_GEN_SEED={seed} \
                         POND_GEN_CASE={index}): appending {} ({}) to {}: {problem}\n\
                         input ({} bytes): {:?}",
                        case.file.display(),
                        case.what,
                        case.series,
                        input.len(),
                        String::from_utf8_lossy(&input[..input.len().min(2_000)])
                    );
                }
            }
            std::fs::remove_file(&case.file).unwrap();
        }
        let report = pond.check().await.unwrap();
        assert!(
            report.garbage.is_empty() && report.problems.is_empty(),
            "check after cases {chunk:?}: {report:?}"
        );
    }
    eprintln!(
        "generated ingest cases: {} run in {:.1?}: {appended} appended one version, \
         {refused} refused with the pond unchanged ({reader_panics} of them after a \
         third-party reader panicked on the damaged input, caught)",
        appended + refused,
        started.elapsed()
    );
    if only.is_none() {
        assert!(
            appended * 10 >= cases && refused * 10 >= cases,
            "both outcomes must be common: {appended} appended, {refused} refused"
        );
    }
}
