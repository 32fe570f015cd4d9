"""How the CLI prints: aligned tables (:mod:`zoo.cli.table`), JSON, sizes, choice checks.

No typer here: the fast path (:mod:`zoo.cli.fast`) renders through these too.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from zoo.errors import UsageError


def human_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _table(columns: list[str], rows: list[list[str]],
           floors: dict[str, int] | None = None) -> None:
    """Aligned columns; bold header and wrapping to the terminal's width on a terminal
    (``floors``: see :func:`zoo.cli.table.render`)."""
    from zoo.cli.table import render, use_colour

    width = None
    if sys.stdout.isatty():
        import shutil

        width = shutil.get_terminal_size().columns
    sys.stdout.write(render(columns, rows, colour=use_colour(), width=width, floors=floors))


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
