"""The fast path: plain listing commands parsed without typer.

typer 0.29 coerces every non-bool parameter through a pydantic TypeAdapter, and importing
pydantic to do so costs more than everything `zoo list` itself does (measured: ~90 ms
of a 0.27 s run). The listing commands are the ones people run all day and scripts run
in loops, so their plain invocations (and zoo recommend's) are parsed here and handed to
the very same command functions. Anything this parser does not know (help, a typo, an
unknown option) goes to typer, which owns help, usage errors and every other command.

Nothing here imports typer, rich, pydantic or click (tests/test_cli.py checks), and
neither do the command modules it calls (see :mod:`zoo.cli.base`).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from zoo.cli.base import _STATE

_FAST_COMMANDS: dict[str, tuple[str, dict[str, str], dict[str, Any], str | None]] = {
    # command: ("module:function", value options, flags, positional: "many" | "one" | None);
    # a flag gives its keyword True, or (keyword, value) for a --yes/--no pair
    "list": ("listing:list_cmd", {"--family": "family", "-f": "family", "--task": "task",
                                  "-t": "task"},
             {"--pretrained": "pretrained", "-p": "pretrained", "--namespaces": "namespaces",
              "-n": "namespaces", "--json": "as_json"}, "many"),
    "info": ("listing:info_cmd", {}, {"--json": "as_json"}, "one"),
    "plugins": ("plugins:plugins_cmd", {}, {"--json": "as_json"}, None),
    # --top (an int) goes to typer; everything else here is text
    "recommend": ("listing:recommend_cmd", {"--task": "task", "-t": "task",
                                            "--data-size": "data_size", "-d": "data_size",
                                            "--compute": "compute",
                                            "--max-params": "max_params", "--data": "data"},
                  {"--json": "as_json", "--offline": "offline",
                   "--similar": ("similar", True), "--different": ("similar", False)}, None),
}


_FAST_REQUIRED = {"listing:recommend_cmd": ("task",)}


def _parse_fast(argv: list[str]) -> tuple[str, dict[str, Any], list[Path], bool] | None:
    """``(function, kwargs, catalogs, debug)`` for a plain listing command, else ``None``."""
    catalogs: list[Path] = []
    debug = False
    i = 0
    while i < len(argv) and argv[i].startswith("-"):          # global options
        arg = argv[i]
        if arg == "--debug":
            debug = True
        elif arg in ("--catalog", "-c") and i + 1 < len(argv):
            i += 1
            catalogs.append(Path(argv[i]))
        elif arg.startswith("--catalog=") and len(arg) > 10:
            catalogs.append(Path(arg[10:]))
        else:
            return None
        i += 1
    if i >= len(argv) or argv[i] not in _FAST_COMMANDS:
        return None
    fn, values, flags, positional = _FAST_COMMANDS[argv[i]]
    kwargs: dict[str, Any] = {}
    args: list[str] = []
    i += 1
    while i < len(argv):
        arg = argv[i]
        key, eq, val = arg.partition("=")
        if arg == "--" or arg in ("-h", "--help"):
            return None
        flag = flags.get(arg)
        flag_key, flag_value = flag if isinstance(flag, tuple) else (flag, True)
        if arg == "--debug":        # a global option, accepted after the command too
            debug = True
        elif flag is not None and flag_key not in kwargs:
            kwargs[flag_key] = flag_value
        elif key in values and values[key] not in kwargs:
            if eq:
                if not val:
                    return None
                kwargs[values[key]] = val
            elif i + 1 < len(argv):
                i += 1
                kwargs[values[key]] = argv[i]
            else:
                return None
        elif arg.startswith("-") and arg != "-":
            return None
        else:
            args.append(arg)
        i += 1
    if positional == "one":
        if len(args) != 1:
            return None
        kwargs["name"] = args[0]
    elif positional == "many":
        kwargs["patterns"] = args or None
    elif args:
        return None
    if any(k not in kwargs for k in _FAST_REQUIRED.get(fn, ())):
        return None               # typer says what is missing
    return fn, kwargs, catalogs, debug


def _run_fast(argv: list[str]) -> bool:
    """Run a plain listing command without typer's parser; ``False`` if not one."""
    parsed = _parse_fast(argv)
    if parsed is None:
        return False
    fn, kwargs, catalogs, debug = parsed
    _STATE["catalogs"], _STATE["debug"] = catalogs, debug
    module, _, name = fn.partition(":")
    getattr(import_module(f"zoo.cli.{module}"), name)(**kwargs)   # errors: SystemExit
    return True
