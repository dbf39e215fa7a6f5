"""The RPCs of Temporal's OperatorService that the embedded engine answers:
the custom search attributes registered per namespace."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    AddSearchAttributesResponse,
    ListSearchAttributesRequest,
    ListSearchAttributesResponse,
    RemoveSearchAttributesRequest,
    RemoveSearchAttributesResponse,
)

from ablauf.engine import search_attributes
from ablauf.engine.context import EngineContext

__all__ = ["OperatorRpcs"]


def _type(value: int) -> IndexedValueType.ValueType:
    return IndexedValueType.ValueType(value)


class OperatorRpcs:
    """Search attribute registration, as ``client.operator_service`` calls it."""

    def __init__(self, engine: EngineContext) -> None:
        self.engine = engine

    async def rpc_add_search_attributes(
        self, req: AddSearchAttributesRequest, timeout: float | None
    ) -> AddSearchAttributesResponse:
        namespace = req.namespace or "default"
        types = dict(req.search_attributes)
        search_attributes.check_names(namespace, types)
        store = self.engine.store
        with store.transaction():
            store.add_search_attributes(namespace, types)
        return AddSearchAttributesResponse()

    async def rpc_list_search_attributes(
        self, req: ListSearchAttributesRequest, timeout: float | None
    ) -> ListSearchAttributesResponse:
        custom = self.engine.store.search_attributes(req.namespace or "default")
        system = {**search_attributes.RESERVED, **search_attributes.PREDEFINED}
        return ListSearchAttributesResponse(
            custom_attributes={k: _type(v) for k, v in custom.items()},
            system_attributes={k: _type(v) for k, v in system.items()},
        )

    async def rpc_remove_search_attributes(
        self, req: RemoveSearchAttributesRequest, timeout: float | None
    ) -> RemoveSearchAttributesResponse:
        store = self.engine.store
        with store.transaction():
            store.remove_search_attributes(req.namespace or "default", list(req.search_attributes))
        return RemoveSearchAttributesResponse()
