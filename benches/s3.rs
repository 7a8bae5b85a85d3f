//! Object storage latency (issue 12): a pond on a real S3 server
//! (`s3s-fs`, the tests' embedded one) that waits 20 ms before answering
//! each request, as object storage does. A 1% window of a 1,000-version
//! series through pond, against DataFusion's `ListingTable` over the same
//! series' data prefix on the same server: time and requests, in one run.
//!
//! Run with `cargo bench --bench s3`. `S3_DELAY_MS` sets the delay
//! (default 20), `S3_RUNS` the timed runs (default 5).

#[allow(dead_code, reason = "the tests use more of it")]
#[path = "../tests/integration/s3_server.rs"]
mod s3_server;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use object_store::aws::AmazonS3Builder;
use pond::{Pond, PondOptions};

const VERSIONS: i64 = 1_000;
const MINUTE: i64 = 60_000_000;
/// Readings per version: an hour, one a minute.
const ROWS: i64 = 60;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let delay: u64 = env_or("S3_DELAY_MS", 20);
    let runs: usize = env_or("S3_RUNS", 5);
    let server = s3_server::server();
    server.create_bucket("bench");
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let mut options = PondOptions::default().with_auto_compact_versions(0);
    for (key, value) in [
        ("aws_access_key_id", s3_server::ACCESS_KEY),
        ("aws_secret_access_key", s3_server::SECRET_KEY),
        ("aws_region", "us-east-1"),
        ("aws_endpoint_url", endpoint.as_str()),
        ("aws_allow_http", "true"),
    ] {
        options = options.with_storage_option(key, value);
    }
    let location = "s3://bench/pond";
    let started = Instant::now();
    let id = rt.block_on(async {
        let pond = Pond::create_with_options(location, options.clone())
            .await
            .unwrap();
        for v in 0..VERSIONS {
            pond.append_batch("/site/temp", &hour(v), "ts")
                .await
                .unwrap();
        }
        pond.series_info("/site/temp").unwrap().id
    });
    eprintln!("{VERSIONS} versions on S3 in {:?}", started.elapsed());

    // A 1% window: 10 of the 1,000 hours.
    let window = "ts >= '1970-01-22T00:00:00Z' AND ts < '1970-01-22T10:00:00Z'";
    let pond_sql =
        format!("SELECT count(*) AS n, avg(value) AS mean FROM site.temp WHERE {window}");
    let listing_sql = format!(
        "SELECT count(*) AS n, avg(value) AS mean FROM datafusion.public.listing WHERE {window}"
    );

    s3_server::DELAY_MS.store(delay, Ordering::Relaxed);
    let report = rt.block_on(async {
        let open = Instant::now();
        let (pond_open, pond_open_requests) = {
            let before = requests();
            let pond = Pond::open_with_options(location, options.clone())
                .await
                .unwrap();
            let ctx = SessionContext::new();
            pond::register(&ctx, Arc::new(pond));
            ((open.elapsed(), ctx), delta(before, requests()))
        };
        let (pond_time, pond_requests, pond_answer) = measure(&pond_open.1, &pond_sql, runs).await;

        let open = Instant::now();
        let before = requests();
        let ctx = SessionContext::new();
        let s3 = AmazonS3Builder::new()
            .with_bucket_name("bench")
            .with_access_key_id(s3_server::ACCESS_KEY)
            .with_secret_access_key(s3_server::SECRET_KEY)
            .with_region("us-east-1")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .build()
            .unwrap();
        let url = url::Url::parse("s3://bench/").unwrap();
        ctx.register_object_store(&url, Arc::new(s3));
        let prefix = ListingTableUrl::parse(format!("s3://bench/pond/data/{id}/")).unwrap();
        let config = ListingTableConfig::new(prefix)
            .with_listing_options(ListingOptions::new(Arc::new(ParquetFormat::default())))
            .infer_schema(&ctx.state())
            .await
            .unwrap();
        ctx.register_table(
            "datafusion.public.listing",
            Arc::new(ListingTable::try_new(config).unwrap()),
        )
        .unwrap();
        let listing_open = (open.elapsed(), delta(before, requests()));
        let (listing_time, listing_requests, listing_answer) =
            measure(&ctx, &listing_sql, runs).await;
        assert_eq!(pond_answer, listing_answer, "pond and ListingTable disagree");

        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut out = format!(
            "S3 with {delay} ms per request: a 1% window (10 of {VERSIONS} versions); \
             warm medians of {runs} runs\n\n\
             | | pond | ListingTable | ListingTable / pond |\n|---|---|---|---|\n"
        );
        out += &format!(
            "| open (pond: the oplog; ListingTable: list and infer the schema), ms | {:.0} | {:.0} | {:.2} |\n",
            ms(pond_open.0),
            ms(listing_open.0),
            ms(listing_open.0) / ms(pond_open.0)
        );
        out += &format!(
            "| open, requests (GET/LIST/HEAD/other) | {} | {} | |\n",
            show(pond_open_requests),
            show(listing_open.1)
        );
        out += &format!(
            "| query, ms | {:.0} | {:.0} | {:.2} |\n",
            ms(pond_time),
            ms(listing_time),
            ms(listing_time) / ms(pond_time)
        );
        out += &format!(
            "| query, requests per run (GET/LIST/HEAD/other) | {} | {} | |\n",
            show(pond_requests),
            show(listing_requests)
        );
        out
    });
    println!("{report}");
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Version `v`: hour `v` of readings, one a minute.
fn hour(v: i64) -> RecordBatch {
    let start = v * ROWS * MINUTE;
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values((0..ROWS).map(|i| start + i * MINUTE))
                    .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "value",
            Arc::new(Float64Array::from_iter_values(
                (0..ROWS).map(|i| (v + i) as f64),
            )) as ArrayRef,
        ),
    ])
    .unwrap()
}

type Counts = [u64; 4];

fn requests() -> Counts {
    [
        s3_server::GETS.load(Ordering::Relaxed),
        s3_server::LISTS.load(Ordering::Relaxed),
        s3_server::HEADS.load(Ordering::Relaxed),
        s3_server::OTHERS.load(Ordering::Relaxed),
    ]
}

fn delta(before: Counts, after: Counts) -> Counts {
    [0, 1, 2, 3].map(|i| after[i] - before[i])
}

fn show(c: Counts) -> String {
    format!("{}/{}/{}/{}", c[0], c[1], c[2], c[3])
}

/// The median time of `runs` warm runs of `sql` (after one untimed run),
/// the requests of the last, and the answer.
async fn measure(ctx: &SessionContext, sql: &str, runs: usize) -> (Duration, Counts, String) {
    let answer = arrow::util::pretty::pretty_format_batches(
        &ctx.sql(sql).await.unwrap().collect().await.unwrap(),
    )
    .unwrap()
    .to_string();
    let mut times = Vec::new();
    let mut last = [0; 4];
    for _ in 0..runs {
        let before = requests();
        let t = Instant::now();
        ctx.sql(sql).await.unwrap().collect().await.unwrap();
        times.push(t.elapsed());
        last = delta(before, requests());
    }
    times.sort();
    (times[times.len() / 2], last, answer)
}
