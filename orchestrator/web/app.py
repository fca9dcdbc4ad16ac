"""The Starlette application of `orchestrate ui`: server-rendered pages over one store.

Pages: `/runs` (filter by status and workflow, search), `/runs/{run}` (step graph, steps with
tokens, dollars and cache hits, cost by step and model, spend and throughput chart, retries and
rate-limit waits, errors), `/runs/{run}/steps/{step}` (a fan-out's tasks as a grid),
`/runs/{run}/tasks/{task}` (the transcript). `?fragment=live` returns a page's live part alone;
`/runs/{run}/stream` is its server-sent events (see `live.py`).

Security, because model output is untrusted HTML: Jinja autoescaping is on for every template
(and never bypassed with `|safe`), the Content-Security-Policy allows only this server's own
script and styles (an injected `<script>` would not run even if escaping failed), and on a
loopback address only loopback Host headers are served (no DNS rebinding onto the history).

The view reads, with one exception: a run's questions for people (an `ask` step, a tool call
waiting for approval) can be answered from its page, through the same calls as `orchestrate
answer/approve/deny` (`orchestrator.people.answers`), on a store of its own opened for writing.
`orchestrate ui --read-only` turns that off. Each answer is a form POST that must carry this
process's random token (rendered into the page, so another site's form cannot forge one) and, when
the browser sends an Origin, this server's own; a refused answer says why and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.web.live import run_stream
from orchestrator.web.runlog import find_log
from orchestrator.web.views import Views

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.store import Run, Store

_HERE = Path(__file__).parent
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATUSES = (
    "running",
    "waiting",
    "interrupted",
    "succeeded",
    "failed",
    "cancelled",
    "budget_exceeded",
)
_MAX_FORM_BYTES = 256 * 1024


# --- template filters -------------------------------------------------------------------------


def _money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def _tokens(value: int | None) -> str:
    if not value:
        return "0"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f}M"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:,}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _duration(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _when(ts: float | None) -> str:
    if ts is None:
        return "–"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _clock(ts: float | None) -> str:
    if ts is None:
        return "–"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every template, whatever its name: model output is untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=_money, tokens=_tokens, pct=_pct, duration=_duration, when=_when, clock=_clock
    )
    return env


class _SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", _CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class WebApp:
    """Routes over `Views`; `asgi` is the Starlette application."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        db: str | None = None,
        allowed_hosts: list[str] | None = None,
        poll_s: float = 0.25,
        answers: Store | None = None,
    ) -> None:
        self.views = Views(store, settings)
        self.answers = answers  # a writable store: questions may be answered here
        self.token = secrets.token_urlsafe(32)
        self.settings = settings
        self.db = db
        self.poll_s = poll_s
        self.env = _templates()
        middleware = [Middleware(_SecurityHeaders)]
        if allowed_hosts:
            middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
        self.asgi = Starlette(
            routes=[
                Route("/", self.home),
                Route("/runs", self.runs),
                Route("/runs/{run_id}", self.run),
                Route("/runs/{run_id}/stream", self.stream),
                Route("/runs/{run_id}/questions/{question_id}", self.answer, methods=["POST"]),
                Route("/runs/{run_id}/steps/{step_id:path}", self.step),
                Route("/runs/{run_id}/tasks/{task_id}", self.task),
                Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
            ],
            middleware=middleware,
        )

    def render(self, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=code)

    def not_found(self, message: str) -> HTMLResponse:
        return self.render("error.html", 404, title="not found", message=message)

    def _run(self, ref: str) -> Run | None:
        from orchestrator.errors import UsageError

        try:
            run_id = self.views.store.resolve_run(ref)
        except UsageError:
            return None
        return self.views.run(run_id)

    # --- pages (sync: Starlette runs them on its thread pool, off the event loop) -------------

    def home(self, request: Request) -> Response:
        return RedirectResponse("/runs", status_code=302)

    def runs(self, request: Request) -> Response:
        params = request.query_params
        status = params.get("status") or None
        workflow = params.get("workflow") or None
        query = params.get("q") or None
        data = self.views.runs(status=status, workflow=workflow, query=query)
        return self.render(
            "runs.html",
            title="runs",
            status=status,
            workflow=workflow,
            query=query or "",
            all_statuses=STATUSES,
            **data,
        )

    def run(self, request: Request) -> Response:
        run = self._run(request.path_params["run_id"])
        if run is None:
            return self.not_found(f"no run {request.path_params['run_id']!r} in this store")
        data = self.views.run_page(run)
        fragment = request.query_params.get("fragment") == "live"
        return self.render(
            "_run_live.html" if fragment else "run.html",
            title=f"run {run.id}",
            questions=self.views.questions(run.id),
            answerable=self.answers is not None,
            token=self.token,
            **data,
        )

    async def answer(self, request: Request) -> Response:
        """POST /runs/{run}/questions/{id}: `action` answer|approve|deny, `value`, `reason`."""
        import anyio.to_thread

        refused = self._refuse_post(request)
        if refused is not None:
            return refused
        body = await request.body()
        if len(body) > _MAX_FORM_BYTES:
            return self._refused(413, f"an answer is at most {_MAX_FORM_BYTES} bytes")
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(form.get("token", ""), self.token):
            return self._refused(
                403, "this form is out of date (the server restarted): reload the page"
            )
        run_id = request.path_params["run_id"]
        question_id = request.path_params["question_id"]
        try:
            await anyio.to_thread.run_sync(self._write_answer, run_id, question_id, form)
        except Exception as exc:
            from orchestrator.errors import OrchestrateError

            if not isinstance(exc, OrchestrateError):
                raise
            return self._refused(400, str(exc), back=f"/runs/{run_id}")
        return RedirectResponse(f"/runs/{run_id}#questions", status_code=303)

    def _write_answer(self, run_id: str, question_id: str, form: dict[str, str]) -> None:
        from orchestrator.errors import UsageError
        from orchestrator.people import answers

        assert self.answers is not None
        action = form.get("action", "answer")
        if action == "approve":
            answers.approve(self.answers, run_id, question_id, by="web")
        elif action == "deny":
            answers.deny(self.answers, run_id, question_id, form.get("reason", ""), by="web")
        elif action == "answer":
            answers.answer(self.answers, run_id, question_id, form.get("value", ""), by="web")
        else:
            raise UsageError(f"unknown action {action!r}: answer, approve or deny")

    def _refuse_post(self, request: Request) -> Response | None:
        if self.answers is None:
            return self._refused(
                405, "this view is read-only (orchestrate ui --read-only): answer with the CLI"
            )
        origin = request.headers.get("origin")
        if origin is not None and origin != "null":
            host = request.headers.get("host", "")
            if urllib.parse.urlsplit(origin).netloc != host:
                return self._refused(403, f"an answer from another site ({origin}) is refused")
        elif origin == "null":
            return self._refused(403, "an answer from an opaque origin is refused")
        return None

    def _refused(self, code: int, message: str, *, back: str | None = None) -> HTMLResponse:
        return self.render("error.html", code, title="not answered", message=message, back=back)

    def step(self, request: Request) -> Response:
        run = self._run(request.path_params["run_id"])
        step_id = request.path_params["step_id"]
        if run is None:
            return self.not_found(f"no run {request.path_params['run_id']!r} in this store")
        data = self.views.step_page(run, step_id)
        if data is None:
            return self.not_found(f"run {run.id} has no step {step_id!r}")
        fragment = request.query_params.get("fragment") == "live"
        return self.render(
            "_step_live.html" if fragment else "step.html", title=f"step {step_id}", **data
        )

    def task(self, request: Request) -> Response:
        run = self._run(request.path_params["run_id"])
        task_id = request.path_params["task_id"]
        if run is None:
            return self.not_found(f"no run {request.path_params['run_id']!r} in this store")
        task = self.views.task(run.id, task_id)
        if task is None:
            return self.not_found(f"run {run.id} has no task {task_id!r}")
        data = self.views.task_page(run, task)
        fragment = request.query_params.get("fragment") == "live"
        return self.render(
            "_task_live.html" if fragment else "task.html", title=f"task {task.id}", **data
        )

    async def stream(self, request: Request) -> Response:
        import anyio.to_thread

        run = await anyio.to_thread.run_sync(self._run, request.path_params["run_id"])
        if run is None:
            return Response("no such run", status_code=404)
        try:
            after = int(request.query_params.get("after") or 0)
        except ValueError:
            after = 0
        log = find_log(run.id, self.settings.engine.logs_dir, self.db)
        frames = run_stream(
            self.views,
            run.id,
            log,
            task=request.query_params.get("task") or None,
            after_seq=after,
            poll_s=self.poll_s,
        )
        return StreamingResponse(
            frames,
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )


def create_app(
    store: Store,
    settings: Settings,
    *,
    db: str | None = None,
    allowed_hosts: list[str] | None = None,
    poll_s: float = 0.25,
    answers: Store | None = None,
) -> Starlette:
    """The ASGI application over `store` (opened read-only by the caller). With `answers` (the
    same database opened for writing), a run's page answers its pending questions."""
    return WebApp(
        store, settings, db=db, allowed_hosts=allowed_hosts, poll_s=poll_s, answers=answers
    ).asgi
