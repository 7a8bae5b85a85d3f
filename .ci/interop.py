"""Reads a pond without pond: the oplog with the `deltalake` Python package,
every data file with pyarrow, and checks them against each other.

Usage: python3 .ci/interop.py POND_DIR
"""

import hashlib
import sys
from collections import defaultdict

import deltalake
import pyarrow
import pyarrow.parquet as pq

PER_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def main(pond: str) -> None:
    table = deltalake.DeltaTable(f"{pond}/oplog")
    rows = table.to_pyarrow_table().to_pylist()
    appends = [r for r in rows if r["entry_type"] == "append"]
    creates = {r["series"]: r for r in rows if r["entry_type"] == "create"}
    assert appends, "the pond has no versions"

    versions = defaultdict(list)
    for r in appends:
        assert r["series"] in creates, f"{r['series']} has no create entry"
        path = f"{pond}/{r['file_path']}"
        data = open(path, "rb").read()
        assert len(data) == r["size"], f"{path}: size {len(data)} != {r['size']}"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert digest == r["content_hash"], f"{path}: hash differs"
        file = pq.read_table(path)
        assert file.num_rows == r["row_count"], f"{path}: rows {file.num_rows} != {r['row_count']}"
        ts = file.column(r["timestamp_column"])
        ns = PER_UNIT_NS[ts.type.unit]
        raw = ts.cast(pyarrow.int64()).to_pylist()
        assert raw == sorted(raw), f"{path}: not sorted by time"
        # Exact integer floor and ceiling to the microsecond.
        lo = (min(raw) * ns) // 1000
        hi = -((-max(raw) * ns) // 1000)
        assert (lo, hi) == (r["min_event_time"], r["max_event_time"]), (
            f"{path}: bounds {(lo, hi)} != oplog {(r['min_event_time'], r['max_event_time'])}"
        )
        versions[r["series"]].append(r["version"])

    for series, vs in versions.items():
        assert sorted(vs) == list(range(1, len(vs) + 1)), f"{series}: versions {sorted(vs)}"
    txns = [r["txn_seq"] for r in appends]
    assert len(set(txns)) == len(txns), "each append is its own oplog commit"
    print(
        f"interop: {len(appends)} versions of {len(versions)} series verified "
        f"with deltalake {deltalake.__version__} and pyarrow {pyarrow.__version__}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
