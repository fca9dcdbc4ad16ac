"""A Python tool cannot be a standard-library function: the model would get a shell, an
evaluator or every file, running in the engine's process with the API key in its environment.

Before this rule `{python: "subprocess:getoutput"}` ran any command the model wrote, unsandboxed
and with the engine's full environment. Re-exports are caught by the defining module. Writing
one's own function (the explicit way to allow it) still works.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.contracts import StateAccess
from orchestrator.errors import UsageError
from orchestrator.tools import build_toolset
from orchestrator.tools.python import stdlib_refusal


@pytest.fixture
def reexporting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user module that re-exports a stdlib runner, and defines its own narrow tool."""
    name = f"user_tools_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{name}.py").write_text(
        textwrap.dedent(
            """\
            import subprocess
            from subprocess import getoutput
            from os import system as run

            def disk_usage() -> str:
                \"\"\"How full the disk is.\"\"\"
                return subprocess.run(["df", "-h", "."], capture_output=True, text=True).stdout
            """
        )
    )
    monkeypatch.syspath_prepend(str(src))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "ref",
    [
        "subprocess:getoutput",
        "subprocess:run",
        "os:system",
        "os.path:realpath",
        "builtins:eval",
        "builtins:open",
        "io:open",
        "shutil:rmtree",
        "pty:spawn",
    ],
)
def test_stdlib_functions_are_refused(ref: str, workspace: Path, state: StateAccess) -> None:
    with pytest.raises(UsageError) as caught:
        build_toolset([{"python": ref}], workspace=workspace, state=state)
    message = str(caught.value)
    assert f"python tool '{ref}': refused" in message
    assert "standard library" in message and "your own module" in message


def test_reexported_stdlib_functions_are_refused(
    reexporting: str, workspace: Path, state: StateAccess
) -> None:
    for attr, module in (("getoutput", "subprocess"), ("run", "posix")):
        with pytest.raises(UsageError, match=f"'{module}' is part of Python's standard library"):
            build_toolset([{"python": f"{reexporting}:{attr}"}], workspace=workspace, state=state)


async def test_a_function_of_ones_own_module_is_the_explicit_way(
    reexporting: str, workspace: Path, state: StateAccess
) -> None:
    toolset = build_toolset(
        [{"python": f"{reexporting}:disk_usage"}], workspace=workspace, state=state
    )
    out = await toolset.execute("disk_usage", {})
    assert not out.is_error and "Filesystem" in out.content


def test_the_check_without_importing_names_the_module() -> None:
    """What `orchestrate validate` can use without importing user code."""
    assert stdlib_refusal("subprocess:getoutput") is not None
    assert stdlib_refusal("mypkg.tools:search") is None
