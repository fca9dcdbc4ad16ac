"""Runtimes: what a task is, besides an API conversation (`orchestrator/worker`, the default).

A runtime is a `WorkerFn` (`async (TaskSpec, WorkerContext) -> TaskResult`), like
`orchestrator.worker.run_worker`; the engine picks one by `TaskSpec.runtime`. Every runtime's
model calls go through `WorkerContext.call` (the engine's dispatcher), so rate limits, backoff,
budgets and the recorded history are the same for all of them.

- `claude_code`: a headless Claude Code process per task, whose Messages API calls reach the
  dispatcher through a loopback proxy (`runtime: claude-code`).
"""
