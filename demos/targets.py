"""What a demo serves: a catalog model ``NAME[.TAG]`` or a saved model directory.

Resolving a target reads the catalog or ``config.json`` only (no torch, no gradio), so
``zoo demo`` can refuse an unknown model or an undemo-able task in a fraction of a
second. The model itself is built by :meth:`Target.build`, once, when a demo needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.registry.spec import InputSpec, ModelSpec


@dataclass(frozen=True)
class Target:
    """One demo-able model: its spec (with the tag that carries labels and input) and origin.

    For a saved directory the spec is the catalog's (when the directory names a known
    model) with one synthetic tag holding the directory's own labels, input and kwargs,
    so task helpers read labels and input the same way for both.
    """

    label: str                      # what the user typed, for titles and messages
    spec: ModelSpec
    tag: str | None
    directory: Path | None = None

    @property
    def task(self) -> str:
        """The demo task (the catalog's ``demo``, else the model's task).

        An encoder whose tag carries class labels (``minilm.sentiment``) is a classifier:
        its demo is text classification, not similarity.
        """
        task = self.spec.demo_task_for(self.tag)
        if task == "feature-extraction" and self.labels:
            return "text-classification"
        return task

    @property
    def labels(self) -> tuple[str, ...] | None:
        if self.tag and self.spec.pretrained[self.tag].labels:
            return tuple(self.spec.pretrained[self.tag].labels)
        return None

    @property
    def input(self) -> InputSpec | None:
        return self.spec.input_for(self.tag)

    @property
    def kwargs(self) -> dict[str, Any]:
        from zoo.loading.build import merged_kwargs

        if self.directory is not None:
            return dict(self.spec.pretrained[self.tag].kwargs)
        return merged_kwargs(self.spec, self.tag, {})

    @property
    def license(self) -> str | None:
        pre = self.spec.pretrained.get(self.tag) if self.tag else None
        return (pre.license if pre and pre.license else None) or self.spec.license

    @property
    def slug(self) -> str:
        """A name safe for API endpoints and file names."""
        text = self.spec.name + (f"_{self.tag}" if self.tag else "")
        return "".join(c if c.isalnum() else "_" for c in text)

    def build(self):
        """Build the model with its weights (the slow part: imports torch)."""
        from zoo.loading import build

        if self.directory is not None:
            from zoo.loading.native_build import load_directory

            return load_directory(self.directory, self.label)
        if self.spec.builder_path.startswith("<"):
            raise UsageError(f"{self.label}: no importable builder")
        return build.build(self.spec, self.tag)


def resolve(name_or_dir: str | os.PathLike[str] | Target) -> Target:
    """A :class:`Target` for ``NAME[.TAG]``, a model directory or an ``hf-hub:`` repo.

    Directories and repos are read by :func:`zoo.api.resolve_ref` (zoo's layouts,
    transformers' and timm's), which takes the task and labels from the folder itself.
    NAME is the architecture (random weights), as in zoo.get and zoo get: no tag is
    picked for the user. The CLI refuses to serve one unless asked (require_trained).

    Raises:
        UnknownModelError: no such model or tag (one line, with close names).
        UsageError: a directory that is not a model zoo can read.
    """
    if isinstance(name_or_dir, Target):
        return name_or_dir
    from zoo.api import resolve_ref

    ref = resolve_ref(name_or_dir)
    return Target(label=ref.label, spec=ref.spec, tag=ref.tag, directory=ref.directory)


def require_trained(target: Target, *, command: str = "zoo demo") -> None:
    """Refuse a target with random weights (a bare architecture NAME): its answers are noise.

    The message names the trained models to use instead, or how to get one.

    Raises:
        UsageError: ``target`` is an architecture without weights.
    """
    if target.tag is not None or target.directory is not None:
        return
    spec = target.spec
    name = spec.name
    if spec.pretrained:
        tags = [f"{name}.{t}" for t in spec.pretrained]
        default = f"{name}.{spec.default_tag}" if spec.default_tag else tags[0]
        others = [t for t in tags if t != default]
        raise UsageError(f"'{name}' is the architecture, with random weights; serve a trained "
                         f"model: {command} {default}"
                         + (f" (also: {', '.join(others[:4])})" if others else "")
                         + ", or pass --random-weights to try it untrained")
    raise UsageError(f"'{name}' has no trained weights in the catalog, so its answers would be "
                     f"noise; fine-tune it first (zoo finetune {name} --data DATA --out DIR, "
                     f"then {command} DIR), or pass --random-weights to try it untrained")


def trained_targets(patterns: list[str] | tuple[str, ...] = ()) -> list[Target]:
    """Every trained model ``NAME.TAG`` in the catalog matching the shell patterns."""
    import fnmatch

    from zoo.registry import default_registry

    pats = [p.lower() for p in patterns]
    out = []
    for spec in sorted(default_registry(), key=lambda s: s.name):
        for tag in spec.pretrained:
            full = f"{spec.name}.{tag}"
            if pats and not any(fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(spec.name, p)
                                for p in pats):
                continue
            out.append(Target(label=full, spec=spec, tag=tag))
    return out
