"""Which of ablauf's modules the tests run compiled, and whether that build is current.

scripts/bootstrap compiles the modules listed under ``[tool.ablauf] compiled``
into src/; an extension module shadows its source, so a source edited after
the build would go untested. The suite refuses to run on such a build.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compiled_sources() -> list[Path]:
    """The modules the build compiles, as source paths."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        listed = tomllib.load(f)["tool"]["ablauf"]["compiled"]
    return [ROOT / path for path in listed]


def built_library() -> Path | None:
    """The shared library of the compiled modules, if they are built."""
    found = sorted((ROOT / "src").glob("ablauf__mypyc.*.so"))
    return found[0] if found else None


def stale_sources() -> list[Path]:
    """Compiled modules whose source changed after the build."""
    library = built_library()
    if library is None:
        return []
    built_at = library.stat().st_mtime
    return [path for path in compiled_sources() if path.stat().st_mtime > built_at]


def module_name(source: Path) -> str:
    return ".".join(source.relative_to(ROOT / "src").with_suffix("").parts)
