"""Answering from the web view: a waiting run's page shows its questions as forms; an answer or
an approval posted there is stored as `orchestrate answer/approve/deny` store it, and `resume`
uses it. Forged posts (no token, another site's Origin) and answers outside the options are
refused with a message and change nothing; `--read-only` refuses every post."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from starlette.testclient import TestClient

from orchestrator.config import load_settings
from orchestrator.store import Questions, Store
from orchestrator.web import LOOPBACK_HOSTS, create_app
from tests.ask.conftest import GATE, invoke, invoke_json, run_id_of, write
from tests.ask.test_approval_cli import FLOW, RULES


def _client(project: Path, *, read_only: bool = False) -> Iterator[tuple[TestClient, Store]]:
    db = str(project / ".orchestrate" / "state.db")
    store = Store.open(db, readonly=True)
    answers = None if read_only else Store.open(db)
    app = create_app(store, load_settings(), allowed_hosts=LOOPBACK_HOSTS, answers=answers)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield client, store
    finally:
        store.close()
        if answers is not None:
            answers.close()


def _token(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, "the page has no answer form"
    return match.group(1)


def test_an_ask_answered_on_the_run_page_lets_resume_finish(project: Path) -> None:
    write(project, GATE)
    code, _, err = invoke("run", "wf.yaml", "--simulate")
    assert code == 4, err
    run_id = run_id_of(err)
    for client, store in _client(project):
        _answer_the_gate(client, store, run_id)
    code, _, err = invoke("resume", run_id, "--simulate")
    assert code == 0, err
    shown = invoke_json("runs", "show", run_id)
    assert shown["outputs"]["decision"] == "proceed"


def _answer_the_gate(client: TestClient, store: Store, run_id: str) -> None:
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "Waiting for you" in page.text
    assert "Proceed with these 2 subtasks?" in page.text
    (question,) = Questions(store).pending(run_id)
    url = f"/runs/{run_id}/questions/{question.id}"
    token = _token(page.text)

    forged = client.post(url, data={"action": "answer", "value": "proceed"})
    assert forged.status_code == 403 and "reload the page" in forged.text
    foreign = client.post(
        url,
        data={"token": token, "action": "answer", "value": "proceed"},
        headers={"origin": "http://evil.example"},
    )
    assert foreign.status_code == 403 and "evil.example" in foreign.text
    wrong = client.post(url, data={"token": token, "action": "answer", "value": "maybe"})
    assert wrong.status_code == 400 and "proceed" in wrong.text  # names the allowed values
    assert [q.id for q in Questions(store).pending(run_id)] == [question.id]  # nothing changed

    done = client.post(
        url,
        data={"token": token, "action": "answer", "value": "proceed"},
        headers={"origin": "http://127.0.0.1"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith(f"/runs/{run_id}")
    assert Questions(store).pending(run_id) == []
    again = client.post(url, data={"token": token, "action": "answer", "value": "quit"})
    assert again.status_code == 400 and "already answered" in again.text


def test_a_tool_call_denied_on_the_page_reaches_the_model_with_the_reason(
    project: Path,
) -> None:
    write(project, FLOW)
    write(project, RULES, "rules.yaml")
    code, _, err = invoke("run", "wf.yaml", "--simulate", "--sim-script", "rules.yaml")
    assert code == 4, err
    run_id = run_id_of(err)
    for client, store in _client(project):
        _deny_the_write(client, store, run_id)
    code, _, err = invoke("resume", run_id, "--simulate", "--sim-script", "rules.yaml")
    assert code == 0, err
    transcript = invoke_json("runs", "transcript", run_id, "edit")
    assert "notes go in docs/" in str(transcript)
    assert not (project / ".orchestrate" / "runs" / run_id / "workspace" / "note.txt").exists()


def _deny_the_write(client: TestClient, store: Store, run_id: str) -> None:
    page = client.get(f"/runs/{run_id}")
    assert "note.txt" in page.text and 'value="deny"' in page.text
    (question,) = Questions(store).pending(run_id)
    url = f"/runs/{run_id}/questions/{question.id}"
    token = _token(page.text)
    blank = client.post(url, data={"token": token, "action": "deny", "reason": " "})
    assert blank.status_code == 400 and "needs a reason" in blank.text
    denied = client.post(
        url,
        data={"token": token, "action": "deny", "reason": "notes go in docs/"},
        follow_redirects=False,
    )
    assert denied.status_code == 303


def test_a_read_only_view_shows_the_question_and_refuses_answers(project: Path) -> None:
    write(project, GATE)
    code, _, err = invoke("run", "wf.yaml", "--simulate")
    assert code == 4, err
    run_id = run_id_of(err)
    for client, store in _client(project, read_only=True):
        page = client.get(f"/runs/{run_id}")
        assert "Proceed with these" in page.text and "orchestrate answer" in page.text
        assert "<button" not in page.text.split('id="questions"')[1].split("</section>")[0]
        (question,) = Questions(store).pending(run_id)
        refused = client.post(
            f"/runs/{run_id}/questions/{question.id}",
            data={"token": _token(page.text), "value": "proceed"},
        )
        assert refused.status_code == 405 and "read-only" in refused.text
        assert len(Questions(store).pending(run_id)) == 1
