"""Stores: the one place that chooses a backend for a URL.

``open_store`` takes:

- ``sqlite:///relative.db``, ``sqlite:////absolute.db`` (``?synchronous=full``
  for an fsync per commit), or a plain path: the store in that SQLite file;
- ``sqlite://:memory:`` (also ``sqlite:///:memory:``, or ``:memory:``): a
  private SQLite database in memory, with the same schema and statements, gone
  when closed. For tests: no other connection or process can see it.

A backend's module is imported only when a URL asks for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from ablauf.errors import InvalidTargetError
from ablauf.store.base import MEMORY

if TYPE_CHECKING:
    from ablauf.store.base import Store

__all__ = ["MEMORY", "SCHEMES", "StoreUrl", "open_store", "parse_url"]

SCHEMES = ("sqlite",)
"""The URL schemes of the stores ablauf has."""

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class StoreUrl(NamedTuple):
    """A parsed store URL: the backend's scheme, where the store lives (an
    absolute path, or :data:`MEMORY`) and the backend's options."""

    scheme: str
    path: str
    options: dict[str, str]


def parse_url(url: str) -> StoreUrl:
    """The parts of a store URL (``scheme://...``).

    Raises:
        InvalidTargetError: The URL names no store ablauf has, no file, or
            options the backend does not know.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidTargetError(
            f"unsupported store {parts.scheme!r} in {url!r}: the stores are "
            f"{', '.join(repr(s) for s in SCHEMES)} ('sqlite:///file.db')"
        )
    if parts.netloc == MEMORY and parts.path in ("", "/"):
        path = MEMORY
    elif parts.netloc:
        raise InvalidTargetError(
            f"cannot parse target {url!r}: a store URL has three slashes, 'sqlite:///file.db' "
            "(four for an absolute path)"
        )
    else:
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise InvalidTargetError(f"target {url!r} names no file")
        if path != MEMORY:
            path = os.path.abspath(path)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    synchronous = options.pop("synchronous", "normal").upper()
    if synchronous not in _SYNCHRONOUS:
        raise InvalidTargetError(
            f"synchronous={synchronous.lower()} is not one of off, normal, full, extra"
        )
    if options:
        raise InvalidTargetError(f"unknown store option(s) {', '.join(sorted(options))} in {url!r}")
    return StoreUrl(parts.scheme, path, {"synchronous": synchronous})


def open_store(url: str, **options: Any) -> Store:
    """Opens (or creates) the store at ``url``; see the module docstring.

    Args:
        url: A store URL, or the path of an SQLite file.
        options: The backend's options (for SQLite: ``synchronous``); they
            override the URL's.

    Raises:
        InvalidTargetError: The URL cannot be parsed or names an unknown scheme.
        StoreError: The store cannot be opened.
    """
    if "://" in url:
        scheme, path, url_options = parse_url(url)
        options = {**url_options, **options}
    else:
        scheme, path = "sqlite", url
    if scheme == "sqlite":
        from ablauf.store.sqlite import SqliteStore

        return SqliteStore(path, **options)
    raise AssertionError(f"no backend for scheme {scheme!r}")  # parse_url admits only SCHEMES
