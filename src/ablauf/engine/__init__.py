"""The embedded "server": transitions, activities, timers, leases, frontend RPCs."""

import sys
import warnings
from importlib.util import find_spec

COMPILED = find_spec("ablauf__mypyc") is not None
"""Whether the engine's hot path runs compiled (mypyc) or as pure Python."""

if sys.version_info >= (3, 12) and COMPILED:
    # Compiled, the engine's coroutines pass an exception on to what they await
    # with the three-argument throw() that Python 3.12 deprecated (mypyc's
    # runtime does; mypyc/mypyc#1214): every exception crossing them would warn
    # in the application's code.
    warnings.filterwarnings(
        "ignore",
        message=r"the \(type, exc, tb\) signature of throw\(\) is deprecated",
        category=DeprecationWarning,
    )
