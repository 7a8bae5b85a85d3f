#!/usr/bin/env bash
# Regenerates build/symbol-order.txt, the order in which the linker lays out
# the functions of the release `pond` binary (see build.rs for why).
#
# It links an unstripped release `pond`, runs a workload of every command
# under valgrind's callgrind (which records each function that runs), and
# writes the functions that ran, those of `pond sql` first, then those of the
# other commands. The file depends on the exact dependency versions and
# toolchain (the hashes in the symbols' names do): a test
# (`symbol_order_matches_the_lock_file`) fails when Cargo.lock or rustc has
# changed since it was written. Run it again then:
#
#     bash build/symbol-order.sh
#
# Needs valgrind (Debian's `valgrind`) and a release build (a cold one takes
# about 36 minutes on 2 cores); the workload takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== an unstripped release pond"
cargo rustc --locked --release --bin pond -- -C strip=none
cp "$target/release/pond" "$work/pond"
bin="$work/pond"

# Each command runs under callgrind; its profile goes to $work/<group>.<n>.
n=0
run() {
  local group="$1"; shift
  n=$((n + 1))
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$group.$n.cg" \
    "$bin" "$@" > /dev/null 2> "$work/$group.$n.log" || {
    echo "failed under valgrind: pond $*" >&2; tail -20 "$work/$group.$n.log" >&2; exit 1; }
}

echo "== the workload"
p="$work/p"
# Readings of 20 hosts every 10 s with tags, as four CSV appends of an hour.
python3 - "$work" <<'EOF'
import datetime, random, sys
random.seed(7)
start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
for part in range(4):
    with open(f"{sys.argv[1]}/cpu{part}.csv", "w") as f:
        f.write("ts,hostname,region,usage_user,usage_system,usage_idle\n")
        for step in range(360):
            t = start + datetime.timedelta(seconds=part * 3600 + step * 10)
            for h in range(20):
                f.write(f"{t:%Y-%m-%dT%H:%M:%SZ},host_{h},eu-{h % 3},{random.uniform(0, 100):.3f},"
                        f"{random.uniform(0, 50):.3f},{random.uniform(0, 100):.3f}\n")
EOF

run other --pond "$p" init
for part in 0 1 2 3; do
  run other --pond "$p" --auto-compact 0 append /fleet/cpu "$work/cpu$part.csv"
done
run other --pond "$p" --auto-compact 0 append /fleet/mem "$work/cpu0.csv" --key hostname
run other --pond "$p" --auto-compact 0 append /fleet/mem "$work/cpu1.csv"
run other --pond "$p" compact /fleet/cpu --sort-key hostname
run other --pond "$p" compact
run other --pond "$p" delete /fleet/mem --from 2024-01-01T00:10:00Z --to 2024-01-01T00:20:00Z --where "hostname = 'host_3'"
for cmd in ls log check; do run other --pond "$p" "$cmd"; done
run other --pond "$p" describe /fleet/cpu
run other --pond "$p" vacuum --retain 0s
run other demo "$work/demo" --hours 12

t=fleet.cpu
for q in \
  "SELECT date_trunc('minute', ts) AS minute, max(usage_user), max(usage_system) FROM $t WHERE hostname = 'host_4' AND ts >= '2024-01-01T01:00:00Z' AND ts < '2024-01-01T03:00:00Z' GROUP BY 1 ORDER BY 1" \
  "SELECT c.hostname, c.ts, c.usage_user FROM $t c JOIN (SELECT hostname, max(ts) AS ts FROM $t GROUP BY hostname) l ON c.hostname = l.hostname AND c.ts = l.ts ORDER BY c.hostname" \
  "SELECT ts, usage_user FROM $t WHERE hostname = 'host_4' AND ts >= '2024-01-01T02:00:00Z' AND usage_user > 90 ORDER BY ts" \
  "SELECT hostname, date_trunc('hour', ts) AS hour, avg(usage_user) FROM $t WHERE ts >= '2024-01-01T01:00:00Z' GROUP BY 1, 2 ORDER BY 1, 2" \
  "SELECT ts, hostname, usage_user FROM $t WHERE ts >= '2024-01-01T03:55:00Z' ORDER BY ts DESC, hostname LIMIT 5" \
  "SELECT count(*) FROM $t WHERE ts >= '2024-01-01T03:00:00Z'" \
  "SELECT region, min(usage_idle), approx_percentile_cont(usage_idle, 0.9) FROM fleet.mem GROUP BY region ORDER BY region" \
  "SELECT * FROM series_range('/fleet/cpu', '2024-01-01T01:00:00Z', '2024-01-01T01:01:00Z') ORDER BY ts, hostname"
do
  run sql --pond "$p" sql "$q"
  run sql --pond "$p" sql --format csv "$q"
done
printf 'SHOW TABLES;\nSELECT count(*) FROM fleet.cpu;\n' > "$work/repl.sql"
n=$((n + 1))
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/sql.$n.cg" \
  "$bin" --pond "$p" sql < "$work/repl.sql" > /dev/null 2> "$work/sql.$n.log"

echo "== the order"
# The binary's own functions (not libc's), by name.
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | LC_ALL=C sort -u > "$work/defined"
ran() { cat "$@" | grep -oP '^c?fn=\(\d+\) \K.*' | LC_ALL=C sort -u | LC_ALL=C comm -12 - "$work/defined"; }
ran "$work"/sql.*.cg > "$work/sql"
ran "$work"/*.cg | LC_ALL=C comm -23 - "$work/sql" > "$work/other"
out="$root/build/symbol-order.txt"
{
  echo "# The release pond's functions in the order the linker lays them out:"
  echo "# those that \`pond sql\` runs first, then those of the other commands."
  echo "# Written by build/symbol-order.sh; build.rs passes it to the linker."
  echo "# Cargo.lock sha256 $(sha256sum Cargo.lock | cut -d' ' -f1)"
  echo "# $(rustc -V)"
  cat "$work/sql" "$work/other"
} > "$out"
echo "$(wc -l < "$work/sql") functions of pond sql, $(wc -l < "$work/other") of the other commands: $out"

echo "== the release pond, linked in that order"
cargo build --locked --release --bin pond
