"""The engine harnesses (FakeLLM and simulator) of tests/engine, for the cache tests."""

from tests.engine.conftest import fake_harness, make_harness

__all__ = ["fake_harness", "make_harness"]
