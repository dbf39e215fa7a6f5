"""Search attributes: registered per namespace through the operator service,
checked at start, upsert, child and continue-as-new, and shown by describe
together with the memo as the workflow's upserts left them."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, IndexedValueType, WorkflowTaskFailedCause
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
    RemoveSearchAttributesRequest,
)
from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from ablauf import Client, Worker

# Fixed names: the dev server is shared and has a few slots per type.
KEYWORD = SearchAttributeKey.for_keyword("AblaufKeyword")
NUMBER = SearchAttributeKey.for_int("AblaufNumber")
UNREGISTERED = SearchAttributeKey.for_keyword("AblaufUnregistered")


async def register(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                KEYWORD.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
                NUMBER.name: IndexedValueType.INDEXED_VALUE_TYPE_INT,
            },
        )
    )


@workflow.defn
class Upserting:
    @workflow.run
    async def run(self, what: str) -> str:
        if what == "unregistered":
            workflow.upsert_search_attributes([UNREGISTERED.value_set("x")])
        elif what == "child":
            return await workflow.execute_child_workflow(
                Upserting.run,
                "nothing",
                id=f"{workflow.info().workflow_id}-child",
                search_attributes=TypedSearchAttributes([SearchAttributePair(UNREGISTERED, "x")]),
            )
        elif what == "upsert":
            workflow.upsert_search_attributes([KEYWORD.value_set("after"), NUMBER.value_set(7)])
            workflow.upsert_memo({"dropped": None, "added": 2})
        return what


async def failed_task(handle: WorkflowHandle[object, object]) -> tuple[int, str]:
    """Cause and message of the run's first failed workflow task."""
    for _ in range(100):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                attrs = event.workflow_task_failed_event_attributes
                return attrs.cause, attrs.failure.message
        await asyncio.sleep(0.05)
    raise AssertionError("no workflow task failed")


async def test_registered_search_attributes_are_listed_and_removed(client: Client) -> None:
    await register(client)
    extra = "AblaufRemovable"
    service = client.operator_service
    await service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={extra: IndexedValueType.INDEXED_VALUE_TYPE_BOOL},
        )
    )
    listed = await service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    assert listed.custom_attributes[KEYWORD.name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert listed.custom_attributes[extra] == IndexedValueType.INDEXED_VALUE_TYPE_BOOL
    assert listed.system_attributes["WorkflowId"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await service.remove_search_attributes(
        RemoveSearchAttributesRequest(namespace=client.namespace, search_attributes=[extra])
    )
    listed = await service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    assert extra not in listed.custom_attributes
    with pytest.raises(RPCError, match="Search attribute WorkflowId is reserved by system"):
        await service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={"WorkflowId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
            )
        )


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (
            SearchAttributePair(UNREGISTERED, "x"),
            "Namespace default has no mapping defined for search attribute AblaufUnregistered",
        ),
        (
            SearchAttributePair(SearchAttributeKey.for_keyword(NUMBER.name), "seven"),
            "invalid value for search attribute AblaufNumber of type Int: seven",
        ),
        (
            SearchAttributePair(SearchAttributeKey.for_keyword("WorkflowId"), "x"),
            "WorkflowId attribute can't be set in SearchAttributes",
        ),
    ],
    ids=["unregistered", "wrong-type", "reserved"],
)
async def test_a_start_with_a_bad_search_attribute_is_refused(
    client: Client, task_queue: str, suffix: str, pair: SearchAttributePair[str], message: str
) -> None:
    await register(client)
    with pytest.raises(RPCError) as caught:
        await client.start_workflow(
            Upserting.run,
            "nothing",
            id=f"bad-sa-{suffix}",
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes([pair]),
        )
    assert caught.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert message in caught.value.message


async def test_describe_shows_search_attributes_and_memo_as_upserted(
    client: Client, task_queue: str, suffix: str
) -> None:
    await register(client)
    async with Worker(client, task_queue=task_queue, workflows=[Upserting]):
        handle = await client.start_workflow(
            Upserting.run,
            "upsert",
            id=f"upsert-{suffix}",
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "before")]),
            memo={"dropped": 1, "kept": 3},
        )
        assert await handle.result() == "upsert"
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(KEYWORD) == "after"
    assert desc.typed_search_attributes.get(NUMBER) == 7
    assert await desc.memo() == {"added": 2, "kept": 3}


@pytest.mark.parametrize("what", ["unregistered", "child"])
async def test_a_command_with_an_unregistered_search_attribute_fails_the_workflow_task(
    client: Client, task_queue: str, suffix: str, what: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Upserting]):
        handle = await client.start_workflow(
            Upserting.run, what, id=f"{what}-{suffix}", task_queue=task_queue
        )
        cause, message = await failed_task(handle)
        await handle.terminate()
    assert cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
    assert message == (
        "BadSearchAttributes: Namespace default has no mapping defined for "
        "search attribute AblaufUnregistered"
    )
