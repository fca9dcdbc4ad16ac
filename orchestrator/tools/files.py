"""The file tools, with Claude Code's names and argument shapes: Read, Write, Edit, Glob, Grep.

Every path goes through `Workspace.resolve`, so nothing outside the run's workspace is read,
listed or written. A regular file with more than one hard link is refused too: its other name
may be outside the workspace, and finding it would mean searching the whole filesystem. The link
count is checked on the opened file (`fstat`), and files are opened without following a final
symlink and without truncating first, so a name swapped after the check cannot redirect a read or
a write. All file I/O runs in a worker thread (`anyio.to_thread.run_sync`): hundreds of
workers share one event loop. Results name paths relative to the workspace.
"""

from __future__ import annotations

import bisect
import io
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread

from orchestrator.errors import ToolError
from orchestrator.tools.base import Tool, object_schema, truncate
from orchestrator.tools.patterns import compile_glob
from orchestrator.tools.workspace import Workspace

READ_DEFAULT_LINES = 2000
MAX_LINE_CHARS = 2000
GLOB_MAX_RESULTS = 100
GREP_MAX_FILE_BYTES = 20 * 1024 * 1024
SKIP_DIRS = frozenset({".git"})
_SNIFF_BYTES = 8192
_NOTE_ROOM = 100

# A few of ripgrep's file types, for Grep's `type` argument.
GREP_TYPES: dict[str, tuple[str, ...]] = {
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx", ".h"),
    "css": (".css", ".scss", ".sass", ".less"),
    "go": (".go",),
    "html": (".html", ".htm"),
    "java": (".java",),
    "js": (".js", ".jsx", ".mjs", ".cjs"),
    "json": (".json",),
    "kotlin": (".kt", ".kts"),
    "md": (".md", ".markdown"),
    "py": (".py", ".pyi"),
    "rb": (".rb",),
    "rust": (".rs",),
    "sh": (".sh", ".bash", ".zsh"),
    "sql": (".sql",),
    "toml": (".toml",),
    "ts": (".ts", ".tsx", ".mts", ".cts"),
    "txt": (".txt",),
    "yaml": (".yaml", ".yml"),
}


def file_tools(workspace: Workspace, max_output_chars: int) -> dict[str, Tool]:
    ops = _FileOps(workspace, max_output_chars)
    return {
        "Read": Tool("Read", _READ_DESCRIPTION, _READ_SCHEMA, partial(_off_loop, ops.read)),
        "Write": Tool("Write", _WRITE_DESCRIPTION, _WRITE_SCHEMA, partial(_off_loop, ops.write)),
        "Edit": Tool("Edit", _EDIT_DESCRIPTION, _EDIT_SCHEMA, partial(_off_loop, ops.edit)),
        "Glob": Tool("Glob", _GLOB_DESCRIPTION, _GLOB_SCHEMA, partial(_off_loop, ops.glob)),
        "Grep": Tool("Grep", _GREP_DESCRIPTION, _GREP_SCHEMA, partial(_off_loop, ops.grep)),
    }


async def _off_loop(fn: Callable[[dict[str, Any]], str], args: dict[str, Any]) -> str:
    return await anyio.to_thread.run_sync(fn, args)


@dataclass(slots=True)
class _FileOps:
    ws: Workspace
    max_chars: int

    # --- Read ---------------------------------------------------------------------------------

    def read(self, args: dict[str, Any]) -> str:
        arg = args["file_path"]
        path = self._existing_file(arg)
        offset = max(int(args.get("offset") or 1), 1)
        limit = int(args.get("limit") or READ_DEFAULT_LINES)
        with _opening(arg), _open_checked(path, arg) as raw:
            if b"\0" in raw.read(_SNIFF_BYTES):
                raise ToolError(f"file '{arg}' looks binary; Read shows text files only")
        shown: list[str] = []
        size = 0
        budget = max(self.max_chars - _NOTE_ROOM, 1)  # leave room for the "showing lines" note
        total = 0
        cut_for_size = False
        with (
            _opening(arg),
            _open_checked(path, arg) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text,
        ):
            for number, line in enumerate(text, start=1):
                total = number
                if number < offset or number >= offset + limit or cut_for_size:
                    continue
                line = line.rstrip("\n")
                if len(line) > MAX_LINE_CHARS:
                    line = line[:MAX_LINE_CHARS] + " [line truncated]"
                entry = f"{number:>6}\t{line}"
                if size + len(entry) + 1 > budget and shown:
                    cut_for_size = True
                    continue
                shown.append(entry)
                size += len(entry) + 1
        if total == 0:
            raise ToolError(f"file '{arg}' is empty")
        if offset > total:
            raise ToolError(
                f"file '{arg}' has {total} lines; offset {offset} is past the end of the file"
            )
        last = offset + len(shown) - 1
        body = "\n".join(shown)
        if last < total:
            body += (
                f"\n\n[showing lines {offset}-{last} of {total}; "
                f"pass offset={last + 1} to read more]"
            )
        return body

    # --- Write --------------------------------------------------------------------------------

    def write(self, args: dict[str, Any]) -> str:
        arg = args["file_path"]
        path = self.ws.resolve(arg)
        if path.is_dir():
            raise ToolError(f"'{arg}' is a directory; give a file path")
        existed = path.exists()
        data = args["content"].encode("utf-8")
        with _opening(arg):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_checked(path, arg, data)
        verb = "Updated" if existed else "Created"
        return f"{verb} {self.ws.relative(path)} ({len(data)} bytes)"

    # --- Edit ---------------------------------------------------------------------------------

    def edit(self, args: dict[str, Any]) -> str:
        arg = args["file_path"]
        old, new = args["old_string"], args["new_string"]
        replace_all = bool(args.get("replace_all", False))
        if old == new:
            raise ToolError("old_string and new_string are the same; there is nothing to change")
        path = self.ws.resolve(arg)
        if old == "" and not path.exists():
            return self.write({"file_path": arg, "content": new})
        if not path.exists():
            raise ToolError(f"file not found: '{arg}'")
        if path.is_dir():
            raise ToolError(f"'{arg}' is a directory, not a file")
        text = self._read_text(arg, path)
        if old == "":
            if text:
                raise ToolError(
                    f"old_string is empty but '{arg}' already has content; give the text to replace"
                )
            updated, count = new, 1
        else:
            count = text.count(old)
            if count == 0:
                raise ToolError(
                    f"old_string not found in '{arg}'; it must match the file exactly, "
                    "including whitespace and indentation"
                )
            if count > 1 and not replace_all:
                raise ToolError(
                    f"old_string was found {count} times in '{arg}'; add surrounding context "
                    "to make it unique, or pass replace_all=true to replace every occurrence"
                )
            updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
        with _opening(arg):
            _write_checked(path, arg, updated.encode("utf-8"))
        plural = "s" if count != 1 else ""
        return f"Edited {self.ws.relative(path)} ({count} replacement{plural})"

    # --- Glob ---------------------------------------------------------------------------------

    def glob(self, args: dict[str, Any]) -> str:
        base, pattern = self._glob_base(args["pattern"], args.get("path"))
        matcher = compile_glob(pattern)
        found: list[tuple[float, str]] = []
        for path in self._walk(base):
            if matcher.match(path.relative_to(base).as_posix()):
                found.append((_mtime(path), self.ws.relative(path)))
        if not found:
            return "No files found"
        found.sort(key=lambda item: (-item[0], item[1]))
        lines = [name for _, name in found[:GLOB_MAX_RESULTS]]
        if len(found) > GLOB_MAX_RESULTS:
            lines.append(
                f"\n[showing the {GLOB_MAX_RESULTS} most recently modified of {len(found)} "
                "matches; use a more specific pattern or path]"
            )
        return "\n".join(lines)

    def _glob_base(self, pattern: str, path_arg: str | None) -> tuple[Path, str]:
        """Split the pattern's literal leading directories off, and confine them like a path.

        "../x/*.py", "/abs/elsewhere/**" and "linkdir/*" are thus refused like any other path,
        and absolute patterns inside the workspace (common from Claude Code agents) just work.
        """
        base = self.ws.resolve_dir(path_arg)
        if not base.is_dir():
            raise ToolError(f"path '{path_arg}' is not a directory")
        segments = pattern.split("/")
        first_magic = next(
            (i for i, seg in enumerate(segments) if any(c in seg for c in "*?[{")),
            len(segments) - 1,
        )
        literal = "/".join(segments[:first_magic])
        rest = "/".join(segments[first_magic:])
        if pattern.startswith("/") and not literal:
            literal = "/"
        if literal:
            try:
                base = self.ws.resolve(literal if os.path.isabs(literal) else str(base / literal))
            except ToolError:
                raise ToolError(
                    f"path '{pattern}' is outside the workspace ({self.ws.root})"
                ) from None
            if not base.is_dir():
                return base, "\0"  # a literal path that is not a directory matches nothing
        if ".." in rest.split("/"):
            raise ToolError(f"path '{pattern}' is outside the workspace ({self.ws.root})")
        return base, rest

    # --- Grep ---------------------------------------------------------------------------------

    def grep(self, args: dict[str, Any]) -> str:
        mode = args.get("output_mode") or "files_with_matches"
        multiline = bool(args.get("multiline", False))
        flags = re.IGNORECASE if args.get("-i") else 0
        if multiline:
            flags |= re.MULTILINE | re.DOTALL
        try:
            regex = re.compile(args["pattern"], flags)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {args['pattern']!r}: {exc}") from None
        root_arg = args.get("path")
        root = self._search_dir(root_arg)
        files = [root] if root.is_file() else list(self._walk(root))
        files = [f for f in files if self._grep_wanted(f, root, args)]
        head_limit = args.get("head_limit")

        entries: list[str] = []
        matched_files: list[tuple[float, str]] = []
        for path in files:
            text = _text_or_none(path)
            if text is None:
                continue
            lines = text.split("\n")
            hits = _matching_lines(regex, text, lines, multiline)
            if not hits:
                continue
            name = self.ws.relative(path)
            if mode == "files_with_matches":
                matched_files.append((_mtime(path), name))
            elif mode == "count":
                entries.append(f"{name}:{len(hits)}")
            else:
                entries.extend(_content_entries(name, lines, hits, args))

        if mode == "files_with_matches":
            matched_files.sort(key=lambda item: (-item[0], item[1]))
            entries = [name for _, name in matched_files]
        if not entries:
            return "No matches found" if mode == "content" else "No files found"
        total = len(entries)
        note = ""
        if head_limit is not None and total > head_limit:
            entries = entries[:head_limit]
            note = f"\n\n[showing the first {head_limit} of {total} results (head_limit)]"
        if mode == "files_with_matches":
            header = f"Found {total} file{'s' if total != 1 else ''}\n"
            return truncate(header + "\n".join(entries) + note, self.max_chars)
        return truncate("\n".join(entries) + note, self.max_chars)

    def _grep_wanted(self, path: Path, root: Path, args: dict[str, Any]) -> bool:
        glob = args.get("glob")
        if glob:
            subject = path.name if "/" not in glob else _relative_to(path, root)
            if not compile_glob(glob).match(subject):
                return False
        file_type = args.get("type")
        if file_type:
            extensions = GREP_TYPES.get(file_type)
            if extensions is None:
                known = ", ".join(sorted(GREP_TYPES))
                raise ToolError(f"unknown file type '{file_type}' (known: {known})")
            if not path.name.endswith(extensions):
                return False
        return True

    # --- shared -------------------------------------------------------------------------------

    def _existing_file(self, arg: str) -> Path:
        path = self.ws.resolve(arg)
        if not path.exists():
            raise ToolError(f"file not found: '{arg}'")
        if path.is_dir():
            raise ToolError(f"'{arg}' is a directory, not a file; use Glob to list it")
        return path

    def _read_text(self, arg: str, path: Path) -> str:
        with _opening(arg), _open_checked(path, arg) as raw:
            data = raw.read()
        try:
            # Decoded from bytes, not text mode: CRLF files keep their line endings on write-back.
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"file '{arg}' is not UTF-8 text; Edit cannot change it") from None

    def _search_dir(self, path_arg: str | None) -> Path:
        return self.ws.resolve_dir(path_arg)

    def _walk(self, base: Path) -> Iterator[Path]:
        """Files under `base`, not following directory links, skipping .git, staying inside."""
        if base.is_file():
            yield base
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            here = Path(dirpath)
            for name in sorted(filenames):
                path = here / name
                if path.is_symlink():
                    real = Path(os.path.realpath(path))
                    if not self.ws.contains(real) or not real.is_file():
                        continue
                yield path


def _refuse_hard_link(fd: int, arg: str) -> None:
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        raise ToolError(
            f"refused: '{arg}' has {info.st_nlink} hard links, and another name of the same file "
            "may be outside the workspace; file tools do not read or write hard-linked files. "
            "Work on a copy instead (e.g. `cp` it to a new name)"
        )


def _open_checked(path: Path, arg: str) -> io.BufferedReader:
    """`path` opened for binary reading, refused if it is hard-linked (see the docstring)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _refuse_hard_link(fd, arg)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _write_checked(path: Path, arg: str, data: bytes) -> None:
    """Replace the content of `path` (created if missing), refusing a hard-linked file. Opened
    without O_TRUNC: the link count is checked before anything is changed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with open(fd, "wb", closefd=True) as out:
        _refuse_hard_link(fd, arg)
        out.truncate(0)
        out.write(data)


class _opening:
    """Turn OS errors into messages the model can act on."""

    def __init__(self, arg: str) -> None:
        self.arg = arg

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, PermissionError):
            raise ToolError(f"permission denied: '{self.arg}'") from None
        if isinstance(exc, (NotADirectoryError, FileExistsError)):
            raise ToolError(f"cannot use '{self.arg}': a parent of it is not a directory") from None
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            raise ToolError(f"cannot access '{self.arg}': {reason}") from None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _relative_to(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _text_or_none(path: Path) -> str | None:
    """The file's text, or None for binary, huge, hard-linked or unreadable files (Grep skips
    those)."""
    try:
        with _open_checked(path, path.name) as raw:
            if os.fstat(raw.fileno()).st_size > GREP_MAX_FILE_BYTES:
                return None
            data = raw.read()
    except (OSError, ToolError):
        return None
    if b"\0" in data[:_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace")


def _matching_lines(
    regex: re.Pattern[str], text: str, lines: list[str], multiline: bool
) -> list[int]:
    """0-based indexes of the lines a match touches."""
    if not multiline:
        return [i for i, line in enumerate(lines) if regex.search(line)]
    starts = [0]
    for i, line in enumerate(lines[:-1]):
        starts.append(starts[i] + len(line) + 1)
    hit: set[int] = set()
    for match in regex.finditer(text):
        first = bisect.bisect_right(starts, match.start()) - 1
        last = bisect.bisect_right(starts, max(match.end() - 1, match.start())) - 1
        hit.update(range(first, last + 1))
    return sorted(hit)


def _content_entries(
    name: str, lines: list[str], hits: list[int], args: dict[str, Any]
) -> list[str]:
    """ripgrep-style lines: `path:N:text` for matches, `path-N-text` for context, `--` gaps."""
    context = args.get("-C") or 0
    before = args.get("-B", context) or 0
    after = args.get("-A", context) or 0
    numbered = args.get("-n", True)
    hit_set = set(hits)
    shown: list[int] = []
    for i in hits:
        for j in range(max(0, i - before), min(len(lines), i + after + 1)):
            if not shown or j > shown[-1]:
                shown.append(j)
    out: list[str] = []
    previous = -2
    for j in shown:
        if (before or after) and out and j != previous + 1:
            out.append("--")
        sep = ":" if j in hit_set else "-"
        line = lines[j].rstrip("\r")
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + " [line truncated]"
        out.append(f"{name}{sep}{j + 1}{sep}{line}" if numbered else f"{name}{sep}{line}")
        previous = j
    return out


# --- descriptions and schemas (Claude Code's argument names) ----------------------------------

_READ_DESCRIPTION = (
    "Read a text file from the workspace. Returns lines numbered like `cat -n` (number, tab, "
    f"text). Reads up to {READ_DEFAULT_LINES} lines from the start unless offset/limit say "
    f"otherwise; lines longer than {MAX_LINE_CHARS} characters are cut. Relative paths are "
    "resolved against the workspace."
)
_READ_SCHEMA = object_schema(
    {
        "file_path": {"type": "string", "description": "The path of the file to read"},
        "offset": {
            "type": "integer",
            "minimum": 0,
            "description": "The line number to start reading from (1-based)",
        },
        "limit": {"type": "integer", "minimum": 1, "description": "The number of lines to read"},
    },
    ["file_path"],
)

_WRITE_DESCRIPTION = (
    "Write a file in the workspace, replacing it if it exists. Parent directories are created. "
    "Prefer Edit for changing part of an existing file."
)
_WRITE_SCHEMA = object_schema(
    {
        "file_path": {"type": "string", "description": "The path of the file to write"},
        "content": {"type": "string", "description": "The content to write to the file"},
    },
    ["file_path", "content"],
)

_EDIT_DESCRIPTION = (
    "Replace exact text in a file. old_string must match the file exactly (whitespace included) "
    "and be unique unless replace_all is true. An empty old_string creates a new file."
)
_EDIT_SCHEMA = object_schema(
    {
        "file_path": {"type": "string", "description": "The path of the file to modify"},
        "old_string": {"type": "string", "description": "The text to replace"},
        "new_string": {
            "type": "string",
            "description": "The text to replace it with (must differ from old_string)",
        },
        "replace_all": {
            "type": "boolean",
            "default": False,
            "description": "Replace every occurrence of old_string (default false)",
        },
    },
    ["file_path", "old_string", "new_string"],
)

_GLOB_DESCRIPTION = (
    'Find files by glob pattern, such as "**/*.py" or "src/**/*.{ts,tsx}". Returns paths '
    "relative to the workspace, most recently modified first, at most "
    f"{GLOB_MAX_RESULTS}."
)
_GLOB_SCHEMA = object_schema(
    {
        "pattern": {"type": "string", "description": "The glob pattern to match files against"},
        "path": {
            "type": "string",
            "description": "The directory to search in (default: the workspace)",
        },
    },
    ["pattern"],
)

_GREP_DESCRIPTION = (
    "Search file contents with a regular expression (Python `re` syntax). output_mode "
    '"files_with_matches" (default) lists matching files, "content" shows matching lines, '
    '"count" shows match counts per file. Filter files with glob (e.g. "*.py") or type '
    '(e.g. "py"). Binary files and .git are skipped.'
)
_GREP_SCHEMA = object_schema(
    {
        "pattern": {"type": "string", "description": "The regular expression to search for"},
        "path": {
            "type": "string",
            "description": "File or directory to search in (default: the workspace)",
        },
        "glob": {"type": "string", "description": 'Glob to filter files, e.g. "*.{ts,tsx}"'},
        "type": {"type": "string", "description": 'File type to search, e.g. "py", "js"'},
        "output_mode": {
            "type": "string",
            "enum": ["content", "files_with_matches", "count"],
            "description": 'Output mode (default "files_with_matches")',
        },
        "-i": {"type": "boolean", "description": "Case insensitive search"},
        "-n": {
            "type": "boolean",
            "description": "Show line numbers (content mode only; default true)",
        },
        "-A": {"type": "integer", "minimum": 0, "description": "Lines after each match"},
        "-B": {"type": "integer", "minimum": 0, "description": "Lines before each match"},
        "-C": {"type": "integer", "minimum": 0, "description": "Lines before and after"},
        "multiline": {
            "type": "boolean",
            "description": "Let patterns span lines; `.` matches newlines (default false)",
        },
        "head_limit": {
            "type": "integer",
            "minimum": 1,
            "description": "Return only the first N results (lines, files or counts)",
        },
    },
    ["pattern"],
)
