"""Search attributes as Temporal's frontend checks them: the system ones every
namespace has, the custom ones registered per namespace, and the values a
start, an upsert, a child, a continue-as-new or a schedule may give them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from temporalio.api.common.v1 import Memo, Payload, SearchAttributes
from temporalio.api.enums.v1 import IndexedValueType, WorkflowTaskFailedCause

from ablauf.engine.errors import CommandRejectedError, InvalidArgumentError
from ablauf.store.base import Store

__all__ = [
    "PREDEFINED",
    "RESERVED",
    "check",
    "check_command",
    "check_names",
    "check_request",
    "merge_memo",
    "merge_search_attributes",
    "typed",
]

T = IndexedValueType

# What Temporal's dev server lists as system attributes: those ``RESERVED``
# describe every run and no caller may set; the others it (or a worker) sets.
RESERVED: Final[Mapping[str, int]] = {
    "WorkflowId": T.INDEXED_VALUE_TYPE_KEYWORD,
    "RunId": T.INDEXED_VALUE_TYPE_KEYWORD,
    "WorkflowType": T.INDEXED_VALUE_TYPE_KEYWORD,
    "StartTime": T.INDEXED_VALUE_TYPE_DATETIME,
    "ExecutionTime": T.INDEXED_VALUE_TYPE_DATETIME,
    "CloseTime": T.INDEXED_VALUE_TYPE_DATETIME,
    "ExecutionStatus": T.INDEXED_VALUE_TYPE_KEYWORD,
    "TaskQueue": T.INDEXED_VALUE_TYPE_KEYWORD,
    "HistoryLength": T.INDEXED_VALUE_TYPE_INT,
    "HistorySizeBytes": T.INDEXED_VALUE_TYPE_INT,
    "ExecutionDuration": T.INDEXED_VALUE_TYPE_INT,
    "StateTransitionCount": T.INDEXED_VALUE_TYPE_INT,
    "ParentWorkflowId": T.INDEXED_VALUE_TYPE_KEYWORD,
    "ParentRunId": T.INDEXED_VALUE_TYPE_KEYWORD,
    "RootWorkflowId": T.INDEXED_VALUE_TYPE_KEYWORD,
    "RootRunId": T.INDEXED_VALUE_TYPE_KEYWORD,
}
PREDEFINED: Final[Mapping[str, int]] = {
    "BatcherNamespace": T.INDEXED_VALUE_TYPE_KEYWORD,
    "BatcherUser": T.INDEXED_VALUE_TYPE_KEYWORD,
    "BinaryChecksums": T.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "BuildIds": T.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "TemporalChangeVersion": T.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "TemporalExternalPayloadCount": T.INDEXED_VALUE_TYPE_INT,
    "TemporalExternalPayloadSizeBytes": T.INDEXED_VALUE_TYPE_INT,
    "TemporalNamespaceDivision": T.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalPauseInfo": T.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "TemporalReportedProblems": T.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "TemporalSchedulePaused": T.INDEXED_VALUE_TYPE_BOOL,
    "TemporalScheduledById": T.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalScheduledStartTime": T.INDEXED_VALUE_TYPE_DATETIME,
    "TemporalUsedWorkerDeploymentVersions": T.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "TemporalWorkerDeployment": T.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalWorkerDeploymentVersion": T.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalWorkflowVersioningBehavior": T.INDEXED_VALUE_TYPE_KEYWORD,
}

# The names Temporal gives the types in messages and in a value's "type" metadata.
_NAMES: Final[Mapping[int, str]] = {
    T.INDEXED_VALUE_TYPE_TEXT: "Text",
    T.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    T.INDEXED_VALUE_TYPE_INT: "Int",
    T.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    T.INDEXED_VALUE_TYPE_BOOL: "Bool",
    T.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    T.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}


def check_names(namespace: str, types: Mapping[str, int]) -> None:
    """Refuses registering a system name or an unknown type, as Temporal's operator service.

    Raises:
        InvalidArgumentError: With Temporal's message.
    """
    if not types:
        raise InvalidArgumentError("SearchAttributes are not set on request.")
    for name, kind in types.items():
        if name in RESERVED or name in PREDEFINED:
            raise InvalidArgumentError(f"Search attribute {name} is reserved by system.")
        if kind not in _NAMES:
            raise InvalidArgumentError(f"Unknown search attribute type: {kind}.")


def check(namespace: str, given: SearchAttributes, registered: Mapping[str, int]) -> None:
    """Refuses a key that is not registered (or reserved) and a value not of its type.

    Raises:
        InvalidArgumentError: With Temporal's message.
    """
    for name, payload in given.indexed_fields.items():
        if name in RESERVED:
            raise InvalidArgumentError(f"{name} attribute can't be set in SearchAttributes")
        kind = PREDEFINED.get(name) or registered.get(name)
        if kind is None:
            raise InvalidArgumentError(
                f"Namespace {namespace} has no mapping defined for search attribute {name}"
            )
        value = _decode(payload)
        if not _fits(value, kind):
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            shown = f"[{shown}]" if isinstance(value, list) else shown
            raise InvalidArgumentError(
                f"invalid value for search attribute {name} of type {_NAMES[kind]}: {shown}"
            )


def check_request(store: Store, namespace: str, given: SearchAttributes) -> None:
    """:func:`check` against what ``namespace`` has registered in ``store``."""
    if given.indexed_fields:
        check(namespace, given, store.search_attributes(namespace))


def check_command(store: Store, namespace: str, given: SearchAttributes) -> None:
    """:func:`check_request` for a workflow's command (an upsert, a child, a
    continue-as-new): a bad key fails the workflow task, as on Temporal.

    Raises:
        CommandRejectedError: With Temporal's cause and message.
    """
    try:
        check_request(store, namespace, given)
    except InvalidArgumentError as err:
        raise CommandRejectedError(
            f"BadSearchAttributes: {err}",
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES,
        ) from None


def _decode(payload: Payload) -> object:
    try:
        return json.loads(payload.data) if payload.data else None
    except ValueError:
        return payload.data.decode(errors="replace")


def _fits(value: object, kind: int) -> bool:
    if value is None:
        return True
    if kind == T.INDEXED_VALUE_TYPE_KEYWORD_LIST:
        values = value if isinstance(value, list) else [value]
        return all(isinstance(v, str) for v in values)
    if isinstance(value, list):
        # Values from before typed attributes come as a list of one.
        if len(value) > 1:
            return False
        if not value:
            return True
        value = value[0]
    if kind in (T.INDEXED_VALUE_TYPE_TEXT, T.INDEXED_VALUE_TYPE_KEYWORD):
        return isinstance(value, str)
    if kind == T.INDEXED_VALUE_TYPE_BOOL:
        return isinstance(value, bool)
    if kind == T.INDEXED_VALUE_TYPE_INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == T.INDEXED_VALUE_TYPE_DOUBLE:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == T.INDEXED_VALUE_TYPE_DATETIME:
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            return False
        return isinstance(value, str)
    return False


def _null(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == b"binary/null" or payload.data in (b"", b"null")


def merge_search_attributes(current: SearchAttributes, upserted: SearchAttributes) -> None:
    """Applies an upsert to ``current``: keys given a value are set, keys given none removed."""
    for name, payload in upserted.indexed_fields.items():
        # No value: null, or the empty list of attributes written before typed ones.
        if _null(payload) or payload.data == b"[]":
            current.indexed_fields.pop(name, None)
        else:
            current.indexed_fields[name].CopyFrom(payload)


def merge_memo(current: Memo, upserted: Memo) -> None:
    """Applies a memo upsert to ``current`` (a key given null is removed)."""
    for name, payload in upserted.fields.items():
        if _null(payload):
            current.fields.pop(name, None)
        else:
            current.fields[name].CopyFrom(payload)


def typed(given: SearchAttributes, registered: Mapping[str, int]) -> SearchAttributes:
    """A copy whose values carry their registered type in their metadata, as
    Temporal's describe returns them (the SDK reads typed attributes from it)."""
    out = SearchAttributes()
    out.CopyFrom(given)
    for name, payload in out.indexed_fields.items():
        kind = PREDEFINED.get(name) or registered.get(name)
        if kind is not None and "type" not in payload.metadata:
            payload.metadata["type"] = _NAMES[kind].encode()
    return out
