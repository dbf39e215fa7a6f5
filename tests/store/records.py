"""Records for store tests, with defaults a test overrides by keyword."""

from __future__ import annotations

import dataclasses
from typing import Any

from ablauf.store.base import (
    WORKFLOW_TASK,
    ExecutionRecord,
    OwnerRecord,
    ScheduleRecord,
    TaskRecord,
    UpdateRecord,
)


def execution(run_id: str = "run-1", workflow_id: str = "wf", **changes: Any) -> ExecutionRecord:
    rec = ExecutionRecord(
        run_id=run_id,
        namespace="default",
        workflow_id=workflow_id,
        workflow_type="Flow",
        task_queue="q",
        status=1,
        start_time=100.0,
        close_time=None,
        next_event_id=1,
        history_size=0,
        version=0,
    )
    return dataclasses.replace(rec, **changes)


def task(run_id: str = "run-1", kind: int = WORKFLOW_TASK, **changes: Any) -> TaskRecord:
    rec = TaskRecord(
        id=0,
        kind=kind,
        run_id=run_id,
        namespace="default",
        task_queue="q",
        ref=1,
        attempt=1,
        visible_at=0.0,
        lease_owner=None,
        lease_until=None,
        lease_nonce=0,
        started_at=None,
        scheduled_at=0.0,
        attempt_scheduled_at=0.0,
        cancel_requested=False,
        heartbeat_at=None,
        heartbeat_details=None,
        last_failure=None,
    )
    return dataclasses.replace(rec, **changes)


def owner(owner_id: str = "owner-1", **changes: Any) -> OwnerRecord:
    rec = OwnerRecord(
        owner_id=owner_id,
        pid=4242,
        started_at=10.0,
        task_queues=("q", "r"),
        lease_until=100.0,
        host="host-a",
    )
    return dataclasses.replace(rec, **changes)


def update(update_id: str = "u-1", run_id: str = "run-1", **changes: Any) -> UpdateRecord:
    rec = UpdateRecord(
        run_id=run_id,
        update_id=update_id,
        seq=1,
        request=b"request",
        state=0,
        outcome=None,
        accepted_event_id=0,
    )
    return dataclasses.replace(rec, **changes)


def schedule(schedule_id: str = "s-1", **changes: Any) -> ScheduleRecord:
    rec = ScheduleRecord(
        namespace="default",
        schedule_id=schedule_id,
        schedule=b"schedule",
        info=b"info",
        memo=b"memo",
        search_attributes=b"attrs",
        state="{}",
        created_at=1.0,
    )
    return dataclasses.replace(rec, **changes)
