"""Sizes and durations as people write them on a command line or in inventory settings."""

from __future__ import annotations

import math
import re

from ops.errors import UsageError

# pg_size_bytes units (case-insensitive, powers of 1024); a bare number is bytes.
_SIZE_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|d|h|m|s)?", re.IGNORECASE)  # longest unit first
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1, "": 1, "ms": 0.001}


def parse_size(text: str, what: str = "size") -> int:
    """Bytes from '1048576', '10MB', '1.5 GB', '8kB' (as pg_size_bytes reads them)."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if not m or unit not in _SIZE_UNITS:
        raise UsageError(f"bad {what} {text!r}: use bytes or a number with bytes, kB, MB, GB, TB or PB (e.g. 10MB)")
    value = float(m.group(1)) * _SIZE_UNITS[unit]
    if not math.isfinite(value):  # '9' * 400 is a float overflow, not a size
        raise UsageError(f"bad {what} {text!r}: too large")
    return int(value)


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds from '90', '90s', '30m', '2h', '1h30m', '7d'."""
    raw = str(text).strip()
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(raw):
        if m.start() != pos or not m.group(0):
            break
        total += float(m.group(1)) * _DURATION_UNITS[(m.group(2) or "").lower()]
        pos = m.end()
        while pos < len(raw) and raw[pos] == " ":
            pos += 1
    if not raw or pos != len(raw):
        raise UsageError(f"bad {what} {text!r}: use seconds or a number with d, h, m, s (e.g. 30m, 1h30m)")
    if not math.isfinite(total):
        raise UsageError(f"bad {what} {text!r}: too large")
    return total


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
