"""5.2.1 asyncio.gather für parallele Activities (parallel activities with asyncio.gather): scrape
several URLs at once.

The chapter's workflow, unchanged; the chapter does not show ``scrape_url``, so here
it reads a page from the fake web in ``fake_services.py``. The pages answer after
different delays: they finish in another order than they were started, and
``asyncio.gather`` still returns the results in the order of the input list.

    python examples/s5_2_1_parallel.py [--target sqlite:///scrape.db | localhost:7233]
"""

import asyncio
import uuid
from datetime import timedelta

from _cli import run_standalone
from fake_services import web
from temporalio import activity, workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-2-1-parallel"


@activity.defn
async def scrape_url(url: str) -> dict:
    page = await web.fetch(url)
    return {"url": page.url, "title": page.title}


# --- the chapter's code ----------------------------------------------------------


@workflow.defn
class ParallelProcessingWorkflow:
    @workflow.run
    async def run(self, urls: list[str]) -> list[dict]:
        # Scrape all URLs in parallel
        tasks = [
            workflow.execute_activity(
                scrape_url,
                url,
                start_to_close_timeout=timedelta(minutes=5),
            )
            for url in urls
        ]

        # Wait for all of them (results in the order of the input list)
        results = await asyncio.gather(*tasks)

        return results


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> list[dict]:
    """Scrape the fake web's pages in parallel; returns the workflow's result."""
    urls = list(web.PAGES)
    already_fetched = len(web.fetched)
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[ParallelProcessingWorkflow],
        activities=[scrape_url],
    ):
        results = await client.execute_workflow(
            ParallelProcessingWorkflow.run,
            urls,
            id=f"parallel-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
    finished = web.fetched[already_fetched:]
    print(f"started:  {[url.rsplit('/', 1)[1] for url in urls]}")
    print(f"finished: {[url.rsplit('/', 1)[1] for url in finished]}")
    print(f"results:  {[result['title'] for result in results]}  (in input order)")
    return results


if __name__ == "__main__":
    run_standalone(main, __doc__)
