"""The expression sandbox: native values, strict undefined names, refused escapes."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from orchestrator.errors import OrchestrateError
from orchestrator.workflow import Template, TemplateError, compile_template, compile_value
from orchestrator.workflow.templates import unquoted_shell_values

CTX: dict[str, Any] = {
    "inputs": {"n": 3, "question": "why?"},
    "steps": {"plan": {"output": {"subtasks": ["a", "b"], "ok": True, "score": 0.5}}},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ steps.plan.output.subtasks }}", ["a", "b"]),
        ("{{ steps.plan.output }}", {"subtasks": ["a", "b"], "ok": True, "score": 0.5}),
        ("{{ inputs.n }}", 3),
        ("{{ steps.plan.output.ok }}", True),
        ("  {{ steps.plan.output.score }}\n", 0.5),
        ("{{ inputs.n > 2 }}", True),
        ("{{ range(inputs.n) | list }}", [0, 1, 2]),
        ("{{ none }}", None),
    ],
)
def test_a_single_expression_renders_its_native_value(source: str, expected: Any) -> None:
    value = compile_template(source).render(CTX)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("n={{ inputs.n }}", "n=3"),
        ("{{ inputs.n }} and {{ inputs.n }}", "3 and 3"),
        (
            "{% for s in steps.plan.output.subtasks %}[{{ loop.index }}:{{ s }}]{% endfor %}",
            "[1:a][2:b]",
        ),
        ("{{ steps.plan.output.subtasks | tojson }} x", '["a", "b"] x'),
        ("plain text", "plain text"),
    ],
)
def test_other_templates_render_strings(source: str, expected: str) -> None:
    assert compile_template(source).render(CTX) == expected


def test_render_str_always_gives_text() -> None:
    assert compile_template("{{ steps.plan.output.subtasks }}").render_str(CTX) == '["a", "b"]'
    assert compile_template("{{ inputs.n }}").render_str(CTX) == "3"
    assert compile_template("{{ none }}").render_str(CTX) == ""


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "x {{ inputs.__class__ }} y",
        "{{ steps.plan.output.subtasks.append(1) }}",
        "{{ (1).__class__.__base__ }}",
        "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    ],
)
def test_sandbox_refuses_escapes_and_mutation(source: str) -> None:
    template = compile_template(source)
    with pytest.raises(TemplateError) as info:
        template.render(CTX)
    assert "unsafe" in str(info.value) or "sandbox" in str(info.value)
    assert isinstance(info.value, OrchestrateError)
    assert CTX["steps"]["plan"]["output"]["subtasks"] == ["a", "b"]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ nothing }}", "'nothing' is undefined"),
        ("x {{ steps.missing.output }}", "has no attribute 'missing'"),
        ("{{ steps.plan.output.nope }}", "has no attribute 'nope'"),
        ("{{ [steps.plan.output.nope] }}", "has no attribute 'nope'"),
        ("{% if nothing %}x{% endif %}", "'nothing' is undefined"),
    ],
)
def test_undefined_names_raise_a_template_error_naming_them(source: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match="undefined") as info:
        compile_template(source).render(CTX)
    assert fragment in str(info.value)


def test_syntax_errors_carry_the_line_inside_the_template() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("one\ntwo\n{% endif %}")
    assert info.value.lineno == 3
    assert "syntax error" in str(info.value)


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("{{ x | uper }}", "unknown filter 'uper' (did you mean 'upper'?)", 1),
        (
            "a\n{% for i in xs | srot %}{{ i }}{% endfor %}",
            "unknown filter 'srot' (did you mean 'sort'?)",
            2,
        ),
        ("{% filter nope %}x{% endfilter %}", "unknown filter 'nope'", 1),
        ("{{ x if x is devined else 1 }}", "unknown test 'devined' (did you mean 'defined'?)", 1),
    ],
)
def test_unknown_filters_and_tests_fail_at_compile_with_their_line(
    source: str, message: str, line: int
) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(source)
    assert info.value.message == message
    assert info.value.lineno == line


def test_references_walk_the_ast() -> None:
    template = compile_template(
        "{{ steps.plan.output }} {{ steps['other'].output }} {% for r in steps.research.output %}"
        "{{ r }}{% endfor %} {{ inputs.q }} {{ env.HOME }}"
    )
    assert template.references == frozenset({"plan", "other", "research"})
    assert template.input_references == frozenset({"q"})
    assert template.env_references == frozenset({"HOME"})
    assert "item" not in template.variables and "steps" in template.variables


def test_literal_values_render_with_templates_inside() -> None:
    template = compile_value(["fixed", "{{ inputs.n }}", {"q": "{{ inputs.question }}"}])
    assert template.render(CTX) == ["fixed", 3, {"q": "why?"}]
    assert template.input_references == frozenset({"n", "question"})
    assert compile_value(7).render(CTX) == 7


def test_templates_pickle_and_compare_by_source() -> None:
    template = compile_template("{{ inputs.n + 1 }}")
    again = pickle.loads(pickle.dumps(template))
    assert again == template and again.render(CTX) == 4
    literal = pickle.loads(pickle.dumps(compile_value([1, "{{ inputs.n }}"])))
    assert literal.render(CTX) == [1, 3]
    assert isinstance(again, Template)


def test_huge_repetition_is_refused_not_computed() -> None:
    # compiling must not fold the constant (it would exhaust memory), rendering must refuse it
    template = compile_template("{{ 'a' * 10**10 }}")
    with pytest.raises(TemplateError, match="sandbox"):
        template.render({})
    assert compile_template("{{ 'ab' * 3 }}").render({}) == "ababab"
    assert compile_template("{{ 2 ** 10 }}").render({}) == 1024


def test_shquote_makes_a_value_one_shell_word() -> None:
    template = compile_template("echo {{ text | shquote }}")
    assert template.render({"text": "hi; rm -rf /"}) == "echo 'hi; rm -rf /'"
    # a structured output is one word holding its JSON; a number is itself
    assert template.render({"text": {"a": "$(x)"}}) == 'echo \'{"a": "$(x)"}\''
    assert template.render({"text": 3}) == "echo 3"


MODEL_WRITTEN = frozenset({"steps", "state", "loop", "item"})


@pytest.mark.parametrize(
    ("command", "unquoted"),
    [
        ("echo {{ steps.a.output }}", ["steps.a.output"]),
        ("echo {{ steps['a'].output | join(' ') }} {{ state.k }}", ["steps.a.output", "state.k"]),
        ("echo {{ loop.previous.draft }} {{ loop.iteration }}", ["loop.previous.draft"]),
        ("echo {{ 'yes' if steps.a.output else 'no' }}", []),  # the test is not placed
        ("echo {{ 'x' if inputs.f else item }}", ["item"]),
        ("echo {{ steps.a.output | shquote }} {{ steps.a.exit_code }}", []),
        ("echo {{ steps.a.output | map('shquote') | join(' ') }}", []),
        ("echo {{ steps.a.output | length }} {{ inputs.dir }} {{ run.workspace }}", []),
        ("echo {{ item[steps.a.output] | shquote }}", []),
    ],
)
def test_unquoted_shell_values_finds_model_text_placed_in_a_command(
    command: str, unquoted: list[str]
) -> None:
    assert unquoted_shell_values(command, MODEL_WRITTEN) == unquoted
