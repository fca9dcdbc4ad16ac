"""The engine: runs a workflow's steps to a terminal status. No HTTP, no SQL.

Public: `Engine` (build once, `await engine.run(RunRequest(...))`, `engine.cancel()`),
`RunRequest`, `RunOutcome`, `ResumeState`, `PriorTask`.

How it is laid out (decisions apart from the concurrency that carries them out):

- `scheduler.py`: `Engine`, a run's lifecycle (announce, walk under one cancel scope,
  heartbeat, verdict) and the DAG walk.
- `plan.py`: the pure decisions: which step is ready, whether it runs, task keys and what a
  resumed run reuses, how item outcomes make a fan-out's result, how the run ended.
- `resolve.py`: settings resolution in one place (step > agent > workflow defaults > settings;
  flags > `limits:` > settings).
- `attempts.py`: one task from start to end: reuse, attempts, retries, its two events.
- `registry.py` + `kinds/`: one module per step kind (agent, run, fanout, merge, loop, workflow).
- `dispatch.py` (the one place calls leave from: rate limits, budgets, backoff),
  `backpressure.py`, `budget.py`, `batch.py` (Message Batches), `commands.py` (`run:` commands),
  `state.py` (the shared blackboard), `reducers.py` (merge reducers).

Adding a step kind (say `ask`):

1. In `orchestrator/workflow` give the language its key and `Step.kind` its name.
2. Write `orchestrator/engine/kinds/ask.py` with one handler::

       @register("ask")
       async def ask_step(run: RunContext, step: Step, scope: Scope,
                          ctx: dict[str, Any], path: str) -> StepResult:
           ...
           return StepResult(StepStatus.SUCCEEDED, output=answer)

   The scheduler has already checked dependencies and `when`, and emitted `StepStarted`
   (pass `announces_itself=True` to emit it yourself with `run.announce(...)`, as a fan-out
   does once it knows its item count); it emits `StepFinished` with what you return. Raise an
   `OrchestrateError` to fail the step with its message.
3. Import the module in `kinds/__init__.py`.

A kind that does work starts tasks through `run.tasks.run(..., prepare=...)` inside
`run.task_slots` after `run.claim_tasks(n, fanout=...)`; `prepare` says what the task shows and
how one attempt runs (`kinds/agent.py`'s `agent_task` and `kinds/command.py`'s `command_task` are
the two there are). A kind with nested steps (`group`, say) calls `run.walk(steps, scope)` on a
child `Scope`, as `kinds/loop.py` does. A different runtime for agent steps (Claude Code) is a
`WorkerFn` with the same signature as `orchestrator.worker.run_worker`, chosen in `agent_task`.
"""

from orchestrator.engine.runs import PriorTask, ResumeState, RunOutcome, RunRequest
from orchestrator.engine.scheduler import Engine

__all__ = ["Engine", "PriorTask", "ResumeState", "RunOutcome", "RunRequest"]
