"""The typer app every command registers on, its global options, and the error handling.

The ``zoo`` command: parse, call :mod:`zoo`, render. Heavy imports stay inside commands.

Data goes to stdout (aligned columns from :mod:`zoo.cli.table`, coloured on a terminal; JSON
with ``--json``); warnings and errors go to stderr. A ``ZooError`` becomes one line and
exit code 2 for usage errors, 1 otherwise; ``--debug`` (or ``ZOO_DEBUG=1``) shows the
traceback instead.
"""

from __future__ import annotations

import functools
import gc
import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from zoo.errors import ZooError

app = typer.Typer(
    name="zoo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE: dict[str, Any] = {"catalogs": [], "debug": False}

JsonOpt = Annotated[bool, typer.Option("--json",
                                       help="Print JSON (for scripts) instead of a table.")]


def _debug() -> bool:
    return _STATE["debug"] or os.environ.get("ZOO_DEBUG", "") not in ("", "0")


def _fail(message: str, code: int) -> None:
    if not message.isprintable():   # a name typed with a newline must not split the line
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    print(f"Error: {message}", file=sys.stderr)
    if not _debug():
        print("(set ZOO_DEBUG=1 or pass --debug for a traceback)", file=sys.stderr) \
            if code != 2 else None
    raise typer.Exit(code)


DEBUG_HELP = "Show tracebacks on errors."


def handles_errors(fn):
    """Turn ZooErrors (and Ctrl-C) into one line and an exit code.

    Also gives the command its own ``--debug`` option, so ``zoo get X --debug`` works as
    well as ``zoo --debug get X`` (the option a user adds last, after seeing an error).
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
            raise typer.Exit(130) from None

    sig = inspect.signature(fn, eval_str=True)
    option = inspect.Parameter(
        "debug", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)])
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), option])
    wrapper.__annotations__ = {**fn.__annotations__, "debug": option.annotation}
    return wrapper


def _registry():
    from zoo.registry import default_registry

    return default_registry(_STATE["catalogs"])


def _version(value: bool) -> None:
    if value:
        from zoo.version import __version__

        print(f"zoo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    catalog: Annotated[list[Path] | None, typer.Option(
        "--catalog", "-c", help="Extra catalog TOML (repeatable; also ZOO_CATALOG).",
        metavar="FILE")] = None,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """A model zoo for PyTorch: find, build, demo, fine-tune and publish models by name.

    NAME is an architecture (random weights); NAME.TAG is a trained model (see
    'zoo list --pretrained'). 'zoo COMMAND --help' shows a command's options.

    Examples:
      zoo list 'resnet*'
      zoo info lenet5.digits
      zoo get lenet5.digits --save out/lenet
      zoo demo lenet5.digits
      zoo recommend --task image-classification --data-size 800
    """
    _STATE["catalogs"] = list(catalog or [])
    _STATE["debug"] = debug


def heavy() -> None:
    """Re-enable the GC before a command builds models or serves requests."""
    gc.enable()
