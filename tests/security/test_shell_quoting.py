"""Model output placed in a `run:` command: `shquote` keeps it one shell word, and `validate`
warns where a command places model-written text without it.

The simulator is scripted (`--sim-script`) to answer like a prompt-injected model: with shell
syntax that would create a file if the command ran it.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .conftest import child_env, orchestrate

INJECTED = "a; touch pwned-text"
INJECTED_LIST = ["b; touch pwned-list", "$(touch pwned-subshell)"]

QUOTED = """version: 1
name: quoting
steps:
  - id: plan
    prompt: name a file
  - id: names
    prompt: name two files
    output: json
  - id: one
    run: "printf '%s' {{ steps.plan.output | shquote }}"
  - id: many
    run: "printf '[%s]' {{ steps.names.output | map('shquote') | join(' ') }}"
  - id: each
    for_each: "{{ steps.names.output }}"
    run: "printf '%s' {{ item | shquote }}; exit {{ steps.one.exit_code }}"
outputs:
  one: "{{ steps.one.output }}"
  many: "{{ steps.many.output }}"
  each: "{{ steps.each.output }}"
"""

RULES = [
    {"step": "plan", "text": INJECTED},
    {"step": "names", "json": INJECTED_LIST},
]


def test_quoted_model_output_stays_one_word_and_validates_clean(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(QUOTED)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(RULES))
    checked = orchestrate(tmp_path, "validate", "wf.yaml")
    assert checked.code == 0 and "warning" not in checked.stdout + checked.stderr, checked

    done = orchestrate(
        tmp_path,
        "run",
        "wf.yaml",
        "--simulate",
        "--sim-script",
        "rules.yaml",
        "--db",
        "s.db",
        "--json",
        env=child_env(),
    )
    assert done.code == 0, done.stderr
    outputs = json.loads(done.stdout.splitlines()[-1])["outputs"]
    assert outputs["one"] == INJECTED
    assert outputs["many"] == "".join(f"[{name}]" for name in INJECTED_LIST)
    assert outputs["each"] == INJECTED_LIST
    assert not [p for p in tmp_path.rglob("pwned*")], "the model's text ran as shell code"


def test_validate_warns_where_model_output_is_placed_unquoted(tmp_path: Path) -> None:
    unquoted = QUOTED.replace("{{ steps.plan.output | shquote }}", "{{ steps.plan.output }}")
    unquoted = unquoted.replace("{{ item | shquote }}", "{{ item }}")
    (tmp_path / "wf.yaml").write_text(unquoted)
    done = orchestrate(tmp_path, "validate", "wf.yaml")
    assert done.code == 0, done.stderr  # a warning, not an error: the value may be trusted
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if "warning" in line]
    assert len(warnings) == 2, warnings
    one, each = warnings
    assert one.startswith("wf.yaml:10:") and "step 'one'" in one
    assert "{{ steps.plan.output | shquote }}" in one
    assert each.startswith("wf.yaml:15:") and "step 'each'" in each
    assert "{{ item | shquote }}" in each


def test_run_prints_the_same_warnings_on_stderr_before_it_starts(tmp_path: Path) -> None:
    unquoted = QUOTED.replace("{{ steps.plan.output | shquote }}", "{{ steps.plan.output }}")
    (tmp_path / "wf.yaml").write_text(unquoted)
    # unscripted: the simulator's `names` are objects, which shquote passes as one JSON word
    done = orchestrate(
        tmp_path, "run", "wf.yaml", "--simulate", "--db", "s.db", "-q", "-o", "out.json"
    )
    assert done.code == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("wf.yaml:10:") and "{{ steps.plan.output | shquote }}" in first
    assert "warning" not in done.stdout  # stdout stays the outputs
    items = json.loads((tmp_path / "out.json").read_text())["each"]
    assert items and all(isinstance(json.loads(text), dict) for text in items), items
