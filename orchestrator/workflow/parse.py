"""The first pass: a workflow file's bytes (or a given text) -> decoded text and positioned YAML.

Failures are `SpecError`s at a line and column (unreadable file, a directory, not UTF-8, invalid
YAML, an empty file); the positions let every later pass point at the value it refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.errors import Diagnostic, SpecError
from orchestrator.workflow._yaml import Positions, decode, parse_yaml

__all__ = ["parse_workflow", "read_source"]


def read_source(path: Path, text: str | None = None) -> str:
    """The file's text (UTF-8, a BOM dropped, `\\n` line ends), or `text` normalised alike."""
    file = str(path)
    if text is not None:
        return text.lstrip("\ufeff").replace("\r\n", "\n")
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise SpecError([Diagnostic(file, 1, 1, "is a directory, not a workflow file")]) from None
    except OSError as exc:
        message = f"cannot read workflow file: {exc.strerror or exc}"
        raise SpecError([Diagnostic(file, 1, 1, message)]) from None
    decoded, errors = decode(raw, file)
    if decoded is None:
        raise SpecError(errors)
    return decoded


def parse_workflow(text: str, file: str) -> tuple[Any, Positions, list[Diagnostic]]:
    """(data, positions, errors such as duplicate keys); raises `SpecError` when there is no
    document to check further."""
    data, pos, errors = parse_yaml(text, file)
    if data is None and not errors:
        errors = [Diagnostic(file, 1, 1, "the file is empty")]
    if data is None:
        raise SpecError(errors)
    return data, pos, errors
