"""ablauf's ``temporalio.workflow._Runtime``: where ``workflow.*`` calls land.

Every public ``temporalio.workflow`` function calls ``_Runtime.current()``,
which finds the runtime on the running :class:`WorkflowEventLoop`. The class
is built in three layers, one module each:

- ``runtime.py``: the run's state and what workflow code reads or registers
  (info, time, memo, handlers, randomness);
- ``operations.py``: what workflow code asks for, turned into command machines
  (timers, activities, patches, upserts, continue-as-new);
- ``activation.py``: how the instance drives it (jobs, the loop, queries, eviction).
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from random import Random
from typing import Any, cast

import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure

from ablauf.replay import history
from ablauf.replay.commands import CommandMachines
from ablauf.replay.handles import EvictedError
from ablauf.replay.history import InternalFlags
from ablauf.replay.loop import WorkflowEventLoop
from ablauf.serialization import with_context

__all__ = ["WorkflowRuntime"]


class WorkflowRuntime(temporalio.workflow._Runtime):
    """The runtime of one workflow run; its state is what workflow code can observe."""

    loop: WorkflowEventLoop
    """The run's event loop, created by the operations layer that owns its timers."""

    def __init__(
        self,
        defn: temporalio.workflow._Definition,
        *,
        workflow_id: str,
        namespace: str,
        data_converter: temporalio.converter.DataConverter,
        failure_exception_types: Sequence[type[BaseException]],
        machines: CommandMachines,
        flags: InternalFlags,
    ) -> None:
        super().__init__()
        self.defn = defn
        self.machines = machines
        self.flags = flags
        context = temporalio.converter.WorkflowSerializationContext(
            namespace=namespace, workflow_id=workflow_id
        )
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.payload_converter = with_context(data_converter.payload_converter, context)
        self.failure_converter = with_context(data_converter.failure_converter, context)
        self._base_payload_converter = data_converter.payload_converter
        self.base_payload_converter = data_converter.payload_converter
        self.base_failure_converter = data_converter.failure_converter
        self.worker_failure_types = tuple(failure_exception_types)
        self.dynamic_failure_types: Sequence[type[BaseException]] | None = None
        self.info: temporalio.workflow.Info | None = None
        # Builds ``info`` when first asked for: most workflows never do.
        self.make_info: Callable[[], temporalio.workflow.Info] | None = None
        self.task_queue = ""
        self.workflow_type = ""
        # Raw search attribute values (started event plus upserts), for continue-as-new.
        self.search_attributes: dict[str, Payload] = {}
        self.last_completion_result: list[Payload] = []
        self.last_failure: Failure | None = None
        self.object: Any = None
        self.primary_task: asyncio.Task[None] | None = None
        # What workflow code can observe about the current task.
        self.replaying = False
        self.history_length = 0
        self.history_size = 0
        self.continue_as_new_suggested = False
        self.cancel_reason: str | None = None
        self.current_details = ""
        self.read_only = False
        self.in_query = False
        self.evicting = False
        self.single_batch = False
        # Handlers, registered by the definition and at run time.
        self.signals: dict[str | None, temporalio.workflow._SignalDefinition] = dict(defn.signals)
        self.queries: dict[str | None, temporalio.workflow._QueryDefinition] = dict(defn.queries)
        self.updates: dict[str | None, temporalio.workflow._UpdateDefinition] = dict(defn.updates)
        # Hashing the run id and seeding a generator cost more than a short
        # workflow's whole task, so both wait until workflow code asks.
        self._seed: int | None = 0
        self._seed_run_id = ""
        self._random: Random | None = None
        self._seed_callbacks: list[Callable[[int], None]] = []
        self._memo: dict[str, Any] | None = None
        self.in_progress_signals: dict[int, tuple[str, Any]] = {}
        self.in_progress_updates: dict[str, tuple[str, Any]] = {}

    # -- guards ----------------------------------------------------------------------------------

    def check_may_schedule(self, action: str, *, during_eviction: bool = False) -> None:
        """Raise if workflow code may not produce work now."""
        if self.evicting and not during_eviction:
            raise EvictedError(f"Ignoring {action} while evicting workflow. This is not an error.")
        if self.read_only:
            raise temporalio.workflow.ReadOnlyContextError(
                f"While in read-only function, action attempted: {action}"
            )

    @contextmanager
    def as_read_only(self, *, in_query: bool) -> Iterator[None]:
        """Run a block (query, validator) that must not change workflow state."""
        previous = (self.read_only, self.in_query)
        self.read_only, self.in_query = True, in_query
        try:
            yield
        finally:
            self.read_only, self.in_query = previous

    # -- handlers --------------------------------------------------------------------------------

    def _bound(self, defn: Any) -> Callable[..., Any] | None:
        if defn is None:
            return None
        return cast(Callable[..., Any], defn.bind_fn(self.object) if defn.is_method else defn.fn)

    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self._bound(self.queries.get(name))

    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self._bound(self.signals.get(name))

    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self._bound(self.updates.get(name))

    def workflow_get_update_validator(self, name: str | None) -> Callable[..., Any] | None:
        defn = self.updates.get(name) or self.updates.get(None)
        if defn is None or defn.validator is None:
            return None
        if defn.is_method:
            return defn.bind_validator(self.object)
        return defn.validator

    def workflow_set_query_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.check_may_schedule("set query handler")
        if handler is None:
            self.queries.pop(name, None)
            return
        if inspect.iscoroutinefunction(handler):
            warnings.warn(
                "Queries as async def functions are deprecated", DeprecationWarning, stacklevel=3
            )
        self.queries[name] = temporalio.workflow._QueryDefinition(
            name=name, fn=handler, is_method=False
        )

    def workflow_set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.check_may_schedule("set signal handler")
        if handler is None:
            self.signals.pop(name, None)
            return
        defn = temporalio.workflow._SignalDefinition(name=name, fn=handler, is_method=False)
        self.signals[name] = defn
        self.deliver_buffered_signals(name, defn)

    @abstractmethod
    def deliver_buffered_signals(
        self, name: str | None, defn: temporalio.workflow._SignalDefinition
    ) -> None:
        """Hand signals that arrived before this handler existed to it."""

    def workflow_set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None:
        self.check_may_schedule("set update handler")
        if handler is None:
            self.updates.pop(name, None)
            return
        defn = temporalio.workflow._UpdateDefinition(name=name, fn=handler, is_method=False)
        if validator is not None:
            defn.set_validator(validator)
        self.updates[name] = defn

    def workflow_all_handlers_finished(self) -> bool:
        return not self.in_progress_signals and not self.in_progress_updates

    # -- information -----------------------------------------------------------------------------

    def _info(self) -> temporalio.workflow.Info:
        if self.info is None:
            if self.make_info is None:
                raise RuntimeError("The workflow has not started yet")
            self.info = self.make_info()
        return self.info

    def workflow_info(self) -> temporalio.workflow.Info:
        return self._info()

    def workflow_instance(self) -> Any:
        return self.object

    def workflow_time_ns(self) -> int:
        return self.loop.time_ns

    def workflow_is_replaying(self) -> bool:
        return self.replaying

    def workflow_is_replaying_history_events(self) -> bool:
        return self.replaying and not self.in_query

    def workflow_is_read_only(self) -> bool:
        return self.read_only

    def workflow_get_current_history_length(self) -> int:
        return self.history_length

    def workflow_get_current_history_size(self) -> int:
        return self.history_size

    def workflow_is_continue_as_new_suggested(self) -> bool:
        return self.continue_as_new_suggested

    def workflow_is_target_worker_deployment_version_changed(self) -> bool:
        return False

    def workflow_get_current_build_id(self) -> str:
        return ""

    def workflow_get_current_deployment_version(
        self,
    ) -> temporalio.common.WorkerDeploymentVersion | None:
        return None

    def workflow_cancellation_reason(self) -> str | None:
        return self.cancel_reason

    def workflow_extern_functions(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def workflow_metric_meter(self) -> temporalio.common.MetricMeter:
        return temporalio.common.MetricMeter.noop

    def workflow_payload_converter(self) -> temporalio.converter.PayloadConverter:
        return self.payload_converter

    def workflow_get_current_details(self) -> str:
        return self.current_details

    def workflow_set_current_details(self, details: str) -> None:
        self.check_may_schedule("set current details")
        self.current_details = details

    def workflow_is_failure_exception(self, err: BaseException) -> bool:
        types = self.defn.failure_exception_types
        if self.dynamic_failure_types is not None:
            types = self.dynamic_failure_types
        return (
            isinstance(err, temporalio.exceptions.FailureError | asyncio.TimeoutError)
            or any(isinstance(err, t) for t in types)
            or any(isinstance(err, t) for t in self.worker_failure_types)
        )

    def workflow_has_last_completion_result(self) -> bool:
        return bool(self.last_completion_result)

    def workflow_last_completion_result(self, type_hint: type | None) -> Any | None:
        if len(self.last_completion_result) != 1:
            if self.last_completion_result:
                warnings.warn(
                    "Expected single last completion result, "
                    f"got {len(self.last_completion_result)}",
                    stacklevel=2,
                )
            return None
        payload = self.last_completion_result[0]
        if type_hint is None:
            return self.payload_converter.from_payload(payload)
        return self.payload_converter.from_payload(payload, type_hint)

    def workflow_last_failure(self) -> BaseException | None:
        if self.last_failure is None:
            return None
        return self.failure_converter.from_failure(self.last_failure, self.payload_converter)

    def workflow_memo(self) -> Mapping[str, Any]:
        if self._memo is None:
            self._memo = {
                k: self.payload_converter.from_payload(v) for k, v in self._info().raw_memo.items()
            }
        return self._memo

    def workflow_memo_value(self, key: str, default: Any, *, type_hint: type | None) -> Any:
        payload = self._info().raw_memo.get(key)
        if not payload:
            if default is temporalio.common._arg_unset:
                raise KeyError(f"Memo does not have a value for key {key}")
            return default
        return self.payload_converter.from_payload(payload, type_hint)  # type: ignore[arg-type]

    # -- randomness ------------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The current seed of ``workflow.random()``."""
        if self._seed is None:
            self._seed = history.randomness_seed(self._seed_run_id)
        return self._seed

    @property
    def random(self) -> Random:
        """The generator behind ``workflow.random()``."""
        if self._random is None:
            self._random = Random(self.seed)
        return self._random

    def seed_from_run(self, run_id: str) -> None:
        """Seed ``workflow.random()`` from ``run_id`` as sdk-core does (when first used)."""
        self._seed, self._seed_run_id = None, run_id
        if self._random is not None:
            self._random.seed(self.seed)

    def workflow_random(self) -> Random:
        self.check_may_schedule("random")
        return self.random

    def workflow_random_seed(self) -> int:
        return self.seed

    def workflow_register_random_seed_callback(self, callback: Callable[[int], None]) -> None:
        self.check_may_schedule("register random seed callback")
        self._seed_callbacks.append(callback)

    def reseed(self, seed: int) -> None:
        """Seed ``workflow.random()``; callbacks keep derived generators in step."""
        self._seed = seed
        if self._random is not None:
            self._random.seed(seed)
        for callback in self._seed_callbacks:
            try:
                callback(seed)
            except Exception:
                continue
