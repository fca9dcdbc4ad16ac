"""Every YAML block in the README is valid as printed, and every workflow block runs.

A newcomer copies these blocks; issue 14 found the example was not valid YAML (an unquoted `: `)
and leaned on agent files it did not mention. A workflow block is saved as the README says
(`wf.yaml` at the repo root, where `agents/` is) and run on the simulator.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text("utf-8")
BLOCKS = [
    (README.count("\n", 0, m.start()) + 2, m.group(1))
    for m in re.finditer(r"^```ya?ml\n(.*?)^```", README, flags=re.S | re.M)
]
ORCHESTRATE = [str(Path(sys.executable).with_name("orchestrate"))]


def test_the_readme_has_yaml_blocks() -> None:
    assert BLOCKS, "the README's examples are fenced as ```yaml"


@pytest.mark.parametrize(("line", "text"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_yaml_block_parses(line: int, text: str) -> None:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:  # pragma: no cover - the failure is the message
        pytest.fail(f"README.md:{line}: not valid YAML as printed: {exc}")


def _is_workflow(text: str) -> bool:
    try:
        return isinstance(yaml.safe_load(text), dict) and "steps:" in text
    except yaml.YAMLError:
        return "steps:" in text  # still a workflow: its run test reports the YAML error too


WORKFLOWS = [(n, t) for n, t in BLOCKS if _is_workflow(t)]


@pytest.mark.parametrize(("line", "text"), WORKFLOWS, ids=[f"README.md:{n}" for n, _ in WORKFLOWS])
def test_workflow_block_validates_and_runs_on_the_simulator(
    line: int, text: str, tmp_path: Path
) -> None:
    shutil.copytree(REPO / "agents", tmp_path / "agents")
    (tmp_path / "wf.yaml").write_text(text, "utf-8")
    db = tmp_path / "state.db"
    checked = subprocess.run(
        [*ORCHESTRATE, "validate", "wf.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0, f"README.md:{line}: {checked.stdout}{checked.stderr}"
    ran = subprocess.run(
        [*ORCHESTRATE, "run", "wf.yaml", "--simulate", "--db", str(db)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert ran.returncode == 0, f"README.md:{line}: {ran.stdout}{ran.stderr}"
