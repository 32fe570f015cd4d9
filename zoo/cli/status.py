"""Status lines on stderr: what a command is doing while the user waits.

Any wait over ~2 s (importing torch, building a large model, importing timm to list its
models, loading fine-tuning data, starting Gradio) says what it is doing, one line, just
before it starts. Like git's progress, the lines show when stderr is a terminal, so
pipes, logs and scripts see only data and errors; ``ZOO_PROGRESS=1`` shows them
everywhere, ``ZOO_PROGRESS=0`` nowhere. No typer here: the fast path uses it too.
"""

from __future__ import annotations

import os
import sys

PROGRESS_ENV = "ZOO_PROGRESS"


def enabled() -> bool:
    """Whether status lines are shown (``ZOO_PROGRESS``, else: stderr is a terminal)."""
    value = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):   # replaced or closed stderr
        return False


def status(message: str) -> None:
    """Say on stderr what the command is about to spend time on (``"Building vgg16..."``)."""
    if enabled():
        print(message, file=sys.stderr, flush=True)


def namespace_wait(reg, names: list[str] | tuple[str, ...], *, listing: bool = False) -> None:
    """Announce the library import that looking up ``PREFIX/...`` names costs (timm: ~7 s),
    once per namespace, unless the registry knows the name already."""
    seen: set[str] = set()
    for name in names:
        prefix, slash, _ = name.partition("/")
        prefix = prefix.lower()
        if (not slash or prefix in seen or prefix not in reg.namespaces
                or name.split(".")[0].lower() in reg):
            continue
        seen.add(prefix)
        what = f"Listing {prefix}/ models" if listing else f"Looking up {name}"
        status(f"{what} (importing {prefix} takes a few seconds)...")
