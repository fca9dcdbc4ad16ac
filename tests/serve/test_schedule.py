"""The schedule's decisions, without running anything: slots, one catch-up, overlap."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from orchestrator.serve.schedule import (
    Overlap,
    SlotAction,
    catch_up,
    decide,
    latest_slot,
    next_slot,
)
from orchestrator.workflow.models import Schedule

EVERY_10M = Schedule(every=600)


def test_every_slots_are_multiples_of_the_interval_so_a_restart_keeps_them() -> None:
    assert next_slot(EVERY_10M, 1_000_000.0) == 1_000_200.0
    assert next_slot(EVERY_10M, 1_000_200.0) == 1_000_800.0  # strictly after
    assert latest_slot(EVERY_10M, 1_000_200.0) == 1_000_200.0
    assert latest_slot(EVERY_10M, 1_000_199.0) == 999_600.0


def test_cron_slots_follow_the_timezone() -> None:
    paris = ZoneInfo("Europe/Paris")
    weekdays_9 = Schedule(cron="0 9 * * 1-5", timezone="Europe/Paris")
    friday_10 = datetime(2026, 12, 4, 10, 0, tzinfo=paris).timestamp()
    nxt = datetime.fromtimestamp(next_slot(weekdays_9, friday_10), paris)
    assert (nxt.weekday(), nxt.hour, nxt.minute) == (0, 9, 0)  # Monday, not Saturday
    last = datetime.fromtimestamp(latest_slot(weekdays_9, friday_10), paris)
    assert (last.day, last.hour) == (4, 9)
    utc = Schedule(cron="0 9 * * *")
    assert datetime.fromtimestamp(next_slot(utc, friday_10), ZoneInfo("UTC")).hour == 9


def test_a_server_down_over_many_slots_catches_up_once_for_the_latest() -> None:
    last = 1_000_200.0
    now = last + 600 * 7 + 30  # seven slots missed
    assert catch_up(EVERY_10M, last, now) == last + 600 * 7
    assert catch_up(EVERY_10M, last, last + 30) is None  # nothing missed
    assert catch_up(EVERY_10M, None, now) is None  # never ran: starts at its next slot


def test_overlap_skip_queue_allow() -> None:
    idle, busy, busy_queued = Overlap(0, False), Overlap(1, False), Overlap(1, True)
    assert decide("skip", idle) is SlotAction.START
    assert decide("skip", busy) is SlotAction.SKIP
    assert decide("queue", busy) is SlotAction.QUEUE
    assert decide("queue", busy_queued) is SlotAction.DROP  # one waits, never a pile
    assert decide("allow", busy_queued) is SlotAction.START
