"""``zoo plugins``: every plugin, its version, origin, models, import time and errors."""

from __future__ import annotations

from typing import Annotated

from zoo.cli.base import JSON_HELP, _registry, command, handles_errors, typer
from zoo.cli.render import _json, _table


def _few_names(names: list[str], n: int = 3) -> str:
    if not names:
        return "0"
    shown = ", ".join(sorted(names)[:n])
    return f"{len(names)}: {shown}" + (", ..." if len(names) > n else "")


@command("plugins")
@handles_errors
def plugins_cmd(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List plugins: version, where from, models added, errors.

    A broken plugin is skipped and shown here. ZOO_DISABLE_PLUGINS=NAME,... never loads
    those; ZOO_PLUGINS=NAME,... loads only those third-party plugins.

    Examples:
      zoo plugins
      ZOO_DISABLE_PLUGINS=broken zoo plugins --json
    """
    from zoo.registry.plugins import get_plugins

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
