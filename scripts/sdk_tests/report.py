"""Compares the JUnit results of temporalio's test files on ablauf and on a dev server.

Usage: report.py RESULTS_DIR FILE... (RESULTS_DIR holds ablauf/ and temporal/).
Prints per file and engine passed/failed/skipped, then every test that passes on
the dev server but not on ablauf, with the first line of its failure.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ENGINES = ("temporal", "ablauf")


def outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """Test id -> (passed|failed|skipped, first line of the message)."""
    if not path.exists():
        return {}
    result: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = child.get("message") or (child.text or "")
                break
            if child.tag == "skipped":
                outcome = "skipped"
                message = child.get("message") or ""
        # An error in teardown after a pass is a second entry: the failure wins.
        if result.get(test, ("", ""))[0] != "failed":
            result[test] = (outcome, message.strip().splitlines()[0][:200] if message.strip() else "")
    return result


def main() -> None:
    results = Path(sys.argv[1])
    regressions: list[tuple[str, str]] = []
    print(f"{'file':40} {'engine':9} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for file in sys.argv[2:]:
        name = Path(file).stem
        runs = {engine: outcomes(results / engine / f"{name}.xml") for engine in ENGINES}
        for engine in ENGINES:
            counts = [sum(o == kind for o, _ in runs[engine].values()) for kind in ("passed", "failed", "skipped")]
            shown = "(no results)" if not runs[engine] else ""
            print(f"{file:40} {engine:9} {counts[0]:7} {counts[1]:7} {counts[2]:8} {shown}")
        for test, (outcome, _) in runs["temporal"].items():
            ablauf = runs["ablauf"].get(test)
            if outcome == "passed" and runs["ablauf"] and (ablauf is None or ablauf[0] != "passed"):
                regressions.append((test, "not run" if ablauf is None else f"{ablauf[0]}: {ablauf[1]}"))
    print(f"\npass on the dev server, not on ablauf: {len(regressions)}")
    for test, why in regressions:
        print(f"{test}\t{why}")


if __name__ == "__main__":
    main()
