"""``zoo publish``: push a model (and optionally its Gradio Space) to the Hugging Face Hub."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.app import JsonOpt, app, handles_errors
from zoo.cli.render import _json


def _size(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


@app.command("publish")
@handles_errors
def publish_cmd(
    model: Annotated[str, typer.Argument(
        help="NAME[.TAG] from the catalog, or a saved model DIR (zoo get --save, zoo finetune).",
        show_default=False)],
    repo: Annotated[str, typer.Option(
        "--repo", "-r", help="The Hub repo to publish to, ORG/NAME.", metavar="ORG/NAME",
        show_default=False)],
    private: Annotated[bool, typer.Option(
        "--private", help="Create the repo private (an existing repo keeps its setting).")
    ] = False,
    revision: Annotated[str | None, typer.Option(
        "--revision", help="Publish to this branch (created from main if missing).",
        metavar="BRANCH")] = None,
    space: Annotated[bool, typer.Option(
        "--space", help="Also publish a Gradio Space ORG/NAME that serves the model.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Write the repo folder locally and show what would be pushed.")
    ] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Keep the repo folder here (default for --dry-run: ./hub-NAME).",
        metavar="DIR")] = None,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="Commit message.")] = None,
    untrained: Annotated[bool, typer.Option(
        "--untrained", help="Allow random weights (an architecture); the card marks them.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Publish a model to the Hugging Face Hub; load it back with zoo get hf-hub:ORG/NAME.

    The repo is in the layout of the library behind the model (transformers, timm, or
    PyTorch config.json + model.safetensors), with zoo's metadata in zoo.json. The token
    comes from HF_TOKEN or 'hf auth login'; HF_ENDPOINT picks the Hub.

    Examples:
      zoo publish lenet5.digits --repo me/lenet5-digits --dry-run
      zoo publish lenet5.digits --repo me/lenet5-digits --space
      zoo publish runs/finetuned --repo me/digits-ft --revision v2
    """
    from zoo.publish import publish

    if revision is not None and space:
        print("Note: the Space loads the model from branch "
              f"'{revision}'.", file=sys.stderr)
    r = publish(model, repo, private=private, revision=revision, space=space,
                dry_run=dry_run, out=out, message=message, untrained=untrained)
    if as_json:
        return _json({"repo": r.repo, "url": r.url, "revision": r.revision, "commit": r.commit,
                      "changed": r.changed, "dry_run": dry_run,
                      "folder": str(r.folder) if r.folder else None,
                      "files": [{"path": p, "size": n} for p, n in r.files],
                      "space_url": r.space_url, "space_commit": r.space_commit})
    if dry_run:
        total = sum(n for _, n in r.files)
        print(f"Dry run: would push {len(r.files)} files ({_size(total)}) to {r.repo}"
              f"@{r.revision}; folder written to {r.folder}")
        width = max(len(p) for p, _ in r.files)
        for p, n in r.files:
            print(f"  {p.ljust(width)}  {_size(n):>9}")
        print("README.md begins:")
        print("\n".join("  " + line for line in r.card_head.splitlines()))
        print(f"Publish for real without --dry-run; load back with: zoo get hf-hub:{r.repo}"
              + (f"@{r.revision}" if r.revision != "main" else ""))
        return
    ref = r.repo + (f"@{r.revision}" if r.revision != "main" else "")
    if r.changed:
        print(f"Published {model} to {r.url} (branch {r.revision}, commit {r.commit[:8]})")
    else:
        print(f"Unchanged: {r.url} (branch {r.revision}) already holds this model at commit "
              f"{r.commit[:8]}; nothing pushed")
    if r.space_url:
        print(f"Space: {r.space_url} (commit {(r.space_commit or '')[:8]})")
    print(f"Load it with: zoo get hf-hub:{ref}")
