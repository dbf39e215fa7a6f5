"""Run in a fresh interpreter: how long imports and ``Client.connect`` take.

Usage: ``python -P bench/startup.py ablauf|temporal TARGET``. Prints
``{"ms": ...}``: from the first line of this file (after ``import time``) until
the connected client is there, so the interpreter's own start is not in it.
"""

import time

_STARTED = time.perf_counter()

import asyncio  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402


async def _main(kind: str, target: str) -> None:
    if kind == "temporal":
        import temporalio.client

        await temporalio.client.Client.connect(target)
        elapsed = time.perf_counter() - _STARTED
    else:
        import ablauf

        client = await ablauf.Client.connect(target)
        elapsed = time.perf_counter() - _STARTED
        await client.close()
    print(json.dumps({"ms": elapsed * 1000}))


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
