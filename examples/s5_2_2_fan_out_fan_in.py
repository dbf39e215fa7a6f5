"""5.2.2 Fan-Out/Fan-In: scrape pages in parallel, then aggregate them in one activity.

The chapter's workflow with its missing imports added (E15). The chapter does not
show ``scrape_url`` and ``aggregate_scraped_data``; here they read the fake web in
``fake_services.py`` and return a ``ScrapedData`` per page. Because ``scrape_url``
is annotated ``-> ScrapedData``, the workflow gets dataclasses back, not dicts, and
``d.word_count`` works.

    python examples/s5_2_2_fan_out_fan_in.py [--target sqlite:///scrape.db | localhost:7233]
"""

# ruff: noqa: UP006, UP035 - the chapter spells the type typing.List

import asyncio  # E15: asyncio, timedelta and List are used but not imported in the chapter
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import List

from _cli import run_standalone
from fake_services import web
from temporalio import activity, workflow

from ablauf import Client, Worker

TASK_QUEUE = "s5-2-2-fan-out-fan-in"


# --- the chapter's code ----------------------------------------------------------


@dataclass
class ScrapedData:
    url: str
    title: str
    content: str
    word_count: int


@activity.defn
async def scrape_url(url: str) -> ScrapedData:
    page = await web.fetch(url)
    return ScrapedData(
        url=page.url,
        title=page.title,
        content=page.content,
        word_count=len(page.content.split()),
    )


@activity.defn
async def aggregate_scraped_data(pages: List[ScrapedData]) -> dict:
    longest = max(pages, key=lambda page: page.word_count)
    return {
        "longest_page": longest.title,
        "average_words": round(sum(page.word_count for page in pages) / len(pages), 1),
    }


@workflow.defn
class FanOutFanInWorkflow:
    @workflow.run
    async def run(self, data_urls: List[str]) -> dict:
        workflow.logger.info(f"Fan-out: Scraping {len(data_urls)} URLs")

        # Fan-out: start the activities in parallel
        scrape_tasks = [
            workflow.execute_activity(
                scrape_url,
                url,
                start_to_close_timeout=timedelta(minutes=5),
            )
            for url in data_urls
        ]

        # Fan-in: collect all results
        scraped_data: List[ScrapedData] = await asyncio.gather(*scrape_tasks)

        workflow.logger.info(f"Fan-in: Scraped {len(scraped_data)} pages")

        # Aggregation
        aggregated = await workflow.execute_activity(
            aggregate_scraped_data,
            scraped_data,
            start_to_close_timeout=timedelta(minutes=2),
        )

        return {
            "total_pages": len(scraped_data),
            "total_words": sum(d.word_count for d in scraped_data),
            "aggregated_insights": aggregated,
        }


# --- running it ------------------------------------------------------------------


async def main(client: Client) -> dict:
    """Fan out over the fake web's pages and fan in; returns the workflow's result."""
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[FanOutFanInWorkflow],
        activities=[scrape_url, aggregate_scraped_data],
    ):
        result = await client.execute_workflow(
            FanOutFanInWorkflow.run,
            list(web.PAGES),
            id=f"fan-out-fan-in-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
    print(f"{result['total_pages']} pages, {result['total_words']} words")
    print(f"insights: {result['aggregated_insights']}")
    return result


if __name__ == "__main__":
    run_standalone(main, __doc__)
