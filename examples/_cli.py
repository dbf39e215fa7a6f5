"""The command line every example shares: ``--target``, a readable log, ``asyncio.run``.

Not part of the chapter; each example calls ``run_standalone(main)`` under
``if __name__ == "__main__":``.
"""

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

from ablauf import Client

__all__ = ["default_target", "parse_target", "run_standalone", "show_workflow_logs"]


def default_target(name: str) -> str:
    """A SQLite store in a fresh temporary directory."""
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='ablauf-')) / name}.db"


def parse_target(description: str | None, default_name: str = "examples") -> str:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target",
        default=None,
        help="where workflows live: sqlite:///path.db, or host:port of a Temporal server "
        "(default: a SQLite file in a new temporary directory)",
    )
    return parser.parse_args().target or default_target(default_name)


class _OneLineFormatter(logging.Formatter):
    """The message, the activity attempt and the error's type and text; no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"    {record.name.rsplit('.', 1)[-1]} log: {record.getMessage()}"
        activity_details = getattr(record, "temporal_activity", None)
        if activity_details:
            line += f" ({activity_details['activity_type']}, attempt {activity_details['attempt']})"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f": {type(error).__name__}: {error}"
        return line


def show_workflow_logs() -> None:
    """Print the workflow and activity log lines, one short indented line each.

    That shows the chapter's ``workflow.logger`` lines and the worker's notes on
    failed activity attempts. The workflow logger skips its lines while a workflow is
    replayed, so each line appears once.
    """
    handler = logging.StreamHandler(sys.stdout)  # stdout, to keep it in order with print()
    handler.setFormatter(_OneLineFormatter())
    for name in ("temporalio.workflow", "temporalio.activity"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False


def run_standalone(
    main: Callable[..., Awaitable[Any]],
    description: str | None,
    *,
    pass_target: bool = False,
) -> None:
    """Parse ``--target``, connect, and run ``main(client)`` (or ``main(client, target)``)."""
    target = parse_target(description)
    show_workflow_logs()

    async def connect_and_run() -> None:
        print(f"target: {target}")
        client = await Client.connect(target)
        if pass_target:
            await main(client, target)
        else:
            await main(client)

    asyncio.run(connect_and_run())
