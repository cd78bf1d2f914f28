"""Values that came from users or requests, made safe for a terminal and a spreadsheet."""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls, DEL, C1 controls, and the bidi embeddings, overrides and isolates: a username
# holding them could retitle or clear the operator's terminal, or reorder what it shows.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# A spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``str(value)`` with every control and bidi control character written as an escape
    (``\\x1b``, ``\\u202e``); everything else, backslashes included, is left as it is."""
    return _UNSAFE.sub(_escape, str(value))


def printable_json(value: Any) -> str:
    """``json.dumps`` (non-ASCII kept) that also writes DEL, C1 and bidi controls as
    ``\\uXXXX``: ``json.dumps`` escapes only C0 ones. They can only occur inside strings,
    so the text still parses to exactly ``value``."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would evaluate gets a leading ``'``; other values pass."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
