"""What each page shows, assembled from the store's public read methods (no SQL here).

Pages read the store on every request (a read is a short pooled connection; in WAL mode it never
waits for a running writer). The one fold kept between requests is `Activity`: a run's stored
events read once and then only the new ones (`after_seq`), for the chart, retries, rate-limit
waits and errors, so a live page that refreshes every second does not re-read a large run.
Everything returned is plain data for the templates, which escape every string.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.contracts import Usage
from orchestrator.web.graphs import Chart, Graph, activity_chart, step_graph

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.store import Question, Run, StepSummary, Store, Task

ERRORS_SHOWN = 200


@dataclass
class Activity:
    """A run's stored events, folded: calls over time, task ends, retries, waits, errors."""

    last_seq: int = 0
    calls: list[tuple[float, float, int, str]] = field(
        default_factory=list
    )  # ts, $, tokens, status
    tasks_done: list[float] = field(default_factory=list)
    retries: int = 0
    rate_limited: int = 0  # retries after a 429
    overloaded: int = 0  # retries after a 529 / 5xx
    wait_s: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, seq: int, ts: float, kind: str, p: dict[str, Any]) -> None:
        self.last_seq = max(self.last_seq, seq)
        if kind == "call_finished":
            tokens = Usage.from_dict(p.get("usage")).total_tokens
            status = str(p.get("status") or "")
            self.calls.append((ts, float(p.get("cost_usd") or 0.0), tokens, status))
            if status not in ("succeeded", ""):
                self._error(ts, "call", p, p.get("error") or status)
        elif kind == "task_finished":
            self.tasks_done.append(ts)
            if p.get("status") == "failed":
                self._error(ts, "task", p, p.get("error"))
        elif kind == "step_finished" and p.get("status") == "failed":
            self._error(ts, "step", p, p.get("error"))
        elif kind == "run_finished" and p.get("error"):
            self._error(ts, "run", p, p.get("error"))
        elif kind == "call_retried":
            self.retries += 1
            self.wait_s += float(p.get("wait_s") or 0.0)
            if p.get("kind") == "rate_limit":
                self.rate_limited += 1
            elif p.get("kind") in ("overloaded", "server"):
                self.overloaded += 1
        elif kind == "task_retried":
            self.wait_s += float(p.get("wait_s") or 0.0)
            self._error(ts, "task retried", p, p.get("error"))
        elif kind == "rate_limited":
            self.wait_s += float(p.get("pause_s") or 0.0)
        elif kind == "warning" and len(self.warnings) < ERRORS_SHOWN:
            self.warnings.append({"ts": ts, **p})

    def _error(self, ts: float, source: str, p: dict[str, Any], message: Any) -> None:
        if len(self.errors) < ERRORS_SHOWN:
            self.errors.append(
                {
                    "ts": ts,
                    "source": source,
                    "step_id": p.get("step_id"),
                    "task_id": p.get("task_id"),
                    "http_status": p.get("http_status"),
                    "message": str(message or ""),
                }
            )


class Views:
    """The pages' data over one store. Thread-safe (handlers run it on worker threads)."""

    def __init__(self, store: Store, settings: Settings, *, cache_runs: int = 8) -> None:
        self.store = store
        self.settings = settings
        self.stale_after = settings.engine.stale_after
        self._activity: OrderedDict[str, Activity] = OrderedDict()
        self._graphs: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._cache_runs = cache_runs

    # --- runs -----------------------------------------------------------------------------------

    def runs(
        self, *, status: str | None, workflow: str | None, query: str | None, limit: int = 200
    ) -> dict[str, Any]:
        every = self.store.list_runs(limit=0, stale_after_s=self.stale_after)
        workflows = sorted({r.workflow_name for r in every})
        rows = [
            r
            for r in every
            if (status is None or r.status == status)
            and (workflow is None or workflow in (r.workflow_name, r.workflow_path))
            and _matches(r, query)
        ]
        return {
            "runs": rows[:limit],
            "shown": min(len(rows), limit),
            "matched": len(rows),
            "total": len(every),
            "workflows": workflows,
            "statuses": sorted({r.status for r in every}),
        }

    def run(self, run_id: str) -> Run | None:
        # a detached row with the status as shown ("interrupted" when the heartbeat is stale)
        return self.store.get_run(run_id, stale_after_s=self.stale_after)

    def activity(self, run_id: str) -> Activity:
        with self._lock:
            act = self._activity.pop(run_id, None) or Activity()
            while True:
                batch = self.store.events(run_id, after_seq=act.last_seq, limit=5000)
                for rec in batch:
                    act.apply(rec.seq or 0, rec.ts, rec.type, rec.payload or {})
                if len(batch) < 5000:
                    break
            self._activity[run_id] = act
            while len(self._activity) > self._cache_runs:
                self._activity.popitem(last=False)
            return act

    def run_page(self, run: Run) -> dict[str, Any]:
        summaries = self.store.step_summaries(run.id)
        act = self.activity(run.id)
        end = run.finished_at or (time.time() if run.status == "running" else None)
        return {
            "run": run,
            "after": act.last_seq,
            "steps": summaries,
            "costs": self.store.cost_breakdown(run.id),
            "graphs": self.graphs(run, summaries),
            "activity": act,
            "chart": activity_chart(act.calls, act.tasks_done, run.started_at, end),
            "cache_hit_ratio": cache_hit_ratio(run.usage),
            "duration_s": (end - run.started_at) if end and run.started_at else None,
        }

    def questions(self, run_id: str) -> list[Question]:
        """The run's questions that wait for a person, oldest first."""
        from orchestrator.store import Questions

        return Questions(self.store).pending(run_id)

    def graphs(self, run: Run, summaries: list[StepSummary]) -> list[Graph]:
        """The step graph (and one per loop body), from the workflow snapshot the run stored."""
        key = (run.id, run.workflow_hash)
        with self._lock:
            workflow = self._graphs.get(key)
        if workflow is None:
            workflow = self._load_workflow(run)
            with self._lock:
                self._graphs[key] = workflow
        latest: dict[str, StepSummary] = {}
        for s in summaries:  # the latest iteration of a step stands for it
            latest[s.step_id] = s
        return step_graph(workflow, latest, run.id)

    def _load_workflow(self, run: Run) -> Any:
        from orchestrator.errors import OrchestrateError
        from orchestrator.workflow import load_workflow

        try:
            return load_workflow(
                run.workflow_path, text=run.workflow_snapshot, settings=self.settings
            )
        except (OrchestrateError, OSError, ValueError):
            return False  # drawn from the stored steps alone, without edges

    # --- steps and tasks ------------------------------------------------------------------------

    def step_page(self, run: Run, step_id: str) -> dict[str, Any] | None:
        summaries = [s for s in self.store.step_summaries(run.id) if s.step_id == step_id]
        tasks = self.store.list_tasks(run.id, step=step_id)
        if not summaries and not tasks:
            return None
        iterations: dict[int | None, list[Task]] = {}
        for task in sorted(
            tasks, key=lambda t: (t.iteration or 0, t.index or 0, t.started_at or 0)
        ):
            iterations.setdefault(task.iteration, []).append(task)
        counts: dict[str, int] = {}
        for task in tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        return {
            "run": run,
            "after": self.activity(run.id).last_seq,
            "step_id": step_id,
            "summaries": summaries,
            "iterations": iterations,
            "counts": counts,
            "tasks": tasks,
        }

    def task(self, run_id: str, task_id: str) -> Task | None:
        from orchestrator.errors import UsageError

        try:
            task = self.store.resolve_task(run_id, task_id)
        except UsageError:
            return None
        return task if task.id == task_id else None

    def task_page(self, run: Run, task: Task) -> dict[str, Any]:
        calls = self.store.task_calls(task.id)
        mine = [
            e
            for kind in ("tool_called", "task_retried", "call_retried", "warning")
            for e in self.store.events(run.id, type=kind)
            if (e.payload or {}).get("task_id") == task.id
        ]
        mine.sort(key=lambda e: e.seq or 0)
        return {
            "run": run,
            "after": self.activity(run.id).last_seq,
            "task": task,
            "calls": calls,
            "turns": transcript(calls),
            "tools": [e for e in mine if e.type == "tool_called"],
            "retries": [e for e in mine if e.type in ("task_retried", "call_retried")],
            "warnings": [e for e in mine if e.type == "warning"],
            "cache_hit_ratio": cache_hit_ratio(task.usage),
        }


def cache_hit_ratio(usage: Usage) -> float | None:
    """cache reads / (input + cache reads + cache writes), as `StepSummary.cache_hit_ratio`."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return usage.cache_read_input_tokens / prompt if prompt else None


def _matches(run: Run, query: str | None) -> bool:
    if not query:
        return True
    needle = query.strip().lower()
    hay = (run.id, run.workflow_name, run.workflow_path, run.error or "", run.status)
    return any(needle in h.lower() for h in hay) or needle in json.dumps(run.inputs).lower()


# --- the transcript ---------------------------------------------------------------------------


@dataclass
class Turn:
    """One Messages API attempt: what was sent that the page has not shown yet, and the reply."""

    call: Any  # Call
    system: str | None
    sent: list[dict[str, Any]]  # messages, each {role, blocks}
    reply: list[dict[str, Any]]  # content blocks
    stop_reason: str | None


def transcript(calls: list[Any]) -> list[Turn]:
    """Calls in order, each with the messages it added (tool results, repair prompts) and its
    reply; an assistant message the next request repeats is the previous reply, shown once."""
    turns: list[Turn] = []
    shown = 0
    for index, call in enumerate(calls):
        request = call.request or {}
        messages = request.get("messages") or []
        sent = [
            {"role": m.get("role", "?"), "blocks": _blocks(m.get("content"))}
            for m in messages[shown:]
            if isinstance(m, dict) and (m.get("role") != "assistant" or shown == 0)
        ]
        shown = max(shown, len(messages))
        system = request.get("system") if index == 0 else None
        response = call.response or {}
        turns.append(
            Turn(
                call=call,
                system=_system_text(system),
                sent=sent,
                reply=_blocks(response.get("content")),
                stop_reason=response.get("stop_reason"),
            )
        )
    return turns


def _system_text(system: Any) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    return str(system)


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Content blocks as {kind, text, name?, is_error?} for the template."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"kind": "text", "text": content}]
    out: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else [content]:
        if not isinstance(block, dict):
            out.append({"kind": "text", "text": str(block)})
            continue
        kind = block.get("type")
        if kind == "text":
            out.append({"kind": "text", "text": str(block.get("text", ""))})
        elif kind in ("tool_use", "server_tool_use"):
            out.append(
                {
                    "kind": "tool_use",
                    "name": block.get("name", ""),
                    "text": json.dumps(block.get("input"), indent=2, ensure_ascii=False),
                }
            )
        elif kind == "tool_result":
            inner = block.get("content")
            text = (
                inner
                if isinstance(inner, str)
                else "\n".join(
                    b.get("text", json.dumps(b)) for b in inner or [] if isinstance(b, dict)
                )
            )
            out.append(
                {"kind": "tool_result", "text": text, "is_error": bool(block.get("is_error"))}
            )
        else:
            out.append({"kind": str(kind), "text": json.dumps(block, indent=2, ensure_ascii=False)})
    return out


__all__ = ["Activity", "Chart", "Turn", "Views", "transcript"]
