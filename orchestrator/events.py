"""Typed events: the one stream the engine emits and every sink consumes.

The store writer, the progress display and the JSON log are all sinks of this stream; the store's
tables are derived from it, and so are resume and the history. Events are plain dataclasses (cheap
to build by the hundred thousand) with a stable `type` string and `to_dict()` for persistence.

Step ids are paths: "research", "polish.draft". `iteration` is set for steps inside a loop body
(1-based). Task ids are ULIDs; task keys are deterministic (see `TaskSpec.key`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from orchestrator.contracts import JSON
from orchestrator.states import CallStatus, RunStatus, StepStatus, TaskStatus


def now() -> float:
    return time.time()


@dataclass(slots=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    run_id: str
    ts: float = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:  # `fields()` per call was a visible share of a large run's CPU
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
        data: dict[str, Any] = {"type": self.type}
        for name in names:
            data[name] = getattr(self, name)
        return data


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


# --- run -------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    workflow_name: str
    workflow_path: str
    workflow_snapshot: str  # the YAML text as run
    workflow_hash: str  # sha256 of the snapshot
    inputs: dict[str, JSON]
    workspace: str
    resumed: bool = False  # True when `orchestrate resume` took an existing run over
    pid: int | None = None
    limits: dict[str, JSON] = field(default_factory=dict)
    # how Bash and `run:` commands are sandboxed: {mode, network, backend, version|problem}
    sandbox: dict[str, JSON] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class SimulatorUsed(Event):
    """The run's model calls went to the built-in simulator (`--simulate`) with these settings
    (`SimConfig`'s fields but its scripted rules), so `resume` uses it again unasked."""

    type: ClassVar[str] = "simulator_used"
    config: dict[str, JSON] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    status: RunStatus  # succeeded | failed | cancelled | budget_exceeded
    outputs: dict[str, JSON] | None = None
    error: str | None = None


@dataclass(slots=True, kw_only=True)
class Heartbeat(Event):
    """Sent every few seconds while a run's process lives; a stale one means `interrupted`."""

    type: ClassVar[str] = "heartbeat"


# --- steps -----------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class StepStarted(Event):
    type: ClassVar[str] = "step_started"
    step_id: str
    kind: str  # agent | fanout | merge | run | loop | workflow
    iteration: int | None = None
    total_tasks: int | None = None  # known for fan-outs once the list is evaluated


@dataclass(slots=True, kw_only=True)
class StepFinished(Event):
    type: ClassVar[str] = "step_finished"
    step_id: str
    status: StepStatus  # succeeded | failed | skipped | cancelled
    output: JSON = None
    error: str | None = None
    iteration: int | None = None
    exit_code: int | None = None  # `run` steps
    iterations: int | None = None  # loop steps
    exhausted: bool | None = None  # a loop that stopped at max_iterations with `until` false


# --- tasks (one per worker) --------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class TaskStarted(Event):
    type: ClassVar[str] = "task_started"
    task_id: str
    step_id: str
    key: str
    index: int | None = None
    iteration: int | None = None
    agent: str | None = None
    model: str | None = None
    system: str | None = None
    prompt: str = ""
    attempt: int = 1
    parent_id: str | None = None  # the task whose `Task` call started this one


@dataclass(slots=True, kw_only=True)
class TaskFinished(Event):
    type: ClassVar[str] = "task_finished"
    task_id: str
    step_id: str
    status: TaskStatus  # succeeded | failed | skipped | cancelled
    output: JSON = None
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = 0.0
    attempts: int = 1
    turns: int = 0


@dataclass(slots=True, kw_only=True)
class TaskRetried(Event):
    """A whole task is tried again (timeout, or a failure the step's `retries` allow)."""

    type: ClassVar[str] = "task_retried"
    task_id: str
    step_id: str
    attempt: int
    error: str
    wait_s: float


# --- Messages API calls ----------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class CallFinished(Event):
    """One HTTP attempt at the Messages API, successful or not. Never holds an API key."""

    type: ClassVar[str] = "call_finished"
    call_id: str
    task_id: str
    step_id: str
    model: str
    attempt: int
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    status: CallStatus = CallStatus.SUCCEEDED
    error: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    latency_s: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = 0.0
    batch: bool = False


@dataclass(slots=True, kw_only=True)
class CallRetried(Event):
    """The dispatcher will try a call again after `wait_s` (429, 529, 5xx, connection)."""

    type: ClassVar[str] = "call_retried"
    task_id: str
    step_id: str
    attempt: int
    kind: str  # rate_limit | overloaded | server | connection | timeout
    error: str
    wait_s: float
    http_status: int | None = None


@dataclass(slots=True, kw_only=True)
class TextDelta(Event):
    """Text a streaming call received (one SSE text delta). For the run log and live views only:
    the run assembly keeps it out of the store (volume; the call's response holds the text)."""

    type: ClassVar[str] = "text_delta"
    task_id: str
    step_id: str
    text: str


@dataclass(slots=True, kw_only=True)
class RateLimited(Event):
    """Run-wide backpressure changed: effective concurrency, or a global pause."""

    type: ClassVar[str] = "rate_limited"
    model: str
    concurrency: int
    pause_s: float = 0.0
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class BatchSubmitted(Event):
    type: ClassVar[str] = "batch_submitted"
    step_id: str
    batch_id: str
    requests: int


# --- shared state and misc -------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class StateSet(Event):
    type: ClassVar[str] = "state_set"
    key: str
    value: JSON
    task_id: str | None = None


@dataclass(slots=True, kw_only=True)
class ToolCalled(Event):
    """A worker ran a tool (client-side). The call and result are also in the transcript."""

    type: ClassVar[str] = "tool_called"
    task_id: str
    step_id: str
    tool: str
    input: JSON
    is_error: bool = False
    output_preview: str = ""
    duration_s: float = 0.0


@dataclass(slots=True, kw_only=True)
class ToolResults(Event):
    """The `tool_result` block a worker answered a tool call with, in full, as the tool ended:
    what a resumed task replays instead of running that tool again (contracts/replay.py)."""

    type: ClassVar[str] = "tool_results"
    task_id: str
    step_id: str
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Warning(Event):  # noqa: A001 - the event is called what it is
    type: ClassVar[str] = "warning"
    message: str
    step_id: str | None = None
    task_id: str | None = None


@dataclass(slots=True, kw_only=True)
class CacheTtlChosen(Event):
    """`cache.ttl: auto` chose the 1h TTL for a step's marked prefix, and why (a long fan-out,
    a loop's period, the workflow's schedule): what `runs show`'s cache line says. Once per
    step (fan-out indexes dropped from `step_id`)."""

    type: ClassVar[str] = "cache_ttl"
    step_id: str
    ttl: str
    why: str


@dataclass(slots=True, kw_only=True)
class QuestionAsked(Event):
    """A question started waiting for a person (an `ask` step, a tool call's approval, the
    budget guard). It is in the store's `questions` table before this is emitted."""

    type: ClassVar[str] = "question_asked"
    question_id: str
    step_id: str
    kind: str  # ask | approval | budget
    prompt: str
    options: list[str] | None = None
    tool: str | None = None


@dataclass(slots=True, kw_only=True)
class QuestionAnswered(Event):
    """A person answered a question this process waited on (stored before this is emitted)."""

    type: ClassVar[str] = "question_answered"
    question_id: str
    step_id: str
    answer: JSON = None
    reason: str | None = None
    by: str | None = None


@dataclass(slots=True, kw_only=True)
class CancelRequested(Event):
    type: ClassVar[str] = "cancel_requested"
    reason: str = "SIGINT"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        RunFinished,
        Heartbeat,
        StepStarted,
        StepFinished,
        TaskStarted,
        TaskFinished,
        TaskRetried,
        CallFinished,
        CallRetried,
        TextDelta,
        RateLimited,
        BatchSubmitted,
        StateSet,
        ToolCalled,
        ToolResults,
        Warning,
        CancelRequested,
        QuestionAsked,
        QuestionAnswered,
        SimulatorUsed,
        CacheTtlChosen,
    )
}


# The status word of each event that carries one, as its enum (stored and logged as the word).
_STATUS_ENUMS: dict[type[Event], type[RunStatus | StepStatus | CallStatus]] = {
    RunFinished: RunStatus,
    StepFinished: StepStatus,
    TaskFinished: TaskStatus,
    CallFinished: CallStatus,
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from `to_dict()` output (unknown keys are dropped; status words become
    their enums again)."""
    cls = EVENT_TYPES[data["type"]]
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    status_enum = _STATUS_ENUMS.get(cls)
    if status_enum is not None and "status" in values:
        values["status"] = status_enum(values["status"])
    return cls(**values)
