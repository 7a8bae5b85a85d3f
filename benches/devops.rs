//! The devops monitoring workload of issue 9, against DuckDB's native table
//! and DataFusion's `ListingTable` over the same rows, before and after
//! compaction, in one run.
//!
//! Workload: 100 hosts × 10 CPU metrics and 9 tag columns, one row per host
//! every 10 s for 3 days (2,592,000 rows), appended as one version per 10
//! minutes of all hosts (432 versions). "After" is the same pond compacted
//! with the sort key `hostname` (then vacuumed, so that its data folder
//! holds only the live file for `ListingTable`). "After, LZ4" is the same
//! compaction of a series that declared `--compression lz4`: a second table
//! gives its times, against DuckDB, zstd and before compaction.
//!
//! Every query runs warm (the table registered, a few runs first) and the
//! median of the timed runs is reported; every answer is checked equal
//! across all five. The ratio of `ListingTable` to pond, and that of pond
//! before to pond after compaction, come from separate runs of the two that
//! take turns, each in its own session (the medians of the runs one after
//! the other drifted apart by 10–20% on this machine between runs). The
//! whole process is measured too: `pond sql` (the binary `cargo build
//! --release` makes) against the DuckDB CLI on its database file, on the
//! one-host 12-hour query, start to exit, with peak memory from GNU time.
//!
//! Needs DuckDB's CLI and Python API of one version (`pip install
//! duckdb-cli==1.5.6 duckdb==1.5.6 pytz`; `$DUCKDB` names another CLI) and GNU
//! time (`/usr/bin/time`, Debian's `time`). Run with
//! `cargo bench --bench devops`; the data is built once under
//! `target/bench-ponds/devops/` (delete it to rebuild). `DEVOPS_RUNS`
//! sets the timed runs per query (default 15); `DEVOPS_PUSHDOWN=1` turns
//! on DataFusion's `pushdown_filters` and `reorder_filters` for pond and
//! `ListingTable` alike. `DEVOPS_EXPLAIN=1` prints instead, after
//! compaction, each query's `EXPLAIN ANALYZE` through pond and through
//! `ListingTable` and the time each takes to plan, and the cost of one
//! refresh of the pond.
//!
//! `DEVOPS_ONLY=average` times only the queries whose name holds the text.
//!
//! `cargo bench --bench devops -- keyed` measures instead what a key costs
//! (issue 10): the same appends, plus one re-delivery of an earlier hour of
//! one host after every 20th version (5% of the versions), into an unkeyed
//! and a keyed (`hostname`) series, each query timed on both before and
//! after compaction. Only DataFusion is needed for it.

mod common;
#[path = "common/duckdb.rs"]
mod duckdb;
use common::{bench_dir, copy_dir};
use duckdb::{
    assert_same, duckdb_answer, duckdb_binary, duckdb_time, median, process_cost, release_pond,
};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use pond::{AppendOptions, CompactOptions, Compression, Pond, PondOptions, VacuumOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HOSTS: usize = 100;
const METRICS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];
const TAGS: [&str; 9] = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
];
const STEP: i64 = 10_000_000;
/// 2024-01-01T00:00:00Z in µs.
const START: i64 = 1_704_067_200_000_000;
const DAYS: i64 = 3;
/// Readings per host in one version: 10 minutes.
const PER_VERSION: i64 = 60;
const SERIES: &str = "/devops/cpu";

/// The queries, with `{t}` for the table. The data ends at
/// 2024-01-04T00:00:00Z.
const QUERIES: [(&str, &str); 7] = [
    (
        "one host, 5 metrics, 12 h, max per minute",
        "SELECT date_trunc('minute', ts) AS minute, max(usage_user), max(usage_system), \
         max(usage_idle), max(usage_nice), max(usage_iowait) FROM {t} \
         WHERE hostname = 'host_42' AND ts >= '2024-01-03T12:00:00Z' \
         AND ts < '2024-01-04T00:00:00Z' GROUP BY 1 ORDER BY 1",
    ),
    (
        "one host, all metrics, 8 h, max per hour",
        "SELECT date_trunc('hour', ts) AS hour, max(usage_user), max(usage_system), \
         max(usage_idle), max(usage_nice), max(usage_iowait), max(usage_irq), \
         max(usage_softirq), max(usage_steal), max(usage_guest), max(usage_guest_nice) \
         FROM {t} WHERE hostname = 'host_7' AND ts >= '2024-01-02T08:00:00Z' \
         AND ts < '2024-01-02T16:00:00Z' GROUP BY 1 ORDER BY 1",
    ),
    (
        "last reading per host",
        "SELECT c.hostname, c.ts, c.usage_user FROM {t} c \
         JOIN (SELECT hostname, max(ts) AS ts FROM {t} GROUP BY hostname) l \
         ON c.hostname = l.hostname AND c.ts = l.ts ORDER BY c.hostname",
    ),
    (
        "one host, 12 h, usage_user > 90",
        "SELECT ts, usage_user FROM {t} WHERE hostname = 'host_42' \
         AND ts >= '2024-01-03T12:00:00Z' AND ts < '2024-01-04T00:00:00Z' \
         AND usage_user > 90 ORDER BY ts",
    ),
    (
        "all hosts, 12 h, hourly average",
        "SELECT hostname, date_trunc('hour', ts) AS hour, avg(usage_user) FROM {t} \
         WHERE ts >= '2024-01-03T12:00:00Z' AND ts < '2024-01-04T00:00:00Z' \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "latest 5 minutes, newest 5",
        "SELECT ts, hostname, usage_user FROM {t} WHERE ts >= '2024-01-03T23:55:00Z' \
         ORDER BY ts DESC, hostname LIMIT 5",
    ),
    (
        "count over the last hour",
        "SELECT count(*) FROM {t} WHERE ts >= '2024-01-03T23:00:00Z'",
    ),
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runs: usize = std::env::var("DEVOPS_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    if std::env::args().any(|a| a == "keyed") {
        rt.block_on(keyed_cost(runs));
        return;
    }
    let duckdb = duckdb_binary();
    let dir = bench_dir().join("devops");
    let data = rt.block_on(build(&dir, &duckdb));

    let mut report = String::new();
    let _ = writeln!(
        report,
        "devops workload: {} rows, {} versions before compaction; medians of {runs} warm runs (ms)\n",
        HOSTS as i64 * DAYS * 86_400_000_000 / STEP,
        DAYS * 86_400_000_000 / STEP / PER_VERSION
    );
    let _ = writeln!(
        report,
        "| query | pond before | pond after | ListingTable before | ListingTable after | DuckDB | after / DuckDB | before / after (paired) | ListingTable after / pond after |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|");
    let before = rt.block_on(Session::new(&data.before, &data.before_files));
    let after = rt.block_on(Session::new(&data.after, &data.after_files));
    if std::env::var_os("DEVOPS_EXPLAIN").is_some() {
        // Where the time goes after compaction: each query's plan with its
        // metrics, through pond and through `ListingTable`, and the time to
        // plan it alone.
        let resolve = rt.block_on(async {
            let schema = after.ctx.catalog("pond").unwrap().schema("devops").unwrap();
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                schema.table("cpu").await.unwrap().unwrap();
                times.push(t.elapsed());
            }
            median(times)
        });
        println!("## resolving devops.cpu through the catalog: {resolve:?}");
        // The table the catalog resolves, registered as it is: planning
        // through it has no refresh and no catalog lookup.
        let direct = rt.block_on(async {
            let schema = after.ctx.catalog("pond").unwrap().schema("devops").unwrap();
            schema.table("cpu").await.unwrap().unwrap()
        });
        after
            .ctx
            .register_table("datafusion.public.direct", direct)
            .unwrap();
        for (name, sql) in QUERIES {
            for table in [
                "devops.cpu",
                "datafusion.public.direct",
                "datafusion.public.listing",
            ] {
                let sql = sql.replace("{t}", table);
                // Warm, as the timed runs are: footers and page indexes cached.
                for _ in 0..3 {
                    rt.block_on(after.collect(&sql));
                }
                let plan = rt.block_on(after.csv(&format!("EXPLAIN ANALYZE {sql}")));
                let planning = rt.block_on(after.planning(&sql, runs));
                let logical = rt.block_on(async {
                    let mut times = Vec::with_capacity(runs);
                    for _ in 0..runs {
                        let t = Instant::now();
                        after.ctx.sql(&sql).await.unwrap();
                        times.push(t.elapsed());
                    }
                    median(times)
                });
                println!("## {name}: {table}, logical planning {logical:?}");
                println!("## {name}: {table}, planning {planning:?}\n{plan}");
            }
        }
        return;
    }
    let after_listing = rt.block_on(Session::new(&data.after, &data.after_files));
    // (Its `ListingTable`, over the zstd files, is not queried.)
    let lz4 = rt.block_on(Session::new(&data.after_lz4, &data.after_files));
    let mut lz4_report = String::from(
        "\nafter compaction with `--compression lz4` (files of the same compaction):\n\n\
         | query | pond after, LZ4 | LZ4 / DuckDB | LZ4 / zstd (paired) | before / LZ4 (paired) |\n\
         |---|---|---|---|---|\n",
    );
    let only = std::env::var("DEVOPS_ONLY").unwrap_or_default();
    for (name, sql) in QUERIES.into_iter().filter(|(name, _)| name.contains(&only)) {
        let pond_sql = sql.replace("{t}", "devops.cpu");
        let listing_sql = sql.replace("{t}", "datafusion.public.listing");
        let duck_sql = sql.replace("{t}", "cpu");
        // The answers first: all five must agree.
        let want = duckdb_answer(&duckdb, &data.duckdb, &duck_sql);
        for (who, session, sql) in [
            ("pond before", &before, &pond_sql),
            ("pond after", &after, &pond_sql),
            ("pond after, LZ4", &lz4, &pond_sql),
            ("ListingTable before", &before, &listing_sql),
            ("ListingTable after", &after, &listing_sql),
        ] {
            let got = rt.block_on(session.csv(sql));
            assert_same(&got, &want, &format!("{who}: {name}"));
        }
        let times = [
            rt.block_on(before.time(&pond_sql, runs)),
            rt.block_on(after.time(&pond_sql, runs)),
            rt.block_on(before.time(&listing_sql, runs)),
            rt.block_on(after.time(&listing_sql, runs)),
            duckdb_time(&data.duckdb, "", &duck_sql, runs),
        ];
        // pond against `ListingTable` run by run, each in its own session,
        // so that a slower spell of the machine falls on both alike. (In
        // one session they would evict each other's cached footers: the
        // cache checks a file's modification time, which pond leaves unset,
        // as a version's file never changes, and a listing reads from the
        // file system.)
        let (pond_paired, listing_paired) = rt.block_on(taking_turns(
            (&after, &pond_sql),
            (&after_listing, &listing_sql),
            runs,
        ));
        let (before_paired, after_paired) = rt.block_on(taking_turns(
            (&before, &pond_sql),
            (&after, &pond_sql),
            runs,
        ));
        let lz4_time = rt.block_on(lz4.time(&pond_sql, runs));
        let (zstd_paired, lz4_paired) =
            rt.block_on(taking_turns((&after, &pond_sql), (&lz4, &pond_sql), runs));
        let (before_lz4_paired, lz4_after_paired) =
            rt.block_on(taking_turns((&before, &pond_sql), (&lz4, &pond_sql), runs));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let _ = writeln!(
            lz4_report,
            "| {name} | {:.1} | {:.2} | {:.2} | {:.1} |",
            ms(lz4_time),
            ms(lz4_time) / ms(times[4]),
            ms(lz4_paired) / ms(zstd_paired),
            ms(before_lz4_paired) / ms(lz4_after_paired),
        );
        let _ = writeln!(
            report,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} |",
            ms(times[0]),
            ms(times[1]),
            ms(times[2]),
            ms(times[3]),
            ms(times[4]),
            ms(times[1]) / ms(times[4]),
            ms(before_paired) / ms(after_paired),
            ms(listing_paired) / ms(pond_paired),
        );
        eprintln!("{name}: done");
    }

    report.push_str(&lz4_report);

    // The whole process, on the one-host 12-hour query.
    let q1 = QUERIES[0].1;
    let pond_bin = release_pond();
    let pond_run = process_cost(
        Command::new(pond_bin)
            .arg("--pond")
            .arg(&data.after)
            .args(["sql", "--format", "csv"])
            .arg(q1.replace("{t}", "devops.cpu")),
        runs,
    );
    let duck_run = process_cost(
        Command::new(&duckdb)
            .args(["-readonly", "-csv"])
            .arg(&data.duckdb)
            .arg("-c")
            .arg(q1.replace("{t}", "cpu")),
        runs,
    );
    let _ = writeln!(
        report,
        "\nwhole process, one host 12 h (after compaction): `pond sql` {:.1} ms, {:.1} MiB; \
         DuckDB CLI {:.1} ms, {:.1} MiB; ratio {:.2} (time), {:.2} (peak memory)",
        pond_run.0.as_secs_f64() * 1e3,
        pond_run.1,
        duck_run.0.as_secs_f64() * 1e3,
        duck_run.1,
        pond_run.0.as_secs_f64() / duck_run.0.as_secs_f64(),
        pond_run.1 / duck_run.1,
    );
    println!("{report}");
    let out = bench_dir().join("devops-results.md");
    std::fs::write(&out, &report).unwrap();
    eprintln!("written to {}", out.display());
}

/// What a key costs: an unkeyed and a keyed series of the same appends,
/// with 5% of them re-delivering an earlier hour of one host, queried
/// before and after compaction.
async fn keyed_cost(runs: usize) {
    let dir = bench_dir().join("devops-keyed");
    let (plain, keyed) = (dir.join("plain"), dir.join("keyed"));
    let done = dir.join(".complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let manual = PondOptions::default().with_auto_compact_versions(0);
        let a = Pond::create_with_options(plain.to_str().unwrap(), manual.clone())
            .await
            .unwrap();
        let b = Pond::create_with_options(keyed.to_str().unwrap(), manual)
            .await
            .unwrap();
        let key = AppendOptions::default().with_key(["hostname"]);
        let mut generator = Generator::new();
        let mut redelivered = 0;
        let started = Instant::now();
        let mut i = 0;
        while let Some(batch) = generator.next() {
            a.append_batch(SERIES, &batch, "ts").await.unwrap();
            b.append_batch_with_options(SERIES, &batch, "ts", &key)
                .await
                .unwrap();
            i += 1;
            if i % 20 == 0 {
                let again = generator.redelivery(i);
                a.append_batch(SERIES, &again, "ts").await.unwrap();
                b.append_batch(SERIES, &again, "ts").await.unwrap();
                redelivered += 1;
            }
        }
        eprintln!(
            "appended {i} versions and {redelivered} re-deliveries in {:?}",
            started.elapsed()
        );
        std::fs::write(&done, b"").unwrap();
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "keyed vs unkeyed series, same appends (5% re-deliver an hour of one host); \
         medians of {runs} warm runs (ms)\n"
    );
    let _ = writeln!(
        report,
        "| query | unkeyed before | keyed before | keyed / unkeyed | unkeyed after | keyed after | keyed / unkeyed |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|");
    let mut rows: Vec<[Duration; 4]> = vec![[Duration::ZERO; 4]; QUERIES.len()];
    for (stage, compacted) in [false, true].into_iter().enumerate() {
        let (mut a, mut b) = (plain.clone(), keyed.clone());
        if compacted {
            // Copies, so that the built ponds stay as appended.
            for pond in [&mut a, &mut b] {
                let copy = dir.join("compacted").join(pond.file_name().unwrap());
                let _ = std::fs::remove_dir_all(&copy);
                std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
                copy_dir(pond, &copy);
                let opened = Pond::open(copy.to_str().unwrap()).await.unwrap();
                opened
                    .compact_with_options(SERIES, &CompactOptions::default())
                    .await
                    .unwrap();
                *pond = copy;
            }
        }
        let a = KeyedSession::new(&a).await;
        let b = KeyedSession::new(&b).await;
        for (q, (name, sql)) in QUERIES.iter().enumerate() {
            let sql = sql.replace("{t}", "devops.cpu");
            rows[q][stage * 2] = a.0.time(&sql, runs).await;
            rows[q][stage * 2 + 1] = b.0.time(&sql, runs).await;
            eprintln!(
                "{name}: done ({})",
                if compacted { "after" } else { "before" }
            );
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for ((name, _), t) in QUERIES.iter().zip(&rows) {
        let _ = writeln!(
            report,
            "| {name} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} |",
            ms(t[0]),
            ms(t[1]),
            ms(t[1]) / ms(t[0]),
            ms(t[2]),
            ms(t[3]),
            ms(t[3]) / ms(t[2]),
        );
    }
    println!("{report}");
    let out = bench_dir().join("devops-keyed-results.md");
    std::fs::write(&out, &report).unwrap();
    eprintln!("written to {}", out.display());
}

/// A warm session over one pond, without the `ListingTable`.
struct KeyedSession(Session);

impl KeyedSession {
    async fn new(pond: &Path) -> Self {
        let ctx = SessionContext::new();
        let pond = Pond::open(pond.to_str().unwrap()).await.unwrap();
        pond::register(&ctx, Arc::new(pond));
        Self(Session { ctx })
    }
}

struct Data {
    before: PathBuf,
    after: PathBuf,
    after_lz4: PathBuf,
    before_files: PathBuf,
    after_files: PathBuf,
    duckdb: PathBuf,
}

/// The ponds before and after compaction, and the DuckDB database, built
/// once.
async fn build(dir: &Path, duckdb: &Path) -> Data {
    let before = dir.join("before");
    let after = dir.join("after");
    let duck = dir.join("devops.duckdb");
    let done = dir.join(".complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let started = Instant::now();
        let manual = PondOptions::default().with_auto_compact_versions(0);
        let pond = Pond::create_with_options(before.to_str().unwrap(), manual)
            .await
            .unwrap();
        let export = dir.join("all.parquet");
        let mut writer = None;
        for (i, batch) in Generator::new().enumerate() {
            pond.append_batch(SERIES, &batch, "ts").await.unwrap();
            let w = writer.get_or_insert_with(|| {
                let file = std::fs::File::create(&export).unwrap();
                parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap()
            });
            w.write(&batch).unwrap();
            if (i + 1) % 100 == 0 {
                eprintln!("appended {} versions in {:?}", i + 1, started.elapsed());
            }
        }
        writer.unwrap().close().unwrap();
        compacted_copy(&before, &after, Compression::Zstd).await;
        let status = Command::new(duckdb)
            .arg(&duck)
            .arg("-c")
            .arg(format!(
                "CREATE TABLE cpu AS SELECT * FROM read_parquet('{}')",
                export.display()
            ))
            .status()
            .unwrap();
        assert!(status.success(), "DuckDB could not load the rows");
        std::fs::remove_file(&export).unwrap();
        std::fs::write(&done, b"").unwrap();
    }
    // Built on its own, so that ponds of older runs gain it.
    let after_lz4 = dir.join("after-lz4");
    let done_lz4 = dir.join(".complete-lz4");
    if !done_lz4.exists() {
        let _ = std::fs::remove_dir_all(&after_lz4);
        compacted_copy(&before, &after_lz4, Compression::Lz4).await;
        std::fs::write(&done_lz4, b"").unwrap();
    }
    let files = |pond: &Path| {
        let data = pond.join("data");
        let series = std::fs::read_dir(&data).unwrap().next().unwrap().unwrap();
        series.path()
    };
    Data {
        before_files: files(&before),
        after_files: files(&after),
        before,
        after,
        after_lz4,
        duckdb: duck,
    }
}

/// A copy of the pond at `before` at `to`, its series compacted clustered
/// by host with files compressed by `codec`, then vacuumed (so that its
/// data folder holds only the live files).
async fn compacted_copy(before: &Path, to: &Path, codec: Compression) {
    copy_dir(before, to);
    let manual = PondOptions::default().with_auto_compact_versions(0);
    let compacted = Pond::open_with_options(to.to_str().unwrap(), manual)
        .await
        .unwrap();
    compacted.set_sort_key(SERIES, &["hostname"]).await.unwrap();
    compacted.set_compression(SERIES, codec).await.unwrap();
    let t = Instant::now();
    let outcome = compacted
        .compact_with_options(SERIES, &CompactOptions::default())
        .await
        .unwrap();
    eprintln!("compacted ({codec}) in {:?}: {outcome:?}", t.elapsed());
    compacted
        .vacuum_with_options(&VacuumOptions::new(Duration::ZERO).with_grace(Duration::ZERO))
        .await
        .unwrap();
}

/// The workload's versions, one batch of all hosts per 10 minutes. Each
/// metric of each host is a random walk within 0..100; tags are fixed per
/// host.
struct Generator {
    rng: StdRng,
    values: Vec<[f64; 10]>,
    tags: Vec<[String; 9]>,
    version: i64,
}

impl Generator {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(9);
        let regions = [
            "us-east-1",
            "us-west-1",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-northeast-1",
            "sa-east-1",
        ];
        let tags = (0..HOSTS)
            .map(|h| {
                let region = regions[h % regions.len()];
                [
                    format!("host_{h}"),
                    region.to_string(),
                    format!("{region}{}", ["a", "b", "c"][h % 3]),
                    (h % 87).to_string(),
                    ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"][h % 3].to_string(),
                    ["x64", "x86"][h % 2].to_string(),
                    ["SF", "NYC", "LON", "CHI"][h % 4].to_string(),
                    (h % 19).to_string(),
                    (h % 2).to_string(),
                ]
            })
            .collect();
        let values = (0..HOSTS)
            .map(|_| std::array::from_fn(|_| rng.random_range(0.0..100.0)))
            .collect();
        Self {
            rng,
            values,
            tags,
            version: 0,
        }
    }
}

impl Generator {
    /// After `versions` versions: one host's readings of an hour before
    /// the newest one, delivered again with other values.
    fn redelivery(&mut self, versions: i64) -> RecordBatch {
        let host = (versions as usize * 37) % HOSTS;
        let end = START + versions * PER_VERSION * STEP;
        let hour = 3_600_000_000;
        let first = (end - 2 * hour).div_euclid(hour) * hour;
        let readings = (hour / STEP) as usize;
        let ts: Vec<i64> = (0..readings as i64).map(|k| first + k * STEP).collect();
        let mut columns: Vec<(&str, ArrayRef)> = vec![(
            "ts",
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
        )];
        for (name, tag) in TAGS.iter().zip(&self.tags[host]) {
            columns.push((
                name,
                Arc::new(StringArray::from(vec![tag.as_str(); readings])),
            ));
        }
        for name in METRICS {
            let values: Vec<f64> = (0..readings)
                .map(|_| (self.rng.random_range(0.0..100.0) * 1e3_f64).round() / 1e3)
                .collect();
            columns.push((name, Arc::new(Float64Array::from(values))));
        }
        RecordBatch::try_from_iter(columns).unwrap()
    }
}

impl Iterator for Generator {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let versions = DAYS * 86_400_000_000 / STEP / PER_VERSION;
        if self.version == versions {
            return None;
        }
        let first = START + self.version * PER_VERSION * STEP;
        self.version += 1;
        let rows = PER_VERSION as usize * HOSTS;
        let mut ts = Vec::with_capacity(rows);
        let mut tags: Vec<Vec<&str>> = vec![Vec::with_capacity(rows); TAGS.len()];
        let mut metrics: Vec<Vec<f64>> = vec![Vec::with_capacity(rows); METRICS.len()];
        for step in 0..PER_VERSION {
            for host in 0..HOSTS {
                ts.push(first + step * STEP);
                for (column, tag) in tags.iter_mut().zip(&self.tags[host]) {
                    column.push(tag);
                }
                for (m, column) in metrics.iter_mut().enumerate() {
                    let v = &mut self.values[host][m];
                    *v = (*v + self.rng.random_range(-2.0..2.0)).clamp(0.0, 100.0);
                    column.push((*v * 1e3).round() / 1e3);
                }
            }
        }
        let mut columns: Vec<(&str, ArrayRef)> = vec![(
            "ts",
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
        )];
        for (name, values) in TAGS.iter().zip(tags) {
            columns.push((name, Arc::new(StringArray::from(values))));
        }
        for (name, values) in METRICS.iter().zip(metrics) {
            columns.push((name, Arc::new(Float64Array::from(values))));
        }
        Some(RecordBatch::try_from_iter(columns).unwrap())
    }
}

/// A warm session over one pond and a `ListingTable`,
/// `datafusion.public.listing`, over
/// the folder of its series' data files.
struct Session {
    ctx: SessionContext,
}

impl Session {
    async fn new(pond: &Path, files: &Path) -> Self {
        let mut config = datafusion::prelude::SessionConfig::new();
        if std::env::var_os("DEVOPS_PUSHDOWN").is_some() {
            config = config
                .set_bool("datafusion.execution.parquet.pushdown_filters", true)
                .set_bool("datafusion.execution.parquet.reorder_filters", true);
        }
        let ctx = SessionContext::new_with_config(config);
        let pond = Arc::new(Pond::open(pond.to_str().unwrap()).await.unwrap());
        if std::env::var_os("DEVOPS_EXPLAIN").is_some() {
            let t = Instant::now();
            for _ in 0..200 {
                pond.refresh().await.unwrap();
            }
            eprintln!("one refresh (nothing new): {:?}", t.elapsed() / 200);
        }
        pond::register(&ctx, pond);
        // The pond is the default catalog; the comparison lives beside it.
        ctx.register_parquet(
            "datafusion.public.listing",
            files.to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        Self { ctx }
    }

    async fn collect(&self, sql: &str) -> Vec<RecordBatch> {
        self.ctx.sql(sql).await.unwrap().collect().await.unwrap()
    }

    async fn csv(&self, sql: &str) -> String {
        let batches = self.collect(sql).await;
        let mut out = Vec::new();
        {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(false)
                .build(&mut out);
            for batch in &batches {
                writer.write(batch).unwrap();
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// The median time to plan `sql` (logical and physical), of `runs`.
    async fn planning(&self, sql: &str, runs: usize) -> Duration {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let df = self.ctx.sql(sql).await.unwrap();
            df.create_physical_plan().await.unwrap();
            times.push(t.elapsed());
        }
        median(times)
    }

    /// The median of `runs` timed runs, after 3 untimed ones.
    async fn time(&self, sql: &str, runs: usize) -> Duration {
        for _ in 0..3 {
            self.collect(sql).await;
        }
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            self.collect(sql).await;
            times.push(t.elapsed());
        }
        median(times)
    }
}

/// The median times of two queries, each on its session, of `runs`
/// rounds that run each once, in turn, the first of them first in every
/// other round; after 3 untimed rounds.
async fn taking_turns(
    a: (&Session, &str),
    b: (&Session, &str),
    runs: usize,
) -> (Duration, Duration) {
    let (mut times_a, mut times_b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for round in 0..runs + 3 {
        let mut turns = [(a, &mut times_a), (b, &mut times_b)];
        if round % 2 == 1 {
            turns.reverse();
        }
        for ((session, sql), times) in turns {
            let t = Instant::now();
            session.collect(sql).await;
            if round >= 3 {
                times.push(t.elapsed());
            }
        }
    }
    (median(times_a), median(times_b))
}
