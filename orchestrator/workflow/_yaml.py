"""Safe YAML with positions: every value keeps the line and column it was written at.

`parse_yaml` composes the document with PyYAML's SafeLoader (no Python tags), then builds plain
Python values while recording, for each value path, where its key and its value start. Duplicate
keys are reported, never silently overwritten. Failures are `Diagnostic`s, never tracebacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from orchestrator.errors import Diagnostic

Path_ = tuple[str | int, ...]
_MAX_NODES = 200_000  # aliases can expand a small file exponentially ("billion laughs")


class _TooLarge(Exception):
    pass


@dataclass(slots=True)
class Positions:
    """Where each value (and each mapping key) of a document starts, 1-based."""

    file: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    styles: dict[Path_, str | None] = field(default_factory=dict)

    def value(self, path: Path_) -> tuple[int, int]:
        """The position of the value at `path`, or of its nearest recorded ancestor."""
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def key(self, path: Path_) -> tuple[int, int]:
        """The position of the key that holds `path` (falls back to the value)."""
        if path in self.keys:
            return self.keys[path]
        return self.value(path)

    def at(
        self, path: Path_, message: str, *, key: bool = False, severity: str = "error"
    ) -> Diagnostic:
        line, col = self.key(path) if key else self.value(path)
        return Diagnostic(self.file, line, col, message, severity)

    def block_offset(self, path: Path_) -> int:
        """Lines between the value's start mark and its first content line (1 for `|`/`>`)."""
        return 1 if self.styles.get(path) in ("|", ">") else 0


class _Builder:
    def __init__(self, file: str) -> None:
        self.loader = yaml.SafeLoader("")
        self.pos = Positions(file)
        self.errors: list[Diagnostic] = []
        self.count = 0

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        self.pos.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        self.count += 1
        if depth > 200 or self.count > _MAX_NODES:
            raise _TooLarge()
        if isinstance(node, yaml.ScalarNode):
            self.pos.styles[path] = node.style
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node, path)
                if key is None:
                    continue
                here = (*path, key)
                if key in out:
                    first = self.pos.keys[here]
                    self.errors.append(
                        Diagnostic(
                            self.pos.file,
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            f"duplicate key '{key}' (first defined at line {first[0]})",
                        )
                    )
                    continue
                self.pos.keys[here] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, here, depth + 1)
            return out
        return None  # pragma: no cover - compose yields only the three node kinds

    def _key(self, node: yaml.Node, path: Path_) -> str | None:
        where = (node.start_mark.line + 1, node.start_mark.column + 1)
        if not isinstance(node, yaml.ScalarNode):
            message = "a mapping key must be a string"
            if isinstance(node, yaml.MappingNode):
                message += (
                    " (quote a value that starts with '{{', e.g. x: \"{{ steps.a.output }}\")"
                )
            self.errors.append(Diagnostic(self.pos.file, *where, message))
            return None
        value = self.loader.construct_object(node)
        if value is None:
            self.errors.append(Diagnostic(self.pos.file, *where, "empty mapping key"))
            return None
        # `on: 1` or `1: x` are legal YAML; keys are names here, so keep their text.
        return value if isinstance(value, str) else str(node.value)


def _mark_of(exc: yaml.YAMLError) -> tuple[int, int]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1
    return 1, 1


def _starts_with_template(text: str, line: int) -> bool:
    lines = text.split("\n")
    nearby = lines[max(0, line - 2) : line]
    return any(re.search(r"(:|-)\s+\{[{%]", item) for item in nearby)


def parse_yaml(text: str, file: str) -> tuple[Any, Positions, list[Diagnostic]]:
    """Parse one YAML document. Returns (data, positions, errors); data is None on failure."""
    pos = Positions(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line, col = _mark_of(exc)
        problem = exc.problem or "invalid YAML"
        if problem == "mapping values are not allowed here":
            problem += " (quote a value that contains ': ', e.g. prompt: \"a: b\")"
        elif _starts_with_template(text, line):
            problem += " (quote a value that starts with '{{' or '{%')"
        if "another document" in problem:
            problem = "expected a single YAML document, found several (remove the extra '---')"
        return None, pos, [Diagnostic(file, line, col, f"invalid YAML: {problem}")]
    except yaml.YAMLError as exc:
        line, col = _mark_of(exc)
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        return None, pos, [Diagnostic(file, line, col, f"invalid YAML: {reason}")]
    except RecursionError:
        return (
            None,
            pos,
            [Diagnostic(file, 1, 1, "invalid YAML: the document is nested too deeply")],
        )
    if node is None:
        return None, pos, [Diagnostic(file, 1, 1, "the file is empty")]
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except yaml.YAMLError as exc:
        line, col = _mark_of(exc)
        problem = getattr(exc, "problem", None) or "invalid value"
        return None, builder.pos, [Diagnostic(file, line, col, f"invalid YAML: {problem}")]
    except (RecursionError, _TooLarge):
        message = "the document is nested too deeply or too large (check anchors and aliases)"
        return None, builder.pos, [Diagnostic(file, 1, 1, message)]
    return data, builder.pos, builder.errors


def decode(raw: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """Bytes -> text: UTF-8 (a leading BOM is dropped), CRLF normalised; binary is refused."""
    if b"\x00" in raw:
        return None, [Diagnostic(file, 1, 1, "not a text file (it contains NUL bytes)")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Diagnostic(file, line, 1, "not a UTF-8 text file")]
    return text.replace("\r\n", "\n").replace("\r", "\n"), []
