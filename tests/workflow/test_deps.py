"""Dependencies: `needs` plus template references, loop-body scoping, levels and cycles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import Diagnostic, UsageError
from orchestrator.workflow import CycleError, Workflow, graph_text, load_workflow, topo_order
from orchestrator.workflow.graph import find_cycle


def test_deps_are_needs_plus_references(load: Callable[[str], Workflow]) -> None:
    workflow = load(
        """
        version: 1
        steps:
          - id: plan
            prompt: plan
          - id: side
            prompt: side
          - id: research
            for_each: "{{ steps.plan.output }}"
            needs: [side]
            prompt: "{{ item }}"
          - id: report
            when: "{{ steps['side'].output }}"
            prompt: |
              {% for r in steps.research.output %}{{ r }}{% endfor %}
          - id: joined
            merge: concat
            from: research
        """
    )
    deps = {s.id: s.deps for s in workflow.steps}
    assert deps == {
        "plan": frozenset(),
        "side": frozenset(),
        "research": {"plan", "side"},
        "report": {"research", "side"},
        "joined": {"research"},
    }
    assert topo_order(workflow.steps) == [["plan", "side"], ["research"], ["report", "joined"]]


def test_loop_body_scoping(load: Callable[[str], Workflow]) -> None:
    workflow = load(
        """
        version: 1
        steps:
          - id: report
            prompt: r
          - id: other
            prompt: o
          - id: polish
            needs: [other]
            loop:
              max_iterations: 2
              until: "{{ steps.critique.output.ok and steps.report.output }}"
              steps:
                - id: draft
                  prompt: "{{ loop.previous.draft }} {{ steps.report.output }} {{ loop.iteration }}"
                - id: critique
                  prompt: "{{ steps.draft.output }}"
          - id: after
            prompt: "{{ steps.polish.output.draft }}"
        """
    )
    polish = workflow.step("polish")
    # An outer step read from inside the body is a dependency of the loop step.
    assert polish.deps == {"other", "report"}
    assert workflow.step("polish.draft").deps == frozenset()
    assert workflow.step("polish.critique").deps == {"draft"}
    assert workflow.step("after").deps == {"polish"}
    assert polish.loop is not None and polish.loop.until is not None
    assert polish.loop.until.references == {"critique", "report"}
    assert [p for p, _ in workflow.iter_steps()] == [
        "report",
        "other",
        "polish",
        "polish.draft",
        "polish.critique",
        "after",
    ]


def test_nested_loops_attach_outer_references_at_the_right_level(
    load: Callable[[str], Workflow],
) -> None:
    workflow = load(
        """
        version: 1
        steps:
          - id: seed
            prompt: s
          - id: outer
            loop:
              max_iterations: 2
              steps:
                - id: pre
                  prompt: p
                - id: inner
                  loop:
                    max_iterations: 2
                    steps:
                      - id: work
                        prompt: "{{ steps.seed.output }} {{ steps.pre.output }}"
        """
    )
    assert workflow.step("outer").deps == {"seed"}
    assert workflow.step("outer.inner").deps == {"pre"}
    assert workflow.step("outer.inner.work").deps == frozenset()


def test_body_steps_are_not_visible_outside_the_loop(
    errors: Callable[[str], list[Diagnostic]],
) -> None:
    found = errors(
        """
        version: 1
        steps:
          - id: l
            loop:
              max_iterations: 1
              steps:
                - id: draft
                  prompt: d
          - id: after
            prompt: "{{ steps.draft.output }}"
        """
    )
    assert any(
        d.message.endswith(
            "unknown step 'draft' (it is inside loop 'l': read it as steps.l.output.draft "
            "outside the loop)"
        )
        and d.line == 10
        for d in found
    ), found


def test_cycle_is_named_in_order(errors: Callable[[str], list[Diagnostic]]) -> None:
    found = errors(
        """
        version: 1
        steps:
          - id: a
            needs: [c]
            prompt: a
          - id: b
            prompt: "{{ steps.a.output }}"
          - id: c
            prompt: "{{ steps.b.output }}"
          - id: free
            prompt: f
        """
    )
    cycles = [d for d in found if d.message.startswith("dependency cycle")]
    assert [d.message for d in cycles] == ["dependency cycle: a -> c -> b -> a"]
    assert cycles[0].line == 3


def test_cycle_inside_a_loop_body(errors: Callable[[str], list[Diagnostic]]) -> None:
    found = errors(
        """
        version: 1
        steps:
          - id: l
            loop:
              max_iterations: 1
              steps:
                - id: x
                  prompt: "{{ steps.y.output }}"
                - id: y
                  prompt: "{{ steps.x.output }}"
        """
    )
    assert any(d.message == "dependency cycle: x -> y -> x" and d.line == 7 for d in found)


class _S:
    def __init__(self, id: str, deps: set[str]) -> None:  # noqa: A002
        self.id = id
        self.deps = frozenset(deps)


def test_topo_order_raises_cycle_error() -> None:
    with pytest.raises(CycleError) as info:
        topo_order([_S("a", {"b"}), _S("b", {"a"}), _S("c", set())])
    assert info.value.cycle == ["a", "b", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_text_formats(load: Callable[[str], Workflow]) -> None:
    workflow = load(
        """
        version: 1
        name: g
        steps:
          - id: a
            prompt: a
          - id: l
            loop:
              max_iterations: 2
              steps:
                - id: b
                  prompt: "{{ steps.a.output }}"
        """
    )
    mermaid = graph_text(workflow, "mermaid")
    assert mermaid.startswith("flowchart TD")
    assert "a --> l" in mermaid and 'subgraph l["l (loop ≤ 2)"]' in mermaid
    dot = graph_text(workflow, "dot")
    assert dot.startswith('digraph "g" {') and "a -> l;" in dot and "cluster_l" in dot


def test_load_from_text_resolves_relative_to_the_given_path(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "helper.md").write_text("---\nname: helper\n---\nhelp\n")
    text = "version: 1\nsteps:\n  - id: a\n    agent: helper\n    prompt: hi\n"
    workflow = load_workflow(tmp_path / "virtual.yaml", text=text)
    assert workflow.name == "virtual" and workflow.source_text == text
    assert workflow.resolve_agent("helper").system == "help"
    with pytest.raises(UsageError, match="unknown agent 'nobody'"):
        workflow.resolve_agent("nobody")
