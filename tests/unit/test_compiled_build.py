"""The compiled build is what the tests import, whenever it is built."""

import ast
import importlib
from pathlib import Path

import pytest

from tests import compiled_build


@pytest.mark.skipif(
    compiled_build.built_library() is None,
    reason="built with ABLAUF_COMPILE=0: no extension modules to check",
)
@pytest.mark.parametrize(
    "source", compiled_build.compiled_sources(), ids=lambda p: compiled_build.module_name(p)
)
def test_a_compiled_module_loads_from_its_extension(source: Path) -> None:
    module = importlib.import_module(compiled_build.module_name(source))
    assert module.__file__ is not None
    assert module.__file__.endswith(".so"), module.__file__


def test_no_compiled_function_rebinds_an_except_name_to_another_type() -> None:
    # mypyc types a name by its first binding and checks every later one at run
    # time, so `except A as err` then `except B as err` raises TypeError there.
    clashes = []
    for source in compiled_build.compiled_sources():
        for fn in ast.walk(ast.parse(source.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            bound: dict[str, str] = {}
            for node in ast.walk(fn):
                if isinstance(node, ast.ExceptHandler) and node.name and node.type:
                    caught = ast.unparse(node.type)
                    if bound.setdefault(node.name, caught) != caught:
                        clashes.append(f"{source.name}:{node.lineno} {fn.name}: {node.name}")
    assert not clashes, clashes
