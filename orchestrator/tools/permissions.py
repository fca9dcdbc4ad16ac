"""Claude Code's tool permission rules, enforced on every call a worker makes.

A step (or an agent file) grants `Bash(git diff:*)`, `Bash(npm test)`, `Read(src/**)`,
`Edit(docs/**)`, or `{Bash: {allow: [...], max_calls: 2}}`. Each rule grants the tool it names,
limited to what it matches; a tool named bare (`Bash`, `Bash(*)`) is not limited by rules, only by
its `max_calls`. A call outside the rules comes back to the model as a tool error and never runs.

Matching follows Claude Code's documented rules:
- Bash: `Bash(npm test)` is that exact command; `Bash(git diff:*)` is a prefix at a word
  boundary (`git diff` and `git diff --stat`, not `git difftool`); `*` elsewhere matches any
  characters (`Bash(git * main)`), and a single trailing ` *` may match nothing (`Bash(ls *)`
  matches `ls`). A compound command (`a && b`, `a | b`, `a; b`) is allowed only when every part
  is; command substitution (`$(...)`, backticks) is never matched by a rule. The wrappers
  `timeout`, `nice` and `nohup` are looked through, as Claude Code does.
- Read, Write, Edit, Glob, Grep: gitignore-style patterns (`src/**`, `*.env`, `/docs/*.md`)
  over the path relative to the workspace; `//abs/path` is absolute and `~/path` under the
  home directory (both match only inside the workspace, where file tools are confined anyway).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from orchestrator.tool_names import split_rule

__all__ = ["Permissions", "bash_rule_matches", "split_command"]

_PATH_ARGS = {"Read": "file_path", "Write": "file_path", "Edit": "file_path"}
_DIR_TOOLS = ("Glob", "Grep")  # their `path` (default: the workspace) is a directory
_OPERATORS = ("&&", "||", ";", "|", "&", "\n")
_WRAPPERS = {"nohup": 0, "nice": None, "timeout": None}


@dataclass(slots=True)
class _Grant:
    rules: list[str] = field(default_factory=list)
    unlimited: bool = False  # named bare: rules do not narrow it
    max_calls: int | None = None
    calls: int = 0


class Permissions:
    """What a worker's tool entries allow, and its call counts. `check` before each call."""

    def __init__(self, entries: Sequence[str | Mapping[str, Any]], workspace: Path) -> None:
        self._workspace = workspace
        self._grants: dict[str, _Grant] = {}
        for entry in entries:
            if isinstance(entry, str):
                name, spec = split_rule(entry)
                self._add(name, [spec] if spec is not None else None)
            elif isinstance(entry, Mapping) and len(entry) == 1 and "python" not in entry:
                name, limits = next(iter(entry.items()))
                allow = limits.get("allow") if isinstance(limits, Mapping) else None
                specs = None
                if allow is not None:
                    specs = [self._spec_of(str(name), str(rule)) for rule in allow]
                grant = self._add(str(name), specs)
                cap = limits.get("max_calls") if isinstance(limits, Mapping) else None
                if isinstance(cap, int) and not isinstance(cap, bool):
                    grant.max_calls = cap if grant.max_calls is None else min(grant.max_calls, cap)

    @staticmethod
    def _spec_of(tool: str, rule: str) -> str | None:
        name, spec = split_rule(rule)
        if spec is None and name != tool:  # a bare specifier under `allow:`: "git diff:*"
            return rule.strip() if rule.strip() not in ("", "*") else None
        return spec

    def _add(self, name: str, specs: list[str | None] | None) -> _Grant:
        grant = self._grants.setdefault(name, _Grant())
        if specs is None or any(spec is None for spec in specs):
            grant.unlimited = True
        else:
            grant.rules.extend(spec for spec in specs if spec is not None)
        return grant

    @property
    def tools(self) -> list[str]:
        """Every tool some entry grants, in the order first named."""
        return list(self._grants)

    def limited(self, name: str) -> bool:
        grant = self._grants.get(name)
        return grant is not None and (bool(grant.rules) and not grant.unlimited)

    def check(self, name: str, tool_input: Mapping[str, Any]) -> str | None:
        """Why this call may not run (then it is not counted), or None: it may, and counts."""
        grant = self._grants.get(name)
        if grant is None:
            return None  # not a rule-bearing tool (python tools, state tools named bare)
        if not grant.unlimited and grant.rules:
            problem = self._outside_rules(name, grant.rules, tool_input)
            if problem is not None:
                return problem
        if grant.max_calls is not None and grant.calls >= grant.max_calls:
            return (
                f"call limit reached: this step allows {grant.max_calls} {name} call"
                f"{'s' if grant.max_calls != 1 else ''} (max_calls); the call did not run"
            )
        grant.calls += 1
        return None

    def _outside_rules(
        self, name: str, rules: list[str], tool_input: Mapping[str, Any]
    ) -> str | None:
        shown = ", ".join(f"{name}({rule})" for rule in rules)
        if name == "Bash":
            command = str(tool_input.get("command", ""))
            parts = split_command(command)
            if parts is None:
                return (
                    f"'{_short(command)}' uses command substitution, which no rule can "
                    f"allow; this step allows only {shown}. The command did not run"
                )
            for part in parts:
                if not any(bash_rule_matches(rule, part) for rule in rules):
                    return (
                        f"'{_short(part)}' is outside the rules this step grants ({shown}); "
                        "the command did not run"
                    )
            return None
        if name in _PATH_ARGS:
            raw = tool_input.get(_PATH_ARGS[name])
            paths = [str(raw)] if raw is not None else []
        elif name in _DIR_TOOLS:
            paths = [str(tool_input.get("path") or ".")]
        else:
            return None
        for raw_path in paths:
            relative = self._relative(raw_path)
            directory = name in _DIR_TOOLS
            if relative is None or not self._path_allowed(rules, relative, directory=directory):
                return (
                    f"'{raw_path}' is outside the paths this step grants ({shown}); "
                    "the call did not run"
                )
        return None

    def _relative(self, raw: str) -> str | None:
        """The workspace-relative POSIX path of a tool's path argument, or None outside it."""
        root = Path(os.path.realpath(self._workspace))
        target = Path(raw)
        full = target if target.is_absolute() else root / target
        resolved = Path(os.path.normpath(full))
        try:
            rel = resolved.relative_to(root)
        except ValueError:
            return None
        return rel.as_posix()

    def _path_allowed(self, rules: list[str], relative: str, *, directory: bool) -> bool:
        patterns = [p for p in (self._pattern(rule) for rule in rules) if p is not None]
        spec = pathspec.PathSpec.from_lines("gitignore", patterns)
        if spec.match_file(relative):
            return True
        # a directory to search is allowed when what lies in it is (`src` under `src/**`)
        probe = "__probe__" if relative in ("", ".") else f"{relative}/__probe__"
        return directory and spec.match_file(probe)

    def _pattern(self, rule: str) -> str | None:
        """A rule's path pattern, relative to the workspace root (gitignore style)."""
        root = Path(os.path.realpath(self._workspace))
        if rule.startswith("//") or rule.startswith("~/"):
            base = Path("/") if rule.startswith("//") else Path.home()
            absolute = Path(os.path.normpath(base / rule[2:]))
            try:
                return "/" + absolute.relative_to(root).as_posix()
            except ValueError:
                return None  # outside the workspace: file tools never reach it
        if rule.startswith("./"):
            return "/" + rule[2:]
        return rule


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 80 else flat[:77] + "..."


def _strip_wrappers(words: str) -> str:
    """`timeout 30 npm test` -> `npm test`; likewise `nice -n 5 ...`, `nohup ...`."""
    while True:
        parts = words.split()
        if not parts or parts[0] not in _WRAPPERS:
            return words
        rest = parts[1:]
        while rest and rest[0].startswith("-"):  # options: `-n 5`, `-k 10s`, `--signal=KILL`
            option = rest.pop(0)
            if option in ("-n", "-k", "-s", "--signal", "--kill-after") and rest:
                rest.pop(0)
        if parts[0] == "timeout" and rest:
            rest.pop(0)  # the duration
        words = " ".join(rest)


def split_command(command: str) -> list[str] | None:
    """A shell command's simple commands, split at `&&`, `||`, `;`, `|`, `&` and newlines
    outside quotes, wrappers looked through; None when it uses command substitution."""
    parts: list[str] = []
    current = ""
    quote: str | None = None
    i = 0
    while i < len(command):
        char = command[i]
        if quote is None and char == "\\" and i + 1 < len(command):
            current += command[i : i + 2]
            i += 2
            continue
        if quote == "'":
            if char == "'":
                quote = None
            current += char
            i += 1
            continue
        if char == "`" or command.startswith("$(", i) or command[i : i + 2] in ("<(", ">("):
            return None
        if quote == '"':
            if char == '"':
                quote = None
            current += char
            i += 1
            continue
        if char in "'\"":
            quote = char
            current += char
            i += 1
            continue
        operator = next((op for op in _OPERATORS if command.startswith(op, i)), None)
        if operator is not None:
            parts.append(current)
            current = ""
            i += len(operator)
            continue
        current += char
        i += 1
    parts.append(current)
    return [_strip_wrappers(p.strip()) for p in parts if p.strip()]


def bash_rule_matches(rule: str, command: str) -> bool:
    """Whether one simple command matches one Bash rule's specifier (see the module doc)."""
    command = " ".join(command.split())
    rule = " ".join(rule.split())
    if rule.endswith(":*"):
        prefix = rule[:-2].rstrip()
        return command == prefix or command.startswith(prefix + " ")
    if "*" not in rule:
        return command == rule
    pieces = [re.escape(piece) for piece in rule.split("*")]
    if rule.count("*") == 1 and rule.endswith(" *"):
        pattern = re.escape(rule[:-2]) + r"(?: .*)?"
    else:
        pattern = ".*".join(pieces)
    return re.fullmatch(pattern, command, flags=re.DOTALL) is not None
