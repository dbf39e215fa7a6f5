"""Builds ablauf, compiling its hot path to C with mypyc where it can.

The modules listed under ``[tool.ablauf] compiled`` in pyproject.toml run for
every event a workflow records or for its start. They are strictly typed
Python, which mypyc turns into C extensions that do the same work in fewer
instructions. They are an optimisation only: without them ablauf behaves the
same, slower.

``ABLAUF_COMPILE`` chooses:
- unset or ``auto``: compiled when mypyc (part of mypy, as the ``dev`` extra
  pins it) is importable where the package is built and a C compiler works;
  otherwise pure Python, with one warning that says why. A plain ``pip
  install`` of the source builds in an environment without mypy: pure Python,
  nothing downloaded for it. The published wheels are compiled.
- ``1``: compiled, or the build fails (``scripts/wheels``, ``scripts/bootstrap``).
- ``0``: pure Python.
"""

import os
import sys
import tomllib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.errors import CCompilerError, ExecError, PlatformError

MODE = os.environ.get("ABLAUF_COMPILE", "auto")
if MODE not in {"auto", "0", "1"}:
    sys.exit(f"ABLAUF_COMPILE={MODE!r}: use 0 (pure Python), 1 (compiled) or auto")


_why_pure: list[str] = []


def _pure(why: str) -> None:
    # Said when the package is built (not for an sdist, which holds sources only).
    _why_pure.append(why)


def _warn() -> None:
    for why in _why_pure:
        print(
            f"WARNING: ablauf is built as pure Python: {why}. It behaves the same, "
            "only slower; ABLAUF_COMPILE=0 builds pure Python without this warning.",
            file=sys.stderr,
        )
    _why_pure.clear()


class _BuildPy(build_py):
    def run(self) -> None:
        _warn()
        super().run()


class _OptionalBuildExt(build_ext):
    """Builds the compiled modules; in ``auto`` mode a failure leaves them out."""

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, ExecError, PlatformError, OSError) as err:
            if MODE == "1":
                raise
            # Half a build would not import: none of it stays.
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            _pure(f"no working C compiler ({err})")
            _warn()


def _ext_modules() -> list:
    if MODE == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        if MODE == "1":
            sys.exit("ABLAUF_COMPILE=1 needs mypy where ablauf is built (the dev extra's pin)")
        _pure("mypyc (part of mypy) is not installed where it is built")
        return []
    with open("pyproject.toml", "rb") as f:
        compiled = tomllib.load(f)["tool"]["ablauf"]["compiled"]
    try:
        return mypycify(compiled, opt_level="3", group_name="ablauf")
    except SystemExit:
        # mypyc stops on type errors: another mypy than the pinned one, say.
        if MODE == "1":
            raise
        _pure("mypyc could not compile it (see its messages above)")
        return []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": _OptionalBuildExt, "build_py": _BuildPy})
