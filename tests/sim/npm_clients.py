"""Where the npm clients of tests/sim/npm/install.sh live, and when their tests skip.

They skip where node or npm is absent. Where npm is present but the clients were not installed
(`tests/sim/npm/install.sh`, which .ci/run runs), they skip too, unless ORCHESTRATE_REQUIRE_NPM
is set (CI sets it), so a missing install cannot pass silently there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INSTALL = HERE / "npm" / "install.sh"


def npm_dir() -> Path:
    return Path(os.environ.get("ORCHESTRATE_NPM_DIR") or HERE.parent / ".npm-cache")


def require(relative: str) -> Path:
    """The installed file `relative` (under node_modules), or skip/fail as described above."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed")
    path = npm_dir() / "node_modules" / relative
    if not path.exists():
        message = f"{path} missing: run {INSTALL}"
        if os.environ.get("ORCHESTRATE_REQUIRE_NPM"):
            pytest.fail(message)
        pytest.skip(message)
    return path
