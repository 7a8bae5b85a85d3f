# %% [markdown]
# # pond from Python
#
# A notebook-style walk through pond: keep sensor readings in a pond, query
# them with DataFusion's SQL, and watch the oplog prune versions. Run it as a
# script (`python python/examples/notebook.py`) or cell by cell.

# %%
import tempfile

import numpy as np
import pandas as pd
from datafusion import SessionContext

import pond

location = tempfile.mkdtemp() + "/plant"
p = pond.Pond.create(location)

# %% [markdown]
# Each append writes one sorted Parquet file, a *version*, and commits one
# row to the oplog with its exact time range. Here: a day of boiler readings,
# one append per hour, as pandas DataFrames.

# %%
rng = np.random.default_rng(7)
day = pd.Timestamp("2024-03-01", tz="UTC")
for hour in range(24):
    start = day + pd.Timedelta(hours=hour)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=60, freq="min"),
            "celsius": 60 + 5 * np.sin(hour / 4) + rng.normal(0, 0.5, 60),
            "pressure_kpa": 101 + rng.normal(0, 0.2, 60),
        }
    )
    p.append("/plant/boiler", frame)

info = p.describe("/plant/boiler")
print(f"{info['path']}: {info['versions']} versions, {info['rows']} rows")

# %% [markdown]
# Fewer than 24: as appends arrive, pond merges small versions into larger
# ones (automatic compaction), without changing any answer.

# %% [markdown]
# Every series is a table: /plant/boiler is `plant.boiler`.

# %%
ctx = SessionContext()
pond.register(ctx, p)
hourly = ctx.sql(
    """
    SELECT date_trunc('hour', ts) AS hour, avg(celsius) AS celsius, max(pressure_kpa) AS peak
    FROM plant.boiler
    WHERE ts >= '2024-03-01T06:00:00Z' AND ts < '2024-03-01T09:00:00Z'
    GROUP BY 1 ORDER BY 1
    """
).to_pandas()
print(hourly)
assert len(hourly) == 3

# %% [markdown]
# The time filter kept only the versions that can hold rows in the window,
# before any file was opened:

# %%
plan = ctx.sql(
    "EXPLAIN SELECT avg(celsius) FROM plant.boiler "
    "WHERE ts >= '2024-03-01T06:00:00Z' AND ts < '2024-03-01T09:00:00Z'"
).to_pandas()
scan = [line for line in "\n".join(plan["plan"]).splitlines() if "SeriesScanExec" in line]
print(scan[0].strip())
kept, total = scan[0].split("versions=")[1].split(",")[0].split("/")
assert int(total) == info["versions"] and int(kept) < int(total), scan[0]

# %% [markdown]
# `series_range` reads a window; `series_versions` lists the oplog.

# %%
window = ctx.sql(
    "SELECT count(*) AS n FROM series_range('/plant/boiler', "
    "'2024-03-01T23:30:00Z', '2024-03-02T00:00:00Z')"
).to_pandas()
print(window)
assert window["n"][0] == 30
print(ctx.sql("SELECT version, row_count, min_event_time FROM series_versions('/plant/boiler') LIMIT 3").to_pandas())
