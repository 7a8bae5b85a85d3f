//! Randomized check that pruning never drops a matching row: for random
//! versions (overlapping or not, every unit, with and without zones) and
//! random ranges, the streamed rows equal a brute-force filter of all rows,
//! and the versions opened are exactly those whose bounds overlap the range.

use std::collections::BTreeMap;

use arrow::datatypes::TimeUnit;
use pond::SeriesExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::*;

/// Nanoseconds per unit, as i128 so that the brute force never overflows and
/// shares no rounding code with pond.
fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

#[tokio::test]
async fn pruned_reads_equal_brute_force() {
    let seed: u64 = env("POND_TEST_SEED").unwrap_or(0x5eed);
    let mut rng = StdRng::seed_from_u64(seed);
    // Several row groups per file, so row-group pruning runs too.
    let options = manual().with_row_group_rows(7);
    let (_dir, pond) = temp_pond_with(options).await;
    let units = [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ];
    let zones = [None, Some("UTC"), Some("Europe/Oslo")];

    let (mut opened_total, mut possible_total) = (0usize, 0usize);
    for s in 0..4 {
        let unit = units[s % units.len()];
        let zone = zones[rng.random_range(0..zones.len())];
        let path = format!("/prop/s{s}");
        // Spread in the unit's own ticks: roughly 0..10 seconds of time.
        let span: i64 = (10_000_000_000i128 / nanos_per(unit)) as i64;
        let mut all: Vec<(i64, i64)> = Vec::new(); // (raw time, value)
        let mut next_value = 0i64;
        let versions = rng.random_range(8..16);
        for _ in 0..versions {
            let n = rng.random_range(1..40);
            let base = rng.random_range(-span / 2..span);
            let width = rng.random_range(1..span / 4);
            let times: Vec<i64> = (0..n).map(|_| base + rng.random_range(0..width)).collect();
            let b = batch(unit, zone, times.clone(), next_value);
            pond.append_series_data(&path, &b, "ts").await.unwrap();
            all.extend(times.iter().copied().zip(next_value..));
            next_value += n as i64;
        }
        let files = pond.versions(&path).unwrap();
        let us_span = (span as i128 * nanos_per(unit) / 1_000) as i64;

        for q in 0..60 {
            let (start, end) = if q % 10 == 0 {
                // Exactly at a version's bounds.
                let f = &files[rng.random_range(0..files.len())];
                match q % 20 {
                    0 => (f.min_event_time, f.max_event_time),
                    _ => (f.max_event_time, f.max_event_time + 1),
                }
            } else {
                let start = rng.random_range(-us_span..us_span);
                (start, start + rng.random_range(0..us_span / 3))
            };
            let stream = pond
                .read_series_time_range(&path, start, end)
                .await
                .unwrap();
            let opened: Vec<i64> = stream.versions().iter().map(|f| f.version).collect();
            let got: BTreeMap<i64, i64> = stream
                .try_collect()
                .await
                .unwrap()
                .iter()
                .flat_map(|b| raw_i64(b, "value").into_iter().zip(raw_i64(b, "ts")))
                .collect();

            let lo = start as i128 * 1_000;
            let hi = end as i128 * 1_000;
            let want: BTreeMap<i64, i64> = all
                .iter()
                .filter(|(t, _)| {
                    let ns = *t as i128 * nanos_per(unit);
                    ns >= lo && ns < hi
                })
                .map(|(t, v)| (*v, *t))
                .collect();
            assert_eq!(got, want, "seed {seed}, {path}, range [{start}, {end})");

            let mut expected_open: Vec<i64> = files
                .iter()
                .filter(|f| f.min_event_time < end && f.max_event_time >= start && start < end)
                .map(|f| f.version)
                .collect();
            let mut opened_sorted = opened.clone();
            opened_sorted.sort_unstable();
            expected_open.sort_unstable();
            assert_eq!(
                opened_sorted, expected_open,
                "seed {seed}, {path}, [{start}, {end})"
            );
            opened_total += opened.len();
            possible_total += files.len();
        }
    }
    assert!(
        opened_total * 2 < possible_total,
        "pruning skipped most versions: opened {opened_total} of {possible_total}"
    );
}
