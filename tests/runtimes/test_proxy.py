"""The loopback proxy on its own: a token names a task, a reply streams back whole, errors map.

The client here is the Anthropic SDK itself (what Claude Code's own client does the same way):
a message the dispatcher returned must come out of the SDK's stream accumulator unchanged.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from orchestrator.contracts import LLMResponse, TaskSpec, Usage
from orchestrator.errors import BudgetExceeded, FatalError
from orchestrator.runtimes.claude_code import MessagesProxy
from orchestrator.runtimes.claude_code.process import environment

MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [
        {"type": "thinking", "thinking": "Let me look.", "signature": "c2ln"},
        {"type": "text", "text": "I will list the files."},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -a"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "output_tokens": 34,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 56,
    },
}
SPEC = TaskSpec(run_id="r", task_id="t1", step_id="s", key="s", model="m", prompt="p")
REQUEST = {
    "model": "claude-haiku-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_a_reply_streams_back_exactly_and_the_call_is_the_tasks() -> None:
    seen: list[tuple[TaskSpec, dict[str, Any]]] = []

    async def call(spec: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        seen.append((spec, request))
        return LLMResponse(message=MESSAGE, usage=Usage(output_tokens=34), cost_usd=0.5)

    proxy = MessagesProxy()
    async with proxy.running():
        with proxy.lease(SPEC, call) as lease:
            client = anthropic.AsyncAnthropic(
                api_key=lease.token, base_url=proxy.base_url, max_retries=0
            )
            async with client.messages.stream(
                **REQUEST, extra_headers={"anthropic-beta": "b1"}
            ) as stream:
                final = await stream.get_final_message()
            await client.close()
        assert lease.calls == 1 and lease.cost_usd == 0.5 and lease.usage.output_tokens == 34
    assert final.model_dump(mode="json", exclude_none=True) == {
        k: v for k, v in MESSAGE.items() if v is not None
    }
    spec, request = seen[0]
    assert spec is SPEC and request["stream"] is True
    assert request["extra_headers"] == {"anthropic-beta": "b1"}
    assert request["messages"] == REQUEST["messages"]


async def test_an_unknown_token_is_refused_and_a_finished_task_token_too() -> None:
    async def call(spec: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        raise AssertionError("no call may leave without a valid token")

    proxy = MessagesProxy()
    async with proxy.running():
        with proxy.lease(SPEC, call) as lease:
            token = lease.token
        for key in ("sk-ant-guess", token):
            client = anthropic.AsyncAnthropic(api_key=key, base_url=proxy.base_url, max_retries=0)
            with pytest.raises(anthropic.AuthenticationError):
                await client.messages.create(**REQUEST)
            await client.close()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BudgetExceeded("budget reached: 10 tokens of 5"), 400),
        (FatalError(message="bad model", status=404, error_type="not_found_error"), 404),
    ],
)
async def test_a_refused_call_stops_the_task_and_says_why(error: Exception, status: int) -> None:
    async def call(spec: TaskSpec, request: dict[str, Any]) -> LLMResponse:
        raise error

    proxy = MessagesProxy()
    async with proxy.running():
        with proxy.lease(SPEC, call) as lease:
            client = anthropic.AsyncAnthropic(
                api_key=lease.token, base_url=proxy.base_url, max_retries=0
            )
            with pytest.raises(anthropic.APIStatusError) as raised:
                await client.messages.create(**REQUEST)
            assert raised.value.status_code == status
            with pytest.raises(anthropic.BadRequestError):  # and every later call too
                await client.messages.create(**REQUEST)
            await client.close()
        assert lease.stopped is error


def test_the_environment_is_built_from_scratch(tmp_path: Any) -> None:
    parent = {
        "PATH": "/usr/bin",
        "ANTHROPIC_API_KEY": "sk-ant-real",
        "ANTHROPIC_AUTH_TOKEN": "tok",
        "GITHUB_TOKEN": "ghp_x",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "HOME": "/root",
    }
    env = environment(home=tmp_path, base_url="http://127.0.0.1:1", token="t", parent=parent)
    assert env["ANTHROPIC_API_KEY"] == "t" and env["HOME"] == str(tmp_path)
    assert env["PATH"] == "/usr/bin" and env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert not {"ANTHROPIC_AUTH_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert "sk-ant-real" not in env.values()
