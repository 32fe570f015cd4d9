"""Build and serve the Gradio app of one model: ``zoo demo NAME[.TAG]`` or ``zoo demo DIR``.

    >>> from zoo.demos.app import build_demo
    >>> demo = build_demo("lenet5.digits")      # a gr.Blocks, queue configured
    >>> demo.launch(server_name="127.0.0.1")

The API endpoint is ``/predict`` (gradio_client: ``client.predict(..., api_name="/predict")``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from zoo.errors import UsageError

from . import serving
from .base import Adapter, concurrency, gradio
from .targets import Target, resolve

MAX_FILE_SIZE = "25mb"


def adapter_for(target: Target) -> Adapter:
    """An unloaded adapter for the target's demo task; one clear line if there is none.

    The model's task adapter names it (:mod:`zoo.tasks`), else the ``zoo_demo_adapter``
    hook is asked for the task.
    """
    from zoo.tasks import demo_for

    from .adapters import ADAPTERS

    adapter = demo_for(target.spec, target.task)
    if adapter is None:
        raise UsageError(f"{target.label}: no demo for task '{target.task}'; demo tasks are "
                         + ", ".join(sorted(ADAPTERS))
                         + " (a plugin adds one with the zoo_task_adapter or "
                           "zoo_demo_adapter hook)")
    return adapter


def make_adapter(name_or_dir: Any, *, lazy: bool = False) -> Adapter:
    """Resolve ``NAME[.TAG]`` / a saved directory and return its loaded adapter.

    Raises:
        UnknownModelError: no such model (one line with suggestions).
        UsageError: the model's task has no demo.
    """
    target = resolve(name_or_dir)
    return adapter_for(target).load(target, lazy=lazy)


def build_demo(name_or_dir: Any, *, lazy: bool = False):
    """A ready-to-launch ``gr.Blocks`` for one model, queue set (``/predict`` endpoint)."""
    adapter = name_or_dir if isinstance(name_or_dir, Adapter) else make_adapter(
        name_or_dir, lazy=lazy)
    demo = adapter.interface(api_name="predict")
    demo.queue(default_concurrency_limit=concurrency())
    demo.zoo_adapter = adapter   # for tests and the gallery: what this app serves
    return demo


def launch(demo: Any, *, host: str = "127.0.0.1", port: int | None = None,
           share: bool = False, block: bool = True, quiet: bool = True) -> str:
    """Start serving ``demo``; return its local URL (blocks until Ctrl-C when ``block``).

    JSON request bodies are capped (:mod:`zoo.demos.serving`); uploads are capped at
    :data:`MAX_FILE_SIZE` and kept in a folder only this user can read.
    """
    _app, url, share_url = demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=True,
        quiet=quiet, show_error=False, max_file_size=MAX_FILE_SIZE, ssr_mode=False,
        footer_links=["api"], app_kwargs=serving.app_kwargs())
    print(f"Serving on {url}" + (f"  (public: {share_url})" if share_url else ""), flush=True)
    if block:
        with serving.exit_on_sigterm():
            try:
                demo.block_thread()
            finally:
                demo.close(verbose=False)
    return url


def main(argv: list[str] | None = None) -> None:
    """``python -m zoo.demos.app NAME_OR_DIR`` (what an exported Space's app.py does)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m zoo.demos.app NAME[.TAG]|DIR", file=sys.stderr)
        raise SystemExit(2)
    gradio()
    demo = build_demo(args[0])
    launch(demo, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           port=int(os.environ["GRADIO_SERVER_PORT"]) if os.environ.get("GRADIO_SERVER_PORT")
           else None)


if __name__ == "__main__":
    main()
