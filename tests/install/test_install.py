"""ablauf installs as a user installs it, on every CPython it supports.

``scripts/wheels`` builds the sdist, the pure wheel and the compiled wheels for
3.12 and 3.13 (the dev build in ``src/`` is 3.11's); fresh venvs install them
and run the README's first program. One venv builds the sdist with neither a C
compiler nor mypy at hand, another with mypy but no C compiler. The quick part
of the suite then runs on 3.12 and 3.13 against their compiled wheels, so a
break on either shows here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COMPILED = ("3.12", "3.13")
# Says which build of ablauf a venv runs.
WHICH_BUILD = (
    "import ablauf.engine.engine as e; "
    "print('compiled' if e.__file__.endswith('.so') else 'pure Python')"
)


def find_python(version: str) -> str | None:
    """CPython ``version`` as pyenv installed it, or on PATH (as scripts/wheels finds it)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob(f"{version}*/bin/python{version}"))]
    for candidate in [*candidates, f"python{version}"]:
        check = f"import sys; sys.exit(sys.version_info[:2] != ({version.replace('.', ', ')}))"
        try:
            if subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0:
                return candidate
        except OSError:
            continue
    return None


def python(version: str) -> str:
    found = find_python(version)
    if found is None:
        pytest.fail(f"no CPython {version} on this machine (pyenv install {version})")
    return found


def run(*command: str | Path, **kwargs: object) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout + done.stderr)


def new_venv(version: str, where: Path) -> Path:
    run(python(version), "-m", "venv", where)
    return where / "bin" / "python"


def readme_program() -> str:
    """The README's first Python block: a complete program, run as written."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None
    return match.group(1)


def hello(venv_python: Path, where: Path, env: dict[str, str] | None = None) -> str:
    """Runs the README's program in ``where``; returns which build ran it."""
    (where / "hello.py").write_text(readme_program())
    out = run(venv_python, "hello.py", cwd=where, env=env, timeout=120)
    assert out.strip() == "Hello, World!"
    return run(venv_python, "-c", WHICH_BUILD, cwd=where).strip()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(ROOT / "scripts" / "wheels", "--outdir", out, "--python", ",".join(COMPILED), timeout=900)
    return out


def one(paths: object) -> Path:
    found = list(paths)  # type: ignore[call-overload]
    assert len(found) == 1, found
    return Path(found[0])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("version", COMPILED)
def test_a_compiled_wheel_installs_and_runs(dist: Path, tmp_path: Path, version: str) -> None:
    tag = f"cp{version.replace('.', '')}"
    wheel = one(dist.glob(f"ablauf-*-{tag}-{tag}-manylinux*_x86_64.whl"))
    venv_python = new_venv(version, tmp_path / "venv")
    run(venv_python, "-m", "pip", "install", "--quiet", wheel, timeout=300)
    assert hello(venv_python, tmp_path) == "compiled"
    version_line = run(tmp_path / "venv" / "bin" / "ablauf", "--version")
    assert version_line.strip() == f"ablauf {wheel.name.split('-')[1]}"


@pytest.mark.timeout(600)
def test_the_pure_wheel_installs_and_runs_on_3_11(dist: Path, tmp_path: Path) -> None:
    wheel = one(dist.glob("ablauf-*-py3-none-any.whl"))
    venv_python = new_venv("3.11", tmp_path / "venv")
    run(venv_python, "-m", "pip", "install", "--quiet", wheel, timeout=300)
    assert hello(venv_python, tmp_path) == "pure Python"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("version", ["3.11", *COMPILED])
def test_the_sdist_installs_without_a_c_compiler_or_mypy(
    dist: Path, tmp_path: Path, version: str
) -> None:
    sdist = one(dist.glob("ablauf-*.tar.gz"))
    venv_python = new_venv(version, tmp_path / "venv")
    # Nothing on PATH but the venv: no cc, no gcc.
    env = {
        "PATH": str(venv_python.parent),
        "CC": "/nonexistent/cc",
        "HOME": os.environ.get("HOME", "/root"),
    }
    out = run(venv_python, "-m", "pip", "install", "-v", sdist, env=env, timeout=300)
    assert "WARNING: ablauf is built as pure Python" in out
    assert not re.search(r"Collecting mypy|Downloading mypy|mypy-\d", out)
    assert hello(venv_python, tmp_path, env) == "pure Python"


@pytest.mark.timeout(600)
def test_with_mypy_but_no_c_compiler_the_build_falls_back_to_pure_python(
    dist: Path, tmp_path: Path
) -> None:
    sdist = one(dist.glob("ablauf-*.tar.gz"))
    venv_python = new_venv("3.11", tmp_path / "venv")
    run(venv_python, "-m", "pip", "install", "--quiet", *_build_requirements(), timeout=300)
    env = {**os.environ, "CC": "/nonexistent/cc"}
    out = run(
        venv_python, "-m", "pip", "install", "-v", "--no-build-isolation", sdist,
        env=env, timeout=400,
    )  # fmt: skip
    assert "WARNING: ablauf is built as pure Python: no working C compiler" in out
    assert hello(venv_python, tmp_path) == "pure Python"


def _build_requirements() -> list[str]:
    """What a compiled build needs besides a C compiler, as pyproject.toml pins it."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    dev = project["optional-dependencies"]["dev"]
    pins = [d for d in dev if d.split("==")[0] in {"mypy", "types-croniter"}]
    return ["setuptools>=77", *pins, *project["dependencies"]]


def _test_requirements() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        dev = tomllib.load(f)["project"]["optional-dependencies"]["dev"]
    return [d for d in dev if d.startswith(("pytest", "pydantic"))]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("version", COMPILED)
def test_the_quick_suite_passes_on_the_compiled_wheel(
    dist: Path, tmp_path: Path, version: str
) -> None:
    tag = f"cp{version.replace('.', '')}"
    wheel = one(dist.glob(f"ablauf-*-{tag}-{tag}-manylinux*_x86_64.whl"))
    venv_python = new_venv(version, tmp_path / "venv")
    run(venv_python, "-m", "pip", "install", "--quiet", wheel, *_test_requirements(), timeout=300)
    assert run(venv_python, "-c", WHICH_BUILD).strip() == "compiled"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHONPATH"))}
    run(
        venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
        "--engine", "ablauf", "tests/unit", "tests/store", "tests/engine", "tests/testing",
        cwd=ROOT, env=env, timeout=500,
    )  # fmt: skip
    assert sys.version_info[:2] == (3, 11)  # this process: the dev build's interpreter
