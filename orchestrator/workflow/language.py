"""The workflow language as one table: its sections, step kinds and keys, each with a type, a
default, allowed values and a one-line doc.

Everything that spells the language reads this table: the loader's key checks (unknown keys with
"did you mean", wrong types, kind detection and conflicts), the JSON Schema that `orchestrate
schema` prints, and `tests/workflow/test_language.py`, which holds the pydantic models in
`models.py` to it (the models stay written out so that mypy --strict sees every field's type).

Adding a step key is one `Key(...)` in its kind below, its field on `Step`, and its tests; a key
of a simple type (string, integer, number, boolean, duration, choice) is then checked, converted
and set on the model by the loader with no other change. A key of another type names the rule that
checks it (see `steps.py`); a new kind is one `Kind(...)`. It is over 600 lines because it is the
whole language, one row per key: splitting it would scatter the one place that spells it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "AGENT",
    "AGENT_FILE",
    "AGENT_FILE_KEYS",
    "AGENT_KEYS",
    "AGENT_NAME_PATTERN",
    "BUDGET",
    "BUDGET_KEYS",
    "COMMON_KEYS",
    "CONTEXT_NAMES",
    "DEFAULTS",
    "DEFAULTS_KEYS",
    "FAN_OUT",
    "FAN_OUT_KEYS",
    "GROUP",
    "GROUP_KEYS",
    "ID_PATTERN",
    "INPUT",
    "INPUT_KEYS",
    "INPUT_TYPES",
    "KINDS",
    "KIND_BY_NAME",
    "KIND_FIELDS",
    "KIND_KEYS",
    "LIMITS",
    "LIMITS_KEYS",
    "LOOP",
    "LOOP_KEYS",
    "LOOP_NAMES",
    "MERGE_KINDS",
    "NAME_PATTERN",
    "NOTIFY",
    "NOTIFY_KEYS",
    "OVERLAP",
    "RUNTIMES",
    "SCHEDULE",
    "SCHEDULE_KEYS",
    "SIMPLE_TYPES",
    "STEP_COMMON",
    "STEP_KEYS",
    "STEP_VIEW_NAMES",
    "TOP",
    "TOP_KEYS",
    "Key",
    "KeyType",
    "Kind",
    "kind_keys",
]

KeyType = Literal[
    # Simple types, checked and converted by `fields.convert` from the table alone.
    "string",
    "integer",  # >= `minimum` (1 unless given)
    "number",  # > 0
    "boolean",
    "duration",  # 30s, 5m, 1h or seconds; > 0
    "choice",  # one of `choices`
    # Types with a rule of their own (in `sections.py`, `steps.py`).
    "version",  # always 1
    "nonempty",  # a string with some text
    "id",  # a step id, unique in its scope
    "name",  # an identifier
    "names",  # a list of identifiers
    "step_id",  # the id of a visible step
    "step_ids",  # a step id or a list of them
    "template",  # a string template
    "expression",  # any YAML value; strings inside are templates
    "expressions",  # a mapping of name -> expression
    "items",  # a list, or one {{ expression }} giving a list
    "count",  # a positive integer, or one {{ expression }} giving one (checked at run time)
    "tools",  # built-in tool names or {python: "pkg.mod:fn"}
    "approve",  # tool names whose calls wait for a person, or `all`
    "options",  # a list of distinct strings (an `ask` step's answers)
    "output",  # text, json or a JSON Schema
    "run_output",  # text or json
    "steps",  # a list of steps
    "loop",  # a mapping of the `LOOP` keys
    "group",  # a mapping of the `GROUP` keys
    "section",  # a mapping of `keys`
    "inputs",  # a mapping of name -> `INPUT` keys
    "agents",  # a mapping of name -> `AGENT`
    "agent_tools",  # tool names as a comma string or a list (Claude Code's front matter)
    "list",  # a non-empty list of any values
    "mcp_servers",  # name -> an MCP server as Claude Code's .mcp.json writes it
    "models",  # a model name, or a list of them: the first, then fallbacks on overload
    "resources",  # Ray's names: num_cpus, num_gpus, memory (bytes or 2GiB)
    "sandbox",  # auto | on | off, or {mode, network} (environment.step_sandbox)
    "any",
]
SIMPLE_TYPES: frozenset[str] = frozenset(
    {"string", "integer", "number", "boolean", "duration", "choice"}
)

ID_PATTERN = r"^[a-z_][a-z0-9_]*$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
AGENT_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a mapping in the language.

    `attr` is the model attribute when it differs from the key (`as` -> `as_`); `per_item` marks a
    template that also sees a fan-out's item; `templated` marks a setting whose value may also be a
    template, rendered per task (per item in a fan-out) and checked before anything is sent;
    `keys` are the keys of a nested mapping (`section`, `loop`, `group`); `example` is a valid
    value (the tests load every key with it)."""

    name: str
    type: KeyType
    doc: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    attr: str = ""
    required: bool = False
    per_item: bool = False
    templated: bool = False
    keys: tuple[Key, ...] = ()
    example: Any = None

    @property
    def field(self) -> str:
        """The attribute of the model that holds this key's value."""
        return self.attr or self.name


@dataclass(frozen=True, slots=True)
class Kind:
    """A step kind: a step is this kind when it has the `marker` key."""

    name: str
    marker: str
    doc: str
    keys: tuple[Key, ...]  # the marker first; common and fan-out keys are not repeated
    fan_out: bool = False


INPUT_TYPES = ("string", "integer", "number", "boolean", "array", "object")
MERGE_KINDS = ("concat", "flatten", "object", "unique", "vote", "branches")
RUNTIMES = ("api", "claude-code")
_RUNTIME_DOC = "api: a Messages API conversation (default); claude-code: a headless Claude Code."
_RESOURCES_DOC = (
    "What one task needs on a Ray node (`--executor ray`), in Ray's names: num_cpus, num_gpus, "
    "memory (bytes or 2GiB). Ignored by the local executor."
)
_RESOURCES_EXAMPLE = {"num_cpus": 2, "memory": "2GiB"}
_MCP_DOC = "MCP servers by name, as in Claude Code's .mcp.json (command/args/env, or type+url)."
_MCP_EXAMPLE = {"files": {"command": "npx", "args": ["-y", "some-mcp-server"]}}
# Names every template context holds; a fan-out's `as` may not hide one.
CONTEXT_NAMES = ("inputs", "steps", "loop", "run", "state", "env")
# What `loop.<name>` may read inside a loop body (the loader refuses any other attribute).
LOOP_NAMES = ("iteration", "index", "previous", "history")
# What `steps.<id>.<name>` may read (the loader refuses any other attribute, as a run would).
STEP_VIEW_NAMES = ("output", "status", "error", "exit_code", "iterations", "exhausted")

# Bash calls (agent steps) and `run:` commands of this step: the settings' `sandbox:` overridden.
_SANDBOX_KEY = Key(
    "sandbox",
    "sandbox",
    "auto, on or off, or {mode, network}: the sandbox this step's commands run in "
    "(over the settings' `sandbox:`).",
    example={"network": True},
)

_MODEL_DOC = "An alias from the settings (opus, sonnet, haiku, fable) or a full model id."

INPUT = (
    Key(
        "type",
        "choice",
        "The input's type.",
        default="string",
        choices=INPUT_TYPES,
        example="integer",
    ),
    Key("description", "string", "What the input is for.", example="The question."),
    Key(
        "default",
        "any",
        "The value when the run gives none; without one, the input is required.",
        example="bees",
    ),
    Key("enum", "list", "The values allowed.", example=["a", "b"]),
)

_MODELS_DOC = (
    _MODEL_DOC + " A list ([opus, sonnet]) chooses availability over model: a task whose calls "
    "stay overloaded moves on to the next."
)

DEFAULTS = (
    Key("model", "models", _MODELS_DOC, example="haiku"),
    Key("max_tokens", "integer", "The most output tokens per model call.", example=512),
    Key("timeout", "duration", "How long one task may take.", example="2m"),
    Key("retries", "integer", "Attempts after the first.", minimum=0, example=2),
    Key("max_turns", "integer", "Model calls one worker may make.", example=5),
    Key("runtime", "choice", _RUNTIME_DOC, choices=RUNTIMES, example="claude-code"),
)

LIMITS = (
    Key("concurrency", "integer", "Workers in flight across the whole run.", example=8),
    Key("max_workers", "integer", "Tasks a run may create (guards fan-out).", example=100),
    Key("max_cost_usd", "number", "The run stops before spending more dollars.", example=1.5),
    Key("max_tokens", "integer", "The run stops before using more tokens.", example=100000),
    Key(
        "ask_above_usd",
        "number",
        "Ask a person before the first step whose worst-case cost would take the run past "
        "this many dollars.",
        example=2.0,
    ),
    Key(
        "max_depth",
        "integer",
        "How deep agents may start agents with Task (a step's task is depth 0). Default 2.",
        minimum=0,
        example=2,
    ),
    Key("max_children", "integer", "Task calls one task may make. Default 20.", example=20),
)

# Who hears of a question that starts waiting for a person (the question as JSON).
NOTIFY = (
    Key("command", "string", "A shell command; the question arrives on its stdin.", example="cat"),
    Key("url", "string", "A URL the question is POSTed to.", example="http://127.0.0.1:9/q"),
)

AGENT_FILE = (
    Key(
        "name",
        "string",
        "The name steps use (defaults to the file or entry name).",
        example="helper",
    ),
    Key("description", "string", "What the agent is for.", example="Helps."),
    Key("model", "models", f"{_MODELS_DOC} `inherit` uses the step's.", example="sonnet"),
    Key("tools", "agent_tools", "Tools it may use: a comma string or a list.", example="Read"),
    Key("max_tokens", "integer", "The most output tokens per model call.", example=1024),
    Key("runtime", "choice", _RUNTIME_DOC, choices=RUNTIMES, example="claude-code"),
    Key("mcp_servers", "mcp_servers", _MCP_DOC, example=_MCP_EXAMPLE),
    Key("resources", "resources", _RESOURCES_DOC, example=_RESOURCES_EXAMPLE),
)
# An inline `agents:` entry also carries its system prompt (a file's is the Markdown body).
AGENT = (
    *AGENT_FILE,
    Key("system", "string", "The system prompt.", example="Be brief."),
)

# A step's own budget (language v1.1): what its tasks, items, iterations and body may spend.
BUDGET = (
    Key(
        "max_cost_usd",
        "number",
        "The step stops (and fails) before spending more dollars.",
        example=0.5,
    ),
    Key("max_tokens", "integer", "The step stops before using more tokens.", example=50000),
)

STEP_COMMON = (
    Key("id", "id", "Unique in its scope.", required=True),
    Key("description", "string", "What the step is for.", example="a step"),
    Key(
        "needs",
        "step_ids",
        "Step ids this step waits for (template references count too).",
        example=["plan"],
    ),
    Key("when", "expression", "A false value skips the step (routing).", example=True),
    Key("timeout", "duration", "How long one task of the step may take.", example="30s"),
    Key("retries", "integer", "Attempts after the first.", minimum=0, example=1),
    Key(
        "budget",
        "section",
        "A budget for this step alone (every item, iteration and body step of it), besides "
        "the run's: once a call would not fit, the step's tasks stop and the step fails.",
        keys=BUDGET,
        example={"max_cost_usd": 0.5},
    ),
)

FAN_OUT = (
    Key(
        "for_each",
        "items",
        "A list, or one {{ expression }} giving a list: one worker per item.",
        example=["x", "y"],
    ),
    Key(
        "as",
        "name",
        "The name of the item in the step's templates.",
        default="item",
        attr="as_",
        example="topic",
    ),
    Key(
        "where",
        "expression",
        "Keeps the items for which this is true (the item's name in scope), before any task.",
        per_item=True,
        example="{{ item != 'y' }}",
    ),
    Key(
        "index_as",
        "name",
        "A name for the item's 0-based position among the items `where` keeps.",
        example="i",
    ),
    Key("concurrency", "integer", "Items in flight at once.", example=2),
    Key(
        "on_item_error",
        "choice",
        "fail: a failed item fails the step; skip: it is left out (decided after all items end).",
        default="fail",
        choices=("fail", "skip"),
        example="skip",
    ),
)

LOOP = (
    Key(
        "steps",
        "steps",
        "The body: each step runs after the one before it, unless `parallel: true`.",
        required=True,
    ),
    Key(
        "until",
        "expression",
        "Stop when this is true after an iteration.",
        example="{{ loop.iteration > 1 }}",
    ),
    Key(
        "max_iterations",
        "count",
        "The cap: a number, or one {{ expression }} giving one. A loop is always bounded: it "
        "needs this, `max_duration`, or both.",
        example=3,
    ),
    Key(
        "max_duration",
        "duration",
        "No iteration starts once the loop has run this long (8h); the one running finishes. "
        "Reaching it counts as exhausted, like max_iterations.",
        example="8h",
    ),
    Key(
        "on_exhausted",
        "choice",
        "What reaching max_iterations with `until` still false does: succeed (with a warning, "
        "and `steps.<id>.exhausted` true) or fail.",
        default="succeed",
        choices=("succeed", "fail"),
        example="fail",
    ),
    Key(
        "parallel",
        "boolean",
        "Body steps start as their references allow, not in the order written.",
        default=False,
        example=True,
    ),
)

GROUP = (Key("steps", "steps", "The body, run as one step.", required=True),)

KINDS = (
    Kind(
        "agent",
        "prompt",
        "One model conversation (or one per item with `for_each`).",
        (
            Key("prompt", "template", "Agent step: the user prompt.", per_item=True),
            Key(
                "agent",
                "string",
                "An agent file's name (or its front-matter `name`) or an `agents:` entry.",
                templated=True,
                example="helper",
            ),
            Key(
                "system",
                "string",
                "A system prompt, after the agent's.",
                templated=True,
                example="Hi.",
            ),
            Key(
                "model",
                "models",
                _MODEL_DOC + " A list ([opus, sonnet]) chooses availability over model: a "
                "task whose calls stay overloaded moves on to the next.",
                templated=True,
                example="haiku",
            ),
            Key(
                "max_tokens",
                "integer",
                "The most output tokens per model call.",
                templated=True,
                example=256,
            ),
            Key(
                "tools",
                "tools",
                "Tools the worker may use; replaces the agent's list. A name, a permission rule "
                "(`Bash(git diff:*)`, `Read(src/**)`) or {Tool: {allow: [rules], max_calls: N}}.",
                templated=True,
                example=["Read"],
            ),
            Key(
                "output",
                "output",
                "text (default), json, or a JSON Schema for structured output (its strings may "
                "be templates, rendered before the call).",
                templated=True,
                example="json",
            ),
            Key("max_turns", "integer", "Model calls the worker may make.", example=4),
            Key(
                "context",
                "template",
                "A block shared by every item (cached prefix).",
                example="Shared facts.",
            ),
            Key(
                "batch",
                "boolean",
                "Send items through the Batches API.",
                default=False,
                example=True,
            ),
            Key("runtime", "choice", _RUNTIME_DOC, choices=RUNTIMES, example="claude-code"),
            Key(
                "isolation",
                "choice",
                "worktree: each task works in its own git worktree of the workspace, on the "
                "branch orchestrate/<run>/<task>, committed when it ends.",
                default="none",
                choices=("none", "worktree"),
                example="worktree",
            ),
            Key("mcp_servers", "mcp_servers", _MCP_DOC, example=_MCP_EXAMPLE),
            Key("resources", "resources", _RESOURCES_DOC, example=_RESOURCES_EXAMPLE),
            Key(
                "approve",
                "approve",
                "Tools whose every call waits for a person's approval, or `all`.",
                example=["Bash"],
            ),
            _SANDBOX_KEY,
        ),
        fan_out=True,
    ),
    Kind(
        "merge",
        "merge",
        "A deterministic reducer over another step's output; no model call.",
        (
            Key(
                "merge",
                "choice",
                "How to combine the items.",
                default="concat",
                choices=MERGE_KINDS,
            ),
            Key(
                "from",
                "step_id",
                "The step whose output is merged.",
                attr="from_",
                required=True,
            ),
            Key("by", "string", "The field a vote counts.", example="verdict"),
            Key(
                "separator",
                "string",
                "Between items of a concat.",
                default="\n\n",
                example=", ",
            ),
            Key(
                "into",
                "string",
                "merge: branches: the branch to merge into (default orchestrate/<run>/merged, "
                "made from the run's starting commit).",
                example="orchestrate/fixes",
            ),
            Key(
                "on_conflict",
                "choice",
                "merge: branches: report (default) lists conflicting branches and goes on; "
                "fail also fails the step.",
                default="report",
                choices=("report", "fail"),
                example="fail",
            ),
        ),
    ),
    Kind(
        "run",
        "run",
        "A shell command in the run's workspace; its output is stdout.",
        (
            Key("run", "template", "A shell command run in the workspace.", per_item=True),
            Key(
                "allow_failure",
                "boolean",
                "A non-zero exit does not fail the step.",
                default=False,
                example=True,
            ),
            Key(
                "output",
                "run_output",
                "text (default) or json (stdout parsed as JSON).",
                example="json",
            ),
            _SANDBOX_KEY,
        ),
        fan_out=True,
    ),
    Kind(
        "loop",
        "loop",
        "Runs its body until `until` is true or `max_iterations` is reached.",
        (Key("loop", "loop", "The loop's body and bounds.", keys=LOOP),),
        fan_out=True,
    ),
    Kind(
        "workflow",
        "workflow",
        "Another workflow file whose steps become child steps.",
        (
            Key("workflow", "string", "A sub-workflow file, relative to this one."),
            Key("inputs", "expressions", "The sub-workflow's inputs.", example={"topic": "bees"}),
        ),
        fan_out=True,
    ),
    Kind(
        "set",
        "set",
        "A value computed from an expression; no model call.",
        (
            Key(
                "set",
                "expression",
                "The step's output: the expression's native value.",
                attr="set_",
            ),
            Key(
                "to_state",
                "string",
                "Also store the value in `state` under this key, atomically: in a `state_scope` "
                "shared with other runs, the expression is evaluated again on the key's fresh "
                "value whenever another run wrote it first (compare-and-set).",
                example="runs",
            ),
        ),
    ),
    Kind(
        "group",
        "group",
        "Its body's steps run as one step; its output maps body ids to outputs.",
        (Key("group", "group", "The group's body.", keys=GROUP),),
        fan_out=True,
    ),
    Kind(
        "ask",
        "ask",
        "A question for a person; its output is the answer (route on it with `when`).",
        (
            Key("ask", "template", "The question, shown to the person who answers."),
            Key("options", "options", "The answers allowed (else free text).", example=["a", "b"]),
            Key(
                "output",
                "output",
                "text (default), json, or a JSON Schema the answer must match.",
                example="json",
            ),
        ),
    ),
)

OVERLAP = ("skip", "queue", "allow")
SCHEDULE = (
    Key("every", "duration", "Start a run this often (10m, 1h).", example="10m"),
    Key("cron", "string", "Start a run at these times (5-field cron).", example="0 9 * * 1-5"),
    Key(
        "timezone",
        "string",
        "The cron's time zone (IANA name; default UTC).",
        example="Europe/Paris",
    ),
)

TOP = (
    Key("version", "version", "The language version: 1.", required=True),
    Key("name", "nonempty", "The workflow's name (defaults to the file name).", example="w"),
    Key("description", "string", "What the workflow does.", example="A test."),
    Key("inputs", "inputs", "The run's inputs, by name.", example={"x": "string"}),
    Key(
        "defaults",
        "section",
        "Defaults for every agent step.",
        keys=DEFAULTS,
        example={"model": "haiku"},
    ),
    Key("limits", "section", "Bounds on the whole run.", keys=LIMITS, example={"concurrency": 4}),
    Key(
        "env",
        "names",
        "Environment variables templates may read as env.NAME.",
        example=["HOME"],
    ),
    Key("agents", "agents", "Inline agents, by name.", example={"helper": {}}),
    Key("steps", "steps", "The steps.", required=True),
    Key(
        "outputs",
        "expressions",
        "The run's outputs, by name.",
        example={"o": "{{ steps.plan.output }}"},
    ),
    Key("workspace", "string", "The run's working directory.", example="ws"),
    Key("mcp_servers", "mcp_servers", _MCP_DOC + " For every agent step.", example=_MCP_EXAMPLE),
    Key(
        "notify",
        "section",
        "Who hears of a question that starts waiting for a person.",
        keys=NOTIFY,
        example={"command": "cat"},
    ),
    Key(
        "state_scope",
        "string",
        "`workflow` (named after the workflow's `name`) or a scope name: `state` and the "
        "state tools persist across runs of every workflow naming the same scope.",
        example="workflow",
    ),
    Key(
        "schedule",
        "section",
        "When `orchestrate serve` starts a run: `every` or `cron` (with `timezone`). Missed "
        "slots while the server was down give one catch-up run.",
        keys=SCHEDULE,
        example={"every": "10m"},
    ),
    Key(
        "overlap",
        "choice",
        "A scheduled run due while the last is running: skip it, queue it (one waits), or "
        "allow it to run alongside.",
        default="skip",
        choices=OVERLAP,
        example="queue",
    ),
)


def kind_keys(kind: Kind) -> tuple[Key, ...]:
    """Every key a step of `kind` may have: the common keys, the fan-out keys, its own."""
    return (*STEP_COMMON, *(FAN_OUT if kind.fan_out else ()), *kind.keys)


def _names(keys: tuple[Key, ...]) -> tuple[str, ...]:
    return tuple(key.name for key in keys)


# Names only, for messages and "did you mean": a section's keys as written (`X_KEYS`).
TOP_KEYS = _names(TOP)
AGENT_KEYS = _names(AGENT)
AGENT_FILE_KEYS = _names(AGENT_FILE)
INPUT_KEYS = _names(INPUT)
DEFAULTS_KEYS = _names(DEFAULTS)
LIMITS_KEYS = _names(LIMITS)
BUDGET_KEYS = _names(BUDGET)
NOTIFY_KEYS = _names(NOTIFY)
SCHEDULE_KEYS = _names(SCHEDULE)
LOOP_KEYS = _names(LOOP)
GROUP_KEYS = _names(GROUP)
COMMON_KEYS = _names(STEP_COMMON)
FAN_OUT_KEYS = _names(FAN_OUT)
KIND_KEYS = {kind.marker: kind.name for kind in KINDS}  # marker -> kind
KIND_FIELDS = {
    kind.name: _names(kind.keys) + (FAN_OUT_KEYS if kind.fan_out else ()) for kind in KINDS
}
STEP_KEYS = tuple(dict.fromkeys(COMMON_KEYS + sum(KIND_FIELDS.values(), ())))
KIND_BY_NAME = {kind.name: kind for kind in KINDS}
