"""What a demo serves: a catalog model ``NAME[.TAG]`` or a saved model directory.

Resolving a target reads the catalog or ``config.json`` only (no torch, no gradio), so
``zoo demo`` can refuse an unknown model or an undemo-able task in a fraction of a
second. The model itself is built by :meth:`Target.build`, once, when a demo needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.registry.spec import (
    NAME_RE,
    TAG_RE,
    FrozenDict,
    InputSpec,
    ModelSpec,
    PretrainedSpec,
    freeze,
)


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
            return build.load_dir(self.directory)
        if self.spec.builder_path.startswith("<"):
            raise UsageError(f"{self.label}: no importable builder")
        return build.build(self.spec, self.tag)


def resolve(name_or_dir: str | os.PathLike[str] | Target) -> Target:
    """A :class:`Target` for ``NAME[.TAG]`` or a directory holding ``config.json``.

    Raises:
        UnknownModelError: no such model or tag (one line, with close names).
        UsageError: a directory that is not a saved zoo model.
    """
    if isinstance(name_or_dir, Target):
        return name_or_dir
    from zoo.api import HUB_PREFIX, _hub_snapshot, _looks_like_dir
    from zoo.registry import default_registry

    text = os.fspath(name_or_dir)
    if text.startswith(HUB_PREFIX):
        # a Hub repo holding a saved model directory (what 'zoo space --hub-model' points at)
        target = _from_directory(_hub_snapshot(text[len(HUB_PREFIX):]))
        return replace(target, label=text)
    if _looks_like_dir(text):
        return _from_directory(Path(text))
    # NAME is the architecture (random weights), as in zoo.get and zoo get: no tag is
    # picked for the user. The CLI refuses to serve one unless asked (require_trained).
    spec, tag = default_registry().resolve(text)
    return Target(label=text, spec=spec, tag=tag)


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


def _from_directory(d: Path) -> Target:
    """A Target for a saved directory: its catalog entry (or, for a model no installed
    catalog declares, a description made from its config, which cannot be built), with the
    directory's labels and input spec, each checked as :func:`zoo.loading.build.load_dir`
    checks them. Building goes through ``load_dir``, which checks everything else."""
    from zoo.loading.build import CONFIG_FILE, WEIGHTS_FILE, read_config
    from zoo.loading.trust import saved_input, saved_labels
    from zoo.registry import default_registry

    if not d.is_dir():
        raise UsageError(f"{d}: no such directory; give NAME[.TAG] or a directory made by "
                         "'zoo get NAME --save DIR'")
    config = read_config(d)
    where = str(d / CONFIG_FILE)
    reg = default_registry()
    raw_name, raw_tag = config.get("name"), config.get("tag")
    known = isinstance(raw_name, str) and raw_name in reg
    tag = raw_tag if isinstance(raw_tag, str) and TAG_RE.match(raw_tag) else "saved"
    inp = saved_input(config, where)
    labels = saved_labels(config, where)
    weights = config.get("weights") if isinstance(config.get("weights"), str) else WEIGHTS_FILE
    demo = _word(config.get("demo"))
    license_ = config.get("license")            # data: quoted or validated where written
    pre = PretrainedSpec(
        tag=tag, source=f"file:{d / weights}",
        sha256=config.get("sha256") if isinstance(config.get("sha256"), str) else None,
        kwargs=freeze(config["kwargs"]), labels=tuple(labels) if labels else None, input=inp,
        license=license_ if isinstance(license_, str) else None)
    if known:
        base = reg.spec(raw_name)
        spec = replace(base, pretrained=FrozenDict({tag: pre}), demo=demo or base.demo,
                       input=inp or base.input)
        name = base.name
    else:
        task = demo or _word(config.get("task"))
        if not task:
            raise UsageError(f"{where}: names no task or demo; the directory is damaged or "
                             "was made by an old zoo")
        name = raw_name.lower() if isinstance(raw_name, str) and NAME_RE.match(
            raw_name.lower()) else "unknown"
        builder = config["builder"] if isinstance(config["builder"], str) else "<unknown>"
        spec = ModelSpec(name=name, family=_word(config.get("family")) or "unknown",
                         task=_word(config.get("task")) or task, demo=demo, builder=builder,
                         kwargs=freeze(config["kwargs"]), input=inp,
                         license=license_ if isinstance(license_, str) else None,
                         pretrained=FrozenDict({tag: pre}),
                         plugin=config.get("plugin") if isinstance(config.get("plugin"), str)
                         else None)
    # the model's own name reads better in titles (an exported Space's path means nothing)
    label = f"{name}.{raw_tag}" if name != "unknown" and tag == raw_tag else str(d)
    return Target(label=label, spec=spec, tag=tag, directory=d)


def _word(value: object) -> str | None:
    """A task, demo or family name from a config: a lowercase word, else ``None``."""
    return value if isinstance(value, str) and TAG_RE.match(value) else None


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
