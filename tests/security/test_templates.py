"""Templates are sandboxed: no way into Python internals, and `env` shows only what is listed.

Attribute escapes spelled out in a template are refused when the workflow loads (`validate` and
`run` exit 2 naming the file, line and the attribute); those hidden from the static check (the
`attr` filter, `str.format` fields) are refused by the sandbox when rendered (exit 1, the step
fails with "refused by the sandbox"). Never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import child_env, orchestrate

STATIC_ESCAPES = [
    "''.__class__.__mro__",
    "cycler.__init__.__globals__",
    "lipsum.__globals__['os']",
    "inputs.q['__class__']",
]

# Where a template may sit: every one of them is checked.
PLACES = {
    "prompt": 'steps:\n  - id: a\n    prompt: "X {{{{ {expr} }}}}"\n',
    "when": 'steps:\n  - id: a\n    when: "{{{{ {expr} }}}}"\n    prompt: hi\n',
    "for_each": 'steps:\n  - id: a\n    for_each: "{{{{ {expr} }}}}"\n    prompt: hi\n',
    "run": 'steps:\n  - id: a\n    run: "echo {{{{ {expr} }}}}"\n',
    "outputs": 'steps:\n  - id: a\n    prompt: hi\noutputs:\n  o: "{{{{ {expr} }}}}"\n',
}

HEAD = "version: 1\nname: t\ninputs:\n  q: {type: string, default: x}\n"


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "jinja2." not in stderr.replace("jinja2.runtime.StrictUndefined", ""), stderr


@pytest.mark.parametrize("expr", STATIC_ESCAPES)
def test_attribute_escapes_are_refused_at_validate_and_run(tmp_path: Path, expr: str) -> None:
    (tmp_path / "wf.yaml").write_text(HEAD + PLACES["prompt"].format(expr=expr))
    for args in (("validate", "wf.yaml"), ("run", "wf.yaml", "--simulate", "--db", "s.db")):
        done = orchestrate(tmp_path, *args)
        assert done.code == 2, (args, done.stderr)
        _no_traceback(done.stderr)
        # `validate` reports on stdout (a report, like a linter); `run` fails on stderr
        report = done.stdout if args[0] == "validate" else done.stderr
        assert "wf.yaml:7:13: step 'a': 'prompt': '_" in report
        assert "is not allowed (names starting with '_' are private)" in report
    assert "run " not in done.stderr, "refused before a run was started"


@pytest.mark.parametrize("place", sorted(PLACES))
def test_escapes_are_refused_in_every_templated_field(tmp_path: Path, place: str) -> None:
    (tmp_path / "wf.yaml").write_text(HEAD + PLACES[place].format(expr="cycler.__init__"))
    done = orchestrate(tmp_path, "validate", "wf.yaml")
    assert done.code == 2, done.stdout
    _no_traceback(done.stderr)
    assert "'__init__' is not allowed" in done.stdout


def test_escapes_hidden_from_the_static_check_are_refused_when_rendered(tmp_path: Path) -> None:
    workflow = HEAD + (
        "steps:\n"
        "  - id: by_filter\n"
        "    prompt: \"{{ cycler|attr('__init__')|attr('__globals__') }}\"\n"
        "  - id: by_format\n"
        "    prompt: \"{{ '{0.__class__.__mro__}'.format(inputs.q) }}\"\n"
        "  - id: by_run\n"
        "    run: \"echo {{ ''|attr('__class__') }}\"\n"
    )
    (tmp_path / "wf.yaml").write_text(workflow)
    done = orchestrate(tmp_path, "run", "wf.yaml", "--simulate", "--db", "s.db", "--json")
    assert done.code in (1, 2), done.stderr
    _no_traceback(done.stderr)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "failed"
    for step in ("by_filter", "by_format", "by_run"):
        assert f"step '{step}'" in result["error"]
    # the chained filter ends on an undefined value; either way the step fails, nothing leaks
    assert (
        result["error"].count("refused by the sandbox") + result["error"].count("undefined value")
        >= 3
    )
    assert "<class" not in done.stdout and "<module" not in done.stdout


ENV_WORKFLOW = """\
version: 1
name: envtest
env: [ORCH_LISTED]
steps:
  - id: a
    prompt: "listed={{ env.ORCH_LISTED }} all={{ env }}"
outputs:
  listed: "{{ env.ORCH_LISTED }}"
  everything: "{{ env }}"
"""


def test_env_exposes_only_the_listed_variables(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(ENV_WORKFLOW)
    env = child_env(ORCH_LISTED="listed-value", ORCH_UNLISTED_SECRET="unlisted-secret-value")
    done = orchestrate(tmp_path, "run", "wf.yaml", "--simulate", "--db", "s.db", "--json", env=env)
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["outputs"]["listed"] == "listed-value"
    assert result["outputs"]["everything"] == {"ORCH_LISTED": "listed-value"}
    assert "unlisted-secret-value" not in done.stdout
    assert b"unlisted-secret-value" not in (tmp_path / "s.db").read_bytes()
    assert b"listed=listed-value" in (tmp_path / "s.db").read_bytes()


@pytest.mark.parametrize(
    ("expr", "named"),
    [
        ("env.HOME", "env.HOME"),
        ("env.ORCH_UNLISTED_SECRET", "env.ORCH_UNLISTED_SECRET"),
        ("env['ORCH_UNLISTED' ~ '_SECRET']", "ORCH_UNLISTED_SECRET"),  # only seen when rendered
    ],
)
def test_an_unlisted_env_variable_is_an_error_not_its_value(
    tmp_path: Path, expr: str, named: str
) -> None:
    workflow = ENV_WORKFLOW.replace(
        '    prompt: "listed={{ env.ORCH_LISTED }} all={{ env }}"',
        f'    prompt: "leak={{{{ {expr} }}}}"',
    )
    (tmp_path / "wf.yaml").write_text(workflow)
    env = child_env(ORCH_LISTED="listed-value", ORCH_UNLISTED_SECRET="unlisted-secret-value")
    done = orchestrate(tmp_path, "run", "wf.yaml", "--simulate", "--db", "s.db", env=env)
    assert done.code in (1, 2), done.stderr
    _no_traceback(done.stderr)
    assert named in done.stderr
    assert "unlisted-secret-value" not in done.stdout + done.stderr
    assert f"leak={Path.home()}" not in done.stdout + done.stderr
    db = tmp_path / "s.db"
    assert not db.exists() or b"unlisted-secret-value" not in db.read_bytes()
