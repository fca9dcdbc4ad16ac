"""What the loader's passes share while one file loads: positions, diagnostics, and what each
pass leaves for a later one (templates to resolve, agents and models named, sub-workflows).

Passes never raise on bad content: they record a `Diagnostic` at the line and column of the
value (or key) and carry on, so one run of `validate` reports every problem in the file.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import Diagnostic
from orchestrator.workflow._yaml import Path_, Positions
from orchestrator.workflow.models import AgentDef
from orchestrator.workflow.templates import Template

AgentCache = dict[Path, tuple[AgentDef | None, list[Diagnostic]]]


@dataclass(eq=False)
class Scope:
    """The steps of one list (the workflow's, or a loop's or a group's body).

    `names`: the template names its steps see beyond the base ones (`loop` in a loop body, the
    item names of an enclosing fan-out); `ordered`: each step runs after the one before it (a
    loop body unless `parallel: true`)."""

    steps: list[StepInfo] = field(default_factory=list)
    ids: dict[str, StepInfo] = field(default_factory=dict)
    parent: Scope | None = None
    owner: StepInfo | None = None  # the loop or group step whose body this is
    names: tuple[str, ...] = ()
    ordered: bool = False

    def loop_owner(self) -> StepInfo | None:
        """The innermost loop step whose body (at any depth of groups) this is."""
        here: Scope | None = self
        while here is not None:
            if here.owner is not None and here.owner.kind == "loop":
                return here.owner
            here = here.parent
        return None


@dataclass(eq=False)
class Check:
    """A template to resolve once every step is known."""

    template: Template
    path: Path_
    allowed: frozenset[str]
    scope: Scope
    owner: StepInfo | None  # the step that gets the dependencies (None: references only)
    notes: dict[str, str] = field(default_factory=dict)  # name -> why it is not in scope here


@dataclass(eq=False)
class StepInfo:
    """One step while it loads: its raw mapping, then the model fields that passed."""

    id: str  # "#3" for a step whose id is missing or invalid
    path: Path_
    scope: Scope
    kind: str | None
    raw: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    deps: set[str] = field(default_factory=set)
    after: set[str] = field(default_factory=set)  # order-only dependencies (see `Step.after`)
    body: Scope | None = None
    loop: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    col: int = 0

    @property
    def named(self) -> bool:
        return not self.id.startswith("#")

    @property
    def label(self) -> str:
        return f"step '{self.id}'" if self.named else "step"


@dataclass(eq=False)
class LoadContext:
    path: Path
    text: str
    settings: Settings
    stack: tuple[Path, ...]  # the workflows that include this one, outermost first
    agent_cache: AgentCache
    pos: Positions
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    input_names: list[str] = field(default_factory=list)
    env_names: list[str] = field(default_factory=list)
    inline_agents: dict[str, AgentDef] = field(default_factory=dict)
    resolved_agents: dict[str, AgentDef] = field(default_factory=dict)
    agent_refs: list[tuple[StepInfo, str, Path_]] = field(default_factory=list)
    model_refs: list[tuple[str, Path_]] = field(default_factory=list)
    # names in a `model: [a, b]` list: (name, path, what names it); an unknown one is an error
    listed_models: list[tuple[str, Path_, str]] = field(default_factory=list)
    subs: list[tuple[StepInfo, str, Path_]] = field(default_factory=list)
    dynamic_agents: bool = False  # a step picks its agent at run time: every agent is loaded

    @property
    def file(self) -> str:
        return str(self.path)

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def refer_models(self, value: str | list[str] | None, path: Path_, what: str) -> None:
        """Record the model (or list of models, checked more strictly) named at `path`."""
        if isinstance(value, list):
            self.listed_models += [(n, (*path, i), what) for i, n in enumerate(value)]
        elif value:
            self.model_refs.append((value, path))

    def err(self, path: Path_, message: str, *, key: bool = False) -> None:
        """An error at the value of `path` (or at its key, with `key`)."""
        self.errors.append(self.pos.at(path, message, key=key))

    def warn(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.warnings.append(self.pos.at(path, message, key=key, severity="warning"))


def a_or_an(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def join_quoted(items: Sequence[str], last: str = "and") -> str:
    """'a', 'b' and 'c'."""
    quoted = [f"'{i}'" for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" {last} " + quoted[-1]
