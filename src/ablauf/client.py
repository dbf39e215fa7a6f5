"""ablauf's ``Client``: ``temporalio.client.Client`` with an embedded engine behind it.

``Client.connect("sqlite:///orders.db")`` opens (or creates) the store file and
answers Temporal's WorkflowService in-process, so every method, handle, data
class and error is the SDK's own. A ``host:port`` target connects to a Temporal
server through the official SDK instead.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

import google.protobuf.message
import temporalio.client
import temporalio.runtime
import temporalio.service
from temporalio.common import MetricMeter
from temporalio.converter import DataConverter
from temporalio.service import ConnectConfig, ServiceClient, ServiceResponse

from ablauf.clock import Clock
from ablauf.engine.engine import Engine
from ablauf.engine.frontend import Frontend
from ablauf.errors import InvalidTargetError
from ablauf.store import open_store, parse_url

if TYPE_CHECKING:
    from ablauf.metrics import RequestMetrics

__all__ = ["Client", "StoreTarget", "parse_target"]

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


@dataclass(frozen=True)
class StoreTarget:
    """A parsed ``sqlite:///path`` target (the path absolute, or ``":memory:"``)."""

    path: str
    synchronous: str = "NORMAL"


def parse_target(target: str) -> StoreTarget | str:
    """A store target, or the ``host:port`` of a Temporal server.

    Raises:
        InvalidTargetError: The string is neither.
    """
    if not isinstance(target, str) or not target.strip():
        raise InvalidTargetError(f"empty target {target!r}: use 'sqlite:///file.db' or 'host:port'")
    if "://" not in target:
        if _HOST_PORT.match(target):
            return target
        raise InvalidTargetError(
            f"cannot parse target {target!r}: use 'sqlite:///file.db' or 'host:port'"
        )
    _, path, options = parse_url(target)
    return StoreTarget(path, options["synchronous"])


# One engine per store file and event loop: clients of one process share it.
_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Engine]] = (
    weakref.WeakKeyDictionary()
)


def _engine_for(target: StoreTarget, clock: Clock | None) -> Engine:
    loop = asyncio.get_running_loop()
    engines = _engines.setdefault(loop, {})
    engine = engines.get(target.path)
    if engine is None:
        engine = Engine(open_store(target.path, synchronous=target.synchronous), clock=clock)
        engine.start()
        engines[target.path] = engine
    return engine


def _metric_meter(runtime: temporalio.runtime.Runtime | None) -> MetricMeter | None:
    """The metric meter of ``runtime`` (or of temporalio's default runtime, if one
    was made or set); None if it records nothing."""
    if runtime is None:
        # temporalio makes its default runtime (an sdk-core thread pool) on first
        # use; the embedded engine needs none, so only one already made or set counts.
        runtime = temporalio.runtime._runtime_ref._default_runtime
    if runtime is None:
        return None
    meter = runtime.metric_meter
    return None if meter is MetricMeter.noop else meter


class EmbeddedServiceClient(ServiceClient):
    """Answers the SDK's service calls with the in-process engine."""

    def __init__(
        self, target: str, engine: Engine, runtime: temporalio.runtime.Runtime | None = None
    ) -> None:
        super().__init__(ConnectConfig(target_host=target, runtime=runtime))
        self.engine = engine
        self.frontend = Frontend(engine)
        self.metric_meter = _metric_meter(runtime)
        """The runtime's meter; None unless it exports metrics (then nothing is measured)."""
        self._metrics: RequestMetrics | None = None
        if self.metric_meter is not None:
            from ablauf.metrics import RequestMetrics

            self._metrics = RequestMetrics(self.metric_meter)

    @property
    def worker_service_client(self) -> Any:
        raise RuntimeError("an ablauf store client has no Temporal bridge; use ablauf.Worker")

    def update_rpc_metadata(self, metadata: Mapping[str, str | bytes]) -> None:
        """RPC metadata has no meaning for the embedded engine."""

    def update_api_key(self, api_key: str | None) -> None:
        """API keys have no meaning for the embedded engine."""

    async def _rpc_call(
        self,
        rpc: str,
        req: google.protobuf.message.Message,
        resp_type: type[ServiceResponse],
        *,
        service: str,
        retry: bool,
        metadata: Mapping[str, str | bytes],
        timeout: timedelta | None,
    ) -> ServiceResponse:
        seconds = timeout.total_seconds() if timeout else None
        metrics = self._metrics
        if metrics is None:
            resp = await self.frontend.call(rpc, req, seconds)
        else:
            resp = await metrics.call(rpc, req, lambda: self.frontend.call(rpc, req, seconds))
        assert isinstance(resp, resp_type)
        return resp


class Client(temporalio.client.Client):
    """A Temporal client; for an ablauf store the engine runs in this process."""

    @classmethod
    async def connect(
        cls,
        target_host: str,
        *,
        namespace: str = "default",
        data_converter: DataConverter = DataConverter.default,
        interceptors: Sequence[temporalio.client.Interceptor] = (),
        plugins: Sequence[temporalio.client.Plugin] = (),
        clock: Clock | None = None,
        runtime: temporalio.runtime.Runtime | None = None,
        **kwargs: Any,
    ) -> Self:
        """Connects to an ablauf store (``sqlite:///file.db``) or a Temporal server (``host:port``).

        Args:
            target_host: ``sqlite:///relative.db``, ``sqlite:////absolute.db``
                (``?synchronous=full`` for an fsync per commit), ``sqlite://:memory:``
                (a store in memory, shared by this event loop's clients until
                one closes it), or ``host:port``.
            namespace: Namespace for all calls.
            data_converter: Converter for every payload, as in temporalio.
            interceptors: Client interceptors, as in temporalio; those that are
                worker interceptors too (``temporalio.worker.Interceptor``) also
                intercept the workers of this client.
            plugins: Client plugins, as in temporalio: each configures the client
                and wraps connecting its service client (the embedded engine's,
                for a store); those that are worker plugins too also configure
                and run the workers of this client.
            clock: For tests: the engine's clock.
            runtime: temporalio's runtime, as in temporalio: with metrics in its
                telemetry config, workers of this client export Temporal's worker
                metrics and what ``workflow.metric_meter()`` and
                ``activity.metric_meter()`` record through it.
            kwargs: Further options of ``temporalio.client.Client.connect`` for a server target.

        Raises:
            InvalidTargetError: The target cannot be parsed.
            StoreError: The file is not an ablauf store.
        """
        target = parse_target(target_host)
        if isinstance(target, str):
            return await super().connect(
                target,
                namespace=namespace,
                data_converter=data_converter,
                interceptors=interceptors,
                runtime=runtime,
                plugins=plugins,
                **kwargs,
            )
        if kwargs:
            raise TypeError(f"options not used by an ablauf store: {', '.join(sorted(kwargs))}")

        async def connect_service(config: ConnectConfig) -> ServiceClient:
            # A plugin may have changed the target.
            chosen = parse_target(config.target_host)
            if isinstance(chosen, str):
                return await ServiceClient.connect(config)
            return EmbeddedServiceClient(
                config.target_host, _engine_for(chosen, clock), config.runtime
            )

        def wrap(
            plugin: temporalio.client.Plugin,
            inner: Callable[[ConnectConfig], Awaitable[ServiceClient]],
        ) -> Callable[[ConnectConfig], Awaitable[ServiceClient]]:
            return lambda config: plugin.connect_service_client(config, inner)

        connect: Callable[[ConnectConfig], Awaitable[ServiceClient]] = connect_service
        for plugin in reversed(plugins):
            connect = wrap(plugin, connect)
        service = await connect(ConnectConfig(target_host=target_host, runtime=runtime))
        return cls(
            service,
            namespace=namespace,
            data_converter=data_converter,
            interceptors=interceptors,
            plugins=plugins,
        )

    @property
    def engine(self) -> Engine | None:
        """The embedded engine, or None for a Temporal server."""
        service = self.service_client
        return service.engine if isinstance(service, EmbeddedServiceClient) else None

    async def close(self) -> None:
        """Stops the embedded engine of this client's store in this process."""
        engine = self.engine
        if engine is None:
            return
        for engines in _engines.values():
            for path, candidate in list(engines.items()):
                if candidate is engine:
                    del engines[path]
        await engine.close()
