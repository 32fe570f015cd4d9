"""One app with a tab per demo-able trained model: ``zoo demo --gallery [PATTERN]``.

Nothing is built up front: each tab's model is built on its first request (a lock makes
concurrent first requests build it once), so the gallery starts as fast as one demo.
Each tab has its own endpoint, ``/predict_<name>_<tag>``.
"""

from __future__ import annotations

import sys
from typing import Any

from zoo.errors import UsageError

from .base import Adapter, concurrency, gradio
from .serving import DELETE_CACHE
from .targets import Target, trained_targets


def gallery_adapters(patterns: list[str] | tuple[str, ...] = (), *,
                     remote: bool = False) -> list[Adapter]:
    """Lazily loaded adapters of every trained model matching ``patterns`` with a demo task.

    Only models whose weights are on this machine (shipped ``package:`` / ``file:``
    sources) are included unless ``remote``: a gallery must work offline.

    Raises:
        UsageError: nothing matches (the message says what exists).
    """
    from .app import adapter_for

    out = []
    skipped: list[Target] = []
    for target in trained_targets(patterns):
        if not remote and _is_remote(target):
            continue
        missing = _missing_weights(target)
        if missing:
            print(f"zoo: gallery: skipping {target.label}: {missing}", file=sys.stderr)
            continue
        try:
            out.append(adapter_for(target).load(target, lazy=True))
        except UsageError:
            skipped.append(target)      # no demo for its task, or its input is unusable
    if not out:
        what = f" matching {' '.join(patterns)}" if patterns else ""
        raise UsageError(f"no demo-able trained models{what}"
                         + ("" if remote else " with weights on this machine (add --remote "
                            "for those that download)")
                         + "; see 'zoo list --pretrained'"
                         + (f" (skipped, no demo for their task: "
                            f"{', '.join(t.label for t in skipped)})" if skipped else ""))
    return out


def _is_remote(target: Target) -> bool:
    return target.spec.pretrained[target.tag].source.partition(":")[0] not in ("package", "file")


def _missing_weights(target: Target) -> str | None:
    """Why a shipped (``package:``/``file:``) weights file is absent, else ``None``.

    Remote sources are not checked here (that would download them); they load, or fail
    with one clear line, on first use.
    """
    from pathlib import Path

    from zoo.errors import WeightsError
    from zoo.loading.paths import resolve_package_path

    source = target.spec.pretrained[target.tag].source
    scheme, _, rest = source.partition(":")
    try:
        if scheme == "package":
            resolve_package_path(rest)
        elif scheme == "file" and not Path(rest).expanduser().is_file():
            return f"no weights file {rest}"
    except WeightsError as e:
        return str(e)
    return None


def build_gallery(patterns: list[str] | tuple[str, ...] = (),
                  adapters: list[Adapter] | None = None) -> Any:
    """A ``gr.Blocks`` with one tab per model, queue set; models load on first use."""
    gr = gradio()
    adapters = adapters if adapters is not None else gallery_adapters(patterns)
    with gr.Blocks(title="zoo gallery", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(f"# zoo gallery\n{len(adapters)} trained models. Each loads on first use.")
        with gr.Tabs():
            for a in adapters:
                with gr.Tab(a.target.label):
                    a.interface(api_name=f"predict_{a.target.slug}").render()
    demo.queue(default_concurrency_limit=concurrency())
    demo.zoo_adapters = adapters
    return demo
