"""The ``zoo`` command, one module per command group.

- :mod:`~zoo.cli.base`: what every command shares (state, one-line errors), typer-free;
- :mod:`~zoo.cli.app`: the typer app and its global options;
- :mod:`~zoo.cli.listing` (list, info, recommend), :mod:`~zoo.cli.get`,
  :mod:`~zoo.cli.plugins`, :mod:`~zoo.cli.demo` (demo, space),
  :mod:`~zoo.cli.finetune`, :mod:`~zoo.cli.publish`: the commands;
- :mod:`~zoo.cli.fast`: plain listing invocations parsed without typer;
- :mod:`~zoo.cli.render`, :mod:`~zoo.cli.table`: how results are printed.

Importing this package imports no command and not typer: ``zoo list`` must not pay for
them (:mod:`zoo.cli.fast`). ``zoo.cli.app`` names the typer app (built with every command
on first access), as it always did, although a submodule has that name too.

The top layer: it may import any part of zoo, and nothing in zoo imports it.
"""

from __future__ import annotations

import gc
import sys
import types
from importlib import import_module
from typing import Any

__all__ = ["_parse_fast", "_run_fast", "app", "main"]

# Command modules, imported in the order of ``zoo --help``.
_COMMAND_MODULES = ("listing", "get", "plugins", "demo", "finetune", "publish")
_HELP_ORDER = ("list", "info", "recommend", "get", "plugins", "demo", "space", "finetune",
               "publish")


_built = False


def _typer_app():
    """The typer app with every command registered (imports typer and every command)."""
    from zoo.cli.base import commands_of

    global _built
    typer_app = import_module("zoo.cli.app")
    app = typer_app.app
    if not _built:
        for name in _COMMAND_MODULES:
            for cmd, fn, kwargs in commands_of(import_module(f"zoo.cli.{name}")):
                app.command(cmd, **kwargs)(typer_app.with_debug_option(fn))
        # A module imported on its own earlier registered its commands first.
        rank = {n: i for i, n in enumerate(_HELP_ORDER)}
        app.registered_commands.sort(key=lambda c: rank.get(c.name or "", len(rank)))
        for info in [*app.registered_commands, app.registered_callback]:
            if info is not None and info.callback is not None:
                info.help = typer_app.reflowed(info.help or info.callback.__doc__)
        _built = True
    globals()["app"] = app
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return _typer_app()
    if name in ("_parse_fast", "_run_fast"):
        return getattr(import_module("zoo.cli.fast"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    # Importing the submodule zoo.cli.app makes Python set this package's ``app`` to the
    # module; keep the name for the typer app (the submodule stays in sys.modules).
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "app" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def main() -> None:
    """Console-script entry point."""
    # Start-up creates many long-lived objects (imports, catalog records) and no garbage
    # cycles worth collecting; the cyclic GC only slows it. Commands that build models
    # turn it back on (see ``zoo.cli.base.heavy``).
    gc.disable()
    from zoo.cli.fast import _run_fast

    if not _run_fast(sys.argv[1:]):
        _typer_app()()


if __name__ == "__main__":
    main()
