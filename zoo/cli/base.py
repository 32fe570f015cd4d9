"""What every command shares, without typer: global state, one-line errors, the registry.

``zoo list``, ``zoo info``, ``zoo recommend`` and ``zoo plugins`` are run by the fast path
(:mod:`zoo.cli.fast`) without importing typer (~30 ms, plus pydantic and rich behind it;
more than the commands themselves take). So their modules (:mod:`zoo.cli.listing`,
:mod:`zoo.cli.plugins`) are typer-free at import time:

- they declare commands with :func:`command`, which only records the function; typer
  registers them when it builds its app (:func:`zoo.cli._typer_app`);
- their parameters keep typer's ``Annotated[..., typer.Option(...)]`` declarations. Under
  ``from __future__ import annotations`` those are strings that typer evaluates when it
  builds the command, in the module's namespace, where ``typer`` is :data:`typer` below:
  a stand-in that imports the real typer on first use. Outside those annotations, these
  modules must not touch ``typer``.

Errors exit through :class:`SystemExit`, which typer passes through unchanged, so both
paths give the same exit codes.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from zoo.errors import ZooError

_STATE: dict[str, Any] = {"catalogs": [], "debug": False}

JSON_HELP = "Print JSON (for scripts) instead of a table."
DEBUG_HELP = "Show tracebacks on errors."

# (module name, command name, function, typer's command() keywords), in declaration order
_COMMANDS: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = []


class _LazyTyper:
    """``typer`` for typer-free command modules: the real module on first attribute use."""

    def __getattr__(self, name: str) -> Any:
        import typer as real

        return getattr(real, name)


typer: Any = _LazyTyper()


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a command without importing typer; typer registers it when it builds its app.

    ``kwargs`` go to typer's ``app.command`` as they are. The function is returned
    unchanged, so the fast path calls the very function typer would.
    """
    def record(fn: Callable[..., Any]) -> Callable[..., Any]:
        _COMMANDS.append((fn.__module__, name, fn, kwargs))
        return fn

    return record


def commands_of(module: ModuleType) -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    """The commands ``module`` declared with :func:`command`, in order."""
    return [(name, fn, kw) for mod, name, fn, kw in _COMMANDS if mod == module.__name__]


def _debug() -> bool:
    return _STATE["debug"] or os.environ.get("ZOO_DEBUG", "") not in ("", "0")


def _fail(message: str, code: int) -> None:
    if not message.isprintable():   # a name typed with a newline must not split the line
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    print(f"Error: {message}", file=sys.stderr)
    if not _debug() and code != 2:
        print("(set ZOO_DEBUG=1 or pass --debug for a traceback)", file=sys.stderr)
    raise SystemExit(code)


def handles_errors(fn):
    """Turn ZooErrors (and Ctrl-C) into one line and an exit code.

    The command also takes ``debug`` (its own ``--debug``, after the command name: see
    :func:`zoo.cli.app.with_debug_option`, which tells typer).
    """

    @functools.wraps(fn)
    def wrapper(*args, debug: bool = False, **kwargs):
        if debug:
            _STATE["debug"] = True
        try:
            return fn(*args, **kwargs)
        except ZooError as e:
            if _debug():
                raise
            _fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            print("Interrupted.", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper


def _registry():
    from zoo.registry import default_registry

    return default_registry(_STATE["catalogs"])


def heavy() -> None:
    """Re-enable the GC before a command builds models or serves requests."""
    gc.enable()
