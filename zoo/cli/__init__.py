"""The ``zoo`` command, one module per command group.

- :mod:`~zoo.cli.app`: the typer app, global options, one-line errors;
- :mod:`~zoo.cli.listing` (list, info, recommend), :mod:`~zoo.cli.get`,
  :mod:`~zoo.cli.plugins`, :mod:`~zoo.cli.demo` (demo, space),
  :mod:`~zoo.cli.finetune`, :mod:`~zoo.cli.publish`: the commands;
- :mod:`~zoo.cli.fast`: plain listing invocations parsed without typer;
- :mod:`~zoo.cli.render`, :mod:`~zoo.cli.table`: how results are printed.

The top layer: it may import any part of zoo, and nothing in zoo imports it.
"""

from __future__ import annotations

import gc
import sys

# Each command module registers its commands on import, in the order of ``zoo --help``.
# isort: off
from zoo.cli import listing  # noqa: F401
from zoo.cli import get  # noqa: F401
from zoo.cli import plugins  # noqa: F401
from zoo.cli import demo  # noqa: F401
from zoo.cli import finetune  # noqa: F401
from zoo.cli import publish  # noqa: F401
# isort: on
from zoo.cli.app import app
from zoo.cli.fast import _parse_fast, _run_fast

__all__ = ["_parse_fast", "_run_fast", "app", "main"]


def main() -> None:
    """Console-script entry point."""
    # Start-up creates many long-lived objects (imports, catalog records) and no garbage
    # cycles worth collecting; the cyclic GC only slows it. Commands that build models
    # turn it back on (see ``zoo.cli.app.heavy``).
    gc.disable()
    if not _run_fast(sys.argv[1:]):
        app()


if __name__ == "__main__":
    main()
