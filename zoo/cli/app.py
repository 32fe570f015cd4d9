"""The typer app every command registers on, and its global options.

The ``zoo`` command: parse, call :mod:`zoo`, render. Heavy imports stay inside commands.
Only typer's path imports this module: the fast path (:mod:`zoo.cli.fast`) never does,
and the typer-free parts every command shares (state, one-line errors, the registry)
live in :mod:`zoo.cli.base` and are re-exported here.

Data goes to stdout (aligned columns from :mod:`zoo.cli.table`, coloured on a terminal; JSON
with ``--json``); warnings and errors go to stderr. A ``ZooError`` becomes one line and
exit code 2 for usage errors, 1 otherwise; ``--debug`` (or ``ZOO_DEBUG=1``) shows the
traceback instead.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

# Re-exported: the typer-based command modules take them from here.
from zoo.cli.base import (  # noqa: F401
    _STATE,
    DEBUG_HELP,
    JSON_HELP,
    _debug,
    _fail,
    _registry,
    heavy,
)
from zoo.cli.base import handles_errors as base_handles_errors

app = typer.Typer(
    name="zoo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def with_debug_option(wrapper):
    """Give a command (a :func:`zoo.cli.base.handles_errors` wrapper) its own ``--debug``
    option, so ``zoo get X --debug`` works as well as ``zoo --debug get X`` (the option a
    user adds last, after seeing an error). The wrapper already takes ``debug``; this tells
    typer so. Typer-free commands get it when typer registers them (:mod:`zoo.cli`)."""
    sig = inspect.signature(wrapper, eval_str=True)
    if "debug" in sig.parameters:
        return wrapper
    option = inspect.Parameter(
        "debug", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)])
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), option])
    wrapper.__annotations__ = {**wrapper.__annotations__, "debug": option.annotation}
    return wrapper


def reflowed(doc: str | None) -> str | None:
    """``doc`` with each prose paragraph joined into one line, so ``--help`` wraps it to
    the terminal: typer keeps a docstring's line breaks after its first paragraph, which
    left a word or two on lines of their own. A paragraph with an indented line (a list of
    examples) keeps its lines."""
    if not doc:
        return doc
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(
        p if any(line[:1].isspace() for line in p.splitlines()) else " ".join(p.split("\n"))
        for p in paragraphs)


def handles_errors(fn):
    """:func:`zoo.cli.base.handles_errors`, with the command's own ``--debug`` option."""
    return with_debug_option(base_handles_errors(fn))


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
