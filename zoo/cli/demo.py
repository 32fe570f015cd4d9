"""``zoo demo`` and ``zoo space``: serve a model's Gradio demo, or export it as a Space.

Importing this module costs nothing: gradio and torch load inside the commands, after
the model name has been checked (an unknown model fails in a fraction of a second).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.app import _registry, app, handles_errors, heavy
from zoo.errors import UsageError


@app.command("demo")
@handles_errors
def demo_cmd(
    name: Annotated[str | None, typer.Argument(
        help="NAME[.TAG] or a saved model DIR; with --gallery, a pattern ('*.digits').",
        show_default=False)] = None,
    gallery: Annotated[bool, typer.Option(
        "--gallery", "-g", help="One app with a tab per trained model (loaded on first use).")
    ] = False,
    port: Annotated[int | None, typer.Option(
        "--port", "-p", help="Port (default: 7860, or the next free one).")] = None,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on; 0.0.0.0 serves your network.")] = "127.0.0.1",
    share: Annotated[bool, typer.Option(
        "--share", help="Also open a temporary public gradio.live link.")] = False,
    remote: Annotated[bool, typer.Option(
        "--remote", help="With --gallery: also models whose weights download on first use.")
    ] = False,
) -> None:
    """Serve a model's Gradio demo in the browser.

    Examples: zoo demo lenet5.digits   zoo demo out/my-finetune --port 8000
    zoo demo --gallery   zoo demo --gallery '*.digits'
    """
    _registry()
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a port number (1-65535)")
    if gallery:
        from zoo.demos.gallery import gallery_adapters

        adapters = gallery_adapters([name] if name else [], remote=remote)
        heavy()
        _status(f"Gallery of {len(adapters)} models: "
                + ", ".join(a.target.label for a in adapters))
        from zoo.demos.gallery import build_gallery

        demo = build_gallery(adapters=adapters)
    else:
        if not name:
            raise UsageError("give a model: zoo demo NAME[.TAG] (or a DIR, or --gallery); "
                             "'zoo list --pretrained' shows the trained ones")
        from zoo.demos.app import adapter_for
        from zoo.demos.targets import resolve

        target = resolve(name)        # unknown names fail here, before any heavy import
        adapter = adapter_for(target)
        heavy()
        _status(f"Loading {target.label} ({target.task})...")
        adapter.load(target)
        from zoo.demos.app import build_demo

        demo = build_demo(adapter)
    from zoo.demos.app import launch

    launch(demo, host=host, port=port, share=share, block=True)


@app.command("space")
@handles_errors
def space_cmd(
    name: Annotated[str, typer.Argument(help="NAME[.TAG] or a saved model DIR.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Directory to write the Space into (new or empty).",
        metavar="DIR")],
    hub_model: Annotated[str | None, typer.Option(
        "--hub-model", help="Load weights from this Hub repo (ORG/NAME) instead of copying "
        "them into the Space.", metavar="ORG/NAME")] = None,
) -> None:
    """Export a model's demo as a Hugging Face Space folder that builds from its own files
    (app.py, README.md, requirements.txt of PyPI names, zoo's code and the model's).

    Examples: zoo space lenet5.digits --out space/   cd space && python app.py
    """
    _registry()
    from zoo.demos.space import export_space

    heavy()
    path = export_space(name, out, hub_model=hub_model)
    print(str(path))
    _status(f"Run it: cd {path} && python app.py   (upload the folder to a Gradio Space "
            "to publish it)")


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
