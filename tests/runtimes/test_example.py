"""workflows/fix_tests_in_worktrees.yaml, run as shipped on a repository with two failing tests.

The example sits in a git checkout (its `workspace: .`); its `run:` step finds the failing tests
with pytest, one Claude Code worker per test fixes its module in its own worktree (the simulator
scripts the edit), and `merge: branches` merges both fixes. The merged branch's tests pass.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.events import StepFinished

from .conftest import bash_rule, make_repo, sh

EXAMPLE = Path(__file__).resolve().parents[2] / "workflows" / "fix_tests_in_worktrees.yaml"


async def test_the_worktree_example_fixes_both_tests_and_merges(
    harness: Any, tmp_path: Path
) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "words.py": "def shout(s):\n    return s.lower()\n",
            "test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n",
            "test_words.py": (
                "from words import shout\n\ndef test_shout():\n    assert shout('a') == 'A'\n"
            ),
        },
    )
    shutil.copy(EXAMPLE, repo / EXAMPLE.name)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "example")
    h = harness(
        [
            bash_rule("test_calc.py::test_add fails", "sed -i 's/a - b/a + b/' calc.py"),
            bash_rule("test_words.py::test_shout fails", "sed -i 's/lower/upper/' words.py"),
        ]
    )
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider"
    text = (
        (repo / EXAMPLE.name)
        .read_text()
        .replace("default: python3 -m pytest -q -p no:cacheprovider", f"default: {command}")
        .replace("model: claude-sonnet-4-5", "model: claude-haiku-4-5")
    )  # Claude Code knows it
    outcome = await h.run(text, workspace=repo, run_id="RUNEX", path=repo / EXAMPLE.name)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs is not None and outcome.outputs["conflicts"] == []
    assert len(outcome.outputs["merged"]) == 2
    failing = next(e for e in h.of(StepFinished) if e.step_id == "failing")
    assert failing.output == ["test_calc.py::test_add", "test_words.py::test_shout"]
    # the merged branch holds both fixes: its tests pass
    check = tmp_path / "check"
    sh(repo, "git", "worktree", "add", "-q", str(check), outcome.outputs["into"])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=check,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
