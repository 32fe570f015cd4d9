"""The ``zoo`` command: parse, call :mod:`zoo`, render. Heavy imports stay inside commands.

Data goes to stdout (aligned columns from :mod:`zoo.table`, coloured on a terminal; JSON
with ``--json``); warnings and errors go to stderr. A ``ZooError`` becomes one line and
exit code 2 for usage errors, 1 otherwise; ``--debug`` (or ``ZOO_DEBUG=1``) shows the
traceback instead.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import UsageError, ZooError

app = typer.Typer(
    name="zoo",
    help="A model zoo for PyTorch: find, build, demo, fine-tune and publish models by name.",
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


def handles_errors(fn):
    """Turn ZooErrors (and Ctrl-C) into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ZooError as e:
            if _debug():
                raise
            _fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            print("Interrupted.", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def _registry():
    from .registry import default_registry

    return default_registry(_STATE["catalogs"])


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"zoo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    catalog: Annotated[list[Path] | None, typer.Option(
        "--catalog", "-c", help="Extra catalog TOML (repeatable; also ZOO_CATALOG).",
        metavar="FILE")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """A model zoo for PyTorch: find, build, demo, fine-tune and publish models by name.

    Examples: zoo list 'resnet*'   zoo info lenet5.digits   zoo get lenet5 --save out/
    """
    _STATE["catalogs"] = list(catalog or [])
    _STATE["debug"] = debug


# -- rendering ---------------------------------------------------------------------------

def human_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _table(columns: list[str], rows: list[list[str]]) -> None:
    """Aligned columns; bold header and wrapping to the terminal's width on a terminal."""
    from .table import render, use_colour

    width = None
    if sys.stdout.isatty():
        import shutil

        width = shutil.get_terminal_size().columns
    sys.stdout.write(render(columns, rows, colour=use_colour(), width=width))


def _json(data: Any) -> None:
    """Indented JSON; a list is written one compact element per line, which is still valid
    JSON, greppable, and ~10x faster for big catalogs (``indent`` disables json's C encoder)."""
    if isinstance(data, list) and data:
        encode = json.JSONEncoder(default=str).encode
        body = ",\n  ".join(encode(item) for item in data)
        sys.stdout.write(f"[\n  {body}\n]\n")
        return
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _check_choice(value: str | None, choices: set[str], what: str) -> None:
    if value is None or value in choices:
        return
    import difflib

    close = difflib.get_close_matches(value, sorted(choices), n=1)
    raise UsageError(f"unknown {what} '{value}'"
                     + (f"; did you mean '{close[0]}'?" if close else "")
                     + f" Known: {', '.join(sorted(choices))}")


# -- commands ----------------------------------------------------------------------------

@app.command("list")
@handles_errors
def list_cmd(
    patterns: Annotated[list[str] | None, typer.Argument(
        help="Shell-style patterns ('resnet*', '*.digits').", show_default=False)] = None,
    family: Annotated[str | None, typer.Option("--family", "-f", help="Only this family.")] = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")] = None,
    pretrained: Annotated[bool, typer.Option(
        "--pretrained", "-p", help="List trained models (NAME.TAG) only.")] = False,
    namespaces: Annotated[bool, typer.Option(
        "--namespaces", "-n",
        help="Also list pass-through namespaces (timm/..., torchvision/...); imports them.",
    )] = False,
    as_json: JsonOpt = False,
) -> None:
    """List models, sorted by name.

    Examples: zoo list   zoo list 'resnet*' --family cnn   zoo list --pretrained --json
    zoo list 'timm/vit_*'
    """
    reg = _registry()
    _check_choice(family, set(reg.families), "family")
    pats = list(patterns or [])
    if pretrained:
        items = reg.trained(pats, family=family, task=task, namespaces=namespaces)
        if task is not None and not items:
            _check_choice(task, {s.task for s in reg}, "task")
        if as_json:
            # A trained model's own size (its tag's kwargs may shrink the architecture).
            return _json([{"name": f"{s.name}.{t}", "model": s.name, "tag": t,
                           "family": s.family, "task": s.task_for(t),
                           "params": s.params_for(t), "gflops": s.gflops_for(t),
                           "dataset": s.pretrained[t].dataset,
                           "metrics": dict(s.pretrained[t].metrics),
                           "source": s.pretrained[t].source} for s, t in items])
        if not items:
            print("No trained models match.", file=sys.stderr)
            return
        _table(["NAME", "FAMILY", "TASK", "PARAMS", "DATASET", "METRICS"],
               [[f"{s.name}.{t}", s.family, s.task_for(t), human_count(s.params_for(t)),
                 s.pretrained[t].dataset or "-",
                 ", ".join(f"{k}={v:g}" for k, v in s.pretrained[t].metrics.items()) or "-"]
                for s, t in items])
        return
    specs = reg.list(pats, family=family, task=task, namespaces=namespaces)
    if task is not None and not specs:
        _check_choice(task, {s.task for s in reg}, "task")
    if as_json:
        return _json([{"name": s.name, "family": s.family, "task": s.task, "params": s.params,
                       "gflops": s.gflops, "pretrained": list(s.trained_tags()),
                       "plugin": s.plugin, "description": s.description} for s in specs])
    if not specs:
        print("No models match. Try 'zoo list' without filters.", file=sys.stderr)
        return
    _table(["NAME", "FAMILY", "TASK", "PARAMS", "PRETRAINED"],
           [[s.name, s.family, s.task, human_count(s.params),
             ", ".join(s.trained_tags()) or "-"] for s in specs])


@app.command("info")
@handles_errors
def info_cmd(
    name: Annotated[str, typer.Argument(help="NAME or NAME.TAG.")],
    as_json: JsonOpt = False,
) -> None:
    """Show everything known about a model: paper, licence, input, size, tags, plugin.

    Examples: zoo info resnet50   zoo info lenet5.digits --json
    """
    from .api import info

    _registry()
    data = info(name)
    if as_json:
        return _json(data)
    title = data["name"] + (f".{data['tag']}" if data["tag"] else "")
    inp = data["input"]
    rows = [
        ["description", data["description"] or "-"],
        ["family", f"{data['family']} ({data['family_description'] or ''})".replace(" ()", "")],
        ["task", data["task"]],
        ["demo", data["demo"]],
        ["paper", (data["paper"] or "-")
         + (f" <{data['paper_url']}>" if data["paper_url"] else "")],
        ["year", str(data["year"] or "-")],
        ["license", data["license"] or "-"],
        *_size_rows(data),
        ["input", _fmt_input(inp)],
        ["tags", ", ".join(data["tags"]) or "-"],
        ["builder", data["builder"] + (f" {json.dumps(data['kwargs'])}" if data["kwargs"] else "")],
        ["finetune", json.dumps(data["finetune"]) if data["finetune"] else "-"],
        ["plugin", f"{data['plugin']}  ({data['origin'] or '-'})"],
    ]
    for tag, pre in data["pretrained"].items():
        if data["tag"] and tag != data["tag"]:
            continue
        metrics = ", ".join(f"{k}={v:g}" for k, v in pre["metrics"].items())
        # Another tag's size, when it is not the architecture's (the selected tag's is
        # in the params row already).
        size = "" if tag == data["tag"] or pre["params"] == data["params"] else \
            f"  {human_count(pre['params'])} params"
        rows.append([f"{data['name']}.{tag}",
                     pre["source"] + (f"  [{pre['dataset']}]" if pre["dataset"] else "")
                     + (f"  {metrics}" if metrics else "") + size
                     + ("  (default)" if pre["default"] else "")])
    if not data["pretrained"]:
        rows.append(["pretrained", "none (architecture only)"])
    _table(["FIELD", title], rows)


def _size_rows(data: dict[str, Any]) -> list[list[str]]:
    """The params and gflops rows of ``zoo info``: the selected trained model's own figures,
    with the architecture's beside them when its kwargs make it another size."""
    def fmt_params(n: int | None) -> str:
        return f"{n:,}" if n else "-"

    def fmt_gflops(g: float | None) -> str:
        return f"{g:g}" if g is not None else "-"

    arch = (fmt_params(data["params"]), fmt_gflops(data["gflops"]))
    sel = data.get("selected")
    if sel is None:
        return [["params", arch[0]], ["gflops", arch[1]]]
    own = (fmt_params(sel["params"]), fmt_gflops(sel["gflops"]))
    return [[key, value + (f"  (architecture {name}: {base})" if value != base else "")]
            for key, value, base, name in (("params", own[0], arch[0], data["name"]),
                                           ("gflops", own[1], arch[1], data["name"]))]


def _few_names(names: list[str], n: int = 3) -> str:
    if not names:
        return "0"
    shown = ", ".join(sorted(names)[:n])
    return f"{len(names)}: {shown}" + (", ..." if len(names) > n else "")


def _fmt_input(inp: dict | None) -> str:
    if not inp:
        return "-"
    s = f"{inp['size']} {inp['dtype']}"
    if inp.get("mean"):
        s += f" mean={inp['mean']} std={inp['std']}"
    return s


@app.command("recommend")
@handles_errors
def recommend_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="What the model must do.")],
    data_size: Annotated[str | None, typer.Option(
        "--data-size", "-d", help="Labelled examples you have (5000, 20k).")] = None,
    compute: Annotated[str, typer.Option(
        "--compute", help="cpu, small-gpu or large-gpu.")] = "cpu",
    max_params: Annotated[str | None, typer.Option(
        "--max-params", help="Largest model to consider (25M, 1.5B).")] = None,
    top: Annotated[int, typer.Option("--top", help="How many models to show.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Rank models for a task and advise a fine-tuning technique, with reasons.

    Examples: zoo recommend --task image-classification --data-size 800
    zoo recommend --task text-classification --data-size 50k --compute small-gpu --json
    """
    from .recommend import parse_count, recommend

    _registry()
    if top < 1:
        raise UsageError("--top must be at least 1")
    size = parse_count(data_size)
    recs = recommend(task, data_size=size, compute=compute,
                     max_params=parse_count(max_params), top=top)
    if as_json:
        return _json([r.to_dict() for r in recs])
    if not recs:
        print("No model fits these limits; raise --max-params or the compute budget.",
              file=sys.stderr)
        return
    _table(["RANK", "MODEL", "PARAMS", "TECHNIQUE", "WHY"],
           [[str(i + 1), r.name, human_count(r.params), r.technique, "; ".join(r.reasons)]
            for i, r in enumerate(recs)])


def _quiet_library_warnings() -> None:
    """Hide deprecation chatter that libraries print at import (not the user's concern)."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated",
                            category=FutureWarning)


def _parse_kwargs(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--kwarg '{pair}' must look like KEY=VALUE (e.g. num_classes=5)")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _check_writable_dir(path: Path) -> None:
    """Fail early when ``path`` cannot become a directory (a file in the way, no parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"--save {path}: '{probe}' is not a directory; choose another path")
    if not os.access(probe, os.W_OK):
        raise UsageError(f"--save {path}: '{probe}' is not writable; choose another path")


@app.command("get")
@handles_errors
def get_cmd(
    name: Annotated[str, typer.Argument(
        help="NAME, NAME.TAG, a saved model DIR, or hf-hub:ORG/REPO.")],
    save: Annotated[Path | None, typer.Option(
        "--save", help="Write model.safetensors + config.json to this directory.",
        metavar="DIR")] = None,
    kwarg: Annotated[list[str] | None, typer.Option(
        "--kwarg", "-k", help="Builder argument KEY=VALUE (repeatable).",
        metavar="KEY=VALUE")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a model (with weights for NAME.TAG) and summarise one forward pass.

    Examples: zoo get lenet5   zoo get lenet5.digits --save out/lenet   zoo get out/lenet
    """
    from . import build
    from .api import HUB_PREFIX, _hub_snapshot, _looks_like_dir

    heavy()
    _quiet_library_warnings()
    kwargs = _parse_kwargs(kwarg or [])
    if save is not None:
        _check_writable_dir(save)       # before building, which can take a while
    reg = _registry()
    args = None
    if name.startswith(HUB_PREFIX) or _looks_like_dir(name):
        if save is not None or kwargs:
            raise UsageError(f"{name} is a saved model: it is rebuilt from its config, so "
                             "--save and --kwarg do not apply")
        directory = _hub_snapshot(name[len(HUB_PREFIX):]) if name.startswith(HUB_PREFIX) \
            else Path(name)
        model = build.load_dir(directory)
        cfg = build.read_config(directory)
        known = cfg.get("name") in reg
        spec, tag = (reg.spec(cfg["name"]), cfg.get("tag")) if known else (None, None)
        if spec is None and cfg.get("input"):
            from .catalog import _input

            args = (build.tensor_for(_input(cfg["input"])),)
        label, weights = name, f"{name} (saved)"
    else:
        spec, tag = reg.resolve(name)
        model = build.build(spec, tag, **kwargs)
        label = spec.name + (f".{tag}" if tag else "")
        weights = spec.pretrained[tag].source if tag else "random"
    summary = build.summarize(model, spec, tag, args=args)
    summary["name"] = label
    summary["weights"] = weights
    if save is not None:
        try:
            out = build.save(model, save, spec=spec, tag=tag,
                             kwargs=build.merged_kwargs(spec, tag, kwargs))
        except OSError as e:
            raise UsageError(f"--save {save}: cannot write there ({e.strerror or e}); "
                             "choose a writable directory") from None
        summary["saved_to"] = str(out)
    if as_json:
        return _json(summary)
    rows = [["module", summary["module"]],
            ["weights", summary["weights"]],
            ["params", f"{summary['params']:,}"],
            ["trainable", f"{summary['trainable_params']:,}"]]
    if "gflops" in summary:
        rows += [["input", str(summary["input_shape"])],
                 ["output", str(summary["output_shape"])],
                 ["gflops", f"{summary['gflops']:.4g}"]]
    if save is not None:
        rows.append(["saved to", summary["saved_to"]])
    _table(["FIELD", label], rows)


@app.command("plugins")
@handles_errors
def plugins_cmd(as_json: JsonOpt = False) -> None:
    """List plugins: version, where from, models added, errors.

    Examples: zoo plugins   ZOO_DISABLE_PLUGINS=broken zoo plugins --json
    """
    from .plugin_loader import get_plugins

    _registry()
    infos = list(get_plugins().infos.values())
    if as_json:
        return _json([i.to_dict() for i in infos])
    rows = []
    for i in infos:
        rows.append([i.name, i.version or "-", i.source + (f" ({i.distribution})"
                     if i.distribution and i.source != "built-in" else ""),
                     _few_names(i.models),
                     "-" if i.import_seconds is None else f"{i.import_seconds:.2f}s",
                     i.status, " | ".join(i.errors) or "-"])
    _table(["PLUGIN", "VERSION", "SOURCE", "MODELS", "IMPORT", "STATUS", "ERRORS"], rows)


# -- the fast path ---------------------------------------------------------------------
#
# typer 0.29 coerces every non-bool parameter through a pydantic TypeAdapter, and importing
# pydantic to do so costs more than everything `zoo list` itself does (measured: ~90 ms
# of a 0.27 s run). The listing commands are the ones people run all day and scripts run
# in loops, so their plain invocations (and zoo recommend's) are parsed here and handed to
# the very same command functions. Anything this parser does not know (help, a typo, an
# unknown option) goes to typer, which owns help, usage errors and every other command.

_FAST_COMMANDS: dict[str, tuple[str, dict[str, str], dict[str, str], str | None]] = {
    # command: (function name, value options, flags, positional: "many" | "one" | None)
    "list": ("list_cmd", {"--family": "family", "-f": "family", "--task": "task",
                          "-t": "task"},
             {"--pretrained": "pretrained", "-p": "pretrained", "--namespaces": "namespaces",
              "-n": "namespaces", "--json": "as_json"}, "many"),
    "info": ("info_cmd", {}, {"--json": "as_json"}, "one"),
    "plugins": ("plugins_cmd", {}, {"--json": "as_json"}, None),
    # --top (an int) goes to typer; everything else here is text
    "recommend": ("recommend_cmd", {"--task": "task", "-t": "task", "--data-size": "data_size",
                                    "-d": "data_size", "--compute": "compute",
                                    "--max-params": "max_params"},
                  {"--json": "as_json"}, None),
}
_FAST_REQUIRED = {"recommend_cmd": ("task",)}


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
        if arg in flags and flags[arg] not in kwargs:
            kwargs[flags[arg]] = True
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
    try:
        globals()[fn](**kwargs)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    return True


def main() -> None:
    """Console-script entry point."""
    # Start-up creates many long-lived objects (imports, catalog records) and no garbage
    # cycles worth collecting; the cyclic GC only slows it. Commands that build models
    # turn it back on (see ``heavy``).
    gc.disable()
    if not _run_fast(sys.argv[1:]):
        app()


def heavy() -> None:
    """Re-enable the GC before a command builds models or serves requests."""
    gc.enable()


def _register_extra_commands() -> None:
    from importlib import import_module

    from .cli_extra import COMMAND_MODULES

    for mod in COMMAND_MODULES:
        try:
            import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a module that exists but is broken must not hide
                raise


_register_extra_commands()

if __name__ == "__main__":
    main()
