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

from temporalio import workflow

from ablauf import Client

__all__ = ["default_target", "parse_target", "run_standalone", "show_workflow_logs"]


def default_target(name: str) -> str:
    """A SQLite store in a fresh temporary directory."""
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='ablauf-')) / name}.db"


def parse_target(description: str | None) -> str:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--target",
        default=None,
        help="where workflows live: sqlite:///path.db, or host:port of a Temporal server "
        "(default: a SQLite file in a new temporary directory)",
    )
    return parser.parse_args().target or default_target("examples")


def show_workflow_logs() -> None:
    """Print the chapter's ``workflow.logger`` lines, short and indented.

    The logger skips its lines while a workflow is replayed, so each line appears once.
    """
    handler = logging.StreamHandler(sys.stdout)  # stdout, to keep it in order with print()
    handler.setFormatter(logging.Formatter("    workflow log: %(message)s"))
    logger = logging.getLogger("temporalio.workflow")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    workflow.logger.workflow_info_on_message = False


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
