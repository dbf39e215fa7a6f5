"""The API reference builds from the docstrings (strict: a broken reference or
docstring fails), and documents the public surface."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _text(page: Path) -> str:
    markup = page.read_text()
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)))


def test_the_reference_builds_and_documents_the_public_api(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference"
    expected = {
        "client": ["connect", "sqlite:///relative.db", "parse_target", "StoreTarget"],
        "worker": ["task_queue", "max_concurrent_activities", "shutdown"],
        "testing": ["start_time_skipping", "get_current_time"],
        "errors": ["StoreLostError", "InvalidTargetError", "UnsupportedFeatureError"],
        "store": ["Store", "TaskRecord", "mark_lost"],
    }
    for page, names in expected.items():
        text = _text(reference / page / "index.html")
        missing = [name for name in names if name not in text]
        assert not missing, (page, missing)
