"""CSV ingest: `pond append` against pyarrow + deltalake's write_deltalake.

Writes a CSV of about SIZE_MB megabytes (sensor readings: an RFC 3339
timestamp, three floats and a site name, in time order), then ingests it
twice, each in a child process whose wall time and peak RSS (from wait4) are
measured:

  pond:      pond --pond <dir> append /bench/readings <csv>
  reference: pyarrow.csv.open_csv (streaming) into deltalake.write_deltalake

Both stream the file in bounded memory and write Parquet. Usage:

  cargo build --release
  python3 benches/ingest.py [SIZE_MB] [POND_BINARY]

SIZE_MB defaults to 1024; POND_BINARY to target/release/pond (or
$CARGO_TARGET_DIR/release/pond).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

REFERENCE = r"""
import sys
import pyarrow as pa
import pyarrow.csv as csv
from deltalake import write_deltalake

source, table = sys.argv[1], sys.argv[2]
convert = csv.ConvertOptions(column_types={"ts": pa.timestamp("us", tz="UTC")})
reader = csv.open_csv(source, convert_options=convert)
write_deltalake(table, reader, mode="overwrite")
"""


def write_csv(path, size_mb):
    target = size_mb * 1_000_000
    start = 1_704_067_200  # 2024-01-01T00:00:00Z
    sites = ["north", "south", "east", "west"]
    written = 0
    row = 0
    last, stamp = None, ""
    with open(path, "w", buffering=1 << 22) as out:
        out.write("ts,temperature,humidity,pressure,site\n")
        while written < target:
            lines = []
            for _ in range(10_000):
                seconds, micros = divmod(row * 250_000, 1_000_000)
                if seconds != last:
                    last = seconds
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + seconds))
                lines.append(
                    f"{stamp}.{micros:06d}Z,{20 + (row % 97) / 10:.2f},"
                    f"{40 + (row % 53) / 3:.3f},{1000 + (row % 31) / 7:.4f},{sites[row % 4]}\n"
                )
                row += 1
            chunk = "".join(lines)
            out.write(chunk)
            written += len(chunk)
    return row, written


def du(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def measure(args):
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    stderr = child.stderr.read().decode()
    if status != 0:
        sys.exit(f"{args[0]} failed ({status}): {stderr}")
    return elapsed, usage.ru_maxrss * 1024, stderr.strip()


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    target_dir = os.environ.get("CARGO_TARGET_DIR", "target")
    binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(target_dir, "release", "pond")
    work = tempfile.mkdtemp(prefix="pond-ingest-")
    try:
        source = os.path.join(work, "readings.csv")
        rows, size = write_csv(source, size_mb)
        print(f"CSV: {size / 1e6:.0f} MB, {rows} rows")

        pond_dir = os.path.join(work, "pond")
        subprocess.run([binary, "--pond", pond_dir, "init"], check=True, stderr=subprocess.DEVNULL)
        pond_s, pond_rss, note = measure([binary, "--pond", pond_dir, "append", "/bench/readings", source])
        print(f"pond append:            {pond_s:7.1f} s, peak RSS {pond_rss / 1e6:6.0f} MB  ({note})")

        table = os.path.join(work, "delta")
        ref_s, ref_rss, _ = measure([sys.executable, "-c", REFERENCE, source, table])
        print(f"pyarrow + deltalake:    {ref_s:7.1f} s, peak RSS {ref_rss / 1e6:6.0f} MB")
        print(f"ratio pond / reference: time {pond_s / ref_s:.2f}, peak RSS {pond_rss / ref_rss:.2f}")
        print(f"written: pond {du(pond_dir) / 1e6:.0f} MB, reference {du(table) / 1e6:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
