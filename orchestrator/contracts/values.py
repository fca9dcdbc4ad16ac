"""The one alias for a JSON-compatible value, shared by every contract and event."""

from __future__ import annotations

from typing import Any

JSON = Any  # a JSON-compatible value: dict, list, str, int, float, bool or None
