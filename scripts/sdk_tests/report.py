"""Compares the outcomes of temporalio's test files on ablauf and on a dev server.

Usage: report.py RESULTS_DIR FILE... (RESULTS_DIR holds ablauf/ and temporal/).
Prints per file and engine passed/failed/skipped, then every test that passes on
the dev server but not on ablauf, with the first line of its failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ENGINES = ("temporal", "ablauf")


def outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """Test id -> (passed|failed|skipped|hung, first line of the message)."""
    if not path.exists():
        return {}
    result: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            message = record["message"].strip().splitlines()
            result[record["test"]] = (record["outcome"], message[0][:200] if message else "")
    return result


def main() -> None:
    results = Path(sys.argv[1])
    regressions: list[tuple[str, str]] = []
    kinds = ("passed", "failed", "skipped", "hung")
    print(f"{'file':40} {'engine':9}" + "".join(f"{kind:>8}" for kind in kinds))
    for file in sys.argv[2:]:
        name = Path(file).stem
        runs = {engine: outcomes(results / engine / f"{name}.jsonl") for engine in ENGINES}
        for engine in ENGINES:
            counts = "".join(
                f"{sum(o == kind for o, _ in runs[engine].values()):8}" for kind in kinds
            )
            print(f"{file:40} {engine:9}{counts}" + ("" if runs[engine] else " (no results)"))
        for test, (outcome, _) in runs["temporal"].items():
            ablauf = runs["ablauf"].get(test)
            if outcome == "passed" and runs["ablauf"] and (ablauf is None or ablauf[0] != "passed"):
                regressions.append(
                    (test, "not run" if ablauf is None else f"{ablauf[0]}: {ablauf[1]}")
                )
    print(f"\npass on the dev server, not on ablauf: {len(regressions)}")
    for test, why in regressions:
        print(f"{test}\t{why}")


if __name__ == "__main__":
    main()
