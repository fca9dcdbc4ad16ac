"""Malformed workflows: each problem is reported with its message AND where it was written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import Diagnostic, SpecError, UsageError
from orchestrator.tools import build_toolset
from orchestrator.workflow import load_workflow

# (case id, workflow text, line, column or None, expected message fragment)
CASES: list[tuple[str, str, int, int | None, str]] = [
    (
        "unsupported-version",
        """
        version: 2
        steps:
          - id: a
            prompt: hi
        """,
        1,
        10,
        "unsupported version 2 (this orchestrate reads version 1)",
    ),
    (
        "missing-version",
        """
        name: x
        steps:
          - id: a
            prompt: hi
        """,
        1,
        1,
        "missing 'version: 1'",
    ),
    (
        "misspelled-top-key",
        """
        version: 1
        name: x
        stepz:
          - id: a
            prompt: hi
        """,
        3,
        1,
        "unknown key 'stepz' (did you mean 'steps'?)",
    ),
    (
        "two-kinds",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
            run: echo hi
        """,
        5,
        5,
        "step 'a' has both 'prompt' and 'run'; a step is one kind",
    ),
    (
        "no-kind",
        """
        version: 1
        steps:
          - id: a
            agent: writer
        """,
        3,
        5,
        "step 'a' has no kind: give it one of 'prompt', 'merge', 'run', 'loop', 'workflow', "
        "'set', 'group' or 'ask' (an agent step needs a 'prompt')",
    ),
    (
        "bad-step-id",
        """
        version: 1
        steps:
          - id: Plan-1
            prompt: hi
        """,
        3,
        9,
        "step id 'Plan-1' must match [a-z_][a-z0-9_]*",
    ),
    (
        "duplicate-step-id",
        """
        version: 1
        steps:
          - id: a
            prompt: one
          - id: a
            prompt: two
        """,
        5,
        9,
        "duplicate step id 'a' (first used at line 3)",
    ),
    (
        "misspelled-step-key",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
            modle: haiku
        """,
        5,
        5,
        "step 'a': unknown key 'modle' (did you mean 'model'?)",
    ),
    (
        "bad-duration",
        """
        version: 1
        defaults:
          timeout: 5 minutes
        steps:
          - id: a
            prompt: hi
        """,
        3,
        12,
        "defaults.timeout: not a duration: '5 minutes' (use e.g. 30s, 5m, 1h)",
    ),
    (
        "zero-limit",
        """
        version: 1
        limits:
          concurrency: 0
        steps:
          - id: a
            prompt: hi
        """,
        3,
        16,
        "limits.concurrency must be positive, got 0",
    ),
    (
        "negative-cost",
        """
        version: 1
        limits:
          max_cost_usd: -1
        steps:
          - id: a
            prompt: hi
        """,
        3,
        17,
        "limits.max_cost_usd must be positive",
    ),
    (
        "for-each-not-an-expression",
        """
        version: 1
        steps:
          - id: a
            for_each: "one, two"
            prompt: "{{ item }}"
        """,
        4,
        15,
        "'for_each' must be a list or one '{{ expression }}' that gives a list",
    ),
    (
        "for-each-number",
        """
        version: 1
        steps:
          - id: a
            for_each: 3
            prompt: "{{ item }}"
        """,
        4,
        15,
        "'for_each' must be a list or a '{{ expression }}'",
    ),
    (
        "loop-zero-iterations",
        """
        version: 1
        steps:
          - id: l
            loop:
              max_iterations: 0
              steps:
                - id: a
                  prompt: hi
        """,
        5,
        23,
        "step 'l': 'max_iterations' must be positive, got 0",
    ),
    (
        "loop-unbounded",
        """
        version: 1
        steps:
          - id: l
            loop:
              steps:
                - id: a
                  prompt: hi
        """,
        5,
        7,
        "'loop' needs 'max_iterations'",
    ),
    (
        "merge-from-unknown",
        """
        version: 1
        steps:
          - id: research
            for_each: [a, b]
            prompt: "{{ item }}"
          - id: joined
            merge: concat
            from: reserch
        """,
        8,
        11,
        "step 'joined': 'from' names unknown step 'reserch' (did you mean 'research'?)",
    ),
    (
        "merge-kind-misspelled",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
          - id: b
            merge: concatenate
            from: a
        """,
        6,
        12,
        "'merge' must be one of concat, flatten, object, unique, vote, branches, got 'concatenate' "
        "(did you mean 'concat'?)",
    ),
    (
        "schema-bad-type",
        """
        version: 1
        steps:
          - id: a
            prompt: count
            output:
              type: object
              properties:
                n: {type: integr}
        """,
        8,
        19,
        "invalid output schema at 'properties.n.type': 'integr' is not a JSON Schema type",
    ),
    (
        "schema-bad-type-did-you-mean",
        """
        version: 1
        steps:
          - id: a
            prompt: count
            output: {type: integr}
        """,
        5,
        20,
        "(did you mean 'integer'?)",
    ),
    (
        "unknown-tool",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
            tools: [Read, Grpe]
        """,
        5,
        19,
        "step 'a': unknown tool 'Grpe' (did you mean 'Grep'?)",
    ),
    (
        "bad-python-tool",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
            tools: [{python: "not a target"}]
        """,
        5,
        22,
        "a python tool is {python: 'package.module:function'}",
    ),
    (
        "template-syntax-in-block",
        """
        version: 1
        steps:
          - id: a
            prompt: |
              line one
              line two {% endfor %}
              line three
        """,
        6,
        7,
        "step 'a': 'prompt': template syntax error: Encountered unknown tag 'endfor'",
    ),
    (
        "template-syntax-inline",
        """
        version: 1
        steps:
          - id: a
            prompt: "hello {% if %}"
        """,
        4,
        13,
        "template syntax error",
    ),
    (
        "unknown-step-reference",
        """
        version: 1
        steps:
          - id: plan
            prompt: hi
          - id: b
            prompt: "{{ steps.plna.output }}"
        """,
        6,
        13,
        "unknown step 'plna' (did you mean 'plan'?)",
    ),
    (
        "dependency-cycle",
        """
        version: 1
        steps:
          - id: a
            prompt: "{{ steps.b.output }}"
          - id: b
            prompt: "{{ steps.a.output }}"
        """,
        3,
        5,
        "dependency cycle: a -> b -> a",
    ),
    (
        "needs-unknown-step",
        """
        version: 1
        steps:
          - id: first
            prompt: hi
          - id: second
            needs: [frist]
            prompt: hi
        """,
        6,
        13,
        "step 'second': needs unknown step 'frist' (did you mean 'first'?)",
    ),
    (
        "duplicate-yaml-key",
        """
        version: 1
        steps:
          - id: a
            prompt: one
            prompt: two
        """,
        5,
        5,
        "duplicate key 'prompt' (first defined at line 4)",
    ),
    (
        "unknown-input",
        """
        version: 1
        inputs:
          question: {type: string}
        steps:
          - id: a
            prompt: "{{ inputs.questoin }}"
        """,
        6,
        13,
        "unknown input 'inputs.questoin' (did you mean 'question'?)",
    ),
    (
        "input-default-wrong-type",
        """
        version: 1
        inputs:
          parts: {type: integer, default: many}
        steps:
          - id: a
            prompt: hi
        """,
        3,
        35,
        "input 'parts': default 'many' is not an integer",
    ),
    (
        "input-type-misspelled",
        """
        version: 1
        inputs:
          parts: {type: int}
        steps:
          - id: a
            prompt: hi
        """,
        3,
        17,
        "input 'parts' type must be one of",
    ),
    (
        "not-a-mapping",
        """
        - id: a
          prompt: hi
        """,
        1,
        1,
        "a workflow must be a mapping with 'version', 'name' and 'steps'; got a list",
    ),
    (
        "unquoted-colon",
        """
        version: 1
        steps:
          - id: a
            prompt: Split into parts: {{ inputs.q }}
        """,
        4,
        29,
        "invalid YAML: mapping values are not allowed here (quote a value that contains ': '",
    ),
    (
        "unquoted-template",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
        outputs:
          x: {{ steps.a.output }}
        """,
        6,
        7,
        "a mapping key must be a string (quote a value that starts with '{{'",
    ),
    (
        "item-without-for-each",
        """
        version: 1
        steps:
          - id: a
            prompt: "{{ item }}"
        """,
        4,
        13,
        "unknown name 'item' in template",
    ),
    (
        "as-without-for-each",
        """
        version: 1
        steps:
          - id: a
            as: topic
            prompt: hi
        """,
        4,
        5,
        "step 'a': 'as' only applies with 'for_each'",
    ),
    (
        "key-of-another-kind",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
          - id: b
            merge: concat
            from: a
            tools: [Read]
        """,
        8,
        5,
        "step 'b': 'tools' does not apply to a merge step",
    ),
    (
        "env-not-listed",
        """
        version: 1
        env: [HOME]
        steps:
          - id: a
            prompt: "{{ env.API_TOKEN }}"
        """,
        5,
        13,
        "'env.API_TOKEN' is not listed under 'env:'",
    ),
    (
        "private-attribute",
        """
        version: 1
        steps:
          - id: a
            prompt: "{{ ''.__class__.__mro__ }}"
        """,
        4,
        13,
        "'__class__' is not allowed",
    ),
    (
        "loop-outside-body",
        """
        version: 1
        steps:
          - id: a
            prompt: "{{ loop.previous }}"
        """,
        4,
        13,
        "'loop' is only defined inside a loop body",
    ),
    (
        "output-misspelled",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
            output: jsn
        """,
        5,
        13,
        "'output' must be 'text', 'json' or a JSON Schema mapping, got 'jsn' "
        "(did you mean 'json'?)",
    ),
    (
        "several-documents",
        """
        version: 1
        steps: []
        ---
        version: 1
        """,
        3,
        1,
        "expected a single YAML document",
    ),
    (
        "empty-steps",
        """
        version: 1
        steps: []
        """,
        2,
        8,
        "'steps' is empty",
    ),
    (
        "step-not-mapping",
        """
        version: 1
        steps:
          - just a string
        """,
        3,
        5,
        "a step must be a mapping that starts with 'id:'",
    ),
    (
        "unknown-agent-inline-did-you-mean",
        """
        version: 1
        agents:
          researcher: {description: digs}
        steps:
          - id: a
            agent: reseacher
            prompt: hi
        """,
        6,
        12,
        "step 'a': unknown agent 'reseacher' (did you mean 'researcher'?)",
    ),
    (
        "inline-agent-unknown-key",
        """
        version: 1
        agents:
          helper: {descripion: digs}
        steps:
          - id: a
            agent: helper
            prompt: hi
        """,
        3,
        12,
        "unknown agent key 'descripion' (did you mean 'description'?)",
    ),
    (
        "self-reference",
        """
        version: 1
        steps:
          - id: a
            prompt: "{{ steps.a.output }}"
        """,
        3,
        5,
        "dependency cycle: a -> a",
    ),
    (
        "loop-body-reads-its-loop",
        """
        version: 1
        steps:
          - id: l
            loop:
              max_iterations: 2
              steps:
                - id: a
                  prompt: "{{ steps.l.output }}"
        """,
        3,
        5,
        "dependency cycle: l -> l",
    ),
    (
        "run-output-schema",
        """
        version: 1
        steps:
          - id: a
            run: echo hi
            output: {type: object}
        """,
        5,
        13,
        "'output' must be 'text' or 'json'",
    ),
    (
        "unknown-filter",
        """
        version: 1
        inputs:
          q: {default: x}
        steps:
          - id: a
            prompt: "{{ inputs.q | uper }}"
        """,
        6,
        13,
        "step 'a': 'prompt': unknown filter 'uper' (did you mean 'upper'?)",
    ),
    (
        "unknown-filter-in-block",
        """
        version: 1
        steps:
          - id: a
            run: |
              echo start
              echo {{ steps.b.output | shqoute }}
          - id: b
            prompt: hi
        """,
        6,
        7,
        "step 'a': 'run': unknown filter 'shqoute' (did you mean 'shquote'?)",
    ),
    (
        "unknown-test",
        """
        version: 1
        steps:
          - id: a
            prompt: hi
            when: "{{ 3 is evn }}"
        """,
        5,
        11,
        "step 'a': 'when': unknown test 'evn' (did you mean 'even'?)",
    ),
]


def _find(diagnostics: list[Diagnostic], fragment: str) -> Diagnostic:
    for d in diagnostics:
        if fragment in d.message:
            return d
    shown = "\n".join(str(d) for d in diagnostics)
    raise AssertionError(f"no diagnostic contains {fragment!r}; got:\n{shown}")


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_workflow_reports_message_and_position(
    errors: Callable[[str], list[Diagnostic]], text: str, line: int, col: int | None, fragment: str
) -> None:
    found = _find(errors(text), fragment)
    assert found.line == line, str(found)
    if col is not None:
        assert found.col == col, str(found)
    assert found.severity == "error"


def test_at_least_twenty_malformed_cases() -> None:
    assert len(CASES) >= 20


def test_diagnostics_print_as_file_line_col(errors: Callable[[str], list[Diagnostic]]) -> None:
    found = errors("version: 1\nsteps:\n  - id: a\n    prompt: hi\n    tols: [Read]\n")
    assert str(found[0]).endswith(
        "wf.yaml:5:5: step 'a': unknown key 'tols' (did you mean 'tools'?)"
    )


def test_every_error_is_reported_not_just_the_first(
    errors: Callable[[str], list[Diagnostic]],
) -> None:
    found = errors(
        """
        version: 1
        limits: {concurrency: -1}
        steps:
          - id: a
            prompt: "{{ steps.nope.output }}"
            tools: [Nope]
          - id: a
            prompt: hi
        """
    )
    lines = sorted(d.line for d in found)
    assert len(found) >= 4
    assert lines == sorted(lines) and lines[0] == 2


def test_unknown_agent_file_did_you_mean(write: Callable[..., Path]) -> None:
    write("---\nname: researcher\ndescription: digs\n---\nYou research.\n", "agents/researcher.md")
    path = write("version: 1\nsteps:\n  - id: a\n    agent: reseacher\n    prompt: hi\n")
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    found = _find(info.value.diagnostics, "unknown agent 'reseacher' (did you mean 'researcher'?)")
    assert (found.line, found.col) == (4, 12)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "the file is empty"),
        (b"# only a comment\n", "the file is empty"),
        (b"\x00\x01\x02binary", "not a text file"),
        (b"\xff\xfe\xfa bad utf8", "not a UTF-8 text file"),
        (b"just a string", "got a string"),
        (b"42", "got a number"),
        (b"version: 1\nsteps: [\n", "invalid YAML"),
        (b"a: !!python/name:os.system x\n", "invalid YAML"),
    ],
)
def test_files_that_are_not_workflows_give_a_clean_diagnostic(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    assert any(fragment in d.message for d in info.value.diagnostics), info.value.diagnostics


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read workflow file"):
        load_workflow(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="is a directory"):
        load_workflow(tmp_path)


def test_sub_workflow_problems(write: Callable[..., Path]) -> None:
    write(
        """
        version: 1
        inputs:
          topic: {type: string}
        steps:
          - id: s
            prompt: "{{ inputs.topic }}"
        outputs:
          text: "{{ steps.s.output }}"
        """,
        "sub.yaml",
    )
    path = write(
        """
        version: 1
        steps:
          - id: child
            workflow: sub.yaml
            inputs:
              topc: x
          - id: missing
            workflow: nowhere.yaml
        """
    )
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    found = info.value.diagnostics
    assert _find(found, "sub.yaml has no input 'topc' (did you mean 'topic'?)").line == 6
    assert _find(found, "sub.yaml needs input 'topic'").line == 4
    assert _find(found, "sub-workflow not found").line == 8


def test_a_nul_in_a_sub_workflow_path_is_a_message_not_a_traceback(
    write: Callable[..., Path],
) -> None:
    path = write('version: 1\nsteps:\n  - id: child\n    workflow: "a\\0b.yaml"\n')
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    assert _find(info.value.diagnostics, "cannot contain a NUL character").line == 4


def test_workflow_including_itself_is_refused(write: Callable[..., Path]) -> None:
    path = write("version: 1\nsteps:\n  - id: again\n    workflow: wf.yaml\n")
    with pytest.raises(SpecError, match="workflow includes itself"):
        load_workflow(path)


@pytest.mark.parametrize("name", ["Reed", "read", "state_gte", "TodoWrite"])
def test_loader_and_toolset_refuse_an_unknown_tool_in_the_same_words(
    write: Callable[..., Path], tmp_path: Path, name: str
) -> None:
    """`validate` and a run that reaches the toolset say the same thing about one tool name."""
    path = write(f"version: 1\nsteps:\n  - id: a\n    prompt: hi\n    tools: [{name}]\n")
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    [found] = info.value.diagnostics
    assert found.message.startswith(f"step 'a': unknown tool '{name}'")
    from_loader = found.message.removeprefix("step 'a': ")
    with pytest.raises(UsageError) as raised:
        # The name is refused before the toolset touches the shared state.
        build_toolset([name], workspace=tmp_path, state=object())  # type: ignore[arg-type]
    assert str(raised.value).startswith(f"{from_loader}; built-in tools are ")
