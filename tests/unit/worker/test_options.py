"""Every option of temporalio's Worker is either honoured, without meaning, or refused."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest
import temporalio.worker
from temporalio.worker import WorkerTuner

from ablauf.worker import options as opts
from ablauf.worker.options import WITHOUT_MEANING, embedded_options

# Named parameters of ablauf's Worker (the rest arrive as **options).
_NAMED = {
    "self",
    "client",
    "task_queue",
    "activities",
    "workflows",
    "activity_executor",
    "max_cached_workflows",
    "max_concurrent_activities",
    "workflow_failure_exception_types",
    "graceful_shutdown_timeout",
}


def test_every_option_of_temporalios_worker_is_classified() -> None:
    params = set(inspect.signature(temporalio.worker.Worker.__init__).parameters) - _NAMED
    classified = WITHOUT_MEANING | opts._WITH_MEANING | set(opts._REFUSED)
    assert params - classified == set()
    # Nothing is classified that temporalio does not have.
    assert classified - params == set()


def test_an_unknown_option_is_refused() -> None:
    with pytest.raises(TypeError, match=r"not an option of temporalio\.worker\.Worker"):
        embedded_options(None, {"max_concurent_activities": 3})


def test_what_cannot_be_honoured_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="nexus_service_handlers"):
        embedded_options(None, {"nexus_service_handlers": [object()]})
    # Empty, it asks for nothing.
    assert embedded_options(None, {"nexus_service_handlers": []}).activity_slots == 1000


def test_slots_come_from_the_argument_or_the_tuner() -> None:
    assert embedded_options(None, {}).activity_slots == 1000
    assert embedded_options(7, {}).activity_slots == 7
    tuner = WorkerTuner.create_fixed(activity_slots=3)
    assert embedded_options(None, {"tuner": tuner}).activity_slots == 3
    with pytest.raises(ValueError, match="when also specifying tuner"):
        embedded_options(5, {"tuner": tuner})


def test_heartbeat_throttle_intervals() -> None:
    given = embedded_options(
        None,
        {
            "default_heartbeat_throttle_interval": timedelta(seconds=2),
            "max_heartbeat_throttle_interval": timedelta(seconds=5),
        },
    )
    assert (given.heartbeat_default, given.heartbeat_max) == (2.0, 5.0)
    default = embedded_options(None, {})
    assert (default.heartbeat_default, default.heartbeat_max) == (30.0, 60.0)
    with pytest.raises(TypeError, match="must be a timedelta"):
        embedded_options(None, {"max_heartbeat_throttle_interval": 5})
