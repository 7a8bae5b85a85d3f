"""pond from Python: appends of pyarrow and pandas data, SQL through
datafusion-python compared with pyarrow compute on the same rows, pruning
in EXPLAIN, table functions, errors, and two sessions on one pond."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import random
import subprocess
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from datafusion import SessionContext

import pond

HOUR = 3_600_000_000
UTC = dt.timezone.utc


def readings(start_hour: int, hours: int, seed: int) -> pa.Table:
    """A reading a minute from `start_hour` (hours since the epoch), with a
    random value and a site name."""
    rng = random.Random(seed)
    n = hours * 60
    ts = [start_hour * HOUR + i * 60_000_000 for i in range(n)]
    return pa.table(
        {
            "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
            "celsius": pa.array([rng.uniform(-10, 40) for _ in range(n)]),
            "site": pa.array([rng.choice(["north", "south"]) for _ in range(n)]),
        }
    )


def iso(hour: int) -> str:
    return dt.datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def session(p: pond.Pond) -> SessionContext:
    ctx = SessionContext()
    pond.register(ctx, p)
    return ctx


def scalar(ctx: SessionContext, sql: str):
    table = ctx.sql(sql).to_arrow_table()
    assert table.num_rows == 1, table
    return table.column(0)[0].as_py()


@pytest.fixture
def filled(tmp_path: Path):
    """A pond whose /plant/boiler has six versions of 4 hours, appended
    out of order, and the same rows as one pyarrow table."""
    p = pond.Pond.create(str(tmp_path / "pond"))
    parts = [readings(start, 4, seed=start) for start in (8, 0, 16, 4, 20, 12)]
    for part in parts:
        p.append("/plant/boiler", part)
    return p, pa.concat_tables(parts)


def test_appends_of_pyarrow_and_pandas_data_become_versions(tmp_path: Path):
    p = pond.Pond.create(str(tmp_path / "pond"))
    table = readings(0, 2, seed=1)
    outcome = p.append("/site1/temperature", table)
    assert outcome["version"] == 1 and outcome["rows"] == 120
    assert outcome["min_event_time"] == 0
    assert outcome["max_event_time"] == 119 * 60_000_000

    frame = readings(2, 1, seed=2).to_pandas()
    assert isinstance(frame, pd.DataFrame)
    outcome = p.append("/site1/temperature", frame)
    assert outcome["version"] == 2 and outcome["rows"] == 60

    # A record batch, a reader, and a time column of another name.
    batch = readings(3, 1, seed=3).to_batches()[0]
    p.append("/site1/temperature", batch)
    reader = pa.RecordBatchReader.from_batches(table.schema, readings(4, 1, seed=4).to_batches())
    p.append("/site1/temperature", reader)
    other = pa.table({"when": pa.array([5, 6], type=pa.timestamp("ms")), "v": [1.0, 2.0]})
    p.append("/site2/flow", other, timestamp_column="when")

    described = p.describe("/site1/temperature")
    assert described["versions"] == 4 and described["rows"] == 300
    assert described["timestamp_column"] == "ts"
    assert described["schema"].field("celsius").type == pa.float64()
    assert [s["path"] for s in p.ls()] == ["/site1/temperature", "/site2/flow"]
    assert p.describe("/site2/flow")["timestamp_column"] == "when"
    report = p.check()
    assert report["clean"] and report["files_checked"] == 5, report

    # Another handle reads what this one wrote.
    again = pond.Pond.open(str(tmp_path / "pond"))
    assert again.describe("/site1/temperature")["rows"] == 300
    ctx = session(again)
    assert scalar(ctx, "SELECT count(*) FROM site1.temperature") == 300
    assert scalar(ctx, "SELECT sum(v) FROM site2.flow") == 3.0


@pytest.mark.parametrize("seed", range(5))
def test_sql_answers_equal_pyarrow_compute_on_the_same_rows(filled, seed: int):
    p, rows = filled
    ctx = session(p)
    rng = random.Random(seed)
    for _ in range(6):
        start = rng.randrange(0, 24)
        end = rng.randrange(start + 1, 26)
        site = rng.choice(["north", "south"])
        lo, hi = pa.scalar(start * HOUR, pa.timestamp("us", tz="UTC")), pa.scalar(
            end * HOUR, pa.timestamp("us", tz="UTC")
        )
        mask = pc.and_(
            pc.and_(pc.greater_equal(rows["ts"], lo), pc.less(rows["ts"], hi)),
            pc.equal(rows["site"], site),
        )
        expected = rows.filter(mask)
        where = f"ts >= '{iso(start)}' AND ts < '{iso(end)}' AND site = '{site}'"
        got = ctx.sql(
            f"SELECT count(*) AS n, sum(celsius) AS s, min(celsius) AS lo, max(ts) AS last "
            f"FROM plant.boiler WHERE {where}"
        ).to_arrow_table()
        assert got["n"][0].as_py() == expected.num_rows
        if expected.num_rows:
            assert got["s"][0].as_py() == pytest.approx(pc.sum(expected["celsius"]).as_py())
            assert got["lo"][0].as_py() == pc.min(expected["celsius"]).as_py()
            assert got["last"][0].as_py() == pc.max(expected["ts"]).as_py()
        # The rows themselves, in time order, through series_range.
        window = ctx.sql(
            f"SELECT ts, celsius FROM series_range('/plant/boiler', '{iso(start)}', '{iso(end)}') "
            f"WHERE site = '{site}' ORDER BY ts"
        ).to_arrow_table()
        assert window.column("ts").to_pylist() == expected.sort_by("ts").column("ts").to_pylist()
        assert window.column("celsius").to_pylist() == (
            expected.sort_by("ts").column("celsius").to_pylist()
        )


def test_a_time_filter_prunes_versions_in_explain(filled):
    p, rows = filled
    ctx = session(p)
    plan = ctx.sql(
        f"EXPLAIN SELECT avg(celsius) FROM plant.boiler WHERE ts >= '{iso(5)}' AND ts < '{iso(7)}'"
    ).to_arrow_table()
    text = "\n".join(plan.column("plan").to_pylist())
    assert "versions=1/6" in text, text
    plan = ctx.sql(
        f"EXPLAIN SELECT * FROM series_range('/plant/boiler', '{iso(3)}', '{iso(9)}')"
    ).to_arrow_table()
    text = "\n".join(plan.column("plan").to_pylist())
    assert "versions=3/6" in text, text
    # The oplog's row counts reach datafusion-python's planner.
    ctx.sql("SET datafusion.explain.show_statistics = true")
    plan = ctx.sql("EXPLAIN SELECT * FROM plant.boiler").to_arrow_table()
    text = "\n".join(plan.column("plan").to_pylist())
    assert f"Rows=Exact({rows.num_rows})" in text, text
    # EXPLAIN ANALYZE counts the scan's rows once, not once per inner node.
    ctx.sql("SET datafusion.explain.show_statistics = false")
    plan = ctx.sql(
        f"EXPLAIN ANALYZE SELECT celsius FROM plant.boiler WHERE ts >= '{iso(5)}' AND ts < '{iso(7)}'"
    ).to_arrow_table()
    text = "\n".join(plan.column("plan").to_pylist())
    scan = next(line for line in text.splitlines() if "SeriesScanExec" in line)
    assert "output_rows=120," in scan, text


def test_table_functions_and_the_catalog_list_the_pond(filled):
    p, rows = filled
    ctx = session(p)
    versions = ctx.sql(
        "SELECT version, row_count FROM series_versions('/plant/boiler') ORDER BY version"
    ).to_arrow_table()
    assert versions.column("version").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert sum(versions.column("row_count").to_pylist()) == rows.num_rows
    tables = ctx.sql(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = 'pond' AND table_schema = 'plant'"
    ).to_arrow_table()
    assert tables.to_pylist() == [{"table_schema": "plant", "table_name": "boiler"}]
    assert scalar(ctx, "SELECT count(*) FROM series_union('/plant/*')") == rows.num_rows


def test_keyed_appends_keep_the_newest_row_of_each_key(tmp_path: Path):
    p = pond.Pond.create(str(tmp_path / "pond"))
    first = pa.table(
        {
            "ts": pa.array([0, 0, 1], type=pa.timestamp("us", tz="UTC")),
            "host": ["a", "b", "a"],
            "v": [1, 2, 3],
        }
    )
    p.append("/fleet/cpu", first, key=["host"])
    p.append("/fleet/cpu", first.set_column(2, "v", pa.array([10, 20, 30])).slice(0, 1))
    assert p.describe("/fleet/cpu")["key"] == ["host", "ts"]
    ctx = session(p)
    got = ctx.sql("SELECT host, v FROM fleet.cpu ORDER BY ts, host").to_arrow_table()
    assert got.to_pylist() == [{"host": "a", "v": 10}, {"host": "b", "v": 2}, {"host": "a", "v": 3}]


def cli_error(pond_bin: str, *args: str) -> str:
    """The text after `error: ` of a failing `pond` command."""
    done = subprocess.run([pond_bin, *args], capture_output=True, text=True, env={"PATH": ""})
    assert done.returncode != 0, done
    line = done.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    return line[len("error: ") :]


def test_errors_are_python_exceptions_with_the_command_line_text(tmp_path: Path, pond_bin: str):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(pond.PondError) as raised:
        pond.Pond.open(missing)
    # The command line adds what to do about it.
    cli = cli_error(pond_bin, "--pond", missing, "ls")
    assert cli == f"{raised.value} (create one with `pond init`, or name another with --pond or $POND)"

    at = str(tmp_path / "pond")
    p = pond.Pond.create(at)
    p.append("/s", pa.table({"ts": pa.array([1], type=pa.timestamp("us")), "v": [1.0]}))
    csv = tmp_path / "r.csv"
    csv.write_text("other,v\n2024-01-01T00:00:00Z,2\n")
    with pytest.raises(pond.PondError) as raised:
        p.append("/s", pa.table({"other": [1], "v": [2.0]}), timestamp_column="other")
    cli = cli_error(pond_bin, "--pond", at, "append", "/s", str(csv), "--timestamp-column", "other")
    assert str(raised.value) == cli

    with pytest.raises(pond.PondError, match="no timestamp column"):
        p.append("/t", pa.table({"v": [1.0]}))
    with pytest.raises(pond.PondError, match="cannot append a int"):
        p.append("/t", 42)
    with pytest.raises(pond.PondError) as raised:
        pond.Pond.create(at)
    assert str(raised.value) == cli_error(pond_bin, "--pond", at, "init")


def test_two_sessions_share_one_pond_and_see_new_appends(filled):
    p, rows = filled
    first, second = session(p), session(p)
    query = "SELECT count(*) FROM plant.boiler"
    assert scalar(first, query) == scalar(second, query) == rows.num_rows
    p.append("/plant/boiler", readings(30, 1, seed=30))
    assert scalar(first, query) == scalar(second, query) == rows.num_rows + 60

    # Both sessions at once, from threads.
    answers: list[int] = []
    failures: list[BaseException] = []

    def run(ctx: SessionContext) -> None:
        try:
            for _ in range(5):
                answers.append(scalar(ctx, f"{query} WHERE ts >= '{iso(4)}'"))
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(ctx,)) for ctx in (first, second, first)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert answers == [rows.num_rows + 60 - 4 * 60] * 15


def test_a_datafusion_of_another_major_version_is_refused(monkeypatch):
    real = importlib.metadata.version

    def fake(name: str) -> str:
        return "54.1.0" if name == "datafusion" else real(name)

    monkeypatch.setattr(importlib.metadata, "version", fake)
    with pytest.raises(ImportError, match="pond was built for datafusion 55"):
        pond.check_datafusion()
    monkeypatch.undo()
    assert pond.check_datafusion().startswith("55.")



def test_the_readme_snippet_runs(tmp_path: Path, capsys):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## From Python") :]
    snippet = section[section.index("```python\n") + len("```python\n") :]
    snippet = snippet[: snippet.index("```")]
    assert '"/tmp/plant"' in snippet
    # It must run right after `pip install ./python`: pond's dependencies
    # and the standard library only.
    imported = {
        name.strip().split(" as ")[0].split(".")[0]
        for line in snippet.splitlines()
        if line.startswith("import ")
        for name in line[len("import ") :].split(",")
    }
    assert imported <= {"datetime", "datafusion", "pyarrow", "pond"}, imported
    exec(snippet.replace('"/tmp/plant"', repr(str(tmp_path / "plant"))), {})
    shown = capsys.readouterr().out
    assert "60.894999999999996" in shown and "2024-03-01T00:30:00Z" in shown, shown


def test_compaction_and_vacuum_keep_every_answer(filled):
    p, rows = filled
    ctx = session(p)
    query = "SELECT count(*) AS n, sum(celsius) AS s, max(ts) AS last FROM plant.boiler"

    def answer():
        row = ctx.sql(query).to_arrow_table().to_pylist()[0]
        return row["n"], row["s"], row["last"]

    def same(after):
        # The sum in the order the files are read: equal up to rounding.
        return after[0] == before[0] and after[2] == before[2] and (
            after[1] == pytest.approx(before[1], rel=1e-12)
        )

    before = answer()
    sixth = p.describe("/plant/boiler")["versions"]
    assert sixth == 6
    done = p.compact()
    assert done == [
        {
            "series": "/plant/boiler",
            "versions_read": 6,
            "versions_written": 1,
            "bytes_read": done[0]["bytes_read"],
            "bytes_written": done[0]["bytes_written"],
        }
    ]
    assert p.describe("/plant/boiler")["versions"] == 1
    assert same(answer())
    as_of = "SELECT count(*) FROM series_range('/plant/boiler', NULL, NULL, 6)"
    assert scalar(ctx, as_of) == rows.num_rows
    kept = p.vacuum()
    assert kept["superseded_files"] == 0, kept
    gone = p.vacuum(retain_seconds=0)
    assert gone["superseded_files"] == 6, gone
    assert p.check()["clean"]
    with pytest.raises(Exception, match="vacuumed"):
        ctx.sql(as_of).to_arrow_table()
    assert same(answer())


def test_compaction_declares_a_sort_key_and_a_codec(filled):
    p, rows = filled
    ctx = session(p)
    query = "SELECT site, count(*) AS n, max(ts) AS last FROM plant.boiler GROUP BY site ORDER BY site"
    before = ctx.sql(query).to_arrow_table().to_pylist()
    with pytest.raises(pond.PondError, match="expected one of zstd, lz4, snappy, none"):
        p.compact("/plant/boiler", compression="brotli")
    with pytest.raises(pond.PondError, match="name it"):
        p.compact(compression="lz4")
    with pytest.raises(pond.PondError, match="nope"):
        p.compact("/plant/boiler", sort_key=["nope"], compression="lz4")
    assert p.describe("/plant/boiler")["compression"] == "zstd"
    done = p.compact("/plant/boiler", sort_key=["site"], compression="lz4")
    assert done[0]["versions_written"] == 1
    info = p.describe("/plant/boiler")
    assert info["compression"] == "lz4"
    assert info["sort_key"] == ["site", "ts"]
    assert ctx.sql(query).to_arrow_table().to_pylist() == before
    # The compacted file is written with LZ4.
    import pyarrow.parquet as pq

    live = ctx.sql(
        "SELECT file_path FROM series_versions('/plant/boiler') WHERE live"
    ).to_arrow_table().column(0).to_pylist()
    assert len(live) == 1
    root = Path(p.uri.removeprefix("file://"))
    meta = pq.ParquetFile(root / live[0]).metadata
    codecs = {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    # pyarrow names Parquet's LZ4_RAW "LZ4" (and zstd "ZSTD").
    assert codecs == {"LZ4"}, codecs


def test_deletes_leave_rows_out_and_earlier_versions_keep_them(filled):
    p, rows = filled
    ctx = session(p)
    total = rows.num_rows
    versions = scalar(ctx, "SELECT max(version) FROM series_versions('/plant/boiler')")
    # Hours 2 and 3 of the north site.
    version = p.delete("/plant/boiler", start=2 * HOUR, end=4 * HOUR, where="site = 'north'")
    assert version == versions + 1
    ts = rows.column("ts").cast(pa.int64())
    hit = pc.and_(
        pc.and_(pc.greater_equal(ts, 2 * HOUR), pc.less(ts, 4 * HOUR)),
        pc.equal(rows.column("site"), "north"),
    )
    gone = pc.sum(pc.cast(hit, pa.int64())).as_py()
    assert gone > 0
    assert scalar(ctx, "SELECT count(*) FROM plant.boiler") == total - gone
    before = f"SELECT count(*) FROM series_range('/plant/boiler', NULL, NULL, {versions})"
    assert scalar(ctx, before) == total
    with pytest.raises(pond.PondError, match="needs start, end or where"):
        p.delete("/plant/boiler")
    with pytest.raises(pond.PondError, match="nope"):
        p.delete("/plant/boiler", where="nope > 1")


def test_pandas_indexes_categoricals_and_nested_strings_are_appended_as_plain_columns(
    tmp_path: Path,
):
    p = pond.Pond.create(str(tmp_path / "pond"))
    ts = pd.to_datetime([0, 60], unit="s", utc=True)
    # A named index is a column; a range index is not.
    named = pd.DataFrame({"ts": ts, "v": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="host"))
    p.append("/hosts", named)
    assert p.describe("/hosts")["schema"].names == ["ts", "v", "host"]
    p.append("/plain", pd.DataFrame({"ts": ts, "v": [1.0, 2.0]}))
    assert p.describe("/plain")["schema"].names == ["ts", "v"]

    # A categorical, then plain strings: one column type, whoever writes.
    cats = pd.DataFrame({"ts": ts, "site": pd.Categorical(["north", "south"])})
    p.append("/sites", cats)
    assert p.describe("/sites")["schema"].field("site").type == pa.string()
    later = pa.table(
        {
            "ts": pa.array([120_000_000], type=pa.timestamp("us", tz="UTC")),
            "site": pa.array(["east"], type=pa.large_string()),
        }
    )
    p.append("/sites", later)
    lists = pa.table(
        {
            "ts": pa.array([0], type=pa.timestamp("us", tz="UTC")),
            "tags": pa.array([["x", "y"]], type=pa.large_list(pa.large_string())),
        }
    )
    p.append("/lists", lists)
    assert p.describe("/lists")["schema"].field("tags").type == pa.list_(pa.string())
    ctx = session(p)
    assert ctx.sql("SELECT site FROM sites ORDER BY ts").to_pydict() == {
        "site": ["north", "south", "east"]
    }


def test_a_stale_handle_appends_with_the_series_time_column(tmp_path: Path):
    a = pond.Pond.create(str(tmp_path / "pond"))
    b = pond.Pond.open(str(tmp_path / "pond"))
    both = pa.table(
        {
            "when": pa.array([0], type=pa.timestamp("us", tz="UTC")),
            "ts": pa.array([5_000_000], type=pa.timestamp("us", tz="UTC")),
        }
    )
    b.append("/s", both, timestamp_column="when")
    # `a` has not seen the series: it must not pick `ts` by its name.
    a.append("/s", both)
    assert a.describe("/s")["timestamp_column"] == "when"
    assert a.describe("/s")["rows"] == 2


def test_compacting_every_series_goes_past_one_that_fails(tmp_path: Path):
    p = pond.Pond.create(str(tmp_path / "pond"))
    for series in ["/a", "/b"]:
        for hour in range(3):
            p.append(series, readings(hour, 1, seed=hour))
    # A data file of /a is lost: its compaction fails, /b's does not.
    lost = next((tmp_path / "pond" / "data").glob(f"{p.describe('/a')['id']}/*.parquet"))
    lost.unlink()
    with pytest.raises(pond.PondError, match="1 series could not be compacted.*/a: "):
        p.compact()
    assert p.describe("/b")["versions"] == 1
    assert p.describe("/a")["versions"] == 3


def _append_in_child(location: str) -> None:
    try:
        pond.Pond.open(location)
    except pond.PondError as e:
        # Refused at once, with what to do instead.
        raise SystemExit(0 if "forkserver" in str(e) else 2) from None
    raise SystemExit(1)


def test_a_process_forked_after_pond_ran_is_refused_not_hung(tmp_path: Path):
    import multiprocessing

    location = str(tmp_path / "pond")
    p = pond.Pond.create(location)
    p.append("/forked", readings(0, 1, seed=1))
    # The parent's runtime is running: in the child its threads are not.
    child = multiprocessing.get_context("fork").Process(target=_append_in_child, args=(location,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung")
    assert child.exitcode == 0
    # A spawned process uses pond as any other.
    spawned = multiprocessing.get_context("spawn").Process(
        target=_spawned_append, args=(location,)
    )
    spawned.start()
    spawned.join(timeout=120)
    assert spawned.exitcode == 0
    p.refresh()
    assert p.describe("/forked")["versions"] == 2


def _spawned_append(location: str) -> None:
    pond.Pond.open(location).append("/forked", readings(1, 1, seed=2))


def test_warnings_of_work_on_the_side_reach_pythons_logging(tmp_path: Path, caplog):
    p = pond.Pond.create(str(tmp_path / "pond"))
    p.append("/plant/boiler", readings(0, 1, seed=1))
    # The first version's file damaged: the automatic compaction after the
    # eighth append fails, and the append itself succeeds.
    damaged = next((tmp_path / "pond" / "data").glob("*/*.parquet"))
    damaged.write_bytes(b"not parquet")
    with caplog.at_level("WARNING", logger="pond"):
        for hour in range(1, 8):
            p.append("/plant/boiler", readings(hour, 1, seed=hour))
    said = [r.getMessage() for r in caplog.records if r.name == "pond"]
    assert any(
        m.startswith("automatic compaction failed") and "series=/plant/boiler" in m for m in said
    ), said
    assert p.describe("/plant/boiler")["versions"] == 8


def test_the_type_stubs_name_what_the_module_has(filled, tmp_path: Path):
    import ast

    stub = ast.parse((Path(pond.__file__).parent / "_pond.pyi").read_text())
    classes = {c.name: c for c in stub.body if isinstance(c, ast.ClassDef)}

    def members(name: str) -> set[str]:
        return {
            n.name
            for n in classes[name].body
            if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
        }

    def keys(name: str) -> set[str]:
        return {n.target.id for n in classes[name].body if isinstance(n, ast.AnnAssign)}

    runtime = {m for m in dir(pond.Pond) if not m.startswith("_")}
    assert members("Pond") == runtime
    p, _ = filled
    assert set(p.describe("/plant/boiler")) == keys("SeriesInfo")
    assert set(p.append("/other", readings(0, 1, seed=9))) == keys("AppendOutcome")
    report = p.check()
    assert set(report) == keys("CheckReport")
    assert set(p.compact()[0]) == keys("CompactOutcome")
    assert set(p.vacuum()) == keys("VacuumOutcome")
    assert (Path(pond.__file__).parent / "py.typed").exists()
