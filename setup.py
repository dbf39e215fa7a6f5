"""Builds ablauf, compiling its hot path to C with mypyc.

The modules listed under ``[tool.ablauf] compiled`` in pyproject.toml run for
every event a workflow records or for its start. They are strictly typed
Python, which mypyc turns into C extensions that do the same work in fewer
instructions. With ABLAUF_COMPILE=0 the build is pure Python: same behaviour,
slower.
"""

import os
import tomllib

from setuptools import setup

if os.environ.get("ABLAUF_COMPILE", "1") == "0":
    setup()
else:
    from mypyc.build import mypycify

    with open("pyproject.toml", "rb") as f:
        compiled = tomllib.load(f)["tool"]["ablauf"]["compiled"]
    setup(ext_modules=mypycify(compiled, opt_level="3", group_name="ablauf"))
