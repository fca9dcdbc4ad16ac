"""When a scheduled workflow runs: pure decisions on timestamps, tested without running anything.

Slots are points in time. `every: N` slots are the multiples of N seconds since the epoch (so a
restarted server keeps the same slots: 10m means :00, :10, :20...); `cron` slots are the cron's
times in its `timezone` (UTC by default). A server that was down over several slots runs ONE
catch-up run, for the latest slot it missed, not one per slot (`catch_up`). What happens to a
slot due while the workflow's last scheduled run is still running is the workflow's `overlap`
(`decide`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo

from cronsim import CronSim

from orchestrator.workflow.models import Schedule

__all__ = ["SlotAction", "catch_up", "decide", "describe", "latest_slot", "next_slot"]


class SlotAction(StrEnum):
    START = "start"  # start a run for the slot now
    SKIP = "skip"  # overlap: skip, a run is still going
    QUEUE = "queue"  # overlap: queue, start it when the running one ends
    DROP = "drop"  # overlap: queue, one is queued already: this slot adds nothing


def _zone(schedule: Schedule) -> tzinfo:
    return ZoneInfo(schedule.timezone) if schedule.timezone else UTC


def next_slot(schedule: Schedule, after: float) -> float:
    """The first slot strictly after `after`."""
    if schedule.every is not None:
        return (math.floor(after / schedule.every) + 1) * schedule.every
    assert schedule.cron is not None
    start = datetime.fromtimestamp(after, _zone(schedule))
    return next(CronSim(schedule.cron, start)).timestamp()


def latest_slot(schedule: Schedule, at: float) -> float:
    """The last slot at or before `at`."""
    if schedule.every is not None:
        return math.floor(at / schedule.every) * schedule.every
    assert schedule.cron is not None
    # cronsim's reverse iteration yields times strictly before its start; cron is per minute
    start = datetime.fromtimestamp(math.floor(at) + 1, _zone(schedule))
    return next(CronSim(schedule.cron, start, reverse=True)).timestamp()


def catch_up(schedule: Schedule, last_run_slot: float | None, now: float) -> float | None:
    """The one slot to run at start-up for what the server missed while it was down, or None.

    A workflow that never ran under this store has missed nothing (it starts at its next slot);
    one whose latest recorded slot is older than the latest slot due runs once, for that slot."""
    if last_run_slot is None:
        return None
    due = latest_slot(schedule, now)
    return due if due > last_run_slot else None


@dataclass(frozen=True, slots=True)
class Overlap:
    running: int  # scheduled runs of the workflow still going
    queued: bool  # one is already waiting for them (overlap: queue)


def decide(overlap: str, state: Overlap) -> SlotAction:
    """What a slot does, given the workflow's `overlap` and its runs in flight."""
    if state.running == 0 or overlap == "allow":
        return SlotAction.START
    if overlap == "queue":
        return SlotAction.DROP if state.queued else SlotAction.QUEUE
    return SlotAction.SKIP


def describe(schedule: Schedule) -> str:
    """`every 10m`, `cron 0 9 * * 1-5 (Europe/Paris)`: for logs and `serve status`."""
    if schedule.every is not None:
        return f"every {schedule.every:g}s"
    zone = f" ({schedule.timezone})" if schedule.timezone else " (UTC)"
    return f"cron {schedule.cron}{zone}"
