"""The boundary to the Messages API: client construction, error classification, usage, and
rate-limit headers. The only package that imports `anthropic`, and only when a client is built."""

from orchestrator.llm._errors import translate_error
from orchestrator.llm.client import (
    NO_KEY_MESSAGE,
    SIMULATOR_API_KEY,
    AnthropicLLM,
    make_llm,
    normalise_message,
)
from orchestrator.llm.ratelimit import read_ratelimit, retry_after
from orchestrator.llm.usage import usage_from_message

__all__ = [
    "NO_KEY_MESSAGE",
    "SIMULATOR_API_KEY",
    "AnthropicLLM",
    "make_llm",
    "normalise_message",
    "read_ratelimit",
    "retry_after",
    "translate_error",
    "usage_from_message",
]
