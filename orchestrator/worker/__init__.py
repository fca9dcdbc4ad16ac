"""One isolated agent conversation per task: tool-use loop, structured output, repair retries."""

from orchestrator.worker.agent import Tools, final_text, run_worker
from orchestrator.worker.output import OutputProblem, parse_json, read_output, validator
from orchestrator.worker.request import base_request, first_user_content, should_stream

__all__ = [
    "OutputProblem",
    "Tools",
    "base_request",
    "final_text",
    "first_user_content",
    "parse_json",
    "read_output",
    "run_worker",
    "should_stream",
    "validator",
]
