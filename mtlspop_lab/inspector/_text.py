"""Small text helpers of the inspector: times, durations, clipped JSON values.

Why one place: every card and table shows times and values the same way.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _as_time(value: Any) -> _dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _fmt_time(seconds: float) -> str:
    t = _as_time(seconds)
    return f"{t:%Y-%m-%d %H:%M:%S} UTC" if t else "an invalid time"


def _time_phrase(value: Any) -> str:
    t = _as_time(value)
    if t is None:
        return ""
    delta = (t - _utcnow()).total_seconds()
    return f"{t:%Y-%m-%d %H:%M:%S} UTC, " + (f"in {_duration(delta)}" if delta > 0 else f"{_duration(-delta)} ago")


def _ago(seconds: float) -> str:
    return f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _display_value(value: Any) -> str:
    return _clip(value if isinstance(value, str) else _compact_json(value), 500)


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        return repr(value)
    except RecursionError:
        return "<JSON nested too deeply to show>"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(
        type(value), type(value).__name__)


def _clip(text: Any, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _first_sentence(text: str) -> str:
    head, dot, _rest = text.partition(". ")
    return head + ("." if dot else "")


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
