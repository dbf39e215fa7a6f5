"""The SQLite store's statements, named: each block of ``queries.sql`` bound
once, at import, to a constant of its name upper-cased.

Constants, not a mapping read at each call: the store runs these for every
event, and compiled, a ``Final`` name is a C static. ``{marks}`` in a statement
stands for one ``?`` per item of a list, filled in with :func:`marks`.
Transaction control and pragmas stay with the code that issues them.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

__all__ = [
    "ADD_SEARCH_ATTRIBUTE",
    "ALL_TABLES",
    "ANSWER_QUERY",
    "BUFFERED_EVENTS",
    "COUNT_BUFFERED_EVENTS",
    "COUNT_RUNNING",
    "CURRENT_RUN_ID",
    "DELETE_BUFFERED_EVENTS",
    "DELETE_QUERY",
    "DELETE_REF_TIMERS",
    "DELETE_RUN_TASKS",
    "DELETE_RUN_TIMERS",
    "DELETE_RUN_TIMERS_OF_KIND",
    "DELETE_RUN_TIMERS_OF_KIND_AND_REF",
    "DELETE_RUN_TIMERS_OF_REF",
    "DELETE_SCHEDULE",
    "DELETE_TASK",
    "DELETE_TIMER",
    "DUE_TIMERS",
    "EXECUTION_VERSION",
    "EXPIRE_OWNER",
    "FIRST_ROW",
    "GET_EXECUTION",
    "GET_META",
    "GET_QUERY",
    "GET_SCHEDULE",
    "GET_UPDATE",
    "INSERT_BUFFERED_EVENT",
    "INSERT_CHUNK",
    "INSERT_EXECUTION",
    "INSERT_META",
    "INSERT_QUERY",
    "INSERT_SCHEDULE",
    "INSERT_TASK",
    "INSERT_TIMER",
    "INSERT_UPDATE",
    "LAST_TASK_ID",
    "LIST_SCHEDULES",
    "NEXT_TIMER_AT",
    "OPEN_QUERIES",
    "OWNERS",
    "READY_TASKS",
    "READ_HISTORY",
    "REGISTER_OWNER",
    "RELEASE_LEASES",
    "RELEASE_LEASES_OF_QUEUE",
    "REMOVE_OWNER",
    "REMOVE_SEARCH_ATTRIBUTE",
    "RENEW_OWNER",
    "RETRYING_WORKFLOW_TASK",
    "ROWID_RANGE",
    "RUNNABLE_TASK",
    "RUNS_WITH_LEASED_ACTIVITIES",
    "RUNS_WITH_LEASED_TASKS",
    "RUN_IDS",
    "SAVE_UPDATE",
    "SEARCH_ATTRIBUTES",
    "SET_CURRENT_RUN",
    "TABLES",
    "TAKE_QUERY",
    "TASKS_OF_RUN",
    "TOUCH_LEASED_RUNS",
    "TOUCH_LEASED_RUNS_OF_QUEUE",
    "UPDATES_OF_RUN",
    "UPDATE_EXECUTION",
    "UPDATE_SCHEDULE",
    "UPDATE_TASK",
    "marks",
    "parse",
]


def parse(text: str) -> dict[str, str]:
    """The named blocks of ``text``: ``-- name: x`` heads each; other comment
    lines, blank lines and a closing ``;`` are left out."""
    blocks: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- name:"):
            name = stripped.removeprefix("-- name:").strip()
            if name in blocks:
                raise ValueError(f"statement {name!r} is named twice")
            lines = blocks[name] = []
        elif lines is not None and stripped and not stripped.startswith("--"):
            lines.append(line.rstrip())
    return {name: "\n".join(lines).rstrip(";") for name, lines in blocks.items()}


def marks(count: int) -> str:
    """``?`` placeholders for a list of ``count`` items."""
    return ",".join("?" * count)


_blocks = parse(resources.files("ablauf.store").joinpath("queries.sql").read_text())

INSERT_EXECUTION: Final = _blocks.pop("insert_execution")
UPDATE_EXECUTION: Final = _blocks.pop("update_execution")
GET_EXECUTION: Final = _blocks.pop("get_execution")
EXECUTION_VERSION: Final = _blocks.pop("execution_version")
COUNT_RUNNING: Final = _blocks.pop("count_running")
RUN_IDS: Final = _blocks.pop("run_ids")
CURRENT_RUN_ID: Final = _blocks.pop("current_run_id")
SET_CURRENT_RUN: Final = _blocks.pop("set_current_run")
INSERT_CHUNK: Final = _blocks.pop("insert_chunk")
READ_HISTORY: Final = _blocks.pop("read_history")
INSERT_BUFFERED_EVENT: Final = _blocks.pop("insert_buffered_event")
BUFFERED_EVENTS: Final = _blocks.pop("buffered_events")
DELETE_BUFFERED_EVENTS: Final = _blocks.pop("delete_buffered_events")
COUNT_BUFFERED_EVENTS: Final = _blocks.pop("count_buffered_events")
INSERT_TASK: Final = _blocks.pop("insert_task")
UPDATE_TASK: Final = _blocks.pop("update_task")
DELETE_TASK: Final = _blocks.pop("delete_task")
DELETE_RUN_TASKS: Final = _blocks.pop("delete_run_tasks")
TASKS_OF_RUN: Final = _blocks.pop("tasks_of_run")
READY_TASKS: Final = _blocks.pop("ready_tasks")
RUNNABLE_TASK: Final = _blocks.pop("runnable_task")
RETRYING_WORKFLOW_TASK: Final = _blocks.pop("retrying_workflow_task")
LAST_TASK_ID: Final = _blocks.pop("last_task_id")
TOUCH_LEASED_RUNS: Final = _blocks.pop("touch_leased_runs")
TOUCH_LEASED_RUNS_OF_QUEUE: Final = _blocks.pop("touch_leased_runs_of_queue")
RELEASE_LEASES: Final = _blocks.pop("release_leases")
RELEASE_LEASES_OF_QUEUE: Final = _blocks.pop("release_leases_of_queue")
RUNS_WITH_LEASED_TASKS: Final = _blocks.pop("runs_with_leased_tasks")
RUNS_WITH_LEASED_ACTIVITIES: Final = _blocks.pop("runs_with_leased_activities")
INSERT_TIMER: Final = _blocks.pop("insert_timer")
DELETE_TIMER: Final = _blocks.pop("delete_timer")
DELETE_RUN_TIMERS: Final = _blocks.pop("delete_run_timers")
DELETE_RUN_TIMERS_OF_KIND: Final = _blocks.pop("delete_run_timers_of_kind")
DELETE_RUN_TIMERS_OF_REF: Final = _blocks.pop("delete_run_timers_of_ref")
DELETE_RUN_TIMERS_OF_KIND_AND_REF: Final = _blocks.pop("delete_run_timers_of_kind_and_ref")
DELETE_REF_TIMERS: Final = _blocks.pop("delete_ref_timers")
DUE_TIMERS: Final = _blocks.pop("due_timers")
NEXT_TIMER_AT: Final = _blocks.pop("next_timer_at")
REGISTER_OWNER: Final = _blocks.pop("register_owner")
RENEW_OWNER: Final = _blocks.pop("renew_owner")
REMOVE_OWNER: Final = _blocks.pop("remove_owner")
EXPIRE_OWNER: Final = _blocks.pop("expire_owner")
OWNERS: Final = _blocks.pop("owners")
INSERT_UPDATE: Final = _blocks.pop("insert_update")
SAVE_UPDATE: Final = _blocks.pop("save_update")
GET_UPDATE: Final = _blocks.pop("get_update")
UPDATES_OF_RUN: Final = _blocks.pop("updates_of_run")
INSERT_QUERY: Final = _blocks.pop("insert_query")
OPEN_QUERIES: Final = _blocks.pop("open_queries")
TAKE_QUERY: Final = _blocks.pop("take_query")
ANSWER_QUERY: Final = _blocks.pop("answer_query")
GET_QUERY: Final = _blocks.pop("get_query")
DELETE_QUERY: Final = _blocks.pop("delete_query")
INSERT_SCHEDULE: Final = _blocks.pop("insert_schedule")
GET_SCHEDULE: Final = _blocks.pop("get_schedule")
UPDATE_SCHEDULE: Final = _blocks.pop("update_schedule")
DELETE_SCHEDULE: Final = _blocks.pop("delete_schedule")
LIST_SCHEDULES: Final = _blocks.pop("list_schedules")
SEARCH_ATTRIBUTES: Final = _blocks.pop("search_attributes")
ADD_SEARCH_ATTRIBUTE: Final = _blocks.pop("add_search_attribute")
REMOVE_SEARCH_ATTRIBUTE: Final = _blocks.pop("remove_search_attribute")
ALL_TABLES: Final = _blocks.pop("all_tables")
TABLES: Final = _blocks.pop("tables")
GET_META: Final = _blocks.pop("get_meta")
INSERT_META: Final = _blocks.pop("insert_meta")
FIRST_ROW: Final = _blocks.pop("first_row")
ROWID_RANGE: Final = _blocks.pop("rowid_range")

if _blocks:
    raise ImportError(f"queries.sql: statements without a constant: {', '.join(_blocks)}")
