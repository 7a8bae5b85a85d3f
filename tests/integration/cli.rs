//! The `pond` binary against temporary ponds: every command and format,
//! every bad input of DESIGN §6 (exit code, message, pond unchanged), stdin,
//! a large streamed ingest under a memory bound, concurrent appends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// Runs the binary without automatic compaction (whose own test turns it
/// on), so that every append leaves exactly its version.
fn pond(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pond"))
        .args(args)
        .env_remove("POND")
        .env("POND_AUTO_COMPACT", "0")
        .output()
        .unwrap()
}

/// Runs `pond` with `input` on stdin, in `dir` (the REPL writes its
/// history file to the working directory).
fn pond_with_stdin(dir: &TempDir, args: &[&str], input: &[u8]) -> Output {
    pond_with_stdin_as(dir, env!("CARGO_BIN_EXE_pond"), args, input)
}

/// Runs `program` (pond, or a program that runs it) as [`pond_with_stdin`].
fn pond_with_stdin_as(dir: &TempDir, program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir.path())
        .env_remove("POND")
        .env("POND_AUTO_COMPACT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A new empty pond in a temporary directory: (dir, location).
fn new_pond() -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("p").to_str().unwrap().to_string();
    let out = pond(&["--pond", &at, "init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (dir, at)
}

/// Writes `content` to `name` in `dir`.
fn file(dir: &TempDir, name: &str, content: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// Writes the rows of `select` to `name` in `dir` as Parquet, with `pond
/// sql`'s `COPY`; returns its path.
fn parquet(dir: &TempDir, at: &str, name: &str, select: &str) -> String {
    let path = dir.path().join(name).to_str().unwrap().to_string();
    let copy = format!("COPY ({select}) TO '{path}' STORED AS PARQUET");
    ok(pond(&["--pond", at, "sql", &copy]));
    path
}

/// Asserts success and returns stdout.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts a failure with exit status 1 and ONE `error: …` line on stderr
/// containing `needle`, and nothing on stdout.
fn fails(out: Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
}

/// Every file under `root`, with its size: what "the pond is unchanged"
/// compares.
fn tree(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                out.push((entry.path(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

const READINGS: &str = "ts,celsius,site\n\
    2024-01-01T00:00:00Z,20.5,north\n\
    2024-01-01T00:10:00Z,21.0,\n\
    2024-01-01T00:20:00+01:00,19.5,south\n";

#[test]
fn init_then_init_again_fails_with_one_error_line() {
    let (_dir, at) = new_pond();
    fails(pond(&["--pond", &at, "init"]), "already exists");
}

#[test]
fn missing_pond_and_usage_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("none");
    fails(
        pond(&["--pond", none.to_str().unwrap(), "ls"]),
        "is not a pond: it does not exist (create one with `pond init`",
    );
    // `pond init` next to a file of the pond's name (the binary itself).
    let binary = dir.path().join("pond");
    std::fs::write(&binary, "").unwrap();
    fails(
        pond(&["--pond", binary.to_str().unwrap(), "init"]),
        "it is a file (pass --pond or set $POND",
    );
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    fails(
        pond(&["--pond", plain.to_str().unwrap(), "ls"]),
        "is not a pond",
    );

    for args in [
        &["no-such-command"][..],
        &["append", "/a/b"],
        &["ls", "--format", "xml"],
        &["sql", "SELECT 1", "-f", "x.sql"],
    ] {
        let out = pond(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // $POND names the pond.
    let (_dir, at) = new_pond();
    let out = Command::new(env!("CARGO_BIN_EXE_pond"))
        .arg("ls")
        .env("POND", &at)
        .output()
        .unwrap();
    assert!(ok(out).contains("series"));
}

#[test]
fn append_csv_then_inspect_in_every_format() {
    let (dir, at) = new_pond();
    let csv = file(&dir, "readings.csv", READINGS);
    let out = pond(&["--pond", &at, "append", "/plant/boiler", &csv]);
    assert!(ok(out).is_empty(), "stdout holds only results");

    let table = ok(pond(&["--pond", &at, "ls"]));
    assert!(
        table.contains("/plant/boiler") && table.contains("\"plant\".boiler"),
        "{table}"
    );
    let csv_out = ok(pond(&["--pond", &at, "ls", "--format", "csv"]));
    assert_eq!(
        csv_out.lines().next().unwrap(),
        "series,table,versions,rows,min_time,max_time,bytes,key,sort_key,compression"
    );
    // The third reading, 00:20 at +01:00, is 23:20 UTC the day before.
    assert!(
        csv_out.contains(",1,3,2023-12-31T23:20:00Z,2024-01-01T00:10:00Z,"),
        "{csv_out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(pond(&["--pond", &at, "ls", "--format", "json"]))).unwrap();
    assert_eq!(json[0]["series"], "/plant/boiler");
    assert_eq!(json[0]["rows"], 3);

    let described = ok(pond(&["--pond", &at, "describe", "/plant/boiler"]));
    assert!(described.contains("timestamp column: ts"), "{described}");
    assert!(
        described.contains("celsius") && described.contains("Float64"),
        "{described}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(pond(&[
        "--pond",
        &at,
        "describe",
        "/plant/boiler",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(json["timestamp_column"], "ts");
    assert_eq!(json["columns"][0]["type"], "Timestamp(µs, \"UTC\")");
    assert_eq!(json["columns"][2]["column"], "site");
    let columns = ok(pond(&[
        "--pond",
        &at,
        "describe",
        "/plant/boiler",
        "--format",
        "csv",
    ]));
    assert!(
        columns.starts_with("column,type,nullable,timestamp_column,key\n"),
        "{columns}"
    );

    let log = ok(pond(&["--pond", &at, "log", "--format", "csv"]));
    assert_eq!(log.lines().count(), 3, "header, create, append: {log}");
    assert!(
        log.lines()
            .nth(1)
            .unwrap()
            .contains(",/plant/boiler,append,1,3,"),
        "{log}"
    );
    // The series' create and its first append are one transaction.
    let newest = ok(pond(&[
        "--pond", &at, "log", "--limit", "1", "--format", "ndjson",
    ]));
    assert_eq!(newest.lines().count(), 2, "{newest}");
    assert!(
        newest.lines().all(|l| l.starts_with("{\"txn_seq\":1,")),
        "{newest}"
    );
    let table = ok(pond(&["--pond", &at, "log"]));
    assert!(
        table.contains("append") && table.contains("create"),
        "{table}"
    );
}

#[test]
fn sql_runs_statements_in_every_format_and_from_a_file() {
    let (dir, at) = new_pond();
    let csv = file(&dir, "readings.csv", READINGS);
    ok(pond(&["--pond", &at, "append", "/plant/boiler", &csv]));
    let q = "SELECT site, celsius FROM plant.boiler ORDER BY ts";

    let table = ok(pond(&["--pond", &at, "sql", q]));
    assert!(table.contains("| south | 19.5    |"), "{table}");
    assert!(
        !table.contains("row(s) fetched"),
        "stdout holds only results: {table}"
    );
    let csv_out = ok(pond(&["--pond", &at, "sql", q, "--format", "csv"]));
    assert_eq!(csv_out, "site,celsius\nsouth,19.5\nnorth,20.5\n,21.0\n");
    let json: serde_json::Value =
        serde_json::from_str(&ok(pond(&["--pond", &at, "sql", q, "--format", "json"]))).unwrap();
    assert_eq!(json[1]["celsius"], 20.5);
    let ndjson = ok(pond(&["--pond", &at, "sql", q, "--format", "ndjson"]));
    assert_eq!(ndjson.lines().count(), 3);
    let limited = ok(pond(&["--pond", &at, "sql", q, "--maxrows", "1"]));
    assert!(
        limited.contains("south") && !limited.contains("north"),
        "{limited}"
    );

    // Several statements; the pruning rule and table functions are there.
    let script = file(
        &dir,
        "report.sql",
        "-- a report\n\
         CREATE TABLE plant.pump (ts TIMESTAMP NOT NULL, rpm DOUBLE);\n\
         INSERT INTO plant.pump VALUES ('2024-01-01T00:00:00', 1500.0);\n\
         SELECT count(*) AS versions FROM series_versions('/plant/pump');\n",
    );
    let out = ok(pond(&[
        "--pond", &at, "sql", "-f", &script, "--format", "csv",
    ]));
    assert!(out.ends_with("versions\n1\n"), "{out}");

    fails(
        pond(&["--pond", &at, "sql", "SELECT nope FROM plant.boiler"]),
        "nope",
    );
    fails(
        pond(&[
            "--pond",
            &at,
            "sql",
            "-f",
            dir.path().join("none.sql").to_str().unwrap(),
        ]),
        "none.sql",
    );
}

/// SQL piped in runs as a script: results alone on stdout, and a failed
/// statement is exit status 1 (the REPL would print its prompts' output
/// and exit 0).
#[test]
fn sql_without_a_query_on_a_terminal_is_datafusion_clis_repl() {
    let (dir, at) = new_pond();
    let csv = file(&dir, "r.csv", "ts,v\n2024-01-01T00:00:00Z,1.5\n");
    ok(pond(&["--pond", &at, "append", "/a/b", &csv]));
    // `script` (util-linux) gives the REPL a terminal; it types what it
    // reads from stdin.
    let command = format!("'{}' --pond '{at}' sql", env!("CARGO_BIN_EXE_pond"));
    let out = pond_with_stdin_as(
        &dir,
        "script",
        &["-qec", &command, "/dev/null"],
        b"SELECT v * 2 AS doubled FROM a.b;\n\\q\n",
    );
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    assert!(shown.contains("| doubled |"), "{shown}");
    assert!(shown.contains("| 3.0     |"), "{shown}");
    assert!(shown.contains("1 row(s) fetched."), "{shown}");
}

#[test]
fn sql_on_stdin_runs_as_a_script() {
    let (dir, at) = new_pond();
    let csv = file(&dir, "readings.csv", READINGS);
    let first = pond(&["--pond", &at, "append", "/plant/boiler", &csv]);
    let said = text(&first.stderr);
    assert!(
        said.starts_with("created the series; appended version 1 of /plant/boiler: 3 rows"),
        "{said}"
    );
    let two = b"SELECT count(*) AS n FROM plant.boiler;\nSELECT 7 AS seven;\n";
    for args in [&["sql"][..], &["sql", "-f", "-"]] {
        let args = [&["--pond", at.as_str()][..], args, &["--format", "csv"]].concat();
        assert_eq!(ok(pond_with_stdin(&dir, &args, two)), "n\n3\nseven\n7\n");
    }
    // A session typed for the REPL ends at its `\q`.
    let typed = b"SELECT count(*) AS n FROM plant.boiler;\n\\q\n";
    let out = ok(pond_with_stdin(&dir, &["--pond", &at, "sql"], typed));
    assert!(out.contains("| 3 |"), "{out}");
    assert!(!out.contains("fetched"), "{out}");
    let failing = b"SELECT 1;\nSELECT nope FROM plant.boiler;\nSELECT 2;\n";
    let out = pond_with_stdin(&dir, &["--pond", &at, "sql"], failing);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    fails(
        pond_with_stdin(&dir, &["--pond", &at, "sql"], b"\\d\n"),
        "is a command of the interactive REPL",
    );
    // --maxrows limits tables; elsewhere it would be ignored, so it is refused.
    let many = "SELECT * FROM unnest(range(100)) AS t(i)";
    let table = ok(pond(&["--pond", &at, "sql", many, "--maxrows", "3"]));
    assert!(table.contains("| 2 "), "{table}");
    assert!(!table.contains("| 3 "), "{table}");
    fails(
        pond(&[
            "--pond",
            &at,
            "sql",
            many,
            "--maxrows",
            "3",
            "--format",
            "csv",
        ]),
        "add LIMIT to the query",
    );
}

/// A data file gone from under the oplog: the error says what to run.
#[test]
fn a_missing_data_file_points_to_pond_check() {
    let (dir, at) = new_pond();
    let csv = file(&dir, "readings.csv", READINGS);
    ok(pond(&["--pond", &at, "append", "/plant/boiler", &csv]));
    let data = Path::new(&at).join("data");
    let parquet: Vec<PathBuf> = tree(&data).into_iter().map(|(p, _)| p).collect();
    assert_eq!(parquet.len(), 1, "{parquet:?}");
    std::fs::remove_file(&parquet[0]).unwrap();
    fails(
        pond(&["--pond", &at, "sql", "SELECT * FROM plant.boiler"]),
        "a data file of the pond is missing: `pond check` lists",
    );
}

/// An automatic compaction that fails leaves the append landed and says
/// why on stderr.
#[test]
fn a_failed_automatic_compaction_is_reported() {
    let (dir, at) = new_pond();
    let append = |minute: u32| {
        let csv = file(
            &dir,
            &format!("m{minute}.csv"),
            &format!("ts,v\n2024-01-01T00:0{minute}:00Z,{minute}\n"),
        );
        Command::new(env!("CARGO_BIN_EXE_pond"))
            .args(["--pond", &at, "append", "/plant/boiler", &csv])
            .env_remove("POND")
            .env("POND_AUTO_COMPACT", "2")
            .output()
            .unwrap()
    };
    ok(append(1));
    // The first version's file damaged: compacting it fails.
    let data = Path::new(&at).join("data");
    let (damaged, _) = tree(&data).remove(0);
    std::fs::write(&damaged, b"not parquet").unwrap();
    let out = append(2);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("automatic compaction failed"), "{said}");
    assert!(said.contains("appended version 2"), "{said}");

    // `pond compact` of every series goes on past the one that fails.
    for minute in [3, 4] {
        let csv = file(
            &dir,
            "o.csv",
            &format!("ts,v\n2024-01-01T00:0{minute}:00Z,1\n"),
        );
        ok(pond(&["--pond", &at, "append", "/plant/other", &csv]));
    }
    let out = pond(&["--pond", &at, "compact"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("/plant/other: 2 versions"), "{said}");
    assert!(
        said.ends_with("error: compaction failed for 1 series: /plant/boiler\n"),
        "{said}"
    );
}

/// A reader that stops early (`pond sql … | head -1`) is no error.
#[test]
fn output_into_a_closed_pipe_is_no_error() {
    let (_dir, at) = new_pond();
    let many = "SELECT i, i * 2 AS j FROM unnest(range(1000000)) AS t(i)";
    for format in ["csv", "json", "table"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pond"))
            .args(["--pond", &at, "sql", many, "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{format}: {}", text(&out.stderr));
    }
}

/// What `pond ls` filters on and prints: whole path segments or a pattern,
/// SQL names that resolve, empty results that scripts can read.
#[test]
fn ls_filters_on_segments_or_patterns_and_prints_sql_names_that_resolve() {
    let (dir, at) = new_pond();
    let csv = file(&dir, "readings.csv", READINGS);
    for series in ["/sites/site1/Boiler-1", "/sites/site10/temp", "/top"] {
        ok(pond(&["--pond", &at, "append", series, &csv]));
    }
    let list = |filter: &[&str]| -> String {
        let args = [
            &["--pond", at.as_str(), "ls"][..],
            filter,
            &["--format", "csv"],
        ]
        .concat();
        ok(pond(&args))
    };
    let paths = |listing: String| -> Vec<String> {
        let mut lines = listing.lines().skip(1);
        let mut paths: Vec<String> = lines
            .by_ref()
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
        paths.sort();
        paths
    };
    assert_eq!(paths(list(&["/sites/site1"])), ["/sites/site1/Boiler-1"]);
    assert_eq!(paths(list(&["/sites/site1/"])), ["/sites/site1/Boiler-1"]);
    assert_eq!(
        paths(list(&["/sites/*/*"])),
        ["/sites/site1/Boiler-1", "/sites/site10/temp"]
    );
    assert_eq!(paths(list(&["/top"])), ["/top"]);
    fails(pond(&["--pond", &at, "ls", "sites"]), "it starts with '/'");
    // Nothing listed: a header, or an empty array.
    let none = list(&["/nowhere"]);
    assert_eq!(none.lines().count(), 1, "{none}");
    assert!(none.starts_with("series,table,"), "{none}");
    let json = ok(pond(&["--pond", &at, "ls", "/nowhere", "--format", "json"]));
    assert_eq!(json.trim(), "[]");

    // Every table name printed is one SQL resolves.
    let listing = list(&[]);
    let mut names = 0;
    for line in listing.lines().skip(1) {
        let field = line.split(',').nth(1).unwrap();
        let quoted = field.strip_prefix('"').and_then(|f| f.strip_suffix('"'));
        let table = quoted.unwrap_or(field).replace("\"\"", "\"");
        let count = format!("SELECT count(*) AS n FROM {table}");
        let out = ok(pond(&["--pond", &at, "sql", &count, "--format", "csv"]));
        assert_eq!(out, "n\n3\n", "{table}");
        names += 1;
    }
    assert_eq!(names, 3);
    // /public/x would be the table of the root series /x.
    fails(
        pond(&["--pond", &at, "append", "/public/top", &csv]),
        "schema public holds the series at the root",
    );
}

#[test]
fn several_inputs_and_stdin_become_one_version() {
    let (dir, at) = new_pond();
    let a = file(
        &dir,
        "a.csv",
        "ts,v\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n",
    );
    let b = file(&dir, "b.csv", "v,ts\n3,2024-01-01T00:02:00Z\n");
    ok(pond(&["--pond", &at, "append", "/s", &a, &b]));
    let out = pond_with_stdin(
        &dir,
        &["--pond", &at, "append", "/s", "-"],
        b"ts,v\n2024-01-01T00:03:00Z,4\n",
    );
    ok(out);
    let ndjson = "{\"time\": \"2024-01-01T00:00:00Z\", \"x\": 1.5}\n{\"time\": \"2024-01-01T00:00:01Z\", \"x\": null}\n";
    let out = pond_with_stdin(
        &dir,
        &["--pond", &at, "append", "/j", "-", "--format", "ndjson"],
        ndjson.as_bytes(),
    );
    ok(out);
    // A field the first 1,000 records did not have is an error, not lost.
    let mut late = String::new();
    for i in 0..1_001 {
        late.push_str(&format!(
            "{{\"time\": \"2024-01-02T00:00:00.{i:06}Z\", \"x\": 1.0}}\n"
        ));
    }
    late.push_str("{\"time\": \"2024-01-02T00:00:01Z\", \"x\": 2.0, \"y\": 3}\n");
    let out = pond_with_stdin(
        &dir,
        &["--pond", &at, "append", "/j", "-", "--format", "ndjson"],
        late.as_bytes(),
    );
    fails(out, "stdin: ");
    let versions = ok(pond(&[
        "--pond",
        &at,
        "sql",
        "SELECT version, row_count FROM series_versions('/s') ORDER BY version",
        "--format",
        "csv",
    ]));
    assert_eq!(versions, "version,row_count\n1,3\n2,1\n");
    let rows = ok(pond(&[
        "--pond",
        &at,
        "sql",
        "SELECT sum(v) AS s FROM public.s",
        "--format",
        "csv",
    ]));
    assert_eq!(rows, "s\n10\n");
    let j = ok(pond(&[
        "--pond",
        &at,
        "sql",
        "SELECT count(x) AS c FROM j",
        "--format",
        "csv",
    ]));
    assert_eq!(j, "c\n1\n");
}

#[test]
fn parquet_input_and_lossless_conversion() {
    let (dir, at) = new_pond();
    let floats = file(&dir, "f.csv", "ts,v\n2024-01-01T00:00:00Z,1.5\n");
    ok(pond(&["--pond", &at, "append", "/s", &floats]));
    // Integers go into the float column.
    let ints = file(&dir, "i.csv", "ts,v\n2024-01-01T01:00:00Z,2\n");
    ok(pond(&["--pond", &at, "append", "/s", &ints]));
    // A Parquet file written by DataFusion, with a new nullable column.
    let more = parquet(
        &dir,
        &at,
        "more.parquet",
        "SELECT CAST('2024-01-01T02:00:00Z' AS TIMESTAMP) AS ts, \
         CAST(7 AS BIGINT) AS v, 'x' AS note",
    );
    ok(pond(&["--pond", &at, "append", "/s", &more]));
    let out = ok(pond(&[
        "--pond",
        &at,
        "sql",
        "SELECT v, note FROM public.s ORDER BY ts",
        "--format",
        "csv",
    ]));
    assert_eq!(out, "v,note\n1.5,\n2.0,\n7.0,x\n");
}

#[test]
fn parquet_values_of_another_kind_or_zone_are_refused_or_kept_as_instants() {
    let (dir, at) = new_pond();
    let base = file(&dir, "base.csv", "ts,v,n\n2024-01-01T00:00:00Z,0.5,1\n");
    ok(pond(&["--pond", &at, "append", "/s", &base]));
    // Epoch milliseconds are numbers, not times: arrow would store them
    // as ticks of the column's unit (1970-01-20).
    let epoch = parquet(
        &dir,
        &at,
        "epoch.parquet",
        "SELECT CAST(1704067200000 AS BIGINT) AS ts, 1.0 AS v, CAST(2 AS BIGINT) AS n",
    );
    fails(
        pond(&["--pond", &at, "append", "/s", &epoch]),
        "numbers are not times",
    );
    let flags = parquet(
        &dir,
        &at,
        "flags.parquet",
        "SELECT CAST('2024-01-01T01:00:00Z' AS TIMESTAMP) AS ts, 1.0 AS v, true AS n",
    );
    fails(
        pond(&["--pond", &at, "append", "/s", &flags]),
        "true and false are not numbers",
    );
    // A NULL time is found where it is, not by the conversion.
    let null = parquet(
        &dir,
        &at,
        "null.parquet",
        "SELECT * FROM (VALUES (CAST('2024-01-01T01:00:00Z' AS TIMESTAMP), 1.0, \
         CAST(2 AS BIGINT)), (NULL, 2.0, CAST(3 AS BIGINT))) AS t(ts, v, n)",
    );
    fails(
        pond(&["--pond", &at, "append", "/s", &null]),
        "row 2: the timestamp column \"ts\" is empty",
    );
    // 03:00Z in Paris's zone, and 04:00 with no zone (UTC to pond): stored
    // as those instants, not as wall-clock times moved between zones.
    let paris = parquet(
        &dir,
        &at,
        "paris.parquet",
        "SELECT arrow_cast(CAST(1704078000000000 AS BIGINT), \
         'Timestamp(Microsecond, Some(\"Europe/Paris\"))') AS ts, 3.0 AS v, CAST(3 AS BIGINT) AS n",
    );
    ok(pond(&["--pond", &at, "append", "/s", &paris]));
    let naive = parquet(
        &dir,
        &at,
        "naive.parquet",
        "SELECT arrow_cast(TIMESTAMP '2024-01-01T04:00:00', 'Timestamp(Millisecond, None)') \
         AS ts, 4.0 AS v, CAST(4 AS BIGINT) AS n",
    );
    ok(pond(&["--pond", &at, "append", "/s", &naive]));
    assert_eq!(
        column(
            &at,
            "SELECT CAST(CAST(ts AS BIGINT) / 3600000000 - 473352 AS VARCHAR) || ':' || CAST(v AS VARCHAR) FROM s ORDER BY ts"
        ),
        ["0:0.5", "3:3.0", "4:4.0"]
    );

    // A time of day from CSV into a µs column: exact, or refused.
    let clock = parquet(
        &dir,
        &at,
        "clock.parquet",
        "SELECT CAST('2024-01-01T00:00:00Z' AS TIMESTAMP) AS ts, \
         arrow_cast(TIME '12:00:00', 'Time64(Microsecond)') AS at",
    );
    ok(pond(&["--pond", &at, "append", "/clock", &clock]));
    let finer = file(
        &dir,
        "finer.csv",
        "ts,at\n2024-01-01T01:00:00Z,12:00:00.1234569\n",
    );
    fails(
        pond(&["--pond", &at, "append", "/clock", &finer]),
        "line 2: column \"at\": \"12:00:00.1234569\": finer than the column's unit",
    );
    let exact = file(
        &dir,
        "exact.csv",
        "ts,at\n2024-01-01T01:00:00Z,12:00:00.123456\n",
    );
    ok(pond(&["--pond", &at, "append", "/clock", &exact]));
    assert_eq!(
        column(&at, "SELECT at FROM clock ORDER BY ts"),
        ["12:00:00", "12:00:00.123456"]
    );
}

#[test]
fn many_inputs_are_opened_one_at_a_time() {
    let (dir, at) = new_pond();
    let names: Vec<String> = (0..300)
        .map(|i| {
            file(
                &dir,
                &format!("in{i:03}.csv"),
                &format!("ts,v\n2024-01-01T00:{:02}:{:02}Z,{i}\n", i / 60, i % 60),
            )
        })
        .collect();
    // Fewer descriptors than inputs: each is opened in its turn.
    let script = format!(
        "ulimit -n 64 && exec \"$0\" --pond '{at}' append /many {}",
        names.join(" ")
    );
    let out = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_pond")])
        .env_remove("POND")
        .env("POND_AUTO_COMPACT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        column(&at, "SELECT count(*), sum(v) FROM many"),
        ["300,44850"]
    );
    // A missing input is still found before anything is written.
    let before = tree(Path::new(&at));
    let missing = dir.path().join("nope.csv");
    fails(
        pond(&[
            "--pond",
            &at,
            "append",
            "/many",
            &names[0],
            missing.to_str().unwrap(),
        ]),
        "cannot open",
    );
    assert_eq!(tree(Path::new(&at)), before);
}

#[test]
fn csv_headers_with_padded_or_empty_names_are_refused() {
    let (dir, at) = new_pond();
    let padded = file(&dir, "padded.csv", "ts, v\n2024-01-01T00:00:00Z, 1\n");
    fails(
        pond(&["--pond", &at, "append", "/s", &padded]),
        "begins or ends with a space",
    );
    let unnamed = file(&dir, "unnamed.csv", "ts,,v\n2024-01-01T00:00:00Z,1,2\n");
    fails(
        pond(&["--pond", &at, "append", "/s", &unnamed]),
        "a column has no name",
    );
}

#[test]
fn a_new_series_takes_no_types_from_an_input_without_rows() {
    let (dir, at) = new_pond();
    let header = file(&dir, "header.csv", "ts,v,w\n");
    let rows = file(&dir, "rows.csv", "ts,v,w\n2024-01-01T00:00:00Z,1.5,x\n");
    // Every column would have been text for good, `v` too.
    let before = tree(Path::new(&at));
    fails(
        pond(&["--pond", &at, "append", "/s", &header, &rows]),
        "header.csv: no row after the header, and a series takes the types of its columns \
         from the first input that has them: put an input with rows first",
    );
    assert_eq!(tree(Path::new(&at)), before);
    // After an input with rows, or into a series that has its types, an
    // input of a header alone adds nothing and changes no type.
    ok(pond(&["--pond", &at, "append", "/s", &rows, &header]));
    ok(pond(&["--pond", &at, "append", "/s", &header, &rows]));
    let types = "SELECT arrow_typeof(v) AS t, count(*) AS n FROM s GROUP BY 1";
    assert_eq!(column(&at, types), ["Float64,2"]);
    // So does a column new to the series.
    let more = file(&dir, "more.csv", "ts,v,w,x\n");
    let with_x = file(&dir, "with_x.csv", "ts,v,w,x\n2024-01-02T00:00:00Z,1,y,2\n");
    fails(
        pond(&["--pond", &at, "append", "/s", &more, &with_x]),
        "more.csv: no row after the header",
    );
    ok(pond(&["--pond", &at, "append", "/s", &with_x]));
    assert_eq!(
        column(&at, "SELECT arrow_typeof(x) FROM s LIMIT 1"),
        ["Int64"]
    );
    // An empty file is still an empty input.
    fails(
        pond(&["--pond", &at, "append", "/n", &file(&dir, "zero.csv", "")]),
        "zero.csv: no columns (an empty input?)",
    );

    // A column with no value in the records typed from is text: said.
    let empty = file(&dir, "empty.csv", "ts,v,w\n2024-01-01T00:00:00Z,,\n");
    let out = pond(&["--pond", &at, "append", "/e", &empty]);
    assert!(out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains("note: ") && said.contains("for v, w; the series stores them as text"),
        "{said}"
    );
}

/// Raw values of `sql`'s one column, as `pond sql --format csv` prints them.
fn column(at: &str, sql: &str) -> Vec<String> {
    let out = ok(pond(&["--pond", at, "sql", sql, "--format", "csv"]));
    out.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn values_arrow_would_convert_with_loss_are_kept_exactly_or_refused() {
    let (dir, at) = new_pond();
    let unchanged = |at: &str, before: &[(PathBuf, u64)]| {
        assert_eq!(tree(Path::new(at)), before, "the pond changed");
    };
    // A column empty in every record read to infer the types is text, and
    // its later values are kept (arrow would read it as all NULL).
    let mut late = String::from("ts,v,note\n");
    for i in 0..1_000 {
        late += &format!("2024-01-01T00:{:02}:{:02}Z,1,\n", i / 60, i % 60);
    }
    late += "2024-01-01T01:00:00Z,1,oops\n";
    ok(pond(&[
        "--pond",
        &at,
        "append",
        "/late",
        &file(&dir, "late.csv", &late),
    ]));
    assert_eq!(
        column(&at, "SELECT note FROM public.late WHERE note IS NOT NULL"),
        ["oops"]
    );

    // Into a microsecond series with an integer column.
    let first = file(&dir, "first.csv", "ts,count\n2024-01-01T00:00:00Z,1\n");
    ok(pond(&["--pond", &at, "append", "/s", &first]));
    let before = tree(Path::new(&at));
    let cases = [
        // JSON's 2.5 is not truncated into the integer column.
        (
            "frac.ndjson",
            "{\"ts\":\"2024-01-01T00:00:01Z\",\"count\":2.5}\n",
            "frac.ndjson: line 1: column \"count\": \"2.5\": not a whole number",
        ),
        // A JSON number is not a count of the column's unit.
        (
            "number.ndjson",
            "{\"ts\":1704067200,\"count\":1}\n",
            "number.ndjson: line 1: column \"ts\": \"1704067200\": not a time",
        ),
        // Nanoseconds are not cut to microseconds.
        (
            "nanos.csv",
            "ts,count\n2024-01-01T00:00:02Z,1\n2024-01-01T00:00:03.123456789Z,1\n",
            "nanos.csv: line 3: column \"ts\": \"2024-01-01T00:00:03.123456789Z\": finer than the column's unit (microseconds)",
        ),
        (
            "twice.csv",
            "ts,count,count\n2024-01-01T00:00:04Z,1,2\n",
            "column \"count\" appears twice",
        ),
        (
            "case.csv",
            "ts,Count\n2024-01-01T00:00:05Z,1\n",
            "differs from the series' column \"count\" only in case",
        ),
    ];
    for (name, content, needle) in cases {
        fails(
            pond(&["--pond", &at, "append", "/s", &file(&dir, name, content)]),
            needle,
        );
        unchanged(&at, &before);
    }
    // Microseconds written with nine digits are exact, and go in.
    let exact = file(
        &dir,
        "exact.csv",
        "ts,count\n2024-01-01T00:00:06.123456000Z,6\n",
    );
    ok(pond(&["--pond", &at, "append", "/s", &exact]));
    assert_eq!(
        column(
            &at,
            "SELECT arrow_cast(ts, 'Int64') FROM public.s WHERE count = 6"
        ),
        ["1704067206123456"]
    );

    // A new NDJSON series with nanoseconds keeps them; a date is midnight.
    let nanos = file(
        &dir,
        "n.ndjson",
        "{\"ts\":\"2024-01-01T00:00:00.000000001Z\",\"v\":1}\n{\"ts\":\"2024-01-02\",\"v\":2}\n",
    );
    ok(pond(&["--pond", &at, "append", "/n", &nanos]));
    assert_eq!(
        column(
            &at,
            "SELECT arrow_cast(ts, 'Int64') FROM public.n ORDER BY ts"
        ),
        ["1704067200000000001", "1704153600000000000"]
    );

    // Text without an offset is UTC (DESIGN.md), whatever zone the series'
    // column displays in: arrow's reader took it in that zone, and failed
    // on a time the zone skips.
    let zoned = parquet(
        &dir,
        &at,
        "zoned.parquet",
        "SELECT arrow_cast('2024-06-01T00:00:00Z', \
         'Timestamp(Microsecond, Some(\"Europe/Berlin\"))') AS ts, 1.0 AS v",
    );
    ok(pond(&["--pond", &at, "append", "/z", &zoned]));
    let naive = file(
        &dir,
        "naive.csv",
        "ts,v\n2024-06-01T12:00:00,2.0\n2024-03-31T02:30:00,3.0\n",
    );
    ok(pond(&["--pond", &at, "append", "/z", &naive]));
    assert_eq!(
        column(
            &at,
            "SELECT arrow_cast(ts, 'Int64') FROM public.z ORDER BY v"
        ),
        ["1717200000000000", "1717243200000000", "1711852200000000"]
    );
    // JSON integers written with a zero fraction are integers.
    let whole = file(
        &dir,
        "whole.ndjson",
        "{\"ts\":\"2024-01-01T00:00:07Z\",\"count\":7.0}\n",
    );
    ok(pond(&["--pond", &at, "append", "/s", &whole]));
    assert_eq!(
        column(&at, "SELECT count FROM public.s WHERE count = 7"),
        ["7"]
    );
    // A date column keeps dates; a time of day is not dropped silently.
    let day = file(&dir, "day.csv", "ts,day\n2024-01-01T00:00:00Z,2024-01-31\n");
    ok(pond(&["--pond", &at, "append", "/d", &day]));
    let hour = file(
        &dir,
        "hour.csv",
        "ts,day\n2024-01-02T00:00:00Z,2024-02-01T10:00:00\n",
    );
    fails(
        pond(&["--pond", &at, "append", "/d", &hour]),
        "hour.csv: line 2: column \"day\": \"2024-02-01T10:00:00\": has a time of day",
    );
    let midnight = file(
        &dir,
        "midnight.csv",
        "ts,day\n2024-01-02T00:00:00Z,2024-02-01T00:00:00Z\n",
    );
    ok(pond(&["--pond", &at, "append", "/d", &midnight]));
    assert_eq!(
        column(&at, "SELECT day FROM public.d ORDER BY ts"),
        ["2024-01-31", "2024-02-01"]
    );
    // Digits past the ninth are not skipped; zeros there are exact.
    let zeros = file(
        &dir,
        "zeros.csv",
        "ts,count\n2024-01-01T00:00:09.5000000000Z,9\n",
    );
    ok(pond(&["--pond", &at, "append", "/s", &zeros]));
    // JSON integers with an exponent are integers; dates in arrow's short
    // forms are dates.
    let exponent = file(
        &dir,
        "exp.ndjson",
        "{\"ts\":\"2024-01-01T00:00:10Z\",\"count\":1e3}\n",
    );
    ok(pond(&["--pond", &at, "append", "/s", &exponent]));
    assert_eq!(
        column(&at, "SELECT count FROM public.s WHERE count > 100"),
        ["1000"]
    );
    let short = file(&dir, "short.csv", "ts,day\n2024-01-03T00:00:00Z,2024-2-5\n");
    ok(pond(&["--pond", &at, "append", "/d", &short]));
    // A decimal column keeps its scale: a digit past it is refused.
    let priced = parquet(
        &dir,
        &at,
        "priced.parquet",
        "SELECT arrow_cast('2024-01-01T00:00:00Z', 'Timestamp(Microsecond, Some(\"UTC\"))') \
         AS ts, arrow_cast(1.25, 'Decimal128(10, 2)') AS price",
    );
    ok(pond(&["--pond", &at, "append", "/p", &priced]));
    let cut = file(&dir, "cut.csv", "ts,price\n2024-01-02T00:00:00Z,1.239\n");
    fails(
        pond(&["--pond", &at, "append", "/p", &cut]),
        "cut.csv: line 2: column \"price\": \"1.239\": more digits than the column's scale (2)",
    );
    let even = file(&dir, "even.csv", "ts,price\n2024-01-02T00:00:00Z,1.230\n");
    ok(pond(&["--pond", &at, "append", "/p", &even]));
    assert_eq!(
        column(&at, "SELECT price FROM public.p ORDER BY ts"),
        ["1.25", "1.23"]
    );
    // Digits past the ninth are not skipped.
    let tenth = file(
        &dir,
        "tenth.csv",
        "ts,count\n2024-01-01T00:00:08.0000000001Z,8\n",
    );
    fails(
        pond(&["--pond", &at, "append", "/s", &tenth]),
        "finer than nanoseconds",
    );
}

#[test]
fn bad_input_is_refused_and_leaves_the_pond_unchanged() {
    let (dir, at) = new_pond();
    let good = file(&dir, "good.csv", "ts,v,label\n2024-01-01T00:00:00Z,1.5,a\n");
    ok(pond(&["--pond", &at, "append", "/s", &good]));
    // A Parquet file whose v is text, written with DataFusion's COPY.
    let text_values = parquet(
        &dir,
        &at,
        "text.parquet",
        "SELECT CAST('2024-01-01T01:00:00Z' AS TIMESTAMP) AS ts, 'x' AS v",
    );
    let before = tree(Path::new(&at));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![file(
                &dir,
                "ragged.csv",
                "ts,v,label\n2024-01-01T01:00:00Z,1.5\n",
            )],
            "ragged.csv",
        ),
        (
            vec![file(
                &dir,
                "text.csv",
                "ts,v,label\n2024-01-01T01:00:00Z,abc,b\n",
            )],
            "text.csv",
        ),
        (
            vec![text_values],
            "do not convert to the series' type Float64",
        ),
        (
            vec![file(&dir, "broken.parquet", "PAR1 not really")],
            "broken.parquet",
        ),
        (
            vec![file(
                &dir,
                "null_ts.csv",
                "ts,v,label\n2024-01-01T01:00:00Z,1.0,a\n,1.0,b\n",
            )],
            "null_ts.csv: line 3: the timestamp column \"ts\" is empty (NULL)",
        ),
        (
            vec![file(
                &dir,
                "no_ts.csv",
                "when,v\n2024-01-01T01:00:00Z,1.0\n",
            )],
            "\"ts\" is missing",
        ),
        (
            vec![file(&dir, "bad_time.csv", "ts,v,label\nyesterday,1.0,b\n")],
            "bad_time.csv",
        ),
        (
            vec![dir.path().join("absent.csv").to_str().unwrap().to_string()],
            "absent.csv",
        ),
        (vec![file(&dir, "empty.csv", "")], "empty.csv"),
        // Found by the generative ingest test: arrow-ipc panics
        // (`unimplemented!`) decoding this file's damaged embedded Arrow
        // schema. The panic is caught: one error line, no crash report.
        (
            vec![
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/damaged_arrow_schema.parquet")
                    .to_str()
                    .unwrap()
                    .to_string(),
            ],
            "damaged input made the reader fail",
        ),
    ];
    for (inputs, needle) in cases {
        let mut args = vec!["--pond", at.as_str(), "append", "/s"];
        args.extend(inputs.iter().map(String::as_str));
        fails(pond(&args), needle);
        assert_eq!(tree(Path::new(&at)), before, "{inputs:?} changed the pond");
    }
    // A new series must have a temporal timestamp column.
    let ints = file(&dir, "ints.csv", "ts,v\n1,2\n");
    fails(
        pond(&["--pond", &at, "append", "/t", &ints]),
        "not a timestamp",
    );
    for path in ["", "relative/path", "/a/../b", "/a/./b", "/a b", "/ü"] {
        fails(
            pond(&["--pond", &at, "append", path, &good]),
            "invalid series path",
        );
    }
    fails(
        pond(&["--pond", &at, "describe", "/nope"]),
        "unknown series /nope",
    );
    assert_eq!(tree(Path::new(&at)), before);
}

#[test]
fn concurrent_append_processes_both_land() {
    let (dir, at) = new_pond();
    let a = file(&dir, "a.csv", "ts,v\n2024-01-01T00:00:00Z,1\n");
    let b = file(&dir, "b.csv", "ts,v\n2024-01-01T00:00:01Z,2\n");
    ok(pond(&["--pond", &at, "append", "/s", &a]));
    let spawn = |input: &str| {
        Command::new(env!("CARGO_BIN_EXE_pond"))
            .args(["--pond", &at, "append", "/s", input])
            .env("POND_AUTO_COMPACT", "0")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..4)
        .map(|i| spawn(if i % 2 == 0 { &a } else { &b }))
        .collect();
    for child in children {
        ok(child.wait_with_output().unwrap());
    }
    let out = ok(pond(&[
        "--pond",
        &at,
        "sql",
        "SELECT count(*) AS versions, count(DISTINCT version) AS distinct_versions, max(version) AS newest \
         FROM series_versions('/s')",
        "--format",
        "csv",
    ]));
    assert_eq!(out, "versions,distinct_versions,newest\n5,5,5\n");
}

#[test]
fn a_large_stdin_ingest_streams_in_bounded_memory() {
    let (_dir, at) = new_pond();
    // 6,000,000 rows, about 210 MB of CSV, generated while it is read.
    const ROWS: usize = 6_000_000;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pond"))
        .args(["--pond", &at, "append", "/big", "-"])
        .env_remove("POND")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut written = 0usize;
        let mut chunk = String::with_capacity(1 << 20);
        chunk.push_str("ts,value\n");
        for i in 0..ROWS {
            let (s, us) = (i / 1_000_000, i % 1_000_000);
            let (m, s) = (s / 60, s % 60);
            chunk.push_str(&format!(
                "2024-01-01T00:{m:02}:{s:02}.{us:06}Z,{}.25\n",
                i % 1000
            ));
            if chunk.len() > (1 << 20) - 64 {
                written += chunk.len();
                stdin.write_all(chunk.as_bytes()).unwrap();
                chunk.clear();
            }
        }
        written += chunk.len();
        stdin.write_all(chunk.as_bytes()).unwrap();
        written
    });
    let peak = peak_rss_of(&mut child);
    let written = writer.join().unwrap();
    let stderr = text(&child.wait_with_output().unwrap().stderr);
    assert!(stderr.contains(&format!("{ROWS} rows")), "{stderr}");
    eprintln!(
        "ingested {:.0} MB of CSV with a peak RSS of {:.0} MB",
        written as f64 / 1e6,
        peak as f64 / 1e6
    );
    assert!(written > 200_000_000);
    assert!(
        peak < 160_000_000,
        "peak RSS {peak} bytes: the input must not be held whole"
    );
}

/// Waits for `child` to exit and returns its peak resident set size in
/// bytes (sampled from /proc until it exits, which the kernel tracks as
/// VmHWM, the high-water mark).
fn peak_rss_of(child: &mut std::process::Child) -> u64 {
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        if child.try_wait().unwrap().is_some() {
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn demo_builds_a_pond_and_shows_its_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("demo");
    let at = at.to_str().unwrap();
    let stdout = ok(pond(&["demo", at, "--hours", "12"]));
    assert!(stdout.contains("/sites/site2/temperature"), "{stdout}");
    // Hours 7 and 8, and the late delivery of 8:30 to 8:45.
    assert!(
        stdout.contains("/sites/site2/temperature: read 3 of 13 versions (10 pruned by the oplog"),
        "{stdout}"
    );

    let listing = ok(pond(&[
        "--pond",
        at,
        "ls",
        "/sites/site1",
        "--format",
        "csv",
    ]));
    assert_eq!(
        listing.lines().count(),
        3,
        "header and two series: {listing}"
    );
    assert!(
        listing.contains("\"\"\"sites/site1\"\".humidity\""),
        "{listing}"
    );

    let out = ok(pond(&["--pond", at, "check"]));
    assert!(out.contains("checked 78 data files"), "{out}");

    // Running the demo again reuses the pond; `--pond` names it as well
    // as the argument does.
    let out = pond(&["--pond", at, "demo", "--hours", "12"]);
    assert!(
        text(&out.stderr).contains("using the demo pond already"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn compact_and_vacuum_from_the_command_line() {
    let (dir, at) = new_pond();
    for minute in 0..5 {
        let csv = file(
            &dir,
            &format!("m{minute}.csv"),
            &format!("ts,v\n2024-01-01T00:0{minute}:00Z,{minute}\n2024-01-01T00:0{minute}:30Z,1\n"),
        );
        ok(pond(&["--pond", &at, "append", "/plant/boiler", &csv]));
    }
    let sql = |query: &str| pond(&["--pond", &at, "sql", query, "--format", "csv"]);
    let totals = "SELECT count(*) AS n, sum(v) AS s FROM plant.boiler";
    let before = ok(sql(totals));
    assert_eq!(before, "n,s\n10,15\n");

    let out = pond(&["--pond", &at, "compact"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("/plant/boiler: 5 versions"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(ok(sql(totals)), before);
    let ls = ok(pond(&["--pond", &at, "ls", "--format", "csv"]));
    assert!(ls.contains(",1,10,"), "one version of 10 rows: {ls}");
    let as_of = "SELECT count(*) AS n FROM series_range('/plant/boiler', NULL, NULL, 5)";
    assert_eq!(ok(sql(as_of)), "n\n10\n");

    let out = pond(&["--pond", &at, "vacuum", "--retain", "0s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("deleted 5 superseded data files"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(ok(sql(totals)), before);
    fails(sql(as_of), "vacuumed");
    let check = ok(pond(&["--pond", &at, "check"]));
    assert!(check.starts_with("checked 1 data files"), "{check}");

    let usage = pond(&["--pond", &at, "vacuum", "--retain", "soon"]);
    assert_eq!(usage.status.code(), Some(2));
    fails(
        pond(&["--pond", &at, "compact", "/plant/none"]),
        "unknown series /plant/none",
    );
}

#[test]
fn compact_with_a_sort_key_from_the_command_line() {
    let (dir, at) = new_pond();
    for minute in 0..3 {
        let csv = file(
            &dir,
            &format!("m{minute}.csv"),
            &format!(
                "ts,host,v\n2024-01-01T00:0{minute}:00Z,b,{minute}\n2024-01-01T00:0{minute}:00Z,a,1\n"
            ),
        );
        ok(pond(&["--pond", &at, "append", "/plant/boiler", &csv]));
    }
    let sql = |query: &str| pond(&["--pond", &at, "sql", query, "--format", "csv"]);
    let by_host = "SELECT host, v FROM plant.boiler ORDER BY host, ts";
    let before = ok(sql(by_host));

    // `pond compact /plant/boiler --sort-key KEY`, then `more` arguments.
    let compact = |key: &str, more: &[&str]| {
        let mut args = vec!["--pond", &at, "compact", "/plant/boiler", "--sort-key", key];
        args.extend_from_slice(more);
        pond(&args)
    };
    let listed = || ok(pond(&["--pond", &at, "ls", "--format", "csv"]));
    fails(compact("nope", &[]), "no column \"nope\"");
    // A key refused declares no codec either.
    fails(
        compact("nope", &["--compression", "lz4"]),
        "no column \"nope\"",
    );
    assert!(listed().ends_with(",zstd\n"), "{}", listed());
    let usage = pond(&["--pond", &at, "compact", "--sort-key", "host"]);
    assert_eq!(usage.status.code(), Some(2), "a sort key needs a series");

    let out = compact("host", &["--sort-bucket", "0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(ok(sql(by_host)), before);
    let plan = ok(sql(&format!("EXPLAIN {by_host}")));
    assert!(
        !plan.contains("SortExec"),
        "sorted by the key already:\n{plan}"
    );
    let log = ok(pond(&["--pond", &at, "log", "--format", "csv"]));
    assert!(log.contains("configure"), "{log}");
    // The same key again, without --sort-bucket, keeps the whole-file order.
    ok(compact("host", &[]));
    assert!(listed().contains(",\"host, ts\""), "{}", listed());
    // A bucket shows as the order it writes.
    ok(compact("host", &["--sort-bucket", "1h"]));
    let with_bucket = listed();
    assert!(
        with_bucket.contains("date_bin(INTERVAL '1 hour', ts), host, ts"),
        "{with_bucket}"
    );

    // The codec of the files from now on: shown by `pond ls`, kept with
    // the sort key, refused by name when unknown.
    assert!(with_bucket.ends_with(",zstd\n"), "{with_bucket}");
    let with_codec = |codec: &str| {
        pond(&[
            "--pond",
            &at,
            "compact",
            "/plant/boiler",
            "--compression",
            codec,
        ])
    };
    ok(with_codec("lz4"));
    let listed_now = listed();
    assert!(listed_now.ends_with(",lz4\n"), "{listed_now}");
    assert!(
        listed_now.contains("date_bin(INTERVAL '1 hour', ts), host, ts"),
        "{listed_now}"
    );
    assert_eq!(ok(sql(by_host)), before);
    let usage = with_codec("brotli");
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage.stderr));
    assert!(
        text(&usage.stderr).contains("expected one of zstd, lz4, snappy, none"),
        "{}",
        text(&usage.stderr)
    );
}

#[test]
fn a_keyed_series_from_the_command_line() {
    let (dir, at) = new_pond();
    let first = file(
        &dir,
        "first.csv",
        "ts,hostname,v\n2024-01-01T00:00:00Z,a,1\n2024-01-01T00:00:00Z,b,2\n",
    );
    let again = file(
        &dir,
        "again.csv",
        "ts,hostname,v\n2024-01-01T00:00:00Z,a,10\n",
    );
    ok(pond(&[
        "--pond",
        &at,
        "append",
        "/fleet/cpu",
        &first,
        "--key",
        "hostname",
    ]));
    fails(
        pond(&["--pond", &at, "append", "/fleet/cpu", &again, "--key", "v"]),
        "keyed by (hostname, ts)",
    );
    ok(pond(&["--pond", &at, "append", "/fleet/cpu", &again]));
    let rows = ok(pond(&[
        "--pond",
        &at,
        "sql",
        "SELECT hostname, v FROM fleet.cpu ORDER BY hostname",
        "--format",
        "csv",
    ]));
    assert_eq!(rows, "hostname,v\na,10\nb,2\n");
    let described = ok(pond(&["--pond", &at, "describe", "/fleet/cpu"]));
    assert!(
        described.contains("key:              hostname, ts"),
        "{described}"
    );
    let json = ok(pond(&[
        "--pond",
        &at,
        "describe",
        "/fleet/cpu",
        "--format",
        "json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["key"], serde_json::json!(["hostname", "ts"]));
}

#[test]
fn delete_from_the_command_line() {
    let (dir, at) = new_pond();
    let csv = file(
        &dir,
        "day.csv",
        "ts,hostname,v\n2024-01-01T00:00:00Z,a,1\n2024-01-01T01:00:00Z,b,2\n2024-01-01T02:00:00Z,a,3\n",
    );
    ok(pond(&["--pond", &at, "append", "/fleet/cpu", &csv]));
    let usage = pond(&["--pond", &at, "delete", "/fleet/cpu"]);
    assert_eq!(usage.status.code(), Some(1), "{}", text(&usage.stderr));
    // A bound finer than the µs of a delete's range: rounding it would
    // delete a row before it, or keep one before the end.
    let finer = pond(&[
        "--pond",
        &at,
        "delete",
        "/fleet/cpu",
        "--from",
        "2024-01-01T00:00:00.0000005Z",
    ]);
    assert_eq!(finer.status.code(), Some(2), "{}", text(&finer.stderr));
    assert!(
        text(&finer.stderr).contains("finer than a microsecond"),
        "{}",
        text(&finer.stderr)
    );
    let whole = pond(&[
        "--pond",
        &at,
        "delete",
        "/fleet/cpu",
        "--from",
        "2024-01-03T00:00:00.123456000Z",
    ]);
    assert!(whole.status.success(), "{}", text(&whole.stderr));
    fails(
        pond(&[
            "--pond",
            &at,
            "delete",
            "/fleet/cpu",
            "--to",
            "2024-01-02T00:00:00Z",
            "--where",
            "nope = 1",
        ]),
        "cannot delete from /fleet/cpu",
    );
    ok(pond(&[
        "--pond",
        &at,
        "delete",
        "/fleet/cpu",
        "--from",
        "2024-01-01T00:00:00Z",
        "--to",
        "2024-01-01T02:00:00Z",
        "--where",
        "hostname = 'a'",
    ]));
    let rows = ok(pond(&[
        "--pond",
        &at,
        "sql",
        "SELECT hostname, v FROM fleet.cpu ORDER BY ts",
        "--format",
        "csv",
    ]));
    assert_eq!(rows, "hostname,v\nb,2\na,3\n");
    let log = ok(pond(&["--pond", &at, "log", "--format", "csv"]));
    assert!(log.contains(",delete,"), "{log}");
}

#[test]
fn appends_from_the_command_line_compact_on_their_own() {
    let (dir, at) = new_pond();
    for minute in 0..10 {
        let csv = file(
            &dir,
            &format!("m{minute}.csv"),
            &format!("ts,v\n2024-01-01T00:0{minute}:00Z,{minute}\n"),
        );
        // The default: automatic compaction on.
        let out = Command::new(env!("CARGO_BIN_EXE_pond"))
            .args(["--pond", &at, "append", "/plant/boiler", &csv])
            .env_remove("POND")
            .env_remove("POND_AUTO_COMPACT")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let ls = ok(pond(&["--pond", &at, "ls", "--format", "csv"]));
    assert!(
        ls.contains(",3,10,"),
        "one compacted version and two new: {ls}"
    );
    let sum = "SELECT sum(v) AS s FROM plant.boiler";
    assert_eq!(
        ok(pond(&["--pond", &at, "sql", sum, "--format", "csv"])),
        "s\n45\n"
    );
}

#[test]
fn sql_as_of_reads_the_pond_as_it_was() {
    let (dir, at) = new_pond();
    let a = file(&dir, "a.csv", "ts,v\n2024-01-01T00:00:00Z,1\n");
    let b = file(&dir, "b.csv", "ts,v\n2024-01-01T00:01:00Z,2\n");
    ok(pond(&["--pond", &at, "append", "/s", &a]));
    std::thread::sleep(std::time::Duration::from_millis(5));
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    std::thread::sleep(std::time::Duration::from_millis(5));
    ok(pond(&["--pond", &at, "append", "/s", &b]));
    let sql = "SELECT sum(v) AS s FROM public.s";
    let then = ok(pond(&[
        "--pond", &at, "sql", "--format", "csv", "--as-of", &between, sql,
    ]));
    assert_eq!(then, "s\n1\n");
    let now = ok(pond(&["--pond", &at, "sql", "--format", "csv", sql]));
    assert_eq!(now, "s\n3\n");
    let out = pond(&["--pond", &at, "sql", "--as-of", "last week", sql]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn series_union_from_pond_sql_and_stdin() {
    let (dir, at) = new_pond();
    let a = file(
        &dir,
        "a.csv",
        "ts,value\n2024-01-01T00:10:00Z,1\n2024-01-01T00:50:00Z,3\n2024-01-01T01:10:00Z,5\n",
    );
    let b = file(
        &dir,
        "b.csv",
        "time,value\n2024-01-01T00:20:00Z,10\n2024-01-02T00:00:00Z,99\n",
    );
    ok(pond(&["--pond", &at, "append", "/fleet/site3/a", &a]));
    ok(pond(&["--pond", &at, "append", "/fleet/site3/b", &b]));
    ok(pond(&["--pond", &at, "append", "/fleet/site4/c", &a]));
    let query = "SELECT series, date_bin(INTERVAL '1 hour', ts) AS h, avg(value) AS mean \
                 FROM series_union('/fleet/site3/*') \
                 WHERE ts >= '2024-01-01T00:00:00Z' AND ts < '2024-01-02T00:00:00Z' \
                 GROUP BY 1, 2 ORDER BY 1, 2";
    let rows = ok(pond(&["--pond", &at, "sql", query, "--format", "csv"]));
    assert_eq!(
        rows,
        "series,h,mean\n\
         /fleet/site3/a,2024-01-01T00:00:00Z,2.0\n\
         /fleet/site3/a,2024-01-01T01:00:00Z,5.0\n\
         /fleet/site3/b,2024-01-01T00:00:00Z,10.0\n"
    );
    let out = pond_with_stdin(
        &dir,
        &["--pond", &at, "sql"],
        b"SELECT count(*) AS n FROM series_union('/fleet/**') WHERE series <> '/fleet/site3/b';\n\\q\n",
    );
    let stdout = ok(out);
    assert!(stdout.contains("| 6 |"), "{stdout}");
}
