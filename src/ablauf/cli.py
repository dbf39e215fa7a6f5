"""``ablauf`` command line: look at workflows in a store (or on a Temporal server).

``ablauf workflow show --target sqlite:///orders.db --id order-1 --output json``
writes the run's history in Temporal's JSON format, which Temporal's tools and
``temporalio.worker.Replayer`` read. ``ablauf store check --target
sqlite:///orders.db`` runs SQLite's full integrity check on a store, read-only;
``ablauf store backup --target sqlite:///orders.db --to backup.db`` copies it
while its processes run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

import ablauf
from ablauf.client import Client, StoreTarget, parse_target
from ablauf.errors import AblaufError, InvalidTargetError
from ablauf.store.connection import backup_file, check_file

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ablauf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"ablauf {ablauf.__version__}")
    commands = parser.add_subparsers(dest="group", required=True)
    workflow = commands.add_parser("workflow", help="inspect workflow executions")
    actions = workflow.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="print a run's event history")
    show.add_argument("--target", required=True, help="sqlite:///file.db or host:port")
    show.add_argument("--namespace", default="default")
    show.add_argument("--id", "-w", required=True, dest="workflow_id", help="workflow id")
    show.add_argument("--run-id", "-r", default=None, help="run id (default: the latest run)")
    show.add_argument(
        "--output", "-o", choices=["text", "json"], default="text", help="text or Temporal JSON"
    )
    show.add_argument("--file", "-f", default=None, help="write to this file instead of stdout")
    store = commands.add_parser("store", help="look after a store file")
    store_actions = store.add_subparsers(dest="action", required=True)
    check = store_actions.add_parser(
        "check", help="run SQLite's full integrity check (read-only; exit 1 on damage)"
    )
    check.add_argument("--target", required=True, help="sqlite:///file.db")
    backup = store_actions.add_parser(
        "backup", help="copy the store while its processes run (a consistent, checked copy)"
    )
    backup.add_argument("--target", required=True, help="sqlite:///file.db")
    backup.add_argument("--to", required=True, help="the new file to write")
    return parser


def _store_path(text: str) -> str:
    target = parse_target(text)
    if not isinstance(target, StoreTarget):
        raise InvalidTargetError(f"{text!r} is not a store: use sqlite:///file.db")
    return target.path


def _store(args: argparse.Namespace) -> tuple[str, int]:
    path = _store_path(args.target)
    if args.action == "backup":
        backup_file(path, args.to)
        return f"{path}: backed up to {args.to}\n", 0
    problems = check_file(path)
    if not problems:
        return f"{path}: ok\n", 0
    return "".join(f"{path}: {problem}\n" for problem in problems), 1


async def _show(args: argparse.Namespace) -> str:
    client = await Client.connect(args.target, namespace=args.namespace)
    try:
        handle = client.get_workflow_handle(args.workflow_id, run_id=args.run_id)
        history = await handle.fetch_history()
    finally:
        await client.close()
    if args.output == "json":
        return history.to_json()
    lines = []
    for event in history.events:
        when = event.event_time.ToDatetime().isoformat(timespec="milliseconds")
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        lines.append(f"{event.event_id:>6}  {when}  {name}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    code = 0
    try:
        if args.group == "store":
            output, code = _store(args)
        else:
            output = asyncio.run(_show(args))
    except (AblaufError, RPCError) as err:
        print(f"ablauf: {err}", file=sys.stderr)
        return 1
    if getattr(args, "file", None):
        with open(args.file, "w") as f:
            f.write(output)
    else:
        sys.stdout.write(output)
    return code


if __name__ == "__main__":
    sys.exit(main())
