"""A workflow module that reads the wall clock when it is imported, which the
workflow sandbox refuses."""

from __future__ import annotations

import datetime

from temporalio import workflow

IMPORTED_AT = datetime.datetime.now()


@workflow.defn
class ImportedAt:
    @workflow.run
    async def run(self) -> str:
        return IMPORTED_AT.isoformat()
