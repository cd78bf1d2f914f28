"""``argparse`` types of the commands' arguments: a bad value stops the command with a
one-line error naming it (what it printed escaped), never a traceback."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

from active_users.text import printable

#: A number of days a command takes at most: a century (beyond, dates leave the calendar).
MAX_DAYS = 36500


def number(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], float]:
    """A finite ``kind`` from ``low`` to ``high``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {printable(text)}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, not {value:g}")
        return value

    return parse


def output_file(text: str) -> str:
    """``-`` (standard output), or a file in a folder that exists."""
    folder = os.path.dirname(os.path.abspath(text))
    if text != "-" and not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"no such folder: {printable(folder)}")
    return text
