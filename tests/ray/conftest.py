"""A local Ray cluster for one test module (see ray_runs.py for running workflows on it).

`ray.init(num_cpus=2)` in this process (its temp folder under /tmp, removed at the end): the
executor finds Ray initialised and uses it; children (`orchestrate run --ray-address`) join it
by its address. `ray.shutdown()` stops exactly the cluster this module started.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    # Ray >= 2.59 authenticates with a token: tests/conftest.py sets RAY_AUTH_MODE and
    # RAY_AUTH_TOKEN at import, before any module imports Ray (it reads them once, then), and
    # children joining the cluster inherit them (they do not infer the mode).
    assert os.environ.get("RAY_AUTH_MODE") == "token", "tests/conftest.py sets Ray's auth"
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
