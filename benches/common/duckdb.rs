//! DuckDB as the benchmarks' yardstick: its CLI and Python API, answers
//! compared with pond's, and the cost of a whole process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `$DUCKDB`, the binary of the `duckdb-cli` Python package, or `duckdb`.
pub(crate) fn duckdb_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("DUCKDB") {
        return path.into();
    }
    let from_pip = Command::new("python3")
        .args([
            "-c",
            "import duckdb_cli, os; print(os.path.join(os.path.dirname(duckdb_cli.__file__), 'duckdb'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let binary = from_pip.unwrap_or_else(|| "duckdb".into());
    let works = Command::new(&binary)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "the DuckDB CLI is needed: `pip install duckdb-cli`, or set $DUCKDB"
    );
    binary
}

pub(crate) fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// DuckDB's answer, as CSV rows without the header.
pub(crate) fn duckdb_answer(duckdb: &Path, db: &Path, sql: &str) -> String {
    let out = Command::new(duckdb)
        .args(["-readonly", "-csv", "-noheader"])
        .arg(db)
        .arg("-c")
        .arg(format!("SET TimeZone = 'UTC'; {sql}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "DuckDB failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The median of `runs` runs of `sql` in one warm DuckDB session (its
/// Python API, the same engine as the CLI) that ran `setup` first, after 3
/// untimed ones.
pub(crate) fn duckdb_time(db: &Path, setup: &str, sql: &str, runs: usize) -> Duration {
    const SCRIPT: &str = "
import duckdb, statistics, sys, time
db, setup, sql, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
con = duckdb.connect(db, read_only=True)
con.execute(\"SET TimeZone = 'UTC'\")
con.execute('SET enable_progress_bar = false')
if setup:
    con.execute(setup)
for _ in range(3):
    con.execute(sql).fetchall()
times = []
for _ in range(runs):
    t = time.perf_counter()
    con.execute(sql).fetchall()
    times.append(time.perf_counter() - t)
print(statistics.median(times))
";
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(db)
        .arg(setup)
        .arg(sql)
        .arg(runs.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "DuckDB's Python API is needed (`pip install duckdb pytz`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seconds: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Duration::from_secs_f64(seconds)
}

/// The `pond` binary as `cargo build --release` makes it (built now if it
/// is not up to date), for the whole-process figures. The benchmark's own
/// `CARGO_BIN_EXE_pond` is not that binary: a bench build turns on the
/// features its dev-dependencies ask of pond's dependencies, which renames
/// their functions, so the release symbol order (`build.rs`) misses them
/// and the process maps about 50 MB more of its code.
///
/// The variables cargo sets for the benchmark's process (`OUT_DIR`,
/// `CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...) are left out of the build's
/// environment: ring's build script watches them, and seeing them changed
/// would rebuild most of the dependencies (20 minutes here), and again in
/// the next `cargo build --release` or `cargo bench`.
pub(crate) fn release_pond() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || [
                "OUT_DIR",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref());
        if set_by_cargo {
            build.env_remove(name.as_ref());
        }
    }
    let out = build
        .args(["build", "--release", "--locked", "--bin", "pond"])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build --release --bin pond failed"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["target"]["name"] == "pond")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the pond binary")
}

/// The median wall time of `runs` runs of a whole process, and its median
/// peak resident memory in MiB (GNU time's `%M`).
pub(crate) fn process_cost(command: &mut Command, runs: usize) -> (Duration, f64) {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..runs + 2 {
        let t = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(&program)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("GNU time (/usr/bin/time) is needed");
        let elapsed = t.elapsed();
        assert!(out.status.success(), "{program:?} failed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let kib: f64 = stderr.lines().last().unwrap().trim().parse().unwrap();
        times.push(elapsed);
        peaks.push(Duration::from_secs_f64(kib / 1024.0));
    }
    (median(times), median(peaks).as_secs_f64())
}

/// Checks two CSV answers equal: numbers within a relative 1e-9 (sums and
/// averages may round differently), timestamps as instants.
pub(crate) fn assert_same(got: &str, want: &str, what: &str) {
    let rows = |s: &str| -> Vec<Vec<String>> {
        s.lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(normalize).collect())
            .collect()
    };
    let (got_rows, want_rows) = (rows(got), rows(want));
    assert_eq!(
        got_rows.len(),
        want_rows.len(),
        "{what}: row counts differ\n{got}\nvs DuckDB\n{want}"
    );
    assert!(
        !want_rows.is_empty() || what.contains("> 90"),
        "{what}: no rows"
    );
    for (g, w) in got_rows.iter().zip(&want_rows) {
        let same = g.len() == w.len()
            && g.iter()
                .zip(w)
                .all(|(a, b)| match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                    _ => a == b,
                });
        assert!(same, "{what}: {g:?} vs DuckDB {w:?}");
    }
}

/// A timestamp in either printing (`2024-01-03T12:00:00Z`, `2024-01-03
/// 12:00:00+00`) as µs since the epoch; anything else as it is.
fn normalize(field: &str) -> String {
    let field = field.trim().trim_matches('"');
    let looks_like_time =
        field.len() >= 19 && field.as_bytes()[4] == b'-' && field.as_bytes()[10] != b'_';
    if looks_like_time {
        let mut s = field.replacen(' ', "T", 1);
        if let Some(rest) = s.strip_suffix('Z') {
            s = format!("{rest}+00:00");
        } else if s.ends_with("+00") {
            s.push_str(":00");
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s) {
            return t.timestamp_micros().to_string();
        }
    }
    field.to_string()
}
