"""The README's programs run as written: the first one, and the pytest example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_the_first_program_prints_hello_world(tmp_path: Path) -> None:
    first = python_blocks()[0]
    assert first.startswith("# hello.py\n")
    (tmp_path / "hello.py").write_text(first)
    done = subprocess.run(
        [sys.executable, "hello.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "Hello, World!\n", "")
    assert (tmp_path / "hello.db").exists()


def test_the_pytest_example_passes(tmp_path: Path) -> None:
    [example] = [b for b in python_blocks() if b.startswith("# test_reminder.py\n")]
    (tmp_path / "test_reminder.py").write_text(example)
    # Outside this repository: none of its pytest settings or fixtures apply.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_reminder.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
