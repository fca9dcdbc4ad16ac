"""Files written by `orchestrate init`: a small valid workflow, two agents and a settings file.

The agent texts are embedded because the repository's `agents/` directory is not in the wheel; in
a source checkout the repository's files are used instead, so the two never drift apart.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["scaffold_files"]

HELLO_WORKFLOW = """\
# A first workflow: two workers write in parallel, a writer merges their drafts.
# Run it offline with:  orchestrate run workflows/hello.yaml --simulate
version: 1
name: hello
description: Two parallel takes on a topic, merged into one short note.
inputs:
  topic: {type: string, default: "why tests make refactoring safe"}
defaults:
  model: haiku
  max_tokens: 1024
  timeout: 2m
limits:
  concurrency: 4
  max_cost_usd: 0.50
steps:
  - id: takes
    for_each: ["an engineer", "a product manager"]
    as: voice
    agent: writer
    prompt: "In under 100 words, as {{ voice }}, explain: {{ inputs.topic }}"

  - id: note
    agent: writer
    prompt: |
      Merge these takes on "{{ inputs.topic }}" into one note of under 150 words.
      {% for take in steps.takes.output %}
      ---
      {{ take }}
      {% endfor %}

  - id: review
    agent: critic
    prompt: "Is this note clear and correct? {{ steps.note.output }}"
    output:
      type: object
      required: [verdict, feedback]
      properties:
        verdict: {enum: [pass, fail]}
        feedback: {type: string}

outputs:
  note: "{{ steps.note.output }}"
  verdict: "{{ steps.review.output.verdict }}"
"""

WRITER_AGENT = """\
---
name: writer
description: Turns notes, findings or a draft into clear, well-structured prose.
model: sonnet
---
You are a careful technical writer. Keep every fact from your inputs and invent nothing.
Prefer short sentences and concrete examples. Return only the document, in Markdown.
"""

CRITIC_AGENT = """\
---
name: critic
description: Reviews a draft against its goal and returns a verdict with actionable feedback.
tools: Read
model: haiku
---
You are a demanding but fair critic. Give `pass` only when a reader could use the draft as it is;
otherwise `fail`, with specific changes, most important first. Never rewrite the draft yourself.
When a JSON schema is requested, answer with exactly that JSON and nothing else.
"""

SETTINGS = """\
# orchestrate settings for this project. Every key is optional; these override the packaged
# defaults (see `orchestrate config show`), and ORCHESTRATE_* environment variables override these.

# engine:
#   model: sonnet              # default model of agent steps that name none
#   concurrency: 50            # workers in flight across a run
#   max_workers: 500           # tasks a run may create
#   timeout: 10m               # per task
#   db: .orchestrate/state.db  # or postgresql://...

# models:
#   aliases:
#     fast: claude-haiku-4-5   # a workflow may then say `model: fast`

# cache:
#   ttl: auto                  # auto (1h when a step outlasts 5m), 5m or 1h: fan-out prefixes
"""


def _repo_agent(name: str) -> str | None:
    path = Path(__file__).resolve().parents[2] / "agents" / f"{name}.md"
    try:
        return path.read_text("utf-8") if path.is_file() else None
    except OSError:
        return None


def scaffold_files() -> dict[str, str]:
    """Relative path -> content of every file `orchestrate init` writes."""
    return {
        "workflows/hello.yaml": HELLO_WORKFLOW,
        "agents/writer.md": _repo_agent("writer") or WRITER_AGENT,
        "agents/critic.md": _repo_agent("critic") or CRITIC_AGENT,
        "orchestrate.yaml": SETTINGS,
    }
