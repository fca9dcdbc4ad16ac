"""The trigger endpoint of `orchestrate serve --listen`: start runs over HTTP, read their status.

- `POST /runs` with `Authorization: Bearer $ORCHESTRATE_SERVE_TOKEN` and a JSON body
  `{"workflow": "<file stem of a hosted workflow>", "inputs": {...}}` starts a run: 201 and
  `{"run_id", "workflow", "status": "running"}`.
- `GET /runs/ID` (same token): `{"run_id", "workflow", "status", "outputs", "error"}`.
- `GET /status` (same token): what the server hosts (as `orchestrate serve status`).
- `POST /hooks/github/<workflow>`: a GitHub webhook, verified by its `X-Hub-Signature-256`
  (HMAC-SHA256 of the body with `ORCHESTRATE_WEBHOOK_SECRET`); the run gets the inputs `event`
  (the `X-GitHub-Event` header) and `payload` (the parsed body), those of them it declares.

Invariants: without its secret set, each route refuses everything (403), so an endpoint is
never open by accident; tokens and signatures are compared in constant time; anything wrong
(bad JSON, unknown workflow, bad inputs, stopping) is a 4xx/503 with a message naming the fix,
and nothing is started. The secrets are never echoed, logged or put into a run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestrator.errors import UsageError
from orchestrator.serve.host import Draining

if TYPE_CHECKING:
    from orchestrator.serve.host import Server

__all__ = ["MAX_BODY", "create_app"]

MAX_BODY = 5 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB; runs need far less


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _bearer(server: Server, request: Request) -> JSONResponse | None:
    """None when the request carries the server's token; else the response refusing it."""
    if server.token is None:
        return _error(
            403,
            "the trigger endpoint is off: start `orchestrate serve` with ORCHESTRATE_SERVE_TOKEN "
            "set, and send it as `Authorization: Bearer <token>`",
        )
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error(401, "missing bearer token: send `Authorization: Bearer <token>`")
    if not hmac.compare_digest(token.strip().encode(), server.token.encode()):
        return _error(401, "wrong bearer token")
    return None


async def _body(request: Request) -> bytes | JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(413, f"body over {MAX_BODY} bytes")
    return body


def _start(server: Server, workflow: str, inputs: dict[str, Any], origin: str) -> JSONResponse:
    try:
        run_id = server.start(workflow, inputs, origin=origin)
    except Draining as exc:
        return _error(503, str(exc))
    except UsageError as exc:
        status = 404 if workflow not in server.hosting else 422
        return _error(status, str(exc))
    return JSONResponse(
        {"run_id": run_id, "workflow": workflow, "status": "running"}, status_code=201
    )


def create_app(server: Server) -> Starlette:
    async def post_run(request: Request) -> JSONResponse:
        refused = _bearer(server, request)
        if refused is not None:
            return refused
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            data = json.loads(body or b"null")
        except ValueError as exc:
            return _error(400, f"the body is not JSON ({exc})")
        if not isinstance(data, dict) or not isinstance(data.get("workflow"), str):
            return _error(
                400, 'the body must be a JSON object: {"workflow": "<name>", "inputs": {...}}'
            )
        unknown = sorted(set(data) - {"workflow", "inputs"})
        if unknown:
            return _error(400, f"unknown field(s) {', '.join(unknown)}: only workflow, inputs")
        inputs = data.get("inputs") or {}
        if not isinstance(inputs, dict):
            return _error(400, "'inputs' must be a JSON object of input name to value")
        return _start(server, data["workflow"], inputs, "trigger")

    async def get_run(request: Request) -> JSONResponse:
        refused = _bearer(server, request)
        if refused is not None:
            return refused
        run_id = request.path_params["run_id"]
        active = server.active.get(run_id)
        if active is not None:
            return JSONResponse(
                {
                    "run_id": run_id,
                    "workflow": active.workflow,
                    "status": "running",
                    "outputs": None,
                    "error": None,
                }
            )
        done = server.finished.get(run_id)
        if done is not None:
            return JSONResponse(
                {
                    "run_id": run_id,
                    "workflow": done.workflow,
                    "status": done.status,
                    "outputs": done.outputs,
                    "error": done.error,
                }
            )
        stale = server.settings.engine.stale_after
        record = await anyio.to_thread.run_sync(
            lambda: server.store.get_run(run_id, stale_after_s=stale)
        )
        if record is None:
            return _error(404, f"no run {run_id!r}")
        return JSONResponse(
            {
                "run_id": run_id,
                "workflow": record.workflow_name,
                "status": record.status,
                "outputs": record.outputs,
                "error": record.error,
            }
        )

    async def get_status(request: Request) -> JSONResponse:
        refused = _bearer(server, request)
        if refused is not None:
            return refused
        return JSONResponse(server.status())

    async def github_hook(request: Request) -> JSONResponse:
        secret = server.webhook_secret
        if secret is None:
            return _error(
                403,
                "GitHub hooks are off: start `orchestrate serve` with ORCHESTRATE_WEBHOOK_SECRET "
                "set to the webhook's secret",
            )
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        signature = request.headers.get("x-hub-signature-256", "")
        if not signature.startswith("sha256="):
            return _error(401, "missing X-Hub-Signature-256 (set the webhook's secret)")
        wanted = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), wanted.encode()):
            return _error(401, "bad X-Hub-Signature-256: the body does not match the secret")
        workflow = request.path_params["workflow"]
        hosting = server.hosting.get(workflow)
        if hosting is None:
            names = ", ".join(sorted(server.hosting)) or "none"
            return _error(404, f"unknown workflow {workflow!r}; this server hosts: {names}")
        try:
            payload = json.loads(body or b"null")
        except ValueError as exc:
            return _error(400, f"the payload is not JSON ({exc}); set the content type to JSON")
        given = {"event": request.headers.get("x-github-event", ""), "payload": payload}
        inputs = {k: v for k, v in given.items() if k in hosting.workflow.inputs}
        return _start(server, workflow, inputs, "hook")

    return Starlette(
        routes=[
            Route("/runs", post_run, methods=["POST"]),
            Route("/runs/{run_id}", get_run, methods=["GET"]),
            Route("/status", get_status, methods=["GET"]),
            Route("/hooks/github/{workflow}", github_hook, methods=["POST"]),
        ]
    )
