//! One set of pond scenarios, two backends: a local directory and a real S3
//! server on 127.0.0.1 (`s3s-fs`, embedded in the test binary: see
//! [`crate::s3_server`]), plus the in-memory store of `memory://` URLs.
//! Each scenario on S3 gets a bucket of its own.

use std::io::Write;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimeUnit};
use datafusion::prelude::SessionContext;
use pond::{CompactOptions, MAX_TIME, MIN_TIME, Pond, PondOptions, VacuumOptions};
use tempfile::TempDir;

use crate::common::*;
use crate::s3_server::{ACCESS_KEY, SECRET_KEY, server};

const HOUR: i64 = 3_600_000_000;

/// Where a scenario's pond lives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Local,
    S3,
}

const BACKENDS: [Backend; 2] = [Backend::Local, Backend::S3];

/// A new pond's location on `backend`, the options that reach it, and the
/// environment a `pond` process needs for it (`AWS_*` only).
struct Place {
    location: String,
    options: PondOptions,
    env: Vec<(&'static str, String)>,
    _dir: TempDir,
}

fn place(backend: Backend) -> Place {
    let dir = tempfile::tempdir().unwrap();
    match backend {
        Backend::Local => Place {
            location: dir.path().join("pond").to_str().unwrap().to_string(),
            options: manual(),
            env: Vec::new(),
            _dir: dir,
        },
        Backend::S3 => {
            let server = server();
            // A bucket per scenario: a folder of the server's root.
            let bucket = format!("b{}", uuid_like(&dir));
            server.create_bucket(&bucket);
            let env = vec![
                ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
                ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
                ("AWS_REGION", "us-east-1".to_string()),
                (
                    "AWS_ENDPOINT_URL",
                    format!("http://127.0.0.1:{}", server.port),
                ),
                ("AWS_ALLOW_HTTP", "true".to_string()),
            ];
            let mut options = manual();
            for (key, value) in &env {
                options = options.with_storage_option(key.to_ascii_lowercase(), value);
            }
            Place {
                location: format!("s3://{bucket}/ponds/p"),
                options,
                env,
                _dir: dir,
            }
        }
    }
}

/// A lowercase name unique to `dir`, fit for a bucket.
fn uuid_like(dir: &TempDir) -> String {
    dir.path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Runs the `pond` binary on `place` with only the environment it needs.
fn pond_process(place: &Place, args: &[&str]) -> Output {
    pond_command(place, args).output().unwrap()
}

/// The `pond` command with `args` on `place`, with only the environment it
/// needs: the pond's location and, on S3, the `AWS_*` variables.
fn pond_command(place: &Place, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pond"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("POND", &place.location)
        .env("POND_AUTO_COMPACT", "0");
    for (key, value) in &place.env {
        command.env(key, value);
    }
    command
}

fn stdout_of(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn sql(ctx: &SessionContext, query: &str) -> Vec<RecordBatch> {
    ctx.sql(query).await.unwrap().collect().await.unwrap()
}

fn first_i64(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

fn first_f64(batches: &[RecordBatch]) -> f64 {
    batches[0].column(0).as_primitive::<Float64Type>().value(0)
}

/// A batch `(ts, value)` of `n` readings from `start` (µs), one a minute.
fn minutes(start: i64, n: i64) -> RecordBatch {
    let times: Vec<i64> = (0..n).map(|i| start + i * 60_000_000).collect();
    RecordBatch::try_from_iter([
        ("ts", timestamps(TimeUnit::Microsecond, Some("UTC"), times)),
        (
            "value",
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))) as Arc<dyn Array>,
        ),
    ])
    .unwrap()
}

/// A new pond at `place` whose series `/site/temp` has `hours` versions of
/// an hour of readings each.
async fn filled(place: &Place, hours: i64) -> Pond {
    let pond = Pond::create_with_options(&place.location, place.options.clone())
        .await
        .unwrap();
    for hour in 0..hours {
        pond.append_batch("/site/temp", &minutes(hour * HOUR, 60), "ts")
            .await
            .unwrap();
    }
    pond
}

/// The rows of `/site/temp`, read through `SeriesStream`.
async fn rows_of(pond: &Pond) -> usize {
    pond.read_time_range("/site/temp", MIN_TIME, MAX_TIME)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_read_and_query_on_every_backend() {
    for backend in BACKENDS {
        let place = place(backend);
        let pond = Arc::new(filled(&place, 3).await);
        let ctx = SessionContext::new();
        pond::register(&ctx, Arc::clone(&pond));
        let count = sql(
            &ctx,
            "SELECT count(*) FROM site.temp WHERE ts >= '1970-01-01T01:00:00Z'",
        )
        .await;
        assert_eq!(first_i64(&count), 120, "{backend:?}");
        let union = sql(&ctx, "SELECT sum(value) FROM series_union('/site/*')").await;
        assert_eq!(first_f64(&union), 3.0 * (59.0 * 60.0 / 2.0), "{backend:?}");
        let plan = sql(
            &ctx,
            "EXPLAIN SELECT value FROM site.temp WHERE ts >= '1970-01-01T02:00:00Z'",
        )
        .await;
        let plan = arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(plan.contains("versions=1/3"), "{backend:?}: {plan}");

        // Another handle, opened now, reads the same; one opened before an
        // append sees it on its next query.
        let other = Arc::new(
            Pond::open_with_options(&place.location, place.options.clone())
                .await
                .unwrap(),
        );
        assert_eq!(rows_of(&other).await, 180, "{backend:?}");
        let later = SessionContext::new();
        pond::register(&later, Arc::clone(&other));
        pond.append_batch("/site/wind", &minutes(0, 10), "ts")
            .await
            .unwrap();
        let count = sql(&later, "SELECT count(*) FROM site.wind").await;
        assert_eq!(first_i64(&count), 10, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_time_travel_vacuum_and_check_on_every_backend() {
    // A time-travel read as of before the compaction, by oplog version and
    // by time: the same answer before the compaction, after it, and from
    // another handle, until vacuum deletes the superseded files.
    let as_of = |version: i64| {
        format!(
            "SELECT count(*) AS n, sum(value) AS s, min(ts) AS a, max(ts) AS b \
             FROM series_range('/site/temp', '1970-01-01T01:30:00Z', NULL, {version})"
        )
    };
    for backend in BACKENDS {
        let place = place(backend);
        let pond = Arc::new(filled(&place, 6).await);
        let fifth = pond.versions("/site/temp").unwrap()[4].version;
        let ctx = SessionContext::new();
        pond::register(&ctx, Arc::clone(&pond));
        let before = answer(&ctx, &as_of(fifth)).await;
        assert!(before.contains("| 210 |"), "{backend:?}: {before}");

        let outcome = pond
            .compact_with_options("/site/temp", &CompactOptions::default())
            .await
            .unwrap();
        assert!(outcome.versions_read > 1, "{backend:?}: {outcome:?}");
        assert_eq!(pond.series_info("/site/temp").unwrap().versions, 1);
        assert_eq!(answer(&ctx, &as_of(fifth)).await, before, "{backend:?}");
        let other = Arc::new(
            Pond::open_with_options(&place.location, place.options.clone())
                .await
                .unwrap(),
        );
        let other_ctx = SessionContext::new();
        pond::register(&other_ctx, other);
        assert_eq!(
            answer(&other_ctx, &as_of(fifth)).await,
            before,
            "{backend:?}"
        );

        let vacuumed = pond
            .vacuum_with_options(&VacuumOptions::new(Duration::ZERO).with_grace(Duration::ZERO))
            .await
            .unwrap();
        assert!(vacuumed.superseded_files > 0, "{backend:?}: {vacuumed:?}");
        let report = pond.check().await.unwrap();
        assert!(report.is_clean(), "{backend:?}: {report:?}");
        assert_eq!(rows_of(&pond).await, 360, "{backend:?}");
        let err = ctx
            .sql(&as_of(fifth))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("vacuumed"), "{backend:?}: {err}");
    }
}

/// The pretty-printed answer of `query`.
async fn answer(ctx: &SessionContext, query: &str) -> String {
    arrow::util::pretty::pretty_format_batches(&sql(ctx, query).await)
        .unwrap()
        .to_string()
}

/// A `pond` process killed (aborted) at each step of an append and of a
/// compaction leaves every committed row readable, no damage, and only
/// files that `check` calls pending (garbage once the grace is over) and
/// that `vacuum` then deletes.
#[test]
fn a_writer_killed_at_each_crash_point_leaves_only_garbage_on_every_backend() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // (crash point, command, rows after, live versions after, data files
    // left unreferenced, oplog files left unreferenced)
    let cases: [(&str, &str, usize, usize, usize, usize); 5] = [
        ("append-before-commit", "append", 180, 3, 1, 0),
        ("oplog-before-commit", "append", 180, 3, 1, 1),
        ("append-after-commit", "append", 181, 4, 0, 0),
        ("compact-before-commit", "compact", 180, 3, 1, 0),
        ("compact-after-commit", "compact", 180, 1, 0, 0),
    ];
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("late.csv");
    std::fs::write(&csv, "ts,value\n1970-01-02T00:00:00Z,1.5\n").unwrap();
    for backend in BACKENDS {
        for (point, command, rows, versions, data_left, oplog_left) in cases {
            let place = place(backend);
            let context = format!("{backend:?} {point}");
            drop(runtime.block_on(filled(&place, 3)));
            let args: &[&str] = if command == "append" {
                &["append", "/site/temp", csv.to_str().unwrap()]
            } else {
                &["compact", "/site/temp"]
            };
            let out = pond_command(&place, args)
                .env("POND_CRASH_AT", point)
                .output()
                .unwrap();
            assert!(!out.status.success(), "{context}: the process was aborted");

            runtime.block_on(async {
                let pond = Pond::open_with_options(&place.location, place.options.clone())
                    .await
                    .unwrap();
                assert_eq!(rows_of(&pond).await, rows, "{context}");
                let info = pond.series_info("/site/temp").unwrap();
                assert_eq!(info.versions, versions, "{context}");
                let report = pond.check().await.unwrap();
                assert!(report.is_clean(), "{context}: {report:?}");
                assert_eq!(report.pending.len(), data_left, "{context}: {report:?}");
                let report = pond.check_with_grace(Duration::ZERO).await.unwrap();
                assert!(report.problems.is_empty(), "{context}: {report:?}");
                assert_eq!(report.garbage, {
                    let mut pending = pond.check().await.unwrap().pending;
                    pending.sort();
                    pending
                });

                let vacuumed = pond
                    .vacuum_with_options(
                        &VacuumOptions::new(Duration::ZERO).with_grace(Duration::ZERO),
                    )
                    .await
                    .unwrap();
                assert_eq!(vacuumed.garbage_files, data_left, "{context}: {vacuumed:?}");
                assert!(
                    vacuumed.oplog_files >= oplog_left,
                    "{context}: {vacuumed:?}"
                );
                let report = pond.check_with_grace(Duration::ZERO).await.unwrap();
                assert!(
                    report.is_clean() && report.pending.is_empty(),
                    "{context}: {report:?}"
                );
                assert_eq!(rows_of(&pond).await, rows, "{context}");
            });
        }
    }
}

#[test]
fn the_command_line_on_every_backend_with_only_aws_variables() {
    for backend in BACKENDS {
        let place = place(backend);
        stdout_of(pond_process(&place, &["init"]));
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("r.csv");
        let mut file = std::fs::File::create(&csv).unwrap();
        writeln!(file, "ts,value").unwrap();
        for minute in 0..30 {
            writeln!(file, "2024-01-01T00:{minute:02}:00Z,{minute}").unwrap();
        }
        drop(file);
        let csv = csv.to_str().unwrap();
        stdout_of(pond_process(&place, &["append", "/plant/boiler", csv]));
        stdout_of(pond_process(&place, &["append", "/plant/boiler", csv]));
        let out = stdout_of(pond_process(
            &place,
            &[
                "sql",
                "SELECT count(*) AS n, sum(value) AS s FROM plant.boiler",
                "--format",
                "csv",
            ],
        ));
        assert_eq!(out, "n,s\n60,870\n", "{backend:?}");
        let listed = stdout_of(pond_process(&place, &["ls", "--format", "csv"]));
        assert!(listed.contains("/plant/boiler"), "{backend:?}: {listed}");
        if backend == Backend::S3 {
            // The server holds the pond: its oplog and data files.
            let bucket = place.location["s3://".len()..].split('/').next().unwrap();
            let pond_dir = server().bucket_dir(bucket).join("ponds/p");
            assert!(pond_dir.join("oplog/_delta_log").is_dir(), "{pond_dir:?}");
            assert!(pond_dir.join("data").is_dir(), "{pond_dir:?}");
        }
    }
}

#[test]
fn concurrent_append_processes_all_land_on_every_backend() {
    for backend in BACKENDS {
        let place = place(backend);
        stdout_of(pond_process(&place, &["init"]));
        let dir = tempfile::tempdir().unwrap();
        let writers = 4;
        let children: Vec<_> = (0..writers)
            .map(|w| {
                let csv = dir.path().join(format!("w{w}.csv"));
                let mut file = std::fs::File::create(&csv).unwrap();
                writeln!(file, "ts,value").unwrap();
                for minute in 0..10 {
                    writeln!(file, "2024-01-01T0{w}:{minute:02}:00Z,{w}").unwrap();
                }
                pond_command(&place, &["append", "/plant/boiler", csv.to_str().unwrap()])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            assert!(
                child.wait_with_output().unwrap().status.success(),
                "{backend:?}"
            );
        }
        let out = stdout_of(pond_process(
            &place,
            &[
                "sql",
                "SELECT count(*) AS n, count(DISTINCT value) AS writers FROM plant.boiler",
                "--format",
                "csv",
            ],
        ));
        assert_eq!(
            out,
            format!("n,writers\n{},{writers}\n", 10 * writers),
            "{backend:?}"
        );
        let versions = stdout_of(pond_process(
            &place,
            &[
                "sql",
                "SELECT count(*) AS versions, count(DISTINCT version) AS distinct_versions \
                 FROM series_versions('/plant/boiler') WHERE entry_type = 'append'",
                "--format",
                "csv",
            ],
        ));
        assert_eq!(
            versions,
            format!("versions,distinct_versions\n{writers},{writers}\n"),
            "{backend:?}"
        );
    }
}

#[test]
fn s3_errors_are_one_clear_line() {
    let server = server();
    let place = place(Backend::S3);
    // No credentials at all.
    let out = Command::new(env!("CARGO_BIN_EXE_pond"))
        .args(["--pond", &place.location, "init"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no S3 credentials"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // A bucket the server does not have.
    let missing = Place {
        location: "s3://nosuchbucket/p".into(),
        options: manual(),
        env: place.env.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let out = pond_process(&missing, &["init"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "error: cannot use the store at s3://nosuchbucket/p/: the bucket nosuchbucket does not exist\n"
    );
    // Credentials the server does not accept.
    let mut wrong = place.env.clone();
    wrong[1].1 = "not-the-secret".into();
    let refused = Place {
        location: place.location.clone(),
        options: manual(),
        env: wrong,
        _dir: tempfile::tempdir().unwrap(),
    };
    let out = pond_process(&refused, &["init"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with("the S3 server refused the credentials (SignatureDoesNotMatch)\n"),
        "{stderr}"
    );
    // A scheme pond does not know.
    let out = pond_process(&place, &["--pond", "gopher://x/y", "ls"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unsupported scheme gopher://"), "{stderr}");
    let _ = server;
}

/// Credentials, region and endpoint from a named profile of the AWS
/// shared files, as the AWS tools read them; the environment names only
/// the profile (and allows plain HTTP to the test server).
#[test]
fn s3_settings_come_from_a_named_aws_profile() {
    let server = server();
    let place = place(Backend::S3);
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n\
             [lab]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile lab]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:{}\n",
            server.port
        ),
    )
    .unwrap();
    let profiled = |profile: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pond"))
            .args(["--pond", &place.location])
            .args(args)
            .env_clear()
            .env("HOME", home.path())
            .env("AWS_PROFILE", profile)
            .env("AWS_ALLOW_HTTP", "true")
            .output()
            .unwrap()
    };
    stdout_of(profiled("lab", &["init"]));
    let csv = home.path().join("r.csv");
    std::fs::write(
        &csv,
        "ts,v\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n",
    )
    .unwrap();
    stdout_of(profiled("lab", &["append", "/s", csv.to_str().unwrap()]));
    let sum = stdout_of(profiled(
        "lab",
        &["sql", "SELECT sum(v) AS s FROM s", "--format", "csv"],
    ));
    assert_eq!(sum, "s\n3\n");
    // A profile in neither file is one error line naming it.
    let out = profiled("nosuch", &["ls"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the AWS profile nosuch is in neither"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn memory_ponds_are_shared_within_a_process() {
    let location = "memory://tests-shared/pond";
    let pond = Pond::create_with_options(location, manual()).await.unwrap();
    pond.append_batch("/a/b", &minutes(0, 5), "ts")
        .await
        .unwrap();
    let again = Pond::open_with_options(location, manual()).await.unwrap();
    assert_eq!(again.series_info("/a/b").unwrap().rows, 5);
    assert!(matches!(
        Pond::create_with_options(location, manual()).await,
        Err(pond::Error::PondExists { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_query_on_s3_costs_requests_by_kept_versions_not_by_all() {
    let place = place(Backend::S3);
    let versions = 120;
    {
        let pond = Pond::create_with_options(&place.location, place.options.clone())
            .await
            .unwrap();
        for v in 0..versions {
            pond.append_batch("/site/temp", &minutes(v * HOUR, 10), "ts")
                .await
                .unwrap();
        }
    }
    // Opening reads the oplog, never the data, and not the whole Delta log
    // (checkpoints and the trimming behind them keep it short).
    let pond = Arc::new(
        Pond::open_with_options(&place.location, place.options.clone())
            .await
            .unwrap(),
    );
    let opened = pond.store_requests();
    assert_eq!(opened.data, pond::Requests::default(), "{opened:?}");
    assert!(opened.delta_log.listed < 40, "{opened:?}");
    // The checkpoint in one GET, not one per column chunk (54 before), then
    // `_last_checkpoint` and the commits after the checkpoint.
    assert!(opened.delta_log.gets <= 12, "{opened:?}");
    // One GET per oplog file, whose number grows with the log of the
    // number of commits (its files are merged by size tiers).
    assert!(opened.oplog.gets < 30, "{opened:?}");

    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::clone(&pond));
    let window = "WHERE ts >= '1970-01-05T00:00:00Z' AND ts < '1970-01-05T05:00:00Z'";
    // The window holds 5 whole versions: their rows are counted from the
    // oplog, with no request for data at all.
    let before = pond.store_requests();
    let count = sql(&ctx, &format!("SELECT count(*) FROM site.temp {window}")).await;
    assert_eq!(first_i64(&count), 50);
    let after = pond.store_requests();
    assert_eq!(after.data, before.data, "{after:?}");
    // A sum reads them.
    let query = format!("SELECT count(*), sum(value) FROM site.temp {window}");
    let mut gets = Vec::new();
    for _ in 0..2 {
        let before = pond.store_requests();
        let count = sql(&ctx, &query).await;
        assert_eq!(first_i64(&count), 50);
        let after = pond.store_requests();
        assert_eq!(after.data.lists, before.data.lists, "{after:?}");
        gets.push(after.data.gets - before.data.gets);
    }
    // 5 of 300 versions kept: a few GETs each (footer, page index, the
    // column chunks), and fewer once their footers are cached.
    assert!(gets[0] > 0 && gets[0] <= 5 * 8, "{gets:?}");
    assert!(gets[1] < gets[0], "{gets:?}");
    // EXPLAIN ANALYZE shows them on the scan.
    let analyzed = sql(&ctx, &format!("EXPLAIN ANALYZE {query}")).await;
    let analyzed = arrow::util::pretty::pretty_format_batches(&analyzed)
        .unwrap()
        .to_string();
    assert!(analyzed.contains("store_list_requests=0"), "{analyzed}");
    assert!(
        analyzed.contains(&format!("store_get_requests={}", gets[1])),
        "{gets:?} {analyzed}"
    );
}

#[test]
fn a_killed_append_leaves_no_version_on_every_backend() {
    for backend in BACKENDS {
        let place = place(backend);
        stdout_of(pond_process(&place, &["init"]));
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.csv");
        std::fs::write(&first, "ts,v\n2024-01-01T00:00:00Z,1\n").unwrap();
        stdout_of(pond_process(
            &place,
            &["append", "/s", first.to_str().unwrap()],
        ));
        let log = stdout_of(pond_process(&place, &["log", "--format", "csv"]));
        let mut child = pond_command(&place, &["append", "/s", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ts,v\n").unwrap();
        for i in 0..200_000 {
            writeln!(stdin, "2024-01-02T00:00:00.{i:06}Z,{i}").unwrap();
        }
        // Rows are in flight; the input never ends. Kill it mid-append.
        std::thread::sleep(Duration::from_millis(300));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(stdin);
        assert_eq!(
            stdout_of(pond_process(&place, &["log", "--format", "csv"])),
            log,
            "{backend:?}"
        );
        let check = stdout_of(pond_process(&place, &["check"]));
        assert!(!check.contains("CORRUPT"), "{backend:?}: {check}");
        let rows = stdout_of(pond_process(
            &place,
            &["sql", "SELECT count(*) AS n FROM s", "--format", "csv"],
        ));
        assert_eq!(rows, "n\n1\n", "{backend:?}");
    }
}

/// On S3, where every request costs a round trip: a query reads the Delta
/// log once (the refresh the catalog made to resolve its table serves its
/// scan), and running the kept DataFrame again refreshes again.
#[tokio::test]
async fn a_query_reads_the_log_once_and_a_kept_dataframe_again_each_run() {
    let place = place(Backend::S3);
    let pond = Arc::new(filled(&place, 3).await);
    let ctx = SessionContext::new();
    pond::register(&ctx, Arc::clone(&pond));
    let log_requests = || {
        let r = pond.store_requests().delta_log;
        r.gets + r.heads + r.lists
    };
    let before = log_requests();
    pond.refresh().await.unwrap();
    let one_refresh = log_requests() - before;
    assert!(one_refresh > 0);

    let kept = ctx.sql("SELECT count(*) FROM site.temp").await.unwrap();
    let before = log_requests();
    let first = kept.clone().collect().await.unwrap();
    let first_run = log_requests() - before;
    let before = log_requests();
    let second = kept.collect().await.unwrap();
    let second_run = log_requests() - before;
    assert_eq!(first_i64(&first), first_i64(&second));
    assert_eq!((first_run, second_run), (0, one_refresh));

    let before = log_requests();
    sql(&ctx, "SELECT count(*) FROM site.temp").await;
    assert_eq!(log_requests() - before, one_refresh, "a whole query");
}
