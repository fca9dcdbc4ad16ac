"""`AnthropicLLM` through the real SDK against a loopback server: shapes, errors, secrets."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from llm_fake_api import FakeAPI

from orchestrator.config import Settings
from orchestrator.errors import FatalError, LLMError, RetryableError, UsageError
from orchestrator.llm import AnthropicLLM, make_llm, read_ratelimit

API_KEY = "sk-ant-api03-TESTSECRET-0123456789abcdef"


def request(scenario: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_headers": {"x-test-scenario": scenario, "X-Orchestrate-Step": "plan"},
        **extra,
    }


@pytest.fixture(params=["aiohttp", "httpx", "direct"])
async def llm(request: pytest.FixtureRequest, fake_api: FakeAPI) -> AsyncIterator[AnthropicLLM]:
    client = AnthropicLLM(
        api_key=API_KEY, base_url=fake_api.base_url, transport=request.param, timeout_s=1.0
    )
    yield client
    await client.aclose()


async def test_non_stream_response_is_plain_data(llm: AnthropicLLM, fake_api: FakeAPI) -> None:
    response = await llm.create(request())
    message = response.message
    assert message["id"] == "msg_01"
    assert message["stop_reason"] == "tool_use"
    assert "stop_sequence" not in message  # nulls dropped
    assert message["content"][1]["input"] == {"file_path": "a.txt"}
    assert response.request_id == "req_ok_1"
    assert response.latency_s > 0
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens) == (12, 34)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (300, 200)
    assert usage.cache_creation_5m_input_tokens == 100
    assert usage.cache_creation_1h_input_tokens == 200
    assert response.ratelimit is not None
    assert response.ratelimit.requests_remaining == 3999
    assert response.ratelimit.output_tokens_limit == 400000
    sent = fake_api.requests[-1]
    assert sent["headers"]["x-orchestrate-step"] == "plan"
    assert "stream" not in sent["body"]


async def test_stream_returns_the_same_message_shape(llm: AnthropicLLM, fake_api: FakeAPI) -> None:
    plain = await llm.create(request())
    streamed = await llm.create(request(stream=True))
    assert fake_api.requests[-1]["body"]["stream"] is True
    assert streamed.message == plain.message
    assert streamed.usage == plain.usage
    assert streamed.request_id == "req_ok_1"
    assert streamed.ratelimit == plain.ratelimit
    also = await llm.create(request(), stream=True)
    assert also.message == plain.message


async def test_rate_limit_reads_retry_after_ms(llm: AnthropicLLM) -> None:
    with pytest.raises(RetryableError) as info:
        await llm.create(request("429"))
    error = info.value
    assert (error.kind, error.status, error.retry_after) == ("rate_limit", 429, 1.5)
    assert error.error_type == "rate_limit_error"
    assert error.request_id == "req_err_1"


async def test_rate_limit_reads_retry_after_seconds(llm: AnthropicLLM) -> None:
    with pytest.raises(RetryableError) as info:
        await llm.create(request("429-seconds"))
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("scenario", "kind", "status"),
    [("529", "overloaded", 529), ("500", "server", 500)],
)
async def test_server_side_errors_are_retryable(
    llm: AnthropicLLM, scenario: str, kind: str, status: int
) -> None:
    with pytest.raises(RetryableError) as info:
        await llm.create(request(scenario))
    assert (info.value.kind, info.value.status) == (kind, status)


async def test_error_event_inside_a_stream_is_overloaded(llm: AnthropicLLM) -> None:
    with pytest.raises(RetryableError) as info:
        await llm.create(request("stream-error", stream=True))
    assert info.value.kind == "overloaded"
    assert info.value.error_type == "overloaded_error"


async def test_bad_request_is_fatal_with_the_api_message(llm: AnthropicLLM) -> None:
    with pytest.raises(FatalError) as info:
        await llm.create(request("400"))
    error = info.value
    assert error.message == "max_tokens: must be at least 1"
    assert (error.status, error.error_type, error.request_id) == (
        400,
        "invalid_request_error",
        "req_err_1",
    )
    assert str(error) == "HTTP 400 max_tokens: must be at least 1 (request id req_err_1)"


async def test_not_found_names_the_model_with_a_hint(llm: AnthropicLLM) -> None:
    with pytest.raises(FatalError, match=r"model: claude-nope \(check the model id"):
        await llm.create(request("404"))


async def test_auth_error_is_fatal_and_never_shows_the_key(llm: AnthropicLLM) -> None:
    with pytest.raises(FatalError) as info:
        await llm.create(request("401"))
    error = info.value
    assert error.status == 401 and "ANTHROPIC_API_KEY" in str(error)
    _assert_no_key(error)


async def test_timeout_is_retryable(fake_api: FakeAPI) -> None:
    llm = AnthropicLLM(api_key=API_KEY, base_url=fake_api.base_url, timeout_s=0.3)
    try:
        with pytest.raises(RetryableError) as info:
            await llm.create(request("slow"))
    finally:
        await llm.aclose()
    assert info.value.kind == "timeout"


async def test_unreadable_body_is_retryable(llm: AnthropicLLM) -> None:
    with pytest.raises(RetryableError) as info:
        await llm.create(request("garbage"))
    assert info.value.kind == "server"


async def test_the_key_is_sent_but_never_returned(llm: AnthropicLLM, fake_api: FakeAPI) -> None:
    response = await llm.create(request())
    headers = fake_api.requests[-1]["headers"]
    assert API_KEY in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    assert API_KEY not in json.dumps(dataclasses.asdict(response), default=str)
    assert API_KEY not in repr(llm)
    errors: list[LLMError] = []
    for scenario in ("400", "401", "404", "429", "529", "500"):
        try:
            await llm.create(request(scenario))
        except LLMError as exc:
            errors.append(exc)
    assert len(errors) == 6
    for error in errors:
        _assert_no_key(error)


async def test_output_config_schema_is_adapted_for_the_api(
    llm: AnthropicLLM, fake_api: FakeAPI
) -> None:
    schema = {
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"type": "integer", "minimum": 1}},
    }
    output_config = {"format": {"type": "json_schema", "schema": schema}}
    await llm.create(request(output_config=output_config))
    sent = fake_api.requests[-1]["body"]["output_config"]["format"]["schema"]
    assert sent["additionalProperties"] is False
    assert "minimum" not in sent["properties"]["n"]
    assert schema["properties"]["n"] == {"type": "integer", "minimum": 1}  # caller's copy intact


def _assert_no_key(error: BaseException) -> None:
    text = " ".join([str(error), repr(error), *map(str, vars(error).values())])
    assert API_KEY not in text
    assert error.__cause__ is None  # no SDK object (with its request headers) rides along


def test_read_ratelimit_from_plain_headers() -> None:
    info = read_ratelimit(
        {
            "Anthropic-RateLimit-Requests-Remaining": "5",
            "anthropic-ratelimit-input-tokens-limit": "100",
            "retry-after": "3",
        }
    )
    assert info.requests_remaining == 5
    assert info.input_tokens_limit == 100
    assert info.retry_after == 3.0
    assert info.output_tokens_limit is None
    assert read_ratelimit({"retry-after-ms": "250", "retry-after": "9"}).retry_after == 0.25
    assert read_ratelimit({"retry-after": "soon"}).retry_after is None


def test_make_llm_without_a_key_names_both_ways_out() -> None:
    with pytest.raises(UsageError) as info:
        make_llm(Settings(), environ={})
    assert "ANTHROPIC_API_KEY" in str(info.value) and "--simulate" in str(info.value)
    assert info.value.exit_code == 2


async def test_make_llm_reads_the_environment_and_simulate() -> None:
    settings = Settings()
    llm = make_llm(
        settings,
        environ={"ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"},
    )
    assert llm.base_url == "http://127.0.0.1:9"
    assert llm.transport == "direct"
    await llm.aclose()
    simulated = make_llm(settings, simulate=True, base_url="http://127.0.0.1:8", environ={})
    assert simulated.base_url == "http://127.0.0.1:8"
    await simulated.aclose()


def test_importing_the_worker_does_not_import_anthropic() -> None:
    code = (
        "import sys, orchestrator.worker, orchestrator.llm; "
        "bad = [m for m in sys.modules if m == 'anthropic' or m.startswith('anthropic.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_run_on_the_default_transport_never_imports_the_sdk(tmp_path: Path) -> None:
    """The default (direct) transport needs nothing of the SDK for a run, schemas included: the
    SDK's import is ~45 MB and 1-2 s of CPU for every `orchestrate run`."""
    workflow = Path(__file__).resolve().parents[2] / "bench" / "workflows" / "fanout.yaml"
    code = (
        "import sys\n"
        "from orchestrator.cli import main\n"
        f"sys.argv = ['orchestrate', 'run', {str(workflow)!r}, '--input', 'n=3', '-q',"
        " '--simulate']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "bad = sorted({m for m in sys.modules if m.partition('.')[0] in ('anthropic', 'httpx2')})\n"
        "print('IMPORTED', bad[:5])\n"
        "sys.exit(3 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "IMPORTED []" in result.stdout
