"""5.4.2 Client-Side Progress Monitoring: poll a running workflow's progress query.

The chapter's ``monitor_workflow_progress``, run as its own process. Corrected where
it fails on Temporal:
- E5: an untyped query returns a dict, so ``progress.phase`` raises AttributeError;
  the query names its result type, ``ProgressInfo`` (whose E4 fix makes it convertible).
The target, workflow id and poll interval come from the command line instead of
being written into the code.

    python examples/progress_monitor.py --target sqlite:///progress.db --workflow-id ID
"""

import argparse
import asyncio
import os
import sys

from s5_4_2_progress import ProgressInfo

from ablauf import Client


async def monitor_workflow_progress(target: str, workflow_id: str, interval: float) -> None:
    client = await Client.connect(target)
    handle = client.get_workflow_handle(workflow_id)

    while True:
        # Query the progress
        progress = await handle.query("get_progress", result_type=ProgressInfo)  # E5

        print(f"Phase: {progress.phase}")
        print(f"Progress: {progress.percentage:.2f}%")
        print(f"Step: {progress.current_step}/{progress.total_steps}")

        if progress.estimated_completion:
            print(f"ETA: {progress.estimated_completion}")

        if progress.percentage >= 100:
            print("Workflow complete!")
            break

        await asyncio.sleep(interval)  # Poll every 5 seconds (default)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="sqlite:///path.db or host:port")
    parser.add_argument("--workflow-id", required=True)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between queries")
    args = parser.parse_args()
    asyncio.run(monitor_workflow_progress(args.target, args.workflow_id, args.interval))
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio's native runtime may abort at interpreter exit (temporalio issue #300).
    os._exit(0)


if __name__ == "__main__":
    main()
