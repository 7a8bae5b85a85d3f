//! A generative differential test of version pruning.
//!
//! Random series (every time unit, zone-less and zoned columns, overlapping
//! and disjoint versions, pre-1970 and far-future times, a column added
//! part-way) and random predicate trees from a grammar far wider than what
//! the pruner understands: comparisons and `IS [NOT] DISTINCT FROM` in both
//! orders, `BETWEEN`, `IN` lists holding NULL, `IS [NOT] NULL`, `NOT`,
//! `IS [NOT] TRUE/FALSE`, `CASE` and `COALESCE` around the column, casts of
//! it to other units and zones, two-column comparisons and volatile
//! functions; literals of all four units, zone-less and zoned, RFC 3339
//! strings with offsets, NULL and `now()`-relative; a random session time
//! zone. Every query runs on the pond table and on an unpruned `MemTable` of
//! the same rows in the same session, and the answers must be equal.
//!
//! `POND_GEN_CASES` sets the number of cases (default 10,000),
//! `POND_GEN_SEED` the seed, and `POND_GEN_CASE` runs one case. A failure
//! names the seed and the case, and prints the smallest predicate that still
//! fails, as the two queries to run.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, new_null_array};
use arrow::datatypes::TimeUnit;
use chrono::{DateTime, FixedOffset};
use datafusion::datasource::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use pond::{CompactOptions, Pond, SeriesExt};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::common::*;

const DEFAULT_CASES: usize = 10_000;
const DEFAULT_SEED: u64 = 20_261_125;
const SERIES: usize = 12;

const SECOND_NS: i128 = 1_000_000_000;
const HOUR_NS: i128 = 3_600 * SECOND_NS;

/// One generated series and its reference copy.
struct Series {
    path: String,
    table: String,
    reference: String,
    /// DataFusion's own Parquet table of the series' data files.
    files: String,
    /// Versions to read the series as of, each with how many of the
    /// appended batches it holds then (`<reference>_<count>` holds them).
    as_of: Vec<(i64, usize)>,
    /// Whether the series was compacted after its first appends.
    compacted: bool,
    unit: TimeUnit,
    zone: Option<&'static str>,
    /// Every version's first and last time, in ns since the epoch.
    versions: Vec<(i128, i128)>,
    /// Times of rows inside the versions of hundreds of rows, whose files
    /// hold several row groups: bounds near them fall between or within
    /// row groups and pages, where counts come from the page index.
    inside: Vec<i128>,
    /// The first version that has the column `extra`.
    evolved_from: usize,
}

impl Series {
    /// The first value of the column's type whose microsecond is at least
    /// `us`, as a literal of exactly that type.
    fn native(&self, us: i64) -> String {
        let us = i128::from(us);
        let per = per_unit(self.unit);
        let value = if per >= 1_000 {
            let k = per / 1_000;
            us.div_euclid(k) + i128::from(us.rem_euclid(k) != 0)
        } else {
            us * 1_000 / per
        };
        let unit = match self.unit {
            TimeUnit::Second => "Second",
            TimeUnit::Millisecond => "Millisecond",
            TimeUnit::Microsecond => "Microsecond",
            TimeUnit::Nanosecond => "Nanosecond",
        };
        let zone = self
            .zone
            .map_or_else(|| "None".to_string(), |z| format!("Some(\"{z}\")"));
        format!("arrow_cast(CAST({value} AS BIGINT), 'Timestamp({unit}, {zone})')")
    }

    fn describe(&self) -> String {
        format!(
            "{} ({:?}, zone {:?}, `extra` from append {}{}), appended versions (ns): {:?}",
            self.path,
            self.unit,
            self.zone,
            self.evolved_from + 1,
            if self.compacted {
                ", compacted before the last append"
            } else {
                ""
            },
            self.versions
        )
    }
}

fn per_unit(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => SECOND_NS,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// Builds `SERIES` random series in `pond` and registers a `MemTable` copy
/// of each as `datafusion.public.ref_<i>` in every context.
async fn build_series(rng: &mut StdRng, pond: &Pond, contexts: &[&SessionContext]) -> Vec<Series> {
    let units = [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ];
    let zones = [None, Some("UTC"), Some("+05:30"), Some("America/New_York")];
    // 2024, two hours before the epoch (versions cross it), 1900, 2200.
    let bases: [i128; 4] = [1_704_067_200, -7_200, -2_208_988_800, 7_258_118_400];
    let mut all = Vec::new();
    for i in 0..SERIES {
        let unit = units[i % 4];
        let zone = *zones.choose(rng).unwrap();
        let base = bases.choose(rng).unwrap() * SECOND_NS;
        let n = rng.random_range(2..8usize);
        let evolved_from = rng.random_range(0..=n);
        let path = format!("/gen/s{i}");
        // Every other series is compacted after its n appends, into new
        // versions of a random size and time window, and then takes one
        // more append.
        let compacted = i % 2 == 1;
        let mut versions = Vec::new();
        let mut inside = Vec::new();
        let mut batches = Vec::new();
        // (version, how many of the appended batches reads as of it see)
        let mut as_of: Vec<(i64, usize)> = Vec::new();
        let appends = if compacted { n + 1 } else { n };
        let mut number = 0i64;
        for v in 0..appends {
            if compacted && v == n {
                let target = rng.random_range(1_500..20_000);
                // No window, or windows of 1, 3 or 24 hours: versions of an
                // hour each, some late, are cut at random places.
                let window = *[0, 1, 3, 24].choose(rng).unwrap() * 3_600_000_000i64;
                let options = CompactOptions::default()
                    .with_target_file_bytes(target)
                    .with_window_micros(window);
                // Half of them clustered by `value`: over whole files, or
                // within time buckets of 10 minutes, 1 or 3 hours.
                if rng.random_bool(0.5) {
                    let bucket = *[0, 10, 60, 180].choose(rng).unwrap() * 60_000_000i64;
                    pond.set_sort_key_with_bucket(&path, &["value"], bucket)
                        .await
                        .unwrap();
                }
                let done = pond.compact_with_options(&path, &options).await.unwrap();
                for _ in 0..done.versions_written {
                    number += 1;
                    as_of.push((number, n));
                }
            }
            // In order, an hour each; now and then a late delivery that
            // overlaps earlier hours, or a version of a single row.
            let start = if v > 0 && rng.random_bool(0.25) {
                base + rng.random_range(0..v as i128) * HOUR_NS
            } else {
                base + v as i128 * HOUR_NS
            };
            // Mostly a few rows; a tenth of the versions hundreds, in row
            // groups of 64 (the pond's setting here).
            let rows = match rng.random_range(0..10) {
                0 | 1 => 1,
                2 => rng.random_range(200..1_500),
                _ => rng.random_range(1..10),
            };
            let step = per_unit(unit);
            let mut times: Vec<i128> = (0..rows)
                .map(|_| start + rng.random_range(0..HOUR_NS / step) * step)
                .collect();
            times.sort_unstable();
            versions.push((times[0], *times.last().unwrap()));
            if rows > 64 {
                // The last and first rows of row groups, and others.
                inside.extend(times.iter().skip(63).step_by(64).take(8));
                inside.extend(times.iter().skip(64).step_by(64).take(8));
                inside.extend((0..10).map(|_| *times.choose(rng).unwrap()));
            }
            let raw: Vec<i64> = times.iter().map(|t| (t / step) as i64).collect();
            let mut columns: Vec<(&str, ArrayRef)> = vec![
                ("ts", timestamps(unit, zone, raw)),
                (
                    "value",
                    Arc::new(Int64Array::from_iter_values(
                        (0..rows as i64).map(|r| v as i64 * 100 + r),
                    )),
                ),
            ];
            if v >= evolved_from {
                let extra: Int64Array = (0..rows as i64)
                    .map(|r| (r % 3 != 0).then_some(r * 7 % 11))
                    .collect();
                columns.push(("extra", Arc::new(extra)));
            }
            let batch = RecordBatch::try_from_iter(columns).unwrap();
            pond.append_series_data(&path, &batch, "ts").await.unwrap();
            batches.push(batch);
            number += 1;
            as_of.push((number, v + 1));
        }
        // The reference: the same rows in the series' own schema, the
        // column `extra` NULL where a version lacks it.
        let schema = pond.series_info(&path).unwrap().schema;
        let batches: Vec<RecordBatch> = batches
            .iter()
            .map(|b| {
                let columns = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        b.column_by_name(f.name())
                            .cloned()
                            .unwrap_or_else(|| new_null_array(f.data_type(), b.num_rows()))
                    })
                    .collect();
                RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
            })
            .collect();
        let reference = format!("datafusion.public.ref_{i}");
        let files = format!("datafusion.public.files_{i}");
        let info = pond.series_info(&path).unwrap();
        let directory = pond.location().join(&format!("data/{}/", info.id)).unwrap();
        let mut prefixes: Vec<usize> = as_of.iter().map(|&(_, p)| p).collect();
        prefixes.dedup();
        for ctx in contexts {
            let mem = MemTable::try_new(Arc::clone(&schema), vec![batches.clone()]).unwrap();
            ctx.register_table(reference.as_str(), Arc::new(mem))
                .unwrap();
            for &p in &prefixes {
                let mem = MemTable::try_new(Arc::clone(&schema), vec![batches[..p].to_vec()]);
                ctx.register_table(format!("{reference}_{p}").as_str(), Arc::new(mem.unwrap()))
                    .unwrap();
            }
            let options = ParquetReadOptions::default().schema(&schema);
            ctx.register_parquet(files.as_str(), directory.as_str(), options)
                .await
                .unwrap();
        }
        all.push(Series {
            table: format!("gen.s{i}"),
            path,
            reference,
            files,
            as_of,
            compacted,
            unit,
            zone,
            versions,
            inside,
            evolved_from,
        });
    }
    all
}

/// A predicate tree: atoms are SQL text, the rest can shrink to a child.
#[derive(Debug, Clone)]
enum Pred {
    Atom(String),
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    /// `{}` in the pattern is the inner predicate.
    Wrap(&'static str, Box<Pred>),
}

impl Pred {
    fn sql(&self) -> String {
        match self {
            Self::Atom(s) => s.clone(),
            Self::And(a, b) => format!("({} AND {})", a.sql(), b.sql()),
            Self::Or(a, b) => format!("({} OR {})", a.sql(), b.sql()),
            Self::Not(a) => format!("(NOT {})", a.sql()),
            Self::Wrap(pattern, a) => pattern.replace("{}", &a.sql()),
        }
    }

    /// Smaller predicates: each child in place of its parent, or a child
    /// shrunk in place.
    fn shrinks(&self) -> Vec<Pred> {
        let boxed = |p: Pred| Box::new(p);
        match self {
            Self::Atom(_) => Vec::new(),
            Self::And(a, b) | Self::Or(a, b) => {
                let rebuild = |a: Pred, b: Pred| match self {
                    Self::And(..) => Self::And(boxed(a), boxed(b)),
                    _ => Self::Or(boxed(a), boxed(b)),
                };
                let mut out = vec![(**a).clone(), (**b).clone()];
                out.extend(a.shrinks().into_iter().map(|a| rebuild(a, (**b).clone())));
                out.extend(b.shrinks().into_iter().map(|b| rebuild((**a).clone(), b)));
                out
            }
            Self::Not(a) => {
                let mut out = vec![(**a).clone()];
                out.extend(a.shrinks().into_iter().map(|a| Self::Not(boxed(a))));
                out
            }
            Self::Wrap(pattern, a) => {
                let mut out = vec![(**a).clone()];
                out.extend(
                    a.shrinks()
                        .into_iter()
                        .map(|a| Self::Wrap(pattern, boxed(a))),
                );
                out
            }
        }
    }
}

/// The grammar's generator, for one series.
struct Grammar<'a> {
    series: &'a Series,
}

impl Grammar<'_> {
    fn predicate(&self, rng: &mut StdRng, depth: u32) -> Pred {
        if depth == 0 || rng.random_bool(0.35) {
            return Pred::Atom(self.atom(rng));
        }
        let sub = |rng: &mut StdRng| Box::new(self.predicate(rng, depth - 1));
        match rng.random_range(0..10) {
            0..=2 => Pred::And(sub(rng), sub(rng)),
            3..=5 => Pred::Or(sub(rng), sub(rng)),
            6 | 7 => Pred::Not(sub(rng)),
            _ => {
                let pattern = *[
                    "(({}) IS TRUE)",
                    "(({}) IS NOT TRUE)",
                    "(({}) IS FALSE)",
                    "(({}) IS NOT FALSE)",
                    "(({}) IS UNKNOWN)",
                    "COALESCE({}, false)",
                    "(CASE WHEN {} THEN true ELSE false END)",
                ]
                .choose(rng)
                .unwrap();
                Pred::Wrap(pattern, sub(rng))
            }
        }
    }

    fn atom(&self, rng: &mut StdRng) -> String {
        let op = |rng: &mut StdRng| {
            *[
                "=",
                "<>",
                "<",
                "<=",
                ">",
                ">=",
                "IS DISTINCT FROM",
                "IS NOT DISTINCT FROM",
            ]
            .choose(rng)
            .unwrap()
        };
        match rng.random_range(0..20) {
            0..=5 => format!("{} {} {}", self.column(rng), op(rng), self.literal(rng)),
            6 | 7 => format!("{} {} {}", self.literal(rng), op(rng), self.column(rng)),
            8 | 9 => format!(
                "{} {}BETWEEN {} AND {}",
                self.column(rng),
                if rng.random_bool(0.3) { "NOT " } else { "" },
                self.literal(rng),
                self.literal(rng)
            ),
            10 | 11 => {
                let items: Vec<String> = (0..rng.random_range(1..4))
                    .map(|_| self.literal(rng))
                    .collect();
                format!(
                    "{} {}IN ({})",
                    self.column(rng),
                    if rng.random_bool(0.3) { "NOT " } else { "" },
                    items.join(", ")
                )
            }
            12 => format!(
                "{} IS {}NULL",
                self.column(rng),
                if rng.random_bool(0.5) { "NOT " } else { "" }
            ),
            // Two columns.
            13 => format!("ts {} {}", op(rng), self.column(rng)),
            // Other columns, one of them missing from early versions.
            14 => format!("value {} {}", op(rng), rng.random_range(0..800)),
            15 => format!(
                "extra IS {}NULL",
                if rng.random_bool(0.5) { "NOT " } else { "" }
            ),
            16 => format!("extra {} {}", op(rng), rng.random_range(0..11)),
            // Volatile, but with a known value.
            17 => "random() < 2.0".to_string(),
            _ => ["true", "false", "CAST(NULL AS BOOLEAN)", "value % 3 = 0"]
                .choose(rng)
                .unwrap()
                .to_string(),
        }
    }

    /// The time column, or an expression of it.
    fn column(&self, rng: &mut StdRng) -> String {
        if rng.random_bool(0.55) {
            return "ts".to_string();
        }
        match rng.random_range(0..12) {
            0 => "CAST(ts AS TIMESTAMP)".to_string(),
            1 => format!(
                "CAST(ts AS TIMESTAMP({}))",
                [0, 3, 6, 9].choose(rng).unwrap()
            ),
            2 => format!(
                "arrow_cast(ts, 'Timestamp({}, {})')",
                ["Second", "Millisecond", "Microsecond", "Nanosecond"]
                    .choose(rng)
                    .unwrap(),
                [
                    "None",
                    "Some(\"UTC\")",
                    "Some(\"+05:30\")",
                    "Some(\"Europe/Berlin\")"
                ]
                .choose(rng)
                .unwrap()
            ),
            3 => "CAST(ts AS TIMESTAMP WITH TIME ZONE)".to_string(),
            4 => "date_trunc('hour', ts)".to_string(),
            5 => format!("COALESCE(ts, {})", self.literal(rng)),
            6 => format!(
                "CASE WHEN value > {} THEN ts ELSE {} END",
                rng.random_range(0..800),
                self.literal(rng)
            ),
            7 => "ts + INTERVAL '1 minute'".to_string(),
            8 => "to_timestamp_seconds(value)".to_string(),
            9 => "NULLIF(ts, ts)".to_string(),
            10 => format!(
                "TRY_CAST(ts AS TIMESTAMP({}))",
                [0, 3, 6, 9].choose(rng).unwrap()
            ),
            _ => "arrow_cast(ts, 'Timestamp(Nanosecond, None)')".to_string(),
        }
    }

    /// An instant near the series' data: a version bound give or take a
    /// unit of any size, anywhere around the data, or far away.
    fn instant(&self, rng: &mut StdRng) -> i128 {
        let versions = &self.series.versions;
        match rng.random_range(0..10) {
            0..=1 if !self.series.inside.is_empty() => {
                let t = *self.series.inside.choose(rng).unwrap();
                let delta = [0, 0, 0, 1, 1_000, 1_000_000, SECOND_NS]
                    .choose(rng)
                    .unwrap();
                t + delta * rng.random_range(-1..=1)
            }
            0..=4 => {
                let (first, last) = *versions.choose(rng).unwrap();
                let bound = if rng.random_bool(0.5) { first } else { last };
                let delta = [0, 1, 1_000, 1_000_000, SECOND_NS, HOUR_NS]
                    .choose(rng)
                    .unwrap();
                bound + delta * rng.random_range(-1..=1)
            }
            5..=7 => {
                let low = versions.iter().map(|v| v.0).min().unwrap() - HOUR_NS;
                let high = versions.iter().map(|v| v.1).max().unwrap() + HOUR_NS;
                rng.random_range(low..=high)
            }
            // 1874, 1960, 1970, 2255: far, but nanoseconds still fit.
            _ => *[
                -3_000_000_000 * SECOND_NS,
                -315_619_200 * SECOND_NS,
                0,
                9_000_000_000 * SECOND_NS,
            ]
            .choose(rng)
            .unwrap(),
        }
    }

    /// A literal time in one of many forms.
    fn literal(&self, rng: &mut StdRng) -> String {
        let t = self.instant(rng);
        let seconds = t.div_euclid(SECOND_NS) as i64;
        let nanos = t.rem_euclid(SECOND_NS) as u32;
        let utc = DateTime::from_timestamp(seconds, nanos).unwrap();
        let offset = |rng: &mut StdRng| {
            FixedOffset::east_opt(*[0, 19_800, -28_800, 3_600].choose(rng).unwrap()).unwrap()
        };
        match rng.random_range(0..16) {
            0 => format!("to_timestamp_seconds({seconds})"),
            1 => format!("to_timestamp_millis({})", t.div_euclid(1_000_000)),
            2 => format!("to_timestamp_micros({})", t.div_euclid(1_000)),
            3 => format!("to_timestamp_nanos({t})"),
            4 | 5 => format!(
                "'{}'",
                utc.with_timezone(&offset(rng))
                    .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
            ),
            6 => format!("'{}'", utc.format("%Y-%m-%dT%H:%M:%SZ")),
            // No zone: read in the column's zone (or the session's).
            7 => format!("'{}'", utc.format("%Y-%m-%d %H:%M:%S%.6f")),
            8 => format!("TIMESTAMP '{}'", utc.format("%Y-%m-%d %H:%M:%S%.3f")),
            9 => format!(
                "arrow_cast('{}', 'Timestamp({}, Some(\"{}\"))')",
                utc.format("%Y-%m-%dT%H:%M:%S%.9fZ"),
                ["Second", "Millisecond", "Microsecond", "Nanosecond"]
                    .choose(rng)
                    .unwrap(),
                ["UTC", "+05:30", "America/New_York", "-03:00"]
                    .choose(rng)
                    .unwrap()
            ),
            10 => format!(
                "arrow_cast(to_timestamp_micros({}), 'Timestamp(Microsecond, Some(\"+05:30\"))')",
                t.div_euclid(1_000)
            ),
            11 => [
                "NULL",
                "CAST(NULL AS TIMESTAMP)",
                "to_timestamp_seconds(NULL)",
            ]
            .choose(rng)
            .unwrap()
            .to_string(),
            12 => format!("now() - INTERVAL '{} hours'", rng.random_range(0..100_000)),
            13 => "now()".to_string(),
            // Volatile: not folded, so no literal for the pruner.
            14 => format!(
                "to_timestamp_micros({} + CAST(floor(random()) AS BIGINT))",
                t.div_euclid(1_000)
            ),
            _ => format!(
                "TIMESTAMP '{}' + INTERVAL '1 second'",
                utc.format("%Y-%m-%d %H:%M:%S")
            ),
        }
    }
}

/// The shape of a query around a predicate.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Aggregate,
    /// `count(*)` alone: where the versions read lie within the filters
    /// on time, the scan filters nothing and the count is the oplog's.
    Count,
    /// A `LIMIT` without order, which DataFusion hands to the scan when
    /// the scan applies every filter itself: it must count only rows that
    /// pass them.
    Limited,
    /// A TopK, whose dynamic filter prunes while the query runs.
    NewestFirst,
    /// A hash join whose build side's bounds prune the probe side.
    SelfJoin,
    /// `series_range` with a window, against the same window as a filter.
    Window(i64, i64),
    /// `series_range` as of a version (across a compaction, too), against
    /// the rows appended by then.
    AsOf(i64, usize),
}

impl Shape {
    fn sql(self, series: &Series, pond_side: bool, predicate: &str) -> String {
        let table = if pond_side {
            &series.table
        } else {
            &series.reference
        };
        match self {
            Self::Aggregate => {
                format!("SELECT count(*) AS n, sum(value) AS s FROM {table} WHERE {predicate}")
            }
            Self::Count => format!("SELECT count(*) AS n FROM {table} WHERE {predicate}"),
            Self::Limited => format!(
                "SELECT count(*) AS n FROM (SELECT value FROM {table} WHERE {predicate} LIMIT 2)"
            ),
            Self::NewestFirst => format!(
                "SELECT ts, value FROM {table} WHERE {predicate} ORDER BY ts DESC, value LIMIT 3"
            ),
            Self::SelfJoin => format!(
                "SELECT count(*) AS n, sum(a.value) AS s FROM {table} a \
                 JOIN (SELECT ts FROM {table} WHERE {predicate}) b ON a.ts = b.ts"
            ),
            Self::Window(start, end) => {
                let from = if pond_side {
                    let utc = |us: i64| {
                        format!(
                            "arrow_cast(to_timestamp_micros({us}), \
                             'Timestamp(Microsecond, Some(\"UTC\"))')"
                        )
                    };
                    format!(
                        "series_range('{}', {}, {})",
                        series.path,
                        utc(start),
                        utc(end)
                    )
                } else {
                    // The window in the column's own type: DataFusion 55's
                    // cast unwrapping compares a seconds column with a µs
                    // literal truncated to seconds, so a µs bound would not
                    // be exact here.
                    format!(
                        "(SELECT * FROM {table} WHERE ts >= {} AND ts < {})",
                        series.native(start),
                        series.native(end)
                    )
                };
                format!("SELECT count(*) AS n, sum(value) AS s FROM {from} WHERE {predicate}")
            }
            Self::AsOf(version, appended) => {
                let from = if pond_side {
                    format!("series_range('{}', NULL, NULL, {version})", series.path)
                } else {
                    format!("{}_{appended}", series.reference)
                };
                format!("SELECT count(*) AS n, sum(value) AS s FROM {from} WHERE {predicate}")
            }
        }
    }
}

/// One generated case, ready to run and to shrink.
struct Case {
    index: usize,
    series: usize,
    predicate: Pred,
    shape: Shape,
    time_zone: Option<&'static str>,
    /// Whether the logical filter pushdown is off, so that filters reach
    /// the scan only through the physical plan.
    physical_only: bool,
}

enum Outcome {
    Same,
    BothFailed,
    /// The pond table failed where the MemTable did not, and DataFusion's
    /// own Parquet table of the same files fails the same way: a DataFusion
    /// error that statistics bring out, not a pruning bug.
    DataFusionFailsWithStatistics(String),
}

/// Errors of DataFusion 55 that tables with statistics bring out and a
/// `MemTable` (which has none) does not, reproduced without pond. FilterExec's
/// selectivity estimate exceeds 1, an internal error, for a column compared
/// with a truncating cast of itself (`ts > CAST(ts AS TIMESTAMP(0))` over
/// pre-1970 values with fractions of a second) on a plain Parquet file; on a
/// series it shows when its kept versions give the column such bounds.
const DATAFUSION_STATISTICS_BUGS: &[&str] = &["Selectivity is out of limit"];

/// An error message without its numbers, to compare two failures.
fn kind_of(error: &str) -> String {
    error.chars().filter(|c| !c.is_ascii_digit()).collect()
}

async fn answer(ctx: &SessionContext, sql: &str) -> Result<String, String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    Ok(arrow::util::pretty::pretty_format_batches(&batches)
        .map_err(|e| e.to_string())?
        .to_string())
}

struct Harness {
    contexts: [SessionContext; 2],
    series: Vec<Series>,
}

impl Harness {
    fn context(&self, case: &Case) -> &SessionContext {
        let ctx = &self.contexts[usize::from(case.physical_only)];
        let state = ctx.state_ref();
        state.write().config_mut().options_mut().execution.time_zone =
            case.time_zone.map(str::to_string);
        ctx
    }

    /// Runs `predicate` in the case's shape on both tables; `Err` describes
    /// a difference.
    async fn run(&self, case: &Case, predicate: &Pred) -> Result<Outcome, String> {
        let ctx = self.context(case);
        let series = &self.series[case.series];
        let p = predicate.sql();
        let (pond_sql, reference_sql) = (
            case.shape.sql(series, true, &p),
            case.shape.sql(series, false, &p),
        );
        let got = answer(ctx, &pond_sql).await;
        let want = answer(ctx, &reference_sql).await;
        match (got, want) {
            (Ok(got), Ok(want)) if got == want => Ok(Outcome::Same),
            (Err(_), Err(_)) => Ok(Outcome::BothFailed),
            (Err(error), Ok(_)) => {
                // The same predicate on DataFusion's own Parquet table of
                // the same files, in this shape and as a plain aggregate.
                let on_files = |shape: Shape| {
                    shape.sql(series, false, &p).replace(
                        &format!("{} ", series.reference),
                        &format!("{} ", series.files),
                    )
                };
                if DATAFUSION_STATISTICS_BUGS
                    .iter()
                    .any(|bug| error.contains(bug))
                {
                    return Ok(Outcome::DataFusionFailsWithStatistics(error));
                }
                for files_sql in [on_files(case.shape), on_files(Shape::Aggregate)] {
                    if let Err(same) = answer(ctx, &files_sql).await
                        && kind_of(&same) == kind_of(&error)
                    {
                        return Ok(Outcome::DataFusionFailsWithStatistics(error));
                    }
                }
                Err(format!(
                    "pond:      {pond_sql}\nerror: {error}\nreference: {reference_sql}\n{}",
                    answer(ctx, &reference_sql).await.unwrap_or_default()
                ))
            }
            (got, want) => Err(format!(
                "pond:      {pond_sql}\n{}\nreference: {reference_sql}\n{}",
                got.unwrap_or_else(|e| format!("error: {e}")),
                want.unwrap_or_else(|e| format!("error: {e}"))
            )),
        }
    }

    /// The smallest sub-predicate of the case that still fails, and its
    /// difference.
    async fn shrink(&self, case: &Case, mut difference: String) -> (Pred, String) {
        let mut smallest = case.predicate.clone();
        'smaller: loop {
            for candidate in smallest.shrinks() {
                if let Err(d) = self.run(case, &candidate).await {
                    smallest = candidate;
                    difference = d;
                    continue 'smaller;
                }
            }
            return (smallest, difference);
        }
    }
}

fn generate(harness: &Harness, seed: u64, index: usize) -> Case {
    let mut rng = StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let series = rng.random_range(0..harness.series.len());
    let grammar = Grammar {
        series: &harness.series[series],
    };
    let predicate = grammar.predicate(&mut rng, 3);
    let shape = match rng.random_range(0..22) {
        0..=10 => Shape::Aggregate,
        11 | 12 => Shape::Count,
        13 => Shape::Limited,
        14..=16 => Shape::NewestFirst,
        17 | 18 => Shape::SelfJoin,
        19 => {
            let &(version, appended) = grammar.series.as_of.choose(&mut rng).unwrap();
            Shape::AsOf(version, appended)
        }
        _ => {
            let a = (grammar.instant(&mut rng).div_euclid(1_000)) as i64;
            let b = (grammar.instant(&mut rng).div_euclid(1_000)) as i64;
            Shape::Window(a.min(b), a.max(b))
        }
    };
    let time_zone = *[
        None,
        Some("+00:00"),
        Some("+05:00"),
        Some("-08:00"),
        Some("Europe/Berlin"),
    ]
    .choose(&mut rng)
    .unwrap();
    Case {
        index,
        series,
        predicate,
        shape,
        time_zone,
        physical_only: rng.random_bool(0.25),
    }
}

#[tokio::test]
async fn generated_pruning_cases_10_000_agree_with_unpruned_memtables() {
    let seed = env("POND_GEN_SEED").unwrap_or(DEFAULT_SEED);
    let cases: usize = env("POND_GEN_CASES").unwrap_or(DEFAULT_CASES);
    let only: Option<usize> = env("POND_GEN_CASE");

    let (_dir, pond) = temp_pond_with(manual().with_row_group_rows(64)).await;
    let pond = Arc::new(pond);
    let contexts = [0, 1].map(|_| {
        // Files of any size are split among the partitions, by the bytes
        // where a query's time range lies (`split_by_time`).
        let config = SessionConfig::new()
            .with_target_partitions(3)
            .set_usize("datafusion.optimizer.repartition_file_min_size", 0);
        let ctx = SessionContext::new_with_config(config);
        pond::register(&ctx, Arc::clone(&pond));
        ctx
    });
    assert!(contexts[1].remove_optimizer_rule("push_down_filter"));
    let mut rng = StdRng::seed_from_u64(seed);
    let series = build_series(&mut rng, &pond, &[&contexts[0], &contexts[1]]).await;
    let harness = Harness { contexts, series };

    let started = Instant::now();
    let (mut same, mut both_failed, mut datafusion_failed) = (0usize, 0usize, 0usize);
    // Counts the scan answered from the oplog alone, without reading a file.
    let mut from_oplog = 0usize;
    let range = match only {
        Some(i) => i..i + 1,
        None => 0..cases,
    };
    for index in range {
        let case = generate(&harness, seed, index);
        match harness.run(&case, &case.predicate).await {
            Ok(Outcome::Same) => {
                same += 1;
                if matches!(case.shape, Shape::Count) {
                    let series = &harness.series[case.series];
                    let sql = case.shape.sql(series, true, &case.predicate.sql());
                    let plan = answer(harness.context(&case), &format!("EXPLAIN {sql}")).await;
                    from_oplog += usize::from(plan.is_ok_and(|p| !p.contains("SeriesScanExec")));
                }
            }
            Ok(Outcome::BothFailed) => both_failed += 1,
            Ok(Outcome::DataFusionFailsWithStatistics(error)) => {
                datafusion_failed += 1;
                eprintln!("case {index}: DataFusion fails on its own Parquet table too: {error}");
            }
            Err(difference) => {
                let (smallest, difference) = harness.shrink(&case, difference).await;
                panic!(
                    "pruning changed an answer: seed {seed}, case {} \
                     (rerun with POND_GEN_SEED={seed} POND_GEN_CASE={})\n\
                     series {}\nsession time zone {:?}, logical filter pushdown {}, shape {:?}\n\
                     smallest failing predicate: {}\n{difference}",
                    case.index,
                    case.index,
                    harness.series[case.series].describe(),
                    case.time_zone,
                    if case.physical_only { "off" } else { "on" },
                    case.shape,
                    smallest.sql(),
                );
            }
        }
    }
    let run = same + both_failed + datafusion_failed;
    eprintln!(
        "generated pruning cases: {run} run in {:.1?} ({same} answered alike, {both_failed} \
         refused by both sides, {datafusion_failed} failed by DataFusion on Parquet tables \
         with statistics, {from_oplog} counts from the oplog alone), 0 differences",
        started.elapsed()
    );
    // The filters the scan applies itself must come up, and with versions
    // that lie within them.
    assert!(
        only.is_some() || cases < 1_000 || from_oplog > 0,
        "no count was answered from the oplog alone"
    );
    // Most cases must be queries DataFusion answers, or the test says little.
    assert!(
        only.is_some() || same * 10 >= run * 8,
        "only {same} of {run} generated queries were valid SQL"
    );
}
