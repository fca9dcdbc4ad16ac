"""The language table is the one definition: the loader, the models and the JSON Schema agree
with it, so adding a key or a kind is one entry in `language.py` (and its field on the model)."""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from orchestrator.errors import SpecError
from orchestrator.workflow import language_schema, load_workflow
from orchestrator.workflow import models as m
from orchestrator.workflow.language import (
    AGENT,
    DEFAULTS,
    FAN_OUT,
    INPUT,
    INPUT_TYPES,
    KINDS,
    LIMITS,
    LOOP,
    MERGE_KINDS,
    SIMPLE_TYPES,
    STEP_COMMON,
    STEP_KEYS,
    TOP,
    Key,
    Kind,
    kind_keys,
)

# Fields the loader derives rather than reads from a key of the same name.
DERIVED = {
    m.Step: {"kind", "deps", "after", "dynamic", "sub", "line", "col"},
    m.Workflow: {"resolved_agents", "path", "source_text", "warnings"},
    m.InputSpec: {"has_default"},
    m.AgentDef: {"extra", "path", "inherited_tools"},
}
STEP_KEYS_BY_FIELD = {
    key.field: key for key in (*STEP_COMMON, *FAN_OUT, *(k for kind in KINDS for k in kind.keys))
}
# A minimal step of each kind, after a step `plan` that others may name.
BASES: dict[str, dict[str, Any]] = {
    "agent": {"id": "s", "prompt": "hi"},
    "merge": {"id": "s", "merge": "concat", "from": "plan"},
    "run": {"id": "s", "run": "echo hi"},
    "loop": {"id": "s", "loop": {"max_iterations": 2, "steps": [{"id": "b", "prompt": "x"}]}},
    "workflow": {"id": "s", "workflow": "sub.yaml"},
    "set": {"id": "s", "set": "{{ [1, 2] }}"},
    "group": {"id": "s", "group": {"steps": [{"id": "b", "prompt": "x"}]}},
    "ask": {"id": "s", "ask": "Go on?"},
}
SUB = "version: 1\ninputs:\n  topic: {default: x}\nsteps:\n  - id: t\n    prompt: hi\n"


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields) - DERIVED.get(model, set())


def _load(write: Callable[..., Path], doc: dict[str, Any]) -> m.Workflow:
    write(SUB, "sub.yaml")
    return load_workflow(write(yaml.safe_dump(doc, sort_keys=False)))


def _workflow(step: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": 1, **top, "steps": [{"id": "plan", "prompt": "p"}, step]}


def _unset(model: type[BaseModel], field: str, value: Any) -> bool:
    info = model.model_fields[field]
    default = info.default_factory() if info.default_factory else info.default
    return bool(value == default)


def test_every_model_field_is_a_table_key_and_every_key_a_field() -> None:
    assert _fields(m.Step) == set(STEP_KEYS_BY_FIELD)
    assert _fields(m.Workflow) == {key.field for key in TOP}
    assert _fields(m.Defaults) == {key.field for key in DEFAULTS}
    assert _fields(m.Limits) == {key.field for key in LIMITS}
    assert _fields(m.InputSpec) == {key.field for key in INPUT}
    assert _fields(m.LoopSpec) == {key.field for key in LOOP}
    assert _fields(m.AgentDef) == {key.field for key in AGENT}


def test_model_literals_list_the_table_choices() -> None:
    assert typing.get_args(m.StepKind) == tuple(kind.name for kind in KINDS)
    assert typing.get_args(m.MergeKind) == MERGE_KINDS
    assert typing.get_args(m.InputType) == INPUT_TYPES
    on_item_error = next(key for key in FAN_OUT if key.name == "on_item_error")
    annotation = m.Step.model_fields["on_item_error"].annotation
    assert typing.get_args(annotation) == on_item_error.choices


def test_schema_keys_are_the_table_keys() -> None:
    schema = language_schema()
    defs = schema["$defs"]
    assert list(schema["properties"]) == [key.name for key in TOP]
    assert schema["required"] == [key.name for key in TOP if key.required]
    assert set(defs["step"]["properties"]) == set(STEP_KEYS)
    assert defs["step"]["oneOf"] == [{"required": [kind.marker]} for kind in KINDS]
    assert list(schema["properties"]["defaults"]["properties"]) == [k.name for k in DEFAULTS]
    assert list(schema["properties"]["limits"]["properties"]) == [k.name for k in LIMITS]
    loop = defs["step"]["properties"]["loop"]
    assert list(loop["properties"]) == [k.name for k in LOOP]
    assert loop["required"] == ["steps"]  # max_iterations or max_duration (the loader checks)
    assert list(defs["agent"]["properties"]) == [k.name for k in AGENT]
    assert list(defs["input"]["anyOf"][1]["properties"]) == [k.name for k in INPUT]
    # Each key's doc reaches editors.
    for name, prop in defs["step"]["properties"].items():
        assert prop["description"], name


def _kind_key_cases() -> list[tuple[Kind, Key]]:
    return [
        (kind, key)
        for kind in KINDS
        for key in kind_keys(kind)
        if key.name not in ("id", kind.marker) and not (kind.name == "merge" and key.name == "from")
    ]


@pytest.mark.parametrize(
    ("kind", "key"), _kind_key_cases(), ids=lambda x: x.name if isinstance(x, Kind | Key) else ""
)
def test_every_table_key_is_accepted_by_the_loader(
    write: Callable[..., Path], kind: Kind, key: Key
) -> None:
    assert key.example is not None, f"give '{key.name}' an example in language.py"
    step = {**BASES[kind.name], key.name: key.example}
    if key in FAN_OUT:
        step.setdefault("for_each", ["x", "y"])
    workflow = _load(write, _workflow(step, agents={"helper": {}}))
    value = getattr(workflow.step("s"), key.field)
    assert not _unset(m.Step, key.field, value), f"'{key.name}: {key.example!r}' was dropped"


@pytest.mark.parametrize("key", [k for k in TOP if not k.required], ids=lambda k: k.name)
def test_every_top_level_key_is_accepted_by_the_loader(
    write: Callable[..., Path], key: Key
) -> None:
    assert key.example is not None, f"give '{key.name}' an example in language.py"
    workflow = _load(write, {**_workflow(BASES["agent"]), key.name: key.example})
    assert not _unset(m.Workflow, key.field, getattr(workflow, key.field))


@pytest.mark.parametrize(
    ("section", "key"),
    [("defaults", k) for k in DEFAULTS]
    + [("limits", k) for k in LIMITS]
    + [("inputs", k) for k in INPUT]
    + [("agents", k) for k in AGENT]
    + [("loop", k) for k in LOOP if not k.required],
    ids=lambda x: x if isinstance(x, str) else x.name,
)
def test_every_section_key_is_accepted_by_the_loader(
    write: Callable[..., Path], section: str, key: Key
) -> None:
    assert key.example is not None, f"give '{key.name}' an example in language.py"
    doc = _workflow(BASES["agent"])
    got: BaseModel | None
    if section == "inputs":
        doc["inputs"] = {"x": {key.name: key.example}}
        got = _load(write, doc).inputs["x"]
    elif section == "agents":
        doc["agents"] = {"helper": {key.name: key.example}}
        got = _load(write, doc).agents["helper"]
    elif section == "loop":
        loop = {**BASES["loop"]["loop"], key.name: key.example}
        got = _load(write, _workflow({**BASES["loop"], "loop": loop})).step("s").loop
    else:
        doc[section] = {key.name: key.example}
        got = getattr(_load(write, doc), section)
    assert got is not None
    assert not _unset(type(got), key.field, getattr(got, key.field)), key.name


MARKERS = {kind.marker for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_keys_of_other_kinds_are_refused(write: Callable[..., Path], kind: Kind) -> None:
    own = {key.name for key in kind_keys(kind)}
    foreign = [name for name in STEP_KEYS if name not in own and name not in MARKERS]
    assert foreign, kind.name
    step = {**BASES[kind.name], **{name: "x" for name in foreign}}
    with pytest.raises(SpecError) as info:
        _load(write, _workflow(step))
    messages = [d.message for d in info.value.diagnostics]
    for name in foreign:
        article = "an" if kind.name[0] in "aeiou" else "a"
        assert f"step 's': '{name}' does not apply to {article} {kind.name} step" in messages


SIMPLE_CASES = [
    (kind, key)
    for kind in KINDS
    for key in kind_keys(kind)
    if key.type in SIMPLE_TYPES and key.name != kind.marker
]


@pytest.mark.parametrize(
    ("kind", "key"), SIMPLE_CASES, ids=lambda x: x.name if isinstance(x, Kind | Key) else ""
)
def test_simple_keys_are_type_checked_from_the_table(
    write: Callable[..., Path], kind: Kind, key: Key
) -> None:
    step = {**BASES[kind.name], key.name: [1]}
    if key in FAN_OUT:
        step["for_each"] = ["x"]
    text = yaml.safe_dump(_workflow(step), sort_keys=False, default_flow_style=None)
    lines = text.split("\n")
    line = lines.index(f"  {key.name}: [1]", lines.index("- id: s")) + 1
    write(SUB, "sub.yaml")
    with pytest.raises(SpecError) as info:
        load_workflow(write(text))
    found = [d for d in info.value.diagnostics if d.line == line]
    assert found and found[0].message.startswith(f"step 's': '{key.name}'"), found
