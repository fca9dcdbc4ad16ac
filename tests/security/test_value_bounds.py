"""Issue 14 item 13: every rendered value and every stored output is bounded.

Each hostile template of the red-team pass would build gigabytes; each must fail its own step at
once with a message naming the step and `engine.max_value_bytes`, the run ends `failed` (never
left `running`), and no traceback is printed.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.store import Store

from .conftest import child_env, orchestrate

HOSTILE = {
    "ljust": "{{ 'x'.ljust(1000000000) }}",
    "percent": "{{ '%1000000000d' % 1 }}",
    "center": "{{ 'x' | center(1000000000) }}",
    "lipsum": "{{ lipsum(n=100000000) }}",
    "format": "{{ '{:>1000000000}'.format(1) }}",
    "doubling": (
        "{% set ns = namespace(x='ab') %}{% for i in range(60) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x | length }}"
    ),
    "looped": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
}


def _steps() -> str:
    lines = ["version: 1", "name: hostile", "steps:"]
    for name, template in HOSTILE.items():
        quoted = template.replace('"', '\\"')
        lines += [f"  - id: {name}", f'    prompt: "{quoted}"']
    return "\n".join(lines) + "\n"


def _failed_tasks(db: Path) -> dict[str, str]:
    store = Store.open(str(db), readonly=True)
    try:
        [run] = store.list_runs()
        assert run.status == "failed", run.status
        return {t.step_id: t.error or "" for t in store.list_tasks(run.id) if t.status == "failed"}
    finally:
        store.close()


def _step_errors(db: Path) -> dict[str, str]:
    store = Store.open(str(db), readonly=True)
    try:
        [run] = store.list_runs()
        assert run.status == "failed", run.status
        return {s.step_id: s.error or "" for s in store.step_records(run.id)}
    finally:
        store.close()


def test_hostile_templates_fail_their_step_not_the_process(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(_steps())
    done = orchestrate(tmp_path, "run", "wf.yaml", "--simulate", "--db", "s.db")
    assert done.code == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = _step_errors(tmp_path / "s.db")
    for name in HOSTILE:
        assert "engine.max_value_bytes=10000000" in errors[name], (name, errors[name])


def test_a_command_printing_past_the_limit_fails_its_step(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: loud\nsteps:\n"
        "  - id: loud\n    run: head -c 3000000 /dev/zero | tr '\\\\0' x\n"
        "  - id: quiet\n    run: echo fine\n"
    )
    env = child_env(ORCHESTRATE_ENGINE__MAX_VALUE_BYTES="1000000")
    done = orchestrate(tmp_path, "run", "wf.yaml", "--db", "s.db", env=env)
    assert done.code == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = _failed_tasks(tmp_path / "s.db")
    assert "over 1000000 bytes on stdout" in errors["loud"]
    assert "engine.max_value_bytes" in errors["loud"]
    assert "quiet" not in errors
