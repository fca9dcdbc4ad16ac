"""People in the loop: the `People` port the engine asks through, built over the store.

- `desk.Desk`: a run's port: records questions, sends notices, asks on the terminal, waits for
  an answer from the store (`--wait`), or lets the step end `waiting`.
- `answers`: answer, approve, deny and list pending questions from anywhere (the CLI, the web
  view, a script): `answers.answer(store, run, question, value)`.
- `notify`: the `notify:` command and URL; `terminal`: the inline prompt.

Like `cli/` and `assembly`, this package may import the store; nothing in the core imports it
(the engine sees only the `People` protocol).
"""

from orchestrator.people.desk import Desk
from orchestrator.people.notify import NoticeTargets

__all__ = ["Desk", "NoticeTargets"]
