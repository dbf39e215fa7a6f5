"""Reads the wall clock: workflow modules import it passed through the sandbox."""

from __future__ import annotations

import datetime


def year() -> int:
    """The current year, by the wall clock."""
    return datetime.datetime.now().year
