"""The live display and the plain progress lines, fed a synthetic run."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrator import events as ev
from orchestrator.ui import PlainProgress, ProgressDisplay

RUN = "01run"
T0 = 1_700_000_000.0


def _call(task: str, step: str, *, ts: float, tokens: int = 100, cost: float | None = 0.001):
    return ev.CallFinished(
        run_id=RUN,
        ts=ts,
        call_id=f"c-{task}-{ts}",
        task_id=task,
        step_id=step,
        model="claude-sonnet-5-5",
        attempt=1,
        request={"model": "claude-sonnet-5-5", "messages": []},
        response={"content": [], "stop_reason": "end_turn"},
        usage={"input_tokens": tokens, "output_tokens": tokens // 2},
        cost_usd=cost,
    )


def synthetic_run() -> list[ev.Event]:
    out: list[ev.Event] = [
        ev.RunStarted(
            run_id=RUN,
            ts=T0,
            workflow_name="research",
            workflow_path="wf.yaml",
            workflow_snapshot="version: 1",
            workflow_hash="h",
            inputs={"q": "why"},
            workspace=".",
        ),
        ev.StepStarted(run_id=RUN, ts=T0 + 0.1, step_id="plan", kind="agent"),
        ev.TaskStarted(run_id=RUN, ts=T0 + 0.1, task_id="tplan", step_id="plan", key="plan"),
        _call("tplan", "plan", ts=T0 + 1.0),
        ev.TaskFinished(
            run_id=RUN, ts=T0 + 1.0, task_id="tplan", step_id="plan", status="succeeded"
        ),
        ev.StepFinished(run_id=RUN, ts=T0 + 1.0, step_id="plan", status="succeeded"),
        ev.StepStarted(run_id=RUN, ts=T0 + 1.1, step_id="research", kind="fanout", total_tasks=4),
    ]
    for i in range(4):
        out.append(
            ev.TaskStarted(
                run_id=RUN,
                ts=T0 + 1.2,
                task_id=f"t{i}",
                step_id="research",
                key=f"research[{i}]",
                index=i,
            )
        )
    out += [
        ev.CallRetried(
            run_id=RUN,
            ts=T0 + 2,
            task_id="t1",
            step_id="research",
            attempt=1,
            kind="rate_limit",
            error="rate limited",
            wait_s=2.5,
            http_status=429,
        ),
        ev.RateLimited(
            run_id=RUN, ts=T0 + 2, model="claude-sonnet-5-5", concurrency=10, pause_s=1.5
        ),
        _call("t0", "research", ts=T0 + 3),
        ev.TaskFinished(
            run_id=RUN, ts=T0 + 3, task_id="t0", step_id="research", status="succeeded"
        ),
        ev.TaskFinished(
            run_id=RUN,
            ts=T0 + 3.5,
            task_id="t2",
            step_id="research",
            status="failed",
            error="output never matched the schema",
        ),
        ev.Warning(run_id=RUN, ts=T0 + 3.6, message="agent key 'color' ignored", step_id="plan"),
        ev.Heartbeat(run_id=RUN, ts=T0 + 4),
    ]
    return out


def finish(out: list[ev.Event]) -> list[ev.Event]:
    return [
        *out,
        _call("t1", "research", ts=T0 + 5, cost=None),
        ev.TaskFinished(
            run_id=RUN, ts=T0 + 5, task_id="t1", step_id="research", status="succeeded"
        ),
        ev.TaskFinished(
            run_id=RUN, ts=T0 + 5, task_id="t3", step_id="research", status="succeeded"
        ),
        ev.StepFinished(
            run_id=RUN, ts=T0 + 5, step_id="research", status="failed", error="1 item failed"
        ),
        ev.RunFinished(run_id=RUN, ts=T0 + 6, status="failed", error="step research failed"),
    ]


def _render(display: ProgressDisplay, console: Console) -> str:
    console.print(display.renderable())
    return console.export_text()


def test_live_display_shows_steps_fanout_bar_and_totals() -> None:
    console = Console(record=True, width=120, force_terminal=True, height=40)
    display = ProgressDisplay(console, workflow_name="research", clock=lambda: T0 + 4.0)
    for event in synthetic_run():
        display(event)
    text = _render(display, console)
    assert "research" in text and RUN in text and "running" in text
    assert "✓ plan" in text and "agent" in text and "succeeded" in text
    # the fan-out: 1 done of 4, 2 running (t1 waiting to retry), 1 failed
    assert "1/4 done · 2 running · 1 failed · 1 retrying" in text
    assert "━" in text  # the bar
    assert "tokens 200 in · 100 out" in text
    assert "$0.0020" in text
    # a 2.5 s retry wait and a 1.5 s pause, both from T0+2: 2.5 s of wall clock, not their sum
    assert "rate-limit wait 2.5s" in text
    assert "elapsed 4.0s" in text
    assert "agent key 'color' ignored" in text


def test_live_display_final_frame_and_unknown_cost() -> None:
    console = Console(record=True, width=120, force_terminal=True, height=40)
    display = ProgressDisplay(console, workflow_name="research", clock=lambda: T0 + 100)
    for event in finish(synthetic_run()):
        display(event)
    text = _render(display, console)
    assert "✗ research" in text
    assert "3/4 done · 1 failed" in text
    assert "$0.0020+?" in text  # one call had no price
    assert "elapsed 6.0s" in text  # frozen at run end, not the clock
    assert "error: step research failed" in text


def test_live_display_redraws_on_its_own_clock_not_per_event() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True)
    display = ProgressDisplay(console, workflow_name="research", refresh_per_second=4)
    events = synthetic_run()
    with display:
        for _ in range(2000):
            for event in events:
                display(event)
    # 30 000 events, a handful of frames (the start, the refresh thread, the final one)
    assert display.renders < 20


def test_live_display_caps_step_lines_keeping_running_ones() -> None:
    console = Console(record=True, width=120, force_terminal=True, height=40)
    display = ProgressDisplay(console, workflow_name="w", max_steps=5, clock=lambda: T0)
    for i in range(10):
        display(ev.StepStarted(run_id=RUN, ts=T0, step_id=f"s{i}", kind="agent"))
        if i != 2:
            display(ev.StepFinished(run_id=RUN, ts=T0, step_id=f"s{i}", status="succeeded"))
    text = _render(display, console)
    assert "… 5 earlier steps" in text
    assert "s2" in text and "s9" in text and "s1 " not in text


def test_plain_progress_lines() -> None:
    stream = io.StringIO()
    sink = PlainProgress(stream)
    for event in finish(synthetic_run()):
        sink(event)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[00:00] run 01run started: research (wf.yaml)"
    assert lines[1] == "[00:00] step plan started (agent)"
    assert lines[2].startswith("[00:01] step plan succeeded in 0.9s · tasks 1 done · 150 tokens")
    assert lines[3] == "[00:01] step research started (fanout, 4 tasks)"
    assert lines[4] == (
        "[00:02] call retried for research[1] (rate_limit HTTP 429, attempt 1), "
        "waiting 2.5s: rate limited"
    )
    assert lines[5] == "[00:02] rate limited on claude-sonnet-5-5: concurrency 10, pausing 1.5s"
    assert lines[6] == "[00:03] task research[2] failed: output never matched the schema"
    assert lines[7] == "[00:03] warning: agent key 'color' ignored (plan)"
    assert lines[8].startswith("[00:05] step research failed in 3.9s · tasks 3 done, 1 failed")
    assert lines[8].endswith(": 1 item failed")
    assert lines[9].startswith("[00:06] run failed in 6.0s · 5 tasks (1 failed) · ")
    assert "+?" in lines[9] and "rate-limit wait 2.5s" in lines[9]
    assert len(lines) == 10  # no line per call, per task start or per heartbeat


def test_rate_limit_wait_is_wall_clock_not_a_sum_over_workers() -> None:
    """A storm: 200 workers told to wait the same 10 s, then 5 s more for one: 15 s."""
    from orchestrator.ui._tally import RunTally

    tally = RunTally()
    for n in range(200):
        tally.apply(
            ev.CallRetried(
                run_id=RUN,
                ts=T0 + n * 0.001,
                task_id=f"t{n}",
                step_id="research",
                attempt=2,
                kind="rate_limit",
                error="429",
                wait_s=10.0,
            )
        )
    tally.apply(
        ev.CallRetried(
            run_id=RUN,
            ts=T0 + 10.199,
            task_id="t0",
            step_id="research",
            attempt=3,
            kind="rate_limit",
            error="429",
            wait_s=5.0,
        )
    )
    assert abs(tally.rate_limit_wait_s - 15.199) < 1e-6


def test_steps_not_yet_started_are_listed_with_their_kind() -> None:
    console = Console(record=True, width=120, force_terminal=True, height=40)
    display = ProgressDisplay(
        console,
        workflow_name="research",
        clock=lambda: T0 + 4.0,
        steps=[("plan", "agent"), ("research", "fanout"), ("report", "merge"), ("gate", "ask")],
    )
    for event in synthetic_run():
        display(event)
    # `gate` never starts: it is skipped, and keeps the kind the workflow gave it
    display(ev.StepFinished(run_id=RUN, ts=T0 + 4.0, step_id="gate", status="skipped"))
    lines = _render(display, console).splitlines()
    report = next(line for line in lines if " report " in f"{line} ")
    assert "merge" in report and "pending" in report and "tok" not in report
    gate = next(line for line in lines if " gate " in f"{line} ")
    assert "ask" in gate and "skipped" in gate and "?" not in gate
    names = {"plan", "research", "report", "gate"}
    rows = [next(w for w in line.split() if w in names) for line in lines[1:5]]  # after the header
    assert rows == ["plan", "research", "report", "gate"]  # in the workflow's order


def test_a_fan_out_line_fits_80_columns() -> None:
    console = Console(record=True, width=80, force_terminal=True, height=40)
    display = ProgressDisplay(console, workflow_name="research", clock=lambda: T0 + 4.0)
    display(
        ev.StepStarted(
            run_id=RUN, ts=T0, step_id="research_topics", kind="fanout", total_tasks=1000
        )
    )
    for i in range(40):
        display(
            ev.TaskStarted(
                run_id=RUN,
                ts=T0,
                task_id=f"t{i}",
                step_id="research_topics",
                key=f"research_topics[{i}]",
                index=i,
            )
        )
    for i in range(30):
        display(
            ev.TaskFinished(
                run_id=RUN,
                ts=T0 + 1,
                task_id=f"t{i}",
                step_id="research_topics",
                status="succeeded" if i % 10 else "failed",
            )
        )
    lines = [line for line in _render(display, console).splitlines() if line.strip()]
    fan_out = [line for line in lines if "research_topics" in line or "done" in line]
    assert len(fan_out) == 1, "\n".join(lines)  # one line: not wrapped onto several
    assert "27/1000 done" in fan_out[0]


def test_a_loop_iteration_line_shows_that_iteration_tokens() -> None:
    out = io.StringIO()
    console = Console(record=True, width=120, force_terminal=True, height=40)
    plain, live = PlainProgress(out), ProgressDisplay(console, workflow_name="w", clock=lambda: T0)
    for it in (1, 2):
        events = [
            ev.StepStarted(run_id=RUN, ts=T0 + it, step_id="fix.try", kind="agent", iteration=it),
            ev.TaskStarted(
                run_id=RUN, ts=T0 + it, task_id=f"t{it}", step_id="fix.try", key=f"fix@{it}.try"
            ),
            _call(f"t{it}", "fix.try", ts=T0 + it, tokens=1000 * it),
            ev.TaskFinished(
                run_id=RUN, ts=T0 + it, task_id=f"t{it}", step_id="fix.try", status="succeeded"
            ),
            ev.StepFinished(
                run_id=RUN, ts=T0 + it, step_id="fix.try", status="succeeded", iteration=it
            ),
        ]
        for event in events:
            plain(event)
            live(event)
    finished = [line for line in out.getvalue().splitlines() if "step fix.try succeeded" in line]
    assert "1,500 tokens" in finished[0] or "1.5k tokens" in finished[0], finished
    # the second iteration's 3,000 tokens alone, not 4,500 summed over iterations
    assert "3,000 tokens" in finished[1] or "3.0k tokens" in finished[1], finished
    row = next(line for line in _render(live, console).splitlines() if "fix.try #2" in line)
    assert "4,500" not in row and "4.5k" not in row
