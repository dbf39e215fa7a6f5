"""The compiled build is what the tests import, whenever it is built."""

import importlib
from pathlib import Path

import pytest

from tests import compiled_build


@pytest.mark.skipif(compiled_build.built_library() is None, reason="pure-Python build")
@pytest.mark.parametrize(
    "source", compiled_build.compiled_sources(), ids=lambda p: compiled_build.module_name(p)
)
def test_a_compiled_module_loads_from_its_extension(source: Path) -> None:
    module = importlib.import_module(compiled_build.module_name(source))
    assert module.__file__ is not None
    assert module.__file__.endswith(".so"), module.__file__
