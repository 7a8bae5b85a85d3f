"""pond: versioned time series in Parquet with a Delta Lake operation log,
queried as SQL tables in Apache DataFusion.

    import datafusion, pond

    p = pond.Pond.create("/tmp/readings")
    p.append("/site1/temperature", table)          # pyarrow, pandas, polars
    ctx = datafusion.SessionContext()
    pond.register(ctx, p)
    ctx.sql("SELECT avg(celsius) FROM site1.temperature "
            "WHERE ts >= '2024-01-01T00:00:00Z'").show()

Times are int64 microseconds since the Unix epoch, UTC, wherever pond's
API takes or returns one.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from ._pond import DATAFUSION_VERSION, Pond, PondError, PruningRule, TableFunction
from ._pond import datafusion_major as _datafusion_major

__all__ = [
    "CATALOG",
    "DATAFUSION_VERSION",
    "TABLE_FUNCTIONS",
    "Pond",
    "PondError",
    "PruningRule",
    "TableFunction",
    "check_datafusion",
    "register",
]

#: The catalog every series is a table of; `register` makes it the default.
CATALOG = "pond"

#: The table functions `register` installs.
TABLE_FUNCTIONS = ("series_range", "series_versions", "series_list", "series_union")


def check_datafusion() -> str:
    """Returns the installed datafusion's version, or raises ImportError if
    its major version is not the one pond was built with: plans exchanged
    across versions crash the interpreter rather than fail."""
    try:
        installed = importlib.metadata.version("datafusion")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            f"pond needs the datafusion package: pip install 'datafusion=={_datafusion_major()}.*'"
        ) from None
    major = installed.split(".", 1)[0]
    if major != str(_datafusion_major()):
        raise ImportError(
            f"pond was built for datafusion {_datafusion_major()} "
            f"(DataFusion {DATAFUSION_VERSION}), but datafusion {installed} is installed: "
            f"pip install 'datafusion=={_datafusion_major()}.*'"
        )
    return installed


def register(ctx: Any, pond: Pond) -> None:
    """Installs `pond` into a `datafusion.SessionContext`, as `pond::register`
    does in Rust: the `pond` catalog (made the default, so a series
    /site1/temperature is the table site1.temperature), information_schema,
    the table functions series_range, series_versions, series_list and
    series_union, and the physical optimizer rule that prunes versions."""
    check_datafusion()
    from datafusion import udtf

    ctx.register_catalog_provider(CATALOG, pond)
    for name in TABLE_FUNCTIONS:
        ctx.register_udtf(udtf(pond.table_function(name), name))
    ctx.add_physical_optimizer_rule(pond.pruning_rule())
    ctx.sql(f"SET datafusion.catalog.default_catalog = '{CATALOG}'")
    ctx.sql("SET datafusion.catalog.information_schema = true")
