"""Export a model's demo as a Hugging Face Space folder: ``zoo space NAME[.TAG] --out DIR``.

The folder builds on Spaces from its own files (zoo is not on PyPI): ``app.py`` (a few
lines around :func:`zoo.demos.app.build_demo`), ``README.md`` with the Spaces front
matter, ``requirements.txt`` (PyPI names only), ``zoo/`` with zoo's code, the model's
plugin if it has one, and the model: served by name from the carried code when its
weights ship there, else a ``model/`` directory (a saved model's own files, or one
written by :func:`zoo.loading.build.save`), or with ``hub_model`` a Hub repo read at start-up.
:mod:`zoo.demos.space_bundle` says what is carried and how requirements are found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

from . import space_bundle as bundle
from .targets import Target, resolve

MODEL_DIR = bundle.MODEL_DIR

APP_TEMPLATE = '''"""Gradio demo of {label}, exported by `zoo space` (zoo {zoo_version}).

Run it with `pip install gradio=={gradio} -r requirements.txt && python app.py`; on Hugging
Face Spaces it starts by itself. zoo's code is carried in ./zoo, beside this file.
"""

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # the zoo (and plugin) carried here, before any installed one

from zoo.demos.app import build_demo, launch  # noqa: E402

MODEL = {model_expr}

demo = build_demo(MODEL)

if __name__ == "__main__":
    # Spaces set GRADIO_SERVER_NAME=0.0.0.0; locally this serves 127.0.0.1 only.
    port = os.environ.get("GRADIO_SERVER_PORT")
    launch(demo, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           port=int(port) if port else None)
'''

REQUIREMENTS_HEAD = """\
# Spaces install gradio first (sdk_version in README.md), then these, from PyPI, with only
# this file visible. zoo's code is not among them: it is carried in ./zoo (the distribution
# zoo-models is not on PyPI). Found by loading the model once from this folder.
"""


def _gradio_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradio")
    except PackageNotFoundError:
        raise UsageError("gradio is not installed; pip install gradio") from None


_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")


def _yaml(value: Any) -> str:
    """A YAML double-quoted scalar: JSON's string syntax, which YAML reads the same.

    Line breaks and other unprintable characters become spaces first, so no value from a
    catalog or a model directory can end its line and start a key of its own.
    """
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return json.dumps(text, ensure_ascii=False)


def _license(target: Target) -> str:
    """A licence identifier as the Hub spells them (``mit``, ``apache-2.0``), else other."""
    lic = str(target.license or "other").strip().lower()
    return lic if _LICENSE.match(lic) else "other"


def front_matter(target: Target, *, models: list[str]) -> str:
    """The README's YAML header Spaces read (sdk, sdk_version, app_file, licence...).

    Every value is quoted (:func:`_yaml`): a licence or description cannot add keys.
    """
    desc = (target.spec.description or f"{target.task} demo")[:60]
    lines = [
        "---",
        f"title: {_yaml(_title(target)[:60])}",
        f"emoji: {_yaml('🦓')}",
        "colorFrom: green",
        "colorTo: gray",
        "sdk: gradio",
        f"sdk_version: {_yaml(_gradio_version())}",
        "app_file: app.py",
        f"python_version: {_yaml(f'{sys.version_info.major}.{sys.version_info.minor}')}",
        f"license: {_yaml(_license(target))}",
        f"short_description: {_yaml(desc)}",
        "pinned: false",
        "models:" + ("" if models else " []"),
        *[f"  - {_yaml(m)}" for m in models],
        "tags:",
        f"  - {_yaml('zoo')}",
        f"  - {_yaml(target.task)}",
        "---",
    ]
    return "\n".join(lines) + "\n"


def _title(target: Target) -> str:
    tag = target.tag if target.tag and target.tag != "saved" else None
    return target.spec.name + (f".{tag}" if tag else "")


def _readme(target: Target, *, models: list[str], weights: str, plugin: str | None) -> str:
    spec = target.spec
    pre = spec.pretrained.get(target.tag) if target.tag else None
    body = [f"# {_title(target)}", "", spec.description or "", ""]
    if spec.paper:
        body.append(f"Paper: {spec.paper}" + (f" <{spec.paper_url}>" if spec.paper_url else ""))
    if pre is not None and pre.metrics:
        body.append("Metrics: " + ", ".join(f"{k} = {v:g}" for k, v in pre.metrics.items())
                    + (f" ({pre.dataset})" if pre.dataset else ""))
    carried = "zoo's code is in `zoo/`" + (f", the plugin's beside it ({plugin})" if plugin
                                            else "")
    body += ["", f"Task: {target.task}. Weights: {weights}. {carried}.", "",
             f"Run locally: `pip install gradio=={_gradio_version()} -r requirements.txt "
             "&& python app.py`.", "Exported with `zoo space`."]
    return front_matter(target, models=models) + "\n" + "\n".join(body) + "\n"


def export_space(name_or_dir: str | os.PathLike[str] | Target, out: str | os.PathLike[str],
                 *, hub_model: str | None = None) -> Path:
    """Write a Space folder for ``NAME[.TAG]`` or a saved directory; return its path.

    The app is loaded once from the written folder before it is kept (that also finds
    its requirements), so a folder that is returned starts.

    Raises:
        UnknownModelError: no such model.
        UsageError: no demo for its task, ``out`` is a non-empty directory, the model's
            plugin is not installed, or the app does not load from the folder.
    """
    from zoo.atomic import write_dir

    from .app import adapter_for

    target = resolve(name_or_dir)
    adapter_for(target)          # refuse undemo-able tasks before writing anything
    dest = Path(out)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not empty; choose a new --out directory")
    if hub_model is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+(@[\w./-]+)?", hub_model):
        raise UsageError(f"--hub-model '{hub_model}' must look like ORG/NAME")
    plugin = bundle.plugin_of(target)
    try:
        with write_dir(dest) as tmp:
            _write_space(tmp, target, hub_model=hub_model, plugin=plugin)
    except OSError as e:
        raise UsageError(f"{dest}: cannot write there ({e.strerror or e}); "
                         "choose another --out directory") from None
    return dest


def _write_space(tmp: Path, target: Target, *, hub_model: str | None,
                 plugin: bundle.PluginBundle | None) -> None:
    """The Space's files: the carried code, the model (unless served by name or from the
    Hub), then app.py, requirements.txt and README.md once the app has loaded."""
    from zoo.version import __version__

    tops = {"zoo"} | ({plugin.top} if plugin else set())
    keep = None if hub_model else bundle.carried_files(target, tops)
    mode = "hub" if hub_model else ("name" if keep is not None else "dir")
    try:
        found = _carry(tmp, target, mode, keep or set(), plugin)
    except UsageError as e:
        if mode != "name":
            raise
        # Served by name, the app missed a file the carried packages hold: save the
        # model instead (a bigger Space, but one that starts).
        print(f"zoo: note: {target.label} is saved into the Space instead of being served "
              f"by name ({e})", file=sys.stderr)
        mode = "dir"
        found = _carry(tmp, target, mode, set(), plugin)
    if found.get("example_error"):
        print(f"zoo: warning: the demo's first example failed when the Space was checked "
              f"({found['example_error'][:200]}); requirements.txt may miss what it needs",
              file=sys.stderr)
    used = bundle.used_distributions(found)
    reqs = bundle.requirements(used, plugin=plugin,
                               always=("huggingface-hub",) if mode == "hub" else ())
    if mode == "hub":
        assert hub_model is not None
        shutil.rmtree(tmp / MODEL_DIR)        # only loaded for the check: the Hub has it
        repo = hub_model.split("@")[0]
        model_expr, models = repr(f"hf-hub:{hub_model}"), [repo]
        weights = f"downloaded from the Hub repo {repo} at start-up"
    elif mode == "name":
        model_expr, models = repr(_title(target)), []
        weights = "shipped in the carried package, loaded by name"
    else:
        model_expr = f"os.path.join(HERE, {MODEL_DIR!r})"
        models = []
        src = target.spec.pretrained[target.tag].source if target.tag else "random"
        if src.startswith("hf-hub:"):
            repo_path = src[len("hf-hub:"):].split("@")[0].split("/")
            models = ["/".join(repo_path[:2])]
        weights = f"copied into {MODEL_DIR}/ (model.safetensors + config.json)"
    label = re.sub(r"[^\w.\-/ ]", "_", target.label)[:80]
    (tmp / "app.py").write_text(APP_TEMPLATE.format(
        label=label, zoo_version=__version__, gradio=_gradio_version(),
        model_expr=model_expr))
    (tmp / "requirements.txt").write_text(REQUIREMENTS_HEAD + "".join(f"{r}\n" for r in reqs))
    (tmp / "README.md").write_text(_readme(target, models=models, weights=weights,
                                           plugin=plugin.distribution if plugin else None))


def _carry(tmp: Path, target: Target, mode: str, keep: set[Path],
           plugin: bundle.PluginBundle | None) -> dict[str, Any]:
    """Write the carried packages and the model into ``tmp`` (emptied first), then load
    the model from there; return what the load read (:func:`space_bundle.probe`)."""
    from zoo.loading import build

    for child in list(tmp.iterdir()):
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for package in bundle.ZOO_PACKAGES:
        bundle.copy_package(package, tmp, keep=keep)
    if plugin is not None:
        bundle.copy_package(plugin.top, tmp, keep=keep)
        bundle.write_dist_info(tmp, plugin)
    carried = {"zoo"} | ({plugin.top} if plugin else set())
    if mode == "name":
        return bundle.probe(tmp, _title(target), carried=carried, plugin=plugin)
    if target.directory is not None:
        bundle.copy_model_dir(target.directory, tmp / MODEL_DIR)
    else:
        build.save(target.build(), tmp / MODEL_DIR, spec=target.spec, tag=target.tag)
    return bundle.probe(tmp, str(tmp / MODEL_DIR), carried=carried, plugin=plugin)


def read_front_matter(readme: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML header of a Space README as a dict, read as the Hub reads it (YAML)."""
    import yaml

    text = Path(readme).read_text()
    if not text.startswith("---\n"):
        return {}
    head = text[4:].split("\n---\n", 1)[0]
    data = yaml.safe_load(head)
    return data if isinstance(data, dict) else {}
