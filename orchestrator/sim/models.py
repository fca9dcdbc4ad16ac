"""The models the simulator serves: ids, display names, output limits, prompt-cache minimums.

The ids are the catalog of the packaged `configs/default.yaml` (read as a file: the simulator
imports nothing of the engine), plus any the caller adds (`SimConfig.models`, `--sim-model`).
A dated snapshot of a known id (`claude-opus-4-1-20250805`) is the same model, as on the API.
Limits come from one table keyed by family and version, first match wins; the figures are the
Messages API's documented ones for the real models, and the newest family's for later versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

_ID = re.compile(r"^claude-(?P<family>[a-z]+)-(?P<major>\d+)(?:-(?P<minor>\d{1,2}))?(?:-\d{8})?$")
_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{8}$")
_EPOCH = "1970-01-01T00:00:00Z"  # "may be an epoch value if the release date is unknown"

# (family, lowest version) -> (max output tokens, minimum cacheable prefix in tokens).
# Cache minimums per the prompt-caching docs: 4096 for Opus 4.5+ and Haiku 4.5+, 2048 for older
# Haiku, 1024 for Sonnet and older Opus. Output limits per the models overview.
LIMITS: tuple[tuple[str, tuple[int, int], int, int], ...] = (
    ("opus", (4, 6), 128_000, 4096),
    ("opus", (4, 5), 64_000, 4096),
    ("opus", (4, 0), 32_000, 1024),
    ("sonnet", (4, 0), 64_000, 1024),
    ("sonnet", (3, 7), 64_000, 1024),
    ("haiku", (4, 5), 64_000, 4096),
    ("haiku", (3, 0), 8_192, 2048),
)
DEFAULT_LIMITS = (64_000, 1024)  # an id that names no known family (e.g. one added by a flag)
CONTEXT_WINDOW = 1_000_000


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    display_name: str
    max_tokens: int  # the largest `max_tokens` a request may ask for
    cache_minimum: int  # prefixes shorter than this (tokens) are not cached
    deprecated: bool = False

    def to_json(self) -> dict[str, Any]:
        """The Models API's `model` object."""
        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": _EPOCH,
            "lifecycle": "deprecated" if self.deprecated else "active",
            "deprecated_at": _EPOCH if self.deprecated else None,
            "retires_at": None,
            "max_input_tokens": CONTEXT_WINDOW,
            "max_tokens": self.max_tokens,
        }


def describe(model_id: str, *, deprecated: bool = False) -> ModelInfo:
    """What the simulator knows of an id, from its family and version."""
    match = _ID.match(model_id)
    max_tokens, minimum = DEFAULT_LIMITS
    name = model_id
    if match:
        family = match["family"]
        version = (int(match["major"]), int(match["minor"] or 0))
        for row_family, lowest, row_max, row_min in LIMITS:
            if family == row_family and version >= lowest:
                max_tokens, minimum = row_max, row_min
                break
        shown = f"{version[0]}.{version[1]}" if match["minor"] else str(version[0])
        name = f"Claude {family.capitalize()} {shown}"
    return ModelInfo(model_id, name, max_tokens, minimum, deprecated)


def _default_yaml() -> str:
    """The packaged defaults: in the wheel, or the source tree's `configs/` in a checkout."""
    try:
        return resources.files("orchestrator").joinpath("_data/default.yaml").read_text("utf-8")
    except (FileNotFoundError, OSError):
        pass
    source = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    return source.read_text("utf-8")


def default_catalog() -> list[ModelInfo]:
    """The models of `configs/default.yaml`, in the order written there."""
    import yaml

    data = yaml.safe_load(_default_yaml()) or {}
    catalog = (data.get("models") or {}).get("catalog") or {}
    return [
        describe(str(model_id), deprecated=bool((entry or {}).get("deprecated")))
        for model_id, entry in catalog.items()
    ]


class Catalog:
    """The models one simulator answers for, newest first (as the Models API lists them)."""

    def __init__(self, extra: list[str] | None = None) -> None:
        models = {m.id: m for m in default_catalog()}
        for model_id in extra or []:
            models.setdefault(model_id, describe(model_id))
        self.models = sorted(models.values(), key=_newest_first)

    def find(self, model_id: str) -> ModelInfo | None:
        for model in self.models:
            if model.id == model_id:
                return model
        snapshot = _SNAPSHOT.match(model_id)
        if snapshot:
            base = self.find(snapshot["base"])
            if base is not None:
                return ModelInfo(
                    model_id,
                    base.display_name,
                    base.max_tokens,
                    base.cache_minimum,
                    base.deprecated,
                )
        return None

    def page(
        self, *, limit: int = 20, after_id: str | None = None, before_id: str | None = None
    ) -> dict[str, Any]:
        """One page of `GET /v1/models`; an unknown cursor gives an empty page."""
        ids = [m.id for m in self.models]
        if after_id is not None:
            start = ids.index(after_id) + 1 if after_id in ids else len(ids)
            chosen = self.models[start : start + limit]
            more = start + limit < len(ids)
        elif before_id is not None:
            end = ids.index(before_id) if before_id in ids else 0
            chosen = self.models[max(0, end - limit) : end]
            more = end - limit > 0
        else:
            chosen = self.models[:limit]
            more = limit < len(ids)
        data = [m.to_json() for m in chosen]
        return {
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }


def _newest_first(model: ModelInfo) -> tuple[int, int, int, str]:
    match = _ID.match(model.id)
    if not match:
        return (1, 0, 0, model.id)  # unversioned ids after the versioned ones
    order = {"opus": 0, "sonnet": 1, "haiku": 2}.get(match["family"], 3)
    major, minor = int(match["major"]), int(match["minor"] or 0)
    return (0, -(major * 100 + minor), order, model.id)
