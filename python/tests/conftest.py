"""The `pond` command line, whose error lines the Python exceptions must
repeat: `POND_BIN`, else the debug build in cargo's target directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pond_bin() -> str:
    candidates = [os.environ.get("POND_BIN")]
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        candidates.append(os.path.join(target, "debug", "pond"))
    candidates.append(str(Path(__file__).resolve().parents[2] / "target" / "debug" / "pond"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no pond binary: build it with `cargo build` or set POND_BIN")
