"""Which answers a question accepts, and the store's questions: written once, answered once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator.contracts.people import check_answer
from orchestrator.errors import UsageError
from orchestrator.store import Questions, Store

OPTIONS = ["proceed", "redo", "quit"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(str(tmp_path / "state.db"))
    yield s  # type: ignore[misc]
    s.close()


def test_an_option_is_accepted_by_its_value_or_its_number() -> None:
    assert check_answer(OPTIONS, None, "redo") == "redo"
    assert check_answer(OPTIONS, None, "3") == "quit"
    assert check_answer(OPTIONS, None, " Proceed ") == "proceed"


def test_a_value_outside_the_options_is_refused_with_the_allowed_values() -> None:
    with pytest.raises(UsageError) as info:
        check_answer(OPTIONS, None, "maybe", where="step 'confirm'")
    message = str(info.value)
    assert "step 'confirm'" in message and "'maybe'" in message
    assert "1) proceed, 2) redo, 3) quit" in message
    with pytest.raises(UsageError):
        check_answer(OPTIONS, None, "4")
    assert info.value.exit_code == 2


def test_a_schema_answer_is_json_that_matches_it() -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    assert check_answer(None, schema, '{"n": 3}') == {"n": 3}
    with pytest.raises(UsageError, match="'n' is a required property"):
        check_answer(None, schema, '{"m": 3}')
    with pytest.raises(UsageError, match="not JSON"):
        check_answer(None, schema, "three")
    # a bare word is a fine answer to a string schema
    assert check_answer(None, {"type": "string", "enum": ["a", "b"]}, "a") == "a"
    assert check_answer(None, {"type": "integer", "minimum": 1}, "7") == 7
    with pytest.raises(UsageError, match="less than the minimum"):
        check_answer(None, {"type": "integer", "minimum": 1}, "0")


def test_free_text_takes_any_words_but_not_nothing() -> None:
    assert check_answer(None, None, "  ship it  ") == "ship it"
    with pytest.raises(UsageError, match="empty answer"):
        check_answer(None, None, "   ")


def test_a_question_is_written_once_per_run_and_key(store: Store) -> None:
    questions = Questions(store)
    first = questions.ask(run_id="r1", step_id="confirm", key="confirm", prompt="Go?")
    again = questions.ask(run_id="r1", step_id="confirm", key="confirm", prompt="Go? (again)")
    assert again.id == first.id and again.prompt == "Go?"
    other = questions.ask(run_id="r2", step_id="confirm", key="confirm", prompt="Go?")
    assert other.id != first.id
    assert [q.id for q in questions.pending()] == [first.id, other.id]
    assert [q.id for q in questions.pending("r2")] == [other.id]


def test_an_answer_is_written_once_and_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = Store.open(path)
    questions = Questions(store)
    asked = questions.ask(run_id="r1", step_id="ok", key="ok", prompt="Go?", options=OPTIONS)
    questions.answer(asked.id, "redo", by="cli")
    with pytest.raises(UsageError, match="already answered"):
        questions.answer(asked.id, "quit", by="web")
    store.close()
    reopened = Questions(Store.open(path))
    row = reopened.get("r1", "ok")
    assert row is not None and row.status == "answered"
    assert (row.answer, row.answered_by) == ("redo", "cli")
    assert reopened.pending() == []


def test_of_two_people_answering_at_once_one_wins(store: Store) -> None:
    questions = Questions(store)
    asked = questions.ask(run_id="r1", step_id="ok", key="ok", prompt="Go?")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def answer(value: str) -> None:
        start.wait()
        try:
            questions.answer(asked.id, value)
            outcomes.append("won")
        except UsageError:
            outcomes.append("refused")

    threads = [threading.Thread(target=answer, args=(v,)) for v in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "won"]


def test_a_question_is_found_by_step_path_or_id_prefix(store: Store) -> None:
    questions = Questions(store)
    one = questions.ask(run_id="r1", step_id="polish.ok", key="polish@1.ok", prompt="1?")
    questions.answer(one.id, "yes")
    two = questions.ask(run_id="r1", step_id="polish.ok", key="polish@2.ok", prompt="2?")
    assert questions.resolve("r1", "polish.ok").id == two.id  # the one that waits
    assert questions.resolve("r1", one.id[:12]).id == one.id
    with pytest.raises(UsageError, match=r"has no question 'nope'.*polish\.ok"):
        questions.resolve("r1", "nope")
    questions.ask(run_id="r1", step_id="fan", key="fan[0]#a", prompt="a", kind="approval")
    questions.ask(run_id="r1", step_id="fan", key="fan[1]#b", prompt="b", kind="approval")
    with pytest.raises(UsageError, match="2 pending approvals; name one"):
        questions.resolve("r1", "fan", kind="approval")
