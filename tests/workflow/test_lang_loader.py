"""Issue 13's additions to the language, as `validate` sees them: each syntax loads into the
model the engine reads, and each misuse is an error at its line and column that says the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator.errors import Diagnostic
from orchestrator.workflow import Template, Workflow, language_schema, load_workflow, validate_paths

Load = Callable[[str], Workflow]
Errors = Callable[[str], list[Diagnostic]]


def _one(diags: list[Diagnostic], fragment: str) -> Diagnostic:
    found = [d for d in diags if fragment in d.message]
    assert found, "\n".join(str(d) for d in diags)
    return found[0]


# --- 1. loops remember --------------------------------------------------------------------


def test_loop_history_exhaustion_and_an_expression_cap_load(load: Load) -> None:
    wf = load(
        """
        version: 1
        inputs:
          rounds: {type: integer, default: 3}
        steps:
          - id: fix
            loop:
              max_iterations: "{{ inputs.rounds }}"
              on_exhausted: fail
              until: "{{ loop.history | length >= 2 }}"
              steps:
                - id: draft
                  prompt: "seen {{ loop.history | length }}: {{ loop.history | tojson }}"
          - id: report
            prompt: "{{ steps.fix.iterations | length }} {{ steps.fix.exhausted }}"
        """
    )
    loop = wf.step("fix").loop
    assert loop is not None and loop.on_exhausted == "fail" and not loop.parallel
    assert isinstance(loop.max_iterations, Template)
    assert loop.max_iterations.render({"inputs": {"rounds": 3}}) == 3
    assert wf.step("report").deps == {"fix"}


@pytest.mark.parametrize(
    ("written", "line", "fragment"),
    [
        ("{{ loop.histroy }}", 6, "unknown 'loop.histroy' (did you mean 'history'?)"),
        (
            "{{ loop.previous.draftt }}",
            6,
            "loop 'fix' has no step 'draftt' (did you mean 'draft'?)",
        ),
    ],
)
def test_unknown_loop_attributes_fail_validate(
    errors: Errors, written: str, line: int, fragment: str
) -> None:
    diags = errors(
        f"""
        version: 1
        steps:
          - id: fix
            loop:
              max_iterations: 2
              until: "{written}"
              steps:
                - id: draft
                  prompt: hi
        """
    )
    found = _one(diags, fragment)
    assert (found.line, found.col) == (line, 14)


def test_jinja_for_loop_variables_are_not_mistaken_for_the_loop(load: Load) -> None:
    wf = load(
        """
        version: 1
        steps:
          - id: fix
            loop:
              max_iterations: 2
              steps:
                - id: draft
                  prompt: "{% for x in [1, 2] %}{{ loop.index0 }}{{ loop.first }}{% endfor %}"
        """
    )
    assert wf.step("fix.draft").prompt is not None


def test_unknown_step_view_attributes_fail_validate(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: plan
            prompt: hi
          - id: fix
            loop:
              max_iterations: 2
              steps:
                - id: draft
                  prompt: hi
          - id: report
            prompt: "{{ steps.fix.iteratons }} {{ steps.plan.iterations }} {{ steps.fix.draft }}"
        """
    )
    typo = _one(diags, "'steps.fix.iteratons': a step has no 'iteratons'")
    assert "(did you mean 'iterations'?)" in typo.message and (typo.line, typo.col) == (12, 13)
    _one(diags, "'steps.plan.iterations': only a loop step has 'iterations'")
    _one(diags, "(a body step's output is steps.fix.output.draft)")


@pytest.mark.parametrize(
    ("cap", "fragment"),
    [
        ('"many"', "'max_iterations' must be a number or one '{{ expression }}'"),
        ("0", "'max_iterations' must be positive"),
        ('"{{ inputs.nope }}"', "unknown input 'inputs.nope'"),
    ],
)
def test_bad_loop_caps_fail_validate(errors: Errors, cap: str, fragment: str) -> None:
    diags = errors(
        f"""
        version: 1
        steps:
          - id: fix
            loop:
              max_iterations: {cap}
              steps:
                - id: draft
                  prompt: hi
        """
    )
    assert _one(diags, fragment).line == 5


# --- 2. loop bodies run in the order written ----------------------------------------------


def test_loop_body_steps_wait_for_the_one_before(load: Load) -> None:
    wf = load(
        """
        version: 1
        steps:
          - id: fix
            loop:
              max_iterations: 2
              steps:
                - id: code
                  prompt: hi
                - id: test
                  run: echo ok
                - id: note
                  prompt: "{{ steps.code.output }}"
          - id: free
            loop:
              max_iterations: 2
              parallel: true
              steps:
                - id: a
                  prompt: hi
                - id: b
                  prompt: hi
        """
    )
    assert wf.step("fix.test").deps == {"code"} and wf.step("fix.test").after == {"code"}
    # `note` reads `code` (a data dependency) and follows `test` (order only)
    assert wf.step("fix.note").deps == {"code", "test"}
    assert wf.step("fix.note").after == {"test"}
    assert wf.step("free.b").deps == frozenset()


def test_a_body_step_that_reads_a_later_one_says_how_to_fix_it(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: fix
            loop:
              max_iterations: 2
              steps:
                - id: code
                  prompt: "{{ steps.test.output }}"
                - id: test
                  run: echo ok
        """
    )
    found = _one(diags, "step 'code' reads or needs 'test', which comes after it in loop 'fix'")
    assert "loop.previous.test" in found.message and "parallel: true" in found.message
    assert (found.line, found.col) == (7, 11)


WRITERS = """
version: 1
agents:
  coder: {{tools: [Read, Edit]}}
steps:
  - id: code
    agent: coder
    prompt: fix it
  - id: test
    run: make test
{extra}
"""


def test_a_run_step_and_a_writing_agent_with_no_order_warn(write: Callable[..., Path]) -> None:
    path = write(WRITERS.format(extra=""))
    warnings = load_workflow(path).warnings
    found = _one(warnings, "step 'code' (granted Edit) and step 'test' (a 'run:' command)")
    assert found.severity == "warning" and found.line == 8
    assert "add 'needs: [code]' to 'test'" in found.message
    assert validate_paths([path]) == warnings


def test_ordered_run_and_writer_do_not_warn(write: Callable[..., Path]) -> None:
    wf = load_workflow(write(WRITERS.format(extra="    needs: [code]")))
    assert wf.warnings == []
    text = WRITERS.replace("[Read, Edit]", "[Read, Grep]").format(extra="")
    assert load_workflow(write(text, "readonly.yaml")).warnings == []


# --- 3. data steps ------------------------------------------------------------------------


def test_a_set_step_loads_and_feeds_others(load: Load) -> None:
    wf = load(
        """
        version: 1
        steps:
          - id: pairs
            set: "{{ ['a', 'b'] | zip([1, 2]) }}"
          - id: use
            for_each: "{{ steps.pairs.output }}"
            prompt: "{{ item[0] }}"
        """
    )
    pairs = wf.step("pairs")
    assert pairs.kind == "set" and pairs.set_ is not None
    assert pairs.set_.render({}) == [["a", 1], ["b", 2]]
    assert wf.step("use").deps == {"pairs"}


def test_a_set_step_refuses_agent_keys(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: x
            set: 1
            model: haiku
        """
    )
    assert _one(diags, "step 'x': 'model' does not apply to a set step").line == 5


# --- 4. per-item control in a fan-out -----------------------------------------------------


def test_where_index_as_and_per_item_settings_load(load: Load) -> None:
    wf = load(
        """
        version: 1
        steps:
          - id: fan
            for_each: [{m: haiku, n: 100}, {m: sonnet, n: 200}]
            as: job
            index_as: i
            where: "{{ job.n > 50 }}"
            model: "{{ job.m }}"
            max_tokens: "{{ job.n }}"
            system: "You are number {{ i }}."
            tools: "{{ ['Read'] if i == 0 else [] }}"
            prompt: "{{ i }}: {{ job }}"
        """
    )
    fan = wf.step("fan")
    assert fan.index_as == "i" and fan.where is not None
    assert fan.model is None and fan.max_tokens is None and fan.system is None
    assert set(fan.dynamic) == {"model", "max_tokens", "system", "tools"}
    assert fan.dynamic["model"].render({"job": {"m": "haiku"}}) == "haiku"


def test_when_on_a_fan_out_says_it_is_evaluated_once(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: fan
            for_each: [1, 2]
            when: "{{ item > 1 }}"
            prompt: "{{ item }}"
        """
    )
    found = _one(diags, "unknown name 'item' in template: 'when' is evaluated once")
    assert "where:" in found.message and (found.line, found.col) == (5, 11)


def test_where_cannot_read_the_index_it_decides(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: fan
            for_each: [1, 2]
            index_as: i
            where: "{{ i > 0 }}"
            prompt: "{{ item }}"
        """
    )
    found = _one(diags, "unknown name 'i' in template: 'i' counts the items 'where' keeps")
    assert found.line == 6


def test_index_as_must_be_a_new_name(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: fan
            for_each: [1, 2]
            index_as: item
            prompt: "{{ item }}"
        """
    )
    assert _one(diags, "'index_as: item' is the item's name already").line == 5


def test_item_names_exist_only_in_the_fan_out(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: one
            model: "{{ item.model }}"
            prompt: hi
        """
    )
    assert _one(diags, "unknown name 'item'").line == 4


# --- 9. validation that matches run time --------------------------------------------------


def test_set_inside_if_validates(load: Load) -> None:
    wf = load(
        """
        version: 1
        steps:
          - id: a
            prompt: "{% if true %}{% set x = 1 %}{{ x }}{% endif %}"
        """
    )
    assert wf.step("a").prompt is not None
    assert wf.step("a").prompt.render_str({}) == "1"


@pytest.mark.parametrize("name", ["items", "keys", "values", "get"])
def test_step_ids_named_like_mapping_methods_read_as_steps(load: Load, name: str) -> None:
    wf = load(
        f"""
        version: 1
        steps:
          - id: {name}
            prompt: hi
          - id: b
            prompt: "{{{{ steps.{name}.output }}}}"
        """
    )
    prompt = wf.step("b").prompt
    assert prompt is not None and wf.step("b").deps == {name}
    assert prompt.render_str({"steps": {name: {"output": "data"}}}) == "data"


# --- 5. groups and nested fan-out ---------------------------------------------------------


def test_a_group_loads_its_body_and_takes_outer_dependencies(load: Load) -> None:
    wf = load(
        """
        version: 1
        steps:
          - id: plan
            prompt: hi
          - id: g
            when: "{{ inputs | length == 0 }}"
            group:
              steps:
                - id: a
                  prompt: "{{ steps.plan.output }}"
                - id: b
                  prompt: "{{ steps.a.output }}"
          - id: after
            prompt: "{{ steps.g.output.b }}"
        """
    )
    group = wf.step("g")
    assert group.kind == "group" and [s.id for s in group.body] == ["a", "b"]
    assert group.deps == {"plan"} and wf.step("g.b").deps == {"a"}
    assert wf.step("after").deps == {"g"}
    assert [p for p, _ in wf.iter_steps()] == ["plan", "g", "g.a", "g.b", "after"]


@pytest.mark.parametrize("kind", ["group", "loop", "workflow"])
def test_for_each_applies_to_compound_steps(write: Callable[..., Path], kind: str) -> None:
    write("version: 1\ninputs:\n  topic: string\nsteps:\n  - id: t\n    prompt: hi\n", "sub.yaml")
    body = {
        "group": "group:\n      steps:\n        - id: a\n          prompt: '{{ topic }} {{ n }}'",
        "loop": (
            "loop:\n      max_iterations: 2\n      until: '{{ topic == n }}'\n"
            "      steps:\n        - id: a\n          prompt: '{{ topic }} {{ n }}'"
        ),
        "workflow": "workflow: sub.yaml\n    inputs:\n      topic: '{{ topic }} {{ n }}'",
    }[kind]
    text = (
        "version: 1\nsteps:\n  - id: each\n    for_each: [x, y]\n    as: topic\n"
        f"    index_as: n\n    concurrency: 2\n    {body}\n"
    )
    wf = load_workflow(write(text))
    step = wf.step("each")
    assert step.kind == kind and step.is_fan_out and step.as_ == "topic"


def test_a_group_body_step_id_is_not_visible_outside(errors: Errors) -> None:
    diags = errors(
        """
        version: 1
        steps:
          - id: g
            group:
              steps:
                - id: a
                  prompt: hi
          - id: b
            prompt: "{{ steps.a.output }}"
        """
    )
    _one(diags, "unknown step 'a'")


# --- 6. output schemas may use templates ---------------------------------------------------


def test_an_output_schema_with_templates_loads_and_checks_the_rest(
    load: Load, errors: Errors
) -> None:
    wf = load(
        """
        version: 1
        inputs:
          labels: {type: array, default: [bug, feature]}
        steps:
          - id: classify
            prompt: hi
            output:
              type: object
              required: [label]
              properties:
                label: {enum: "{{ inputs.labels }}"}
        """
    )
    step = wf.step("classify")
    assert isinstance(step.output, dict)
    rendered = step.dynamic["output"].render({"inputs": {"labels": ["bug", "feature"]}})
    assert rendered["properties"]["label"] == {"enum": ["bug", "feature"]}
    diags = errors(
        """
        version: 1
        steps:
          - id: classify
            prompt: hi
            output:
              type: objekt
              properties:
                label: {enum: "{{ inputs.nope }}"}
        """
    )
    _one(diags, "unknown input 'inputs.nope'")
    _one(diags, "'objekt' is not a JSON Schema type")


# --- 7. permission rules in tools -----------------------------------------------------------


def test_permission_rules_and_call_caps_load(load: Load) -> None:
    wf = load(
        """
        version: 1
        steps:
          - id: a
            prompt: hi
            tools:
              - Bash(git diff:*)
              - Bash(npm test)
              - Read(src/**)
              - Edit(docs/**)
              - {Bash: {allow: ["git status"], max_calls: 2}}
        """
    )
    assert wf.step("a").tools == [
        "Bash(git diff:*)",
        "Bash(npm test)",
        "Read(src/**)",
        "Edit(docs/**)",
        {"Bash": {"allow": ["git status"], "max_calls": 2}},
    ]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("WebFetch(domain:example.com)", "WebFetch runs inside the API"),
        ("Bsh(ls)", "unknown tool 'Bsh' (did you mean 'Bash'?)"),
        ("Bash(git:* diff)", "':*' may only end a Bash rule"),
        ("{Bash: {max_call: 2}}", "unknown key 'max_call' (did you mean 'max_calls'?)"),
        ("{Bash: {max_calls: 0}}", "'max_calls' must be a positive integer"),
        ("{Bash: {allow: ['Read(x)']}}", "rule 'Read(x)' is for Read, not Bash"),
    ],
)
def test_bad_rules_fail_validate(errors: Errors, entry: str, fragment: str) -> None:
    diags = errors(
        f"""
        version: 1
        steps:
          - id: a
            prompt: hi
            tools: [Read, {entry}]
        """
    )
    assert _one(diags, fragment).line == 5


# --- 8. agent files as Claude Code reads them ---------------------------------------------


def test_agents_by_any_front_matter_name_inherit_default_tools(
    write: Callable[..., Path],
) -> None:
    write(
        "---\nname: Python DevOps/CI-CD Expert\ndescription: ci\n-----\nYou fix CI.\n",
        "agents/devops.md",
    )
    write("---\nname: quiet\ntools: []\n---\nNo tools.\n", "agents/quiet.md")
    write("---\nname: narrow\ntools: Read, Bash(git diff:*)\n---\nN\n", "agents/narrow.md")
    wf = load_workflow(
        write(
            """
            version: 1
            steps:
              - id: a
                agent: Python DevOps/CI-CD Expert
                prompt: hi
              - id: b
                agent: quiet
                prompt: hi
              - id: c
                agent: narrow
                prompt: hi
            """
        )
    )
    devops = wf.resolve_agent("Python DevOps/CI-CD Expert")
    assert devops.system == "You fix CI." and devops.inherited_tools
    assert devops.tools is not None and "Write" in devops.tools and "Bash" not in devops.tools
    quiet = wf.resolve_agent("quiet")
    assert quiet.tools == [] and not quiet.inherited_tools
    assert wf.resolve_agent("narrow").tools == ["Read", "Bash(git diff:*)"]


def test_two_agent_files_with_one_name_warn_naming_both(write: Callable[..., Path]) -> None:
    write("---\nname: Reviewer Pro\n---\nA\n", "agents/one.md")
    write("---\nname: Reviewer Pro\n---\nB\n", "agents/two.md")
    wf = load_workflow(
        write("version: 1\nsteps:\n  - id: a\n    agent: Reviewer Pro\n    prompt: hi\n")
    )
    found = _one(wf.warnings, "agent name 'Reviewer Pro' is given by")
    assert "one.md" in found.message and "two.md" in found.message
    assert wf.resolve_agent("Reviewer Pro").system == "A"


def test_a_templated_agent_makes_every_agent_available(write: Callable[..., Path]) -> None:
    write("---\nname: alpha\n---\nA\n", "agents/alpha.md")
    write("---\nname: Beta Two\n---\nB\n", "agents/beta.md")
    wf = load_workflow(
        write(
            "version: 1\nsteps:\n  - id: a\n    for_each: [alpha, Beta Two]\n"
            '    agent: "{{ item }}"\n    prompt: hi\n'
        )
    )
    assert wf.resolve_agent("alpha").system == "A"
    assert wf.resolve_agent("Beta Two").system == "B"


# --- the JSON Schema `orchestrate schema` prints ---------------------------------------------


def test_the_schema_describes_the_new_syntax() -> None:
    validator = jsonschema.Draft202012Validator(language_schema())
    doc = yaml.safe_load(
        """
        version: 1
        steps:
          - id: data
            set: "{{ [1, 2] | enumerate }}"
          - id: fan
            for_each: "{{ steps.data.output }}"
            where: "{{ item[1] > 1 }}"
            index_as: i
            model: "{{ 'haiku' }}"
            max_tokens: "{{ 100 * item[1] }}"
            tools: ["Bash(git diff:*)", {Bash: {allow: ["npm test"], max_calls: 2}}]
            prompt: hi
          - id: g
            for_each: [a]
            group: {steps: [{id: x, prompt: hi}]}
          - id: l
            loop:
              max_iterations: "{{ 3 }}"
              on_exhausted: fail
              parallel: true
              steps: [{id: y, prompt: hi}]
        """
    )
    assert list(validator.iter_errors(doc)) == []
    bad = {**doc, "steps": [{"id": "l", "loop": {"max_iterations": 0, "steps": doc["steps"]}}]}
    assert not validator.is_valid(bad)
    group = language_schema()["$defs"]["step"]["properties"]["group"]
    assert group["required"] == ["steps"]
    model = language_schema()["$defs"]["step"]["properties"]["model"]
    assert "rendered per task" in model["description"]
