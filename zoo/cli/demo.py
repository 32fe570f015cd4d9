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
from zoo.cli.status import status
from zoo.errors import UsageError

RandomOpt = Annotated[bool, typer.Option(
    "--random-weights", help="Allow an architecture NAME without trained weights (its "
    "answers are noise: for trying the interface).")]


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
    random_weights: RandomOpt = False,
) -> None:
    """Serve a model's Gradio demo in the browser.

    NAME.TAG serves that trained model. A bare NAME is the architecture with random
    weights, as in 'zoo get NAME': it is refused (with the trained models to use)
    unless --random-weights is given.

    Examples:
      zoo demo lenet5.digits
      zoo demo out/my-finetune --port 8000
      zoo demo --gallery
      zoo demo --gallery '*.digits'
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
        status("Starting the Gradio app (importing gradio takes a few seconds)...")
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
        _check_weights(target, random_weights, "zoo demo")
        heavy()
        status(f"Loading {target.label} ({target.task})...")
        adapter.load(target)
        status("Starting the Gradio app...")
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
    random_weights: RandomOpt = False,
) -> None:
    """Export a model's demo as a Hugging Face Space folder that builds from its own files.

    The folder holds app.py, README.md, a requirements.txt of PyPI names, zoo's code and
    the model's.

    NAME.TAG exports that trained model; a bare NAME (random weights) is refused unless
    --random-weights is given, as for 'zoo demo'.

    Examples:
      zoo space lenet5.digits --out space/
      cd space && python app.py
    """
    _registry()
    from zoo.demos.space import export_space
    from zoo.demos.targets import resolve

    target = resolve(name)
    if hub_model is None:     # with --hub-model the weights come from that repo
        _check_weights(target, random_weights, "zoo space")
    heavy()
    status(f"Exporting {target.label} (writing the model and zoo's code, then checking that "
           "the app loads from the folder)...")
    path = export_space(target, out, hub_model=hub_model)
    print(str(path))
    _status(f"Run it: cd {path} && python app.py   (upload the folder to a Gradio Space "
            "to publish it)")


def _check_weights(target, random_weights: bool, command: str) -> None:
    """One rule for a bare NAME in get, demo and space: it is the architecture with random
    weights. demo and space refuse it unless asked, and say so when asked."""
    from zoo.demos.targets import require_trained

    if not random_weights:
        require_trained(target, command=command)
    elif target.tag is None and target.directory is None:
        _status(f"Note: {target.label} has random weights (--random-weights): its answers "
                "are noise")


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
