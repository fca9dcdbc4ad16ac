"""A local Ray cluster for one test module (see ray_runs.py for running workflows on it).

`ray.init(num_cpus=2)` in this process (its temp folder under /tmp, removed at the end): the
executor finds Ray initialised and uses it; children (`orchestrate run --ray-address`) join it
by its address. `ray.shutdown()` stops exactly the cluster this module started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    # Ray >= 2.59 authenticates with a token, by default the one in ~/.ray/auth_token, which
    # any other local Ray may replace: these clusters and their drivers share their own. One
    # per test process, kept: Ray caches the token it first loads for the process's lifetime.
    # Set before Ray is imported: it reads its auth settings then.
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    os.environ["RAY_AUTH_MODE"] = "token"  # children joining the cluster do not infer it
    import ray

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # socket paths must stay short
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=temp,
        configure_logging=False,
    )
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
