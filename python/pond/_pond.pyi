"""Types of pond's extension module, `pond._pond` (python/src/lib.rs).

Times are int64 microseconds since the Unix epoch, UTC.
"""

from typing import Any, TypedDict

import pyarrow as pa

DATAFUSION_VERSION: str

def datafusion_major() -> int: ...

class PondError(Exception):
    """An error of pond: the text the command line prints after `error: `."""

class AppendOutcome(TypedDict):
    series: str
    version: int
    rows: int
    min_event_time: int
    max_event_time: int
    oplog_version: int

class SeriesInfo(TypedDict):
    path: str
    id: str
    timestamp_column: str
    schema: pa.Schema
    versions: int
    rows: int
    bytes: int
    min_event_time: int | None
    max_event_time: int | None
    created_at: int
    key: list[str]
    sort_key: list[str]
    sort_bucket: int
    compression: str

class FileProblem(TypedDict):
    series: str
    version: int
    file_path: str
    problem: str

class CheckReport(TypedDict):
    files_checked: int
    garbage: list[str]
    pending: list[str]
    problems: list[FileProblem]
    clean: bool

class CompactOutcome(TypedDict):
    series: str
    versions_read: int
    versions_written: int
    bytes_read: int
    bytes_written: int

class VacuumOutcome(TypedDict):
    superseded_files: int
    superseded_bytes: int
    garbage_files: int
    log_files: int
    oplog_files: int

class TableFunction:
    def __datafusion_table_function__(self, session: Any) -> object: ...

class PruningRule:
    def __datafusion_physical_optimizer_rule__(self) -> object: ...

class Pond:
    @staticmethod
    def create(uri: str, storage_options: dict[str, str] | None = None) -> Pond: ...
    @staticmethod
    def open(uri: str, storage_options: dict[str, str] | None = None) -> Pond: ...
    @property
    def uri(self) -> str: ...
    @property
    def oplog_version(self) -> int: ...
    def append(
        self,
        series: str,
        data: Any,
        timestamp_column: str | None = None,
        key: list[str] | None = None,
    ) -> AppendOutcome: ...
    def ls(self) -> list[SeriesInfo]: ...
    def describe(self, series: str) -> SeriesInfo: ...
    def check(self) -> CheckReport: ...
    def compact(
        self,
        series: str | None = None,
        sort_key: list[str] | None = None,
        compression: str | None = None,
    ) -> list[CompactOutcome]: ...
    def delete(
        self,
        series: str,
        start: int | None = None,
        end: int | None = None,
        where: str | None = None,
    ) -> int: ...
    def vacuum(self, retain_seconds: int = 604800) -> VacuumOutcome: ...
    def refresh(self) -> None: ...
    def table_function(self, name: str) -> TableFunction: ...
    def pruning_rule(self) -> PruningRule: ...
    def __datafusion_catalog_provider__(self, session: Any) -> object: ...
