"""``python -m bench``: see ``bench/__init__.py``."""

from bench.cli import main

raise SystemExit(main())
