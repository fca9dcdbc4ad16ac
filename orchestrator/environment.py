"""What a child process gets: the parent's environment minus every credential, and a sandbox.

One rule for every process the engine starts (`run:` steps, the Bash tool), so a command, or a
prompt-injected one, can never read the run's API key or another service's token.

The sandbox is bubblewrap (`bwrap`, what Claude Code's sandbox runtime uses on Linux). Inside it:
- the workspace is the only writable place (bound at its real path, so absolute paths work);
  the rest of the filesystem is read-only, `/tmp` and `/var/tmp` are private and empty, and `/run`
  (where sockets live: PostgreSQL's, Docker's, D-Bus) is hidden;
- a new PID namespace with its own `/proc`: the engine's process, its `/proc/<pid>/environ` and
  its memory are out of sight; the command cannot signal or trace anything outside;
- no network (a new network namespace with only its own loopback) unless `network: true`;
- `bwrap` itself is started with the secret-free environment, because it is PID 1 inside and
  `/proc/1/environ` shows what it was started with;
- killing `bwrap` kills everything inside (PID 1 of a namespace takes the rest with it).

Who decides (`sandbox: auto | on | off`, in settings and per step):
- `off`: nothing is sandboxed (secrets are still dropped from the environment).
- `on`: a command runs in the sandbox or not at all (`SandboxUnavailable`).
- `auto` (default): the sandbox when bubblewrap works here; otherwise a Bash tool call (a command
  the model wrote) is refused, and a `run:` step (the author's own command) runs unsandboxed with
  a warning (`Launch.warning`) that the engine prints and records once per run.

This module is a leaf so that both `engine` (for `run:`) and `tools` (for Bash) can use it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread

from orchestrator.errors import UsageError

_SECRET_PREFIXES = ("ANTHROPIC_",)
_SECRET_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN")
_SECRET_NAMES = frozenset({"CLAUDE_CODE_OAUTH_TOKEN"})
# A URL with a password in it (`postgresql://user:pw@host/db`, e.g. ORCHESTRATE_DB).
_URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/@:\s]*:[^/@\s]+@")


def without_secrets(parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """`parent` (default: this process's environment) without credential variables."""
    env = os.environ if parent is None else parent
    return {
        name: value
        for name, value in env.items()
        if not name.upper().startswith(_SECRET_PREFIXES)
        and not name.upper().endswith(_SECRET_SUFFIXES)
        and name.upper() not in _SECRET_NAMES
        and not _URL_WITH_PASSWORD.match(value)
    }


# --- the setting ------------------------------------------------------------------------------

SANDBOX_MODES = ("auto", "on", "off")
SANDBOX_KEYS = ("mode", "network", "bwrap")
STEP_SANDBOX_KEYS = ("mode", "network")  # where bwrap lives is a property of the machine
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
    "bubblewrap; Arch: pacman -S bubblewrap)"
)


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """The resolved `sandbox:` setting for one command. `bwrap`: a name on PATH or a path."""

    mode: str = "auto"
    network: bool = False
    bwrap: str = "bwrap"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def override(self, step: Mapping[str, Any] | None) -> SandboxPolicy:
        """This policy with a step's `sandbox:` (as `step_sandbox` normalised it) on top."""
        if not step:
            return self
        return replace(self, **{k: v for k, v in step.items() if k in STEP_SANDBOX_KEYS})


def _mode(value: object) -> str:
    # YAML 1.1 reads a bare `on`/`off` as a boolean: take it as the word it was.
    if value is True:
        return "on"
    if value is False:
        return "off"
    if isinstance(value, str) and value.strip().lower() in SANDBOX_MODES:
        return value.strip().lower()
    raise ValueError(f"sandbox mode must be one of {', '.join(SANDBOX_MODES)}, got {value!r}")


def _normalise(raw: object, keys: Sequence[str]) -> dict[str, Any]:
    if isinstance(raw, SandboxPolicy):
        return {k: v for k, v in raw.to_dict().items() if k in keys}
    if isinstance(raw, str | bool):
        return {"mode": _mode(raw)}
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"sandbox must be one of {', '.join(SANDBOX_MODES)} or a mapping with "
            f"{', '.join(keys)}, got {raw!r}"
        )
    unknown = sorted(str(k) for k in raw if k not in keys)
    if unknown:
        raise ValueError(f"unknown sandbox key {', '.join(unknown)} (known: {', '.join(keys)})")
    out: dict[str, Any] = {}
    if "mode" in raw:
        out["mode"] = _mode(raw["mode"])
    if "network" in raw:
        if not isinstance(raw["network"], bool):
            raise ValueError(f"sandbox network must be true or false, got {raw['network']!r}")
        out["network"] = raw["network"]
    if "bwrap" in raw:
        if not isinstance(raw["bwrap"], str) or not raw["bwrap"].strip():
            raise ValueError("sandbox bwrap must be a program name or a path")
        out["bwrap"] = raw["bwrap"].strip()
    return out


def parse_sandbox(raw: object) -> SandboxPolicy:
    """The settings' `sandbox:`: `auto|on|off`, or `{mode, network, bwrap}`. `ValueError`."""
    if raw is None:
        return SandboxPolicy()
    return SandboxPolicy(**_normalise(raw, SANDBOX_KEYS))


def step_sandbox(raw: object) -> dict[str, Any]:
    """A step's `sandbox:` (`auto|on|off` or `{mode, network}`) as the keys it sets, for
    `SandboxPolicy.override`. Raises `ValueError` with a message naming what is allowed."""
    return _normalise(raw, STEP_SANDBOX_KEYS)


# --- bubblewrap -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bubblewrap:
    """What probing `bwrap` on this machine found. `problem` says why it cannot be used."""

    path: str | None
    version: str | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.path is not None and self.problem is None


@functools.cache
def probe_bubblewrap(name: str = "bwrap") -> Bubblewrap:
    """Find `name` and check that it can build a sandbox here (containers without user or
    PID namespaces cannot). Blocking, cached per process: call it off the event loop."""
    path = shutil.which(name)
    if path is None:
        return Bubblewrap(None, problem=f"bubblewrap ('{name}') is not installed")
    probe = [path, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-all"]
    try:
        done = subprocess.run(
            [*probe, "--die-with-parent", "--", "true"],
            env=without_secrets(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return Bubblewrap(path, problem=f"bubblewrap at {path} cannot be run: {exc}")
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return Bubblewrap(
            path, version, problem=f"bubblewrap at {path} cannot create a sandbox: {detail[0]}"
        )
    return Bubblewrap(path, version or "bubblewrap")


async def find_bubblewrap(name: str = "bwrap") -> Bubblewrap:
    return await anyio.to_thread.run_sync(probe_bubblewrap, name)


def bubblewrap_argv(
    bwrap: str, argv: Sequence[str], *, workspace: Path, network: bool
) -> list[str]:
    """`argv` inside a sandbox where only `workspace` is writable (see the module docstring)."""
    ws = os.path.realpath(workspace)
    out = [bwrap, "--die-with-parent", "--new-session", "--unshare-all"]
    if network:
        out.append("--share-net")
    out += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    out += ["--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--tmpfs", "/run"]
    if network and os.path.isdir("/run/systemd/resolve"):
        # /etc/resolv.conf often links here (systemd-resolved); DNS needs it with the network on.
        out += ["--ro-bind", "/run/systemd/resolve", "/run/systemd/resolve"]
    out += ["--bind", ws, ws, "--chdir", ws, "--", *argv]
    return out


# --- the decision -----------------------------------------------------------------------------


class SandboxUnavailable(UsageError):
    """A command must run in the sandbox (`on`, or a Bash call under `auto`) and none works."""


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one command: `argv` (wrapped in bwrap when `sandboxed`), and a warning to
    show the person once per run when it runs unsandboxed against their `auto` setting."""

    argv: list[str]
    sandboxed: bool
    warning: str | None = None


def _fix(mode: str) -> str:
    return (
        f"{INSTALL_HINT}, or set `sandbox: off` (in orchestrate.yaml or on the step) to run "
        "commands without one"
        if mode == "auto"
        else f"{INSTALL_HINT}, or set `sandbox: auto` or `off`"
    )


def plan_launch(
    argv: Sequence[str],
    *,
    workspace: Path,
    policy: SandboxPolicy,
    origin: Literal["tool", "run"],
    bubblewrap: Bubblewrap,
) -> Launch:
    """The decision table of the module docstring, given what probing found."""
    if policy.mode == "off":
        return Launch(list(argv), sandboxed=False)
    if bubblewrap.usable:
        assert bubblewrap.path is not None
        wrapped = bubblewrap_argv(
            bubblewrap.path, argv, workspace=workspace, network=policy.network
        )
        return Launch(wrapped, sandboxed=True)
    if policy.mode == "auto" and origin == "run":
        warning = (
            f"`run:` steps run WITHOUT a sandbox: {bubblewrap.problem}; they can read and write "
            f"anything this user can. To sandbox them, {INSTALL_HINT}; to silence this warning, "
            "set `sandbox: off`"
        )
        return Launch(list(argv), sandboxed=False, warning=warning)
    what = "the command was not run" if origin == "tool" else "the `run:` step was not run"
    raise SandboxUnavailable(
        f"sandbox: {policy.mode} requires a sandbox and {bubblewrap.problem}, so {what}. "
        f"To fix: {_fix(policy.mode)}"
    )


async def prepare_launch(
    argv: Sequence[str],
    *,
    workspace: Path,
    policy: SandboxPolicy,
    origin: Literal["tool", "run"],
) -> Launch:
    """`plan_launch` with this machine's bubblewrap (probed once per process)."""
    found = Bubblewrap(None) if policy.mode == "off" else await find_bubblewrap(policy.bwrap)
    return plan_launch(argv, workspace=workspace, policy=policy, origin=origin, bubblewrap=found)


async def describe_sandbox(policy: SandboxPolicy) -> dict[str, Any]:
    """What a run records about its sandbox (the `RunStarted` event's `sandbox`)."""
    out: dict[str, Any] = {"mode": policy.mode, "network": policy.network}
    if policy.mode == "off":
        return {**out, "backend": "none"}
    found = await find_bubblewrap(policy.bwrap)
    if found.usable:
        return {**out, "backend": "bubblewrap", "version": found.version, "path": found.path}
    return {**out, "backend": "none", "problem": found.problem}
