"""Temporal's own Replayer replays every history a test left in an ablauf store.

After a test that ran workflows on the embedded engine, :func:`check_stores`
exports the history of every run in each store file the test wrote (through the
public client API, as ``ablauf workflow show --json`` does) and replays it in
``temporalio.worker.Replayer`` with the workflow classes the test could have
run. A history that the Replayer rejects means ablauf issued other commands, in
another order or with other flags, than Temporal's SDK issues for the same code:
the check names the workflow and the Replayer's error.

A history is matched to the classes whose workflow name is its workflow type.
When several classes share a name (a test that swaps in changed code), the
history passes if it replays with one of them. Runs whose type no class has are
reported unless they never completed a workflow task (nothing to compare).
"""

from __future__ import annotations

import importlib.util
import inspect
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from ablauf import Client

__all__ = [
    "ReplayReport",
    "check_stores",
    "find_stores",
    "load_module",
    "workflow_classes",
]


def workflow_classes(modules: Iterable[ModuleType]) -> list[type]:
    """Every ``@workflow.defn`` class defined (not imported) in these modules."""
    found: list[type] = []
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ != module.__name__ or obj in found:
                continue
            if workflow._Definition.from_class(obj) is not None:
                found.append(obj)
    return found


def load_module(path: Path) -> ModuleType:
    """The module of a file outside any package (an example, a worker script)."""
    name = path.stem
    module = sys.modules.get(name)
    if module is not None and Path(getattr(module, "__file__", "") or "").resolve() == path:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def find_stores(directory: Path) -> list[Path]:
    """The ablauf store files under ``directory``."""
    stores = []
    for path in sorted(directory.rglob("*.db")):
        try:
            with path.open("rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    continue
            db = sqlite3.connect(path)
            try:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            finally:
                db.close()
        except (OSError, sqlite3.Error):
            continue
        if {"meta", "executions", "history"} <= tables:
            stores.append(path)
    return stores


@dataclass
class ReplayReport:
    """What one check replayed, and what failed."""

    replayed: dict[type, int] = field(default_factory=dict)
    """Histories replayed without error, by the class that replayed them."""
    failures: list[str] = field(default_factory=list)

    def merge(self, other: ReplayReport) -> None:
        for cls, count in other.replayed.items():
            self.replayed[cls] = self.replayed.get(cls, 0) + count
        self.failures.extend(other.failures)


async def export_histories(store: Path) -> list[WorkflowHistory]:
    """Every run's history in the store, through ``fetch_history``."""
    client = await Client.connect(f"sqlite:///{store}")
    try:
        engine = client.engine
        assert engine is not None
        histories = []
        for run_id in list(engine.store.iter_run_ids()):
            rec = engine.store.get_execution(run_id)
            assert rec is not None
            handle = client.get_workflow_handle(rec.workflow_id, run_id=run_id)
            histories.append(await handle.fetch_history())
        return histories
    finally:
        await client.close()


_CLOSING = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    }
)
_TASK_ENDS = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    }
)


def shape_problems(history: WorkflowHistory) -> list[str]:
    """What breaks rules Temporal's server keeps and the Replayer does not check.

    Event ids run 1, 2, 3, ...; nothing follows the closing event; and no event
    comes between a WorkflowTaskStarted and the event that ends that workflow task
    (the server buffers what arrives meanwhile). Event times may go back: an
    activity's started event, written when the attempt ends, carries the time it
    started, and buffered events keep the time they arrived.
    """
    problems = []
    events = history.events
    for i, event in enumerate(events):
        name = EventType.Name(event.event_type)
        if event.event_id != i + 1:
            problems.append(f"event {i + 1} has id {event.event_id}")
        if event.event_type in _CLOSING and i != len(events) - 1:
            later = ", ".join(EventType.Name(e.event_type) for e in events[i + 1 :])
            problems.append(f"{later} after the closing event {event.event_id} {name}")
        in_task = i and events[i - 1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        if in_task and event.event_type not in _TASK_ENDS:
            problems.append(
                f"event {event.event_id} {name} inside the workflow task started "
                f"at {events[i - 1].event_id}"
            )
    return problems


def _workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def _ran_a_task(history: WorkflowHistory) -> bool:
    return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events)


def _label(history: WorkflowHistory) -> str:
    wf_type = _workflow_type(history)
    return f"workflow {history.workflow_id!r} (run {history.run_id}, type {wf_type})"


async def _aiter(histories: Sequence[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def _layers(classes: Sequence[type]) -> Iterator[dict[str, type]]:
    """Sets of classes with one class per workflow name: the first of each, then the second, ..."""
    by_name: dict[str, list[type]] = {}
    for cls in classes:
        defn = workflow._Definition.must_from_class(cls)
        if defn.name is not None:
            by_name.setdefault(defn.name, []).append(cls)
    depth = max((len(v) for v in by_name.values()), default=0)
    for i in range(depth):
        yield {name: group[i] for name, group in by_name.items() if len(group) > i}


async def replay_histories(
    histories: Sequence[WorkflowHistory],
    classes: Sequence[type],
    converters: Sequence[DataConverter],
) -> ReplayReport:
    """Checks each history's shape and replays it with the classes of its type.

    Each converter is tried in turn, and each class of the history's type.
    """
    report = ReplayReport()
    pending: list[WorkflowHistory] = []
    names = {workflow._Definition.must_from_class(c).name for c in classes}
    for history in histories:
        report.failures.extend(f"{_label(history)}: {p}" for p in shape_problems(history))
        if _workflow_type(history) in names:
            pending.append(history)
        elif _ran_a_task(history):
            report.failures.append(f"{_label(history)}: no workflow class of this name")
    errors: dict[int, str] = {}
    for converter in converters or [DataConverter.default]:
        for layer in _layers(classes):
            batch = [h for h in pending if _workflow_type(h) in layer]
            if not batch:
                continue
            replayer = Replayer(
                workflows=list({id(c): c for c in layer.values()}.values()),
                data_converter=converter,
                workflow_runner=UnsandboxedWorkflowRunner(),
            )
            passed: list[WorkflowHistory] = []
            async with replayer.workflow_replay_iterator(_aiter(batch)) as results:
                async for result in results:
                    if result.replay_failure is None:
                        passed.append(result.history)
                        cls = layer[_workflow_type(result.history)]
                        report.replayed[cls] = report.replayed.get(cls, 0) + 1
                    else:
                        errors.setdefault(id(result.history), repr(result.replay_failure))
            pending = [h for h in pending if all(h is not p for p in passed)]
            if not pending:
                return report
    for history in pending:
        report.failures.append(f"{_label(history)}: {errors[id(history)]}")
    return report


async def check_stores(
    directory: Path, classes: Sequence[type], converters: Sequence[DataConverter]
) -> ReplayReport:
    """Exports and replays every run of every ablauf store under ``directory``."""
    report = ReplayReport()
    for store in find_stores(directory):
        histories = await export_histories(store)
        report.merge(await replay_histories(histories, classes, converters))
    return report
