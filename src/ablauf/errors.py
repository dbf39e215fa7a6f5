"""Errors raised by ablauf itself.

Failures that workflow code sees are ``temporalio.exceptions`` types, because
user code catches those; client operations raise the same errors as
``temporalio.client`` (``WorkflowFailureError``, ``WorkflowAlreadyStartedError``,
``RPCError`` ...). Everything that is ablauf's own sits in this tree::

    AblaufError
    ├── InvalidTargetError        the target string of Client.connect cannot be parsed
    ├── StoreError                the store cannot be used now: not an ablauf store, disk
    │   │                         full, read-only, corrupt, locked (the message names the
    │   │                         cause and the file; the engine resumes once it is gone)
    │   └── StoreLostError        the store file was removed or replaced while in use
    └── UnsupportedFeatureError   workflow code used a feature ablauf does not run yet
"""

from __future__ import annotations

__all__ = [
    "AblaufError",
    "InvalidTargetError",
    "StoreError",
    "StoreLostError",
    "UnsupportedFeatureError",
]


class AblaufError(Exception):
    """An ablauf operation failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip())


class InvalidTargetError(AblaufError, ValueError):
    """The target string cannot be parsed."""


class StoreError(AblaufError):
    """The store cannot be used."""


class StoreLostError(StoreError):
    """The store file was removed or replaced while this process used it."""


class UnsupportedFeatureError(AblaufError):
    """Workflow code used a feature that ablauf does not run yet."""
