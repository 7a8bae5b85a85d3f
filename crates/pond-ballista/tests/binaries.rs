//! The real binaries: `pond-scheduler` and two `pond-executor`s on
//! 127.0.0.1, and `pond sql --cluster` against them, with answers equal to
//! a local `pond sql`: for a pond in a local directory and for one on a
//! real S3 server (pond's test server, `s3s-fs`, in this process).
//!
//! `pond` is the binary of the workspace's main package, built with the
//! feature `cluster` (`cargo test --workspace --all-features` builds it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pond_ballista::LocalCluster;

#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/integration/s3_server.rs"]
mod s3_server;

/// A scheduler and two executors from this package's binaries, with `env`
/// (the store's credentials) in their environment.
fn cluster(env: &[(&str, String)]) -> LocalCluster {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pond-scheduler"))
        .parent()
        .unwrap();
    LocalCluster::start(bin_dir, 2, 2, env).unwrap()
}

/// The workspace's `pond` binary, next to this package's binaries.
fn pond_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_pond-scheduler"))
        .with_file_name(format!("pond{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace --all-features`, which builds it",
        bin.display()
    );
    bin
}

fn pond(args: &[&str], env: &[(&str, String)]) -> Output {
    let output = Command::new(pond_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pond {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

const QUERIES: &[&str] = &[
    // A two-hour window of one series.
    "SELECT count(*), round(avg(celsius), 6), min(ts), max(ts) FROM plant.boiler \
     WHERE ts >= '2026-01-01T05:00:00Z' AND ts < '2026-01-01T07:00:00Z'",
    // Two series joined by time, hour by hour.
    "SELECT date_trunc('hour', b.ts) AS hour, round(avg(b.celsius), 6), round(avg(m.kw), 6) \
     FROM plant.boiler b JOIN plant.meter m ON b.ts = m.ts \
     WHERE b.ts < '2026-01-01T03:00:00Z' GROUP BY hour ORDER BY hour",
    // TopK over a whole series.
    "SELECT ts, celsius FROM plant.boiler ORDER BY celsius DESC, ts LIMIT 5",
    // A window read with the table function.
    "SELECT count(*), round(sum(kw), 6) FROM series_range('/plant/meter', \
     '2026-01-01T10:00:00', '2026-01-01T13:30:00')",
    // Both series as one table.
    "SELECT series, count(*) FROM series_union('/plant/*') GROUP BY series ORDER BY series",
];

/// A pond at `location` with two series, `/plant/boiler` and
/// `/plant/meter`, of readings every minute, appended an hour (one
/// version) at a time through `pond append`.
fn fill(location: &str, hours: i64, env: &[(&str, String)]) {
    let dir = tempfile::tempdir().unwrap();
    for (series, column, scale) in [
        ("/plant/boiler", "celsius", 1.5),
        ("/plant/meter", "kw", 0.25),
    ] {
        for hour in 0..hours {
            let mut csv = format!("ts,{column}\n");
            for minute in 0..60 {
                let value = ((hour * 60 + minute) * 37 % 101) as f64 * scale;
                csv.push_str(&format!("2026-01-01T{hour:02}:{minute:02}:00Z,{value}\n"));
            }
            let file = dir.path().join(format!("{column}-{hour}.csv"));
            std::fs::write(&file, csv).unwrap();
            pond(
                &["--pond", location, "append", series, file.to_str().unwrap()],
                env,
            );
        }
    }
}

/// Each query's CSV on the cluster equals a local session's.
fn same_answers(location: &str, cluster: &LocalCluster, env: &[(&str, String)]) {
    for sql in QUERIES {
        let local = pond(&["--pond", location, "sql", sql, "--format", "csv"], env);
        let remote = pond(
            &[
                "--pond",
                location,
                "sql",
                sql,
                "--format",
                "csv",
                "--cluster",
                &cluster.url(),
            ],
            env,
        );
        assert_eq!(stdout(&local), stdout(&remote), "{sql}");
        assert!(stdout(&local).lines().count() > 1, "{sql}: no rows");
    }
    let explain = pond(
        &[
            "--pond",
            location,
            "sql",
            "EXPLAIN SELECT count(*) FROM plant.boiler \
             WHERE ts >= '2026-01-01T05:00:00Z' AND ts < '2026-01-01T06:00:00Z'",
            "--cluster",
            &cluster.url(),
        ],
        env,
    );
    let plan = stdout(&explain);
    assert!(
        plan.contains("SeriesScanExec: series=/plant/boiler"),
        "{plan}"
    );
    assert!(plan.contains("versions=1/"), "{plan}");
}

#[test]
fn pond_sql_on_a_cluster_of_the_real_binaries_answers_as_locally() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("demo");
    let location = location.to_str().unwrap();
    pond(&["--pond", location, "init"], &[]);
    fill(location, 24, &[]);
    let cluster = cluster(&[]);
    same_answers(location, &cluster, &[]);

    // Writes in a session on the cluster run in the client: Ballista would
    // send them to the scheduler, which cannot run an INSERT.
    let on_cluster = |sql: &str| {
        let args = ["--pond", location, "sql", sql, "--format", "csv"];
        stdout(&pond(
            &[&args[..], &["--cluster", &cluster.url()]].concat(),
            &[],
        ))
    };
    let count = "SELECT count(*) AS n FROM plant.boiler";
    assert_eq!(on_cluster(count), "n\n1440\n");
    on_cluster("INSERT INTO plant.boiler VALUES ('2026-01-02T00:00:00Z', 1.5)");
    assert_eq!(on_cluster(count), "n\n1441\n");
    let script = format!("DELETE FROM plant.boiler WHERE ts >= '2026-01-01T23:00:00Z'; {count}");
    assert!(on_cluster(&script).ends_with("n\n1380\n"));
    // Under EXPLAIN ANALYZE, prepared, after pond.as_of is set and unset
    // (in both sessions: a delete refuses a session reading as of a time),
    // and beside a setting only the cluster knows. (DataFusion 55 cannot
    // RESET an extension's setting.)
    let script = format!(
        "SET ballista.job.name = 'writes'; SET pond.as_of = '2026-01-01T00:00:00Z'; \
         SET pond.as_of = ''; RESET datafusion.execution.batch_size; \
         EXPLAIN ANALYZE DELETE FROM plant.boiler WHERE ts >= '2026-01-01T22:00:00Z'; {count}; \
         PREPARE d AS DELETE FROM plant.boiler WHERE ts >= '2026-01-01T21:00:00Z'; \
         EXECUTE d; {count}"
    );
    let out = on_cluster(&script);
    assert!(out.contains("n\n1320\n"), "{out}");
    assert!(out.ends_with("n\n1260\n"), "{out}");
}

#[test]
fn pond_sql_on_a_cluster_reads_a_pond_on_s3() {
    let server = s3_server::server();
    server.create_bucket("cluster");
    let env = vec![
        ("AWS_ACCESS_KEY_ID", s3_server::ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", s3_server::SECRET_KEY.to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        (
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", server.port),
        ),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ];
    let location = "s3://cluster/demo";
    pond(&["--pond", location, "init"], &env);
    fill(location, 14, &env);
    // The scheduler and executors find the credentials in their own
    // environment: none travel in the plans.
    let cluster = cluster(&env);
    same_answers(location, &cluster, &env);
}
