"""What an exported Space carries so that it builds on Hugging Face Spaces from its own files.

Spaces build a Gradio Space in three steps: ``pip install gradio==SDK_VERSION``, then
``pip install -r requirements.txt`` with only that file visible, then the repository is
copied and ``python app.py`` runs in it. zoo is not on PyPI, so the Space carries it:

- ``zoo/``: zoo's code and catalog (of the trained weights zoo ships, only the ones the
  model needs), which ``app.py`` imports from its own folder;
- the model's plugin, if it comes from one: its package, and a minimal ``*.dist-info``
  holding its ``zoo`` entry point, so zoo finds it as it finds an installed plugin;
- ``model/``: a saved model's own files (config.json, the weights, the files config.json
  names), unless the app loads the model by name from the carried code or from the Hub;
- ``requirements.txt``: PyPI requirements only. They are found by loading the exported
  app's model once from the folder (a check that it works from its own files) and keeping
  those of zoo's and the plugin's declared requirements that their code imported or
  read ``package:`` files from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

from .targets import Target

MODEL_DIR = "model"
#: Weight files are copied only where the model needs them; everything else is small.
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".onnx", ".npz", ".gguf")
#: zoo's packages; an editable install maps the last two to other folders (package-dir).
ZOO_PACKAGES = ("zoo", "zoo.plugins", "zoo.demos")
#: Spaces install gradio themselves (``sdk_version``); listing it again could clash.
PROVIDED = ("gradio",)
PROBE_TIMEOUT = 600

_DIST_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.I)   # PEP 508
_EP_NAME = re.compile(r"^[\w.-]+$")
_EP_VALUE = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")


def zoo_distribution() -> str:
    """zoo's distribution name (the import name is ``zoo``; PyPI's ``zoo`` is another)."""
    from zoo.version import DISTRIBUTION

    return DISTRIBUTION


def valid_distribution(name: Any) -> str | None:
    """``name`` if it is a PEP 508 distribution name, else ``None``."""
    return name if isinstance(name, str) and _DIST_NAME.match(name) else None


# -- the model's plugin -----------------------------------------------------------------

@dataclass(frozen=True)
class PluginBundle:
    """An entry-point plugin to carry: its entry point and the package that holds it."""

    name: str           # entry-point name (the plugin's name)
    value: str          # entry-point value, "module" or "module:object"
    distribution: str
    version: str

    @property
    def top(self) -> str:
        return self.value.partition(":")[0].split(".")[0]


def plugin_of(target: Target) -> PluginBundle | None:
    """The entry-point plugin that defines the target's model, or ``None`` (zoo's own).

    Raises:
        UsageError: the model comes from a plugin that is not installed here (it cannot be
            carried into the Space), or whose metadata cannot be written safely.
    """
    from zoo.registry.plugins import BUILTIN_PLUGINS, get_plugins

    plugin = target.spec.plugin
    if not plugin or plugin in dict(BUILTIN_PLUGINS) or plugin.startswith("catalog:"):
        return None
    info = get_plugins().infos.get(plugin)
    if info is None or info.source != "entry point" or not info.loaded or info.failed:
        dist = None
        if target.directory is not None:
            try:
                cfg = json.loads((target.directory / "config.json").read_text())
                dist = valid_distribution(cfg.get("plugin_distribution"))
            except (OSError, ValueError, AttributeError):
                dist = None
        shown = plugin if _EP_NAME.match(plugin) else "?"
        raise UsageError(f"{target.label}: made by plugin '{shown}', which is not installed "
                         "here, so it cannot go into the Space; install it"
                         + (f" (pip install {dist})" if dist else "") + " and export again")
    from packaging.version import InvalidVersion, Version

    try:
        Version(info.version or "")
    except InvalidVersion:
        info_version = None
    else:
        info_version = info.version
    ok = (_EP_NAME.match(info.name) and _EP_VALUE.match(info.module)
          and valid_distribution(info.distribution) and info_version)
    if not ok:
        raise UsageError(f"{target.label}: plugin '{info.name}' has an entry point or "
                         "distribution metadata zoo cannot carry into a Space "
                         f"({info.distribution!r} {info.version!r}: {info.module!r})")
    top = info.module.partition(":")[0].split(".")[0]
    if top == "zoo":
        raise UsageError(f"plugin '{info.name}' lives inside zoo's own package ({info.module});"
                         " move it to a package of its own to export its models")
    return PluginBundle(info.name, info.module, str(info.distribution), str(info_version))


def write_dist_info(dest: Path, plugin: PluginBundle) -> Path:
    """A minimal ``NAME-VERSION.dist-info`` declaring the plugin's ``zoo`` entry point.

    ``importlib.metadata`` reads it from ``app.py``'s folder (first on ``sys.path``), so
    zoo discovers the carried plugin exactly as it discovers an installed one.
    """
    from packaging.utils import canonicalize_name

    folder = dest / (f"{canonicalize_name(plugin.distribution).replace('-', '_')}-"
                     f"{plugin.version}.dist-info")
    folder.mkdir()
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {plugin.distribution}\nVersion: {plugin.version}\n"
        "Summary: carried into this Space by zoo space (the code is beside it)\n")
    (folder / "entry_points.txt").write_text(f"[zoo]\n{plugin.name} = {plugin.value}\n")
    return folder


# -- carrying packages ------------------------------------------------------------------

def package_roots(name: str) -> list[Path]:
    """The folders of an importable package (found without importing it)."""
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UsageError(f"package '{name}' is not importable here; cannot carry it into "
                         "the Space")
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin)] if spec.origin else []


def package_file(location: str) -> Path | None:
    """``IMPORT_NAME/PATH`` (a ``package:`` URI without the scheme) -> the path, if it exists."""
    top, _, rel = location.partition("/")
    try:
        roots = package_roots(top)
    except UsageError:
        return None
    for root in roots:
        p = root / rel
        if root.is_dir() and p.exists():
            return p
    return None


def copy_package(name: str, dest: Path, *, keep: set[Path]) -> int:
    """Copy package ``name`` into ``dest`` (``dest/a/b`` for ``a.b``); return the bytes.

    Python files, catalogs and other small data go; ``__pycache__``, hidden files and
    weight files not in ``keep`` (resolved paths) stay behind. This is installed code,
    trusted like any import of it, so its own links (zoo's registry.toml) are read.
    """
    out_root = dest.joinpath(*name.split("."))
    total = 0
    for root in package_roots(name):
        if root.is_file():                       # a single-module plugin
            out_root.parent.mkdir(parents=True, exist_ok=True)
            target = out_root.with_suffix(root.suffix)
            shutil.copyfile(root, target)
            total += target.stat().st_size
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames
                                 if d != "__pycache__" and not d.startswith("."))
            for fname in sorted(filenames):
                src = Path(dirpath, fname)
                if fname.startswith(".") or fname.endswith((".pyc", ".pyo")):
                    continue
                real = src.resolve()
                if not real.is_file():
                    continue
                if fname.endswith(WEIGHT_SUFFIXES) and real not in keep:
                    continue
                target = out_root / src.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(real, target)
                total += target.stat().st_size
    return total


def carried_files(target: Target, tops: set[str]) -> set[Path] | None:
    """The shipped files a catalog model needs from the carried packages (``tops``), or
    ``None`` when it cannot be served by name from them (then it is saved to ``model/``).

    That is its weights (a ``package:`` source inside a carried package), the files its
    builder arguments name there, and those the weights file's own metadata names (a
    LoRA adapter names its base).
    """
    from zoo.loading.build import merged_kwargs

    if target.directory is not None or target.tag is None:
        return None
    spec = target.spec
    if not spec.plugin or spec.plugin.startswith("catalog:"):
        return None                              # a user's catalog does not travel
    source = spec.pretrained[target.tag].source
    if not source.startswith("package:") or source[8:].partition("/")[0] not in tops:
        return None
    weights = package_file(source[8:])
    if weights is None or not weights.is_file():
        return None
    names = [v for v in merged_kwargs(spec, target.tag, {}).values() if isinstance(v, str)]
    if weights.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(weights), "np") as fh:
                names += list((fh.metadata() or {}).values())
        except Exception:
            return None
    keep = {weights.resolve()}
    for value in names:
        if not value.startswith("package:") or value[8:].partition("/")[0] not in tops:
            continue
        p = package_file(value[8:])
        if p is None:
            return None
        keep |= {f.resolve() for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()}
    return keep


# -- a saved model's own files ----------------------------------------------------------

def copy_model_dir(src: Path, dest: Path) -> None:
    """Copy a saved model's own files: config.json, its weights, the files it names.

    Nothing else in the directory goes (checkpoints, metrics, whatever lies beside), and
    no path may lead out of it: a name with ``..``, an absolute one, or a symbolic link
    whose target lies outside is refused with one line, before anything is copied.
    """
    from zoo.loading.build import CONFIG_FILE, WEIGHTS_FILE, read_config

    base = src.resolve()
    config = read_config(src)
    files = config.get("files") or {}
    assets = config.get("assets") or {}
    if not isinstance(files, dict) or not isinstance(assets, dict):
        raise UsageError(f"{src / CONFIG_FILE}: 'files' and 'assets' must be tables; the "
                         "directory is damaged, save or fetch it again")
    named = [CONFIG_FILE, config.get("weights") or WEIGHTS_FILE, *files.values(), *assets]
    plan: dict[str, Path] = {}
    for rel in named:
        if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in Path(rel).parts:
            raise UsageError(f"{src / CONFIG_FILE}: names {rel!r}, not a relative path inside "
                             "the directory; the directory is damaged, save it again")
        real = (src / rel).resolve()
        if not real.is_dir():
            plan[Path(rel).as_posix()] = _inside(src / rel, base, src)
            continue
        _inside(src / rel, base, src, folder=True)
        for dirpath, dirnames, filenames in os.walk(real):      # links are not followed
            for d in dirnames:
                _inside(Path(dirpath, d), base, src, folder=True)
            for fname in filenames:
                p = Path(dirpath, fname)
                plan[(Path(rel) / p.relative_to(real)).as_posix()] = _inside(p, base, src)
    for rel, real in plan.items():
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real, out)


def _inside(path: Path, base: Path, src: Path, *, folder: bool = False) -> Path:
    """The real file (or folder) behind ``path``, which must lie inside ``base``."""
    real = path.resolve()
    if not real.is_relative_to(base):
        raise UsageError(f"{path}: leads outside the model directory {src} (a symbolic "
                         "link?); a Space carries only the model's own files")
    if not (real.is_dir() if folder else real.is_file()):
        raise UsageError(f"{path}: missing or not a regular file; the model directory is "
                         "damaged, save it again")
    return real


# -- requirements -----------------------------------------------------------------------

PROBE = r"""
import builtins, importlib, json, sys
carried, direct = set(sys.argv[3].split(",")), set()
def ours(module):
    return (module or "").split(".")[0] in carried
real_import, real_import_module = builtins.__import__, importlib.import_module
def traced_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and globals is not None and ours(globals.get("__name__")):
        direct.add(name.split(".")[0])
    return real_import(name, globals, locals, fromlist, level)
def traced_import_module(name, package=None):
    if not name.startswith(".") and ours(sys._getframe(1).f_globals.get("__name__")):
        direct.add(name.split(".")[0])
    return real_import_module(name, package)
builtins.__import__, importlib.import_module = traced_import, traced_import_module
import zoo.loading.paths as paths
resolve = paths.resolve_package_path
def traced_resolve(location, **kw):      # package: data, found without importing it
    direct.add(location.split("/")[0])
    return resolve(location, **kw)
paths.resolve_package_path = traced_resolve
from zoo.errors import ZooError
from zoo.demos.app import make_adapter
try:
    adapter = make_adapter(sys.argv[1])
    model = adapter.model()
except ZooError as e:
    print(e, file=sys.stderr)
    raise SystemExit(3)
rows, failed = adapter.examples() or [], None
if rows:        # one example: what a request imports on top of start-up
    import torch
    try:
        with torch.inference_mode():
            adapter.run(model, *rows[0])
    except Exception as e:
        failed = f"{type(e).__name__}: {e}"
with open(sys.argv[2], "w") as fh:
    json.dump({"imports": sorted(direct - carried), "example_error": failed}, fh)
"""


def probe(space: Path, model: str, *, carried: set[str],
          plugin: PluginBundle | None) -> dict[str, Any]:
    """Load ``model`` with the Space's own zoo (cwd = the Space folder) in a fresh Python,
    run the demo's first example, and record the top-level packages that the carried
    code (``carried``: zoo, the plugin) imports or reads ``package:`` files from.

    Only what zoo or the plugin use themselves counts: a package that one of their
    requirements imports is that requirement's own business (pip installs what it
    declares; what it imports only when present, as transformers does torchvision, is
    not needed).

    Raises:
        UsageError: the model does not load that way (the Space would not start).
    """
    result = space.with_name(space.name + ".probe.json")
    env = {k: v for k, v in os.environ.items()
           if k not in ("ZOO_CATALOG", "ZOO_DISABLE_PLUGINS", "PYTHONSAFEPATH")}
    env.update(ZOO_PLUGINS=plugin.name if plugin else "", ZOO_OFFLINE="1",
               HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    try:
        proc = subprocess.run([sys.executable, "-c", PROBE, model, str(result),
                               ",".join(sorted(carried))], cwd=space, env=env,
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"exit status {proc.returncode}"
            raise UsageError(f"the exported app cannot load its model from the Space's own "
                             f"files ({why[:300]}); nothing was written")
        return json.loads(result.read_text())
    except subprocess.TimeoutExpired:
        raise UsageError(f"the exported app did not load its model within {PROBE_TIMEOUT} s; "
                         "nothing was written") from None
    finally:
        result.unlink(missing_ok=True)


def used_distributions(found: dict[str, Any]) -> set[str]:
    """Canonical names of the installed distributions that provide ``found``'s imports."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    owners = packages_distributions()
    return {canonicalize_name(d) for top in found["imports"] for d in owners.get(top, ())}


def declared_requirements(distribution: str) -> list[Any]:
    """The unconditional (non-extra) requirements a distribution declares, parsed."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import InvalidRequirement, Requirement

    try:
        lines = requires(distribution) or []
    except PackageNotFoundError:
        raise UsageError(f"the distribution '{distribution}' is not installed, so its "
                         "requirements are unknown; install it (pip install -e . in zoo's "
                         "repository) and export again") from None
    out = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        out.append(req)
    return out


def requirements(used: set[str], *, plugin: PluginBundle | None,
                 always: tuple[str, ...] = ()) -> list[str]:
    """PEP 508 lines for ``requirements.txt``: each requirement zoo (or the plugin)
    declares whose distribution is in ``used`` (or ``always``), merged by name.

    Never an index option or a URL: Spaces resolve names on PyPI, and nothing a model
    directory says can add a line.
    """
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    carried = {canonicalize_name(zoo_distribution())}
    reqs = declared_requirements(zoo_distribution())
    if plugin is not None:
        carried.add(canonicalize_name(plugin.distribution))
        reqs += declared_requirements(plugin.distribution)
    wanted = used | {canonicalize_name(a) for a in always}
    merged: dict[str, Requirement] = {}
    for req in reqs:
        name = canonicalize_name(req.name)
        if name in carried or name in PROVIDED or name not in wanted:
            continue
        if req.url:
            raise UsageError(f"requirement '{req}' is a direct URL; a Space installs from "
                             "PyPI only: publish it there or vendor it")
        if name in merged:
            old = merged[name]
            old.specifier = SpecifierSet(f"{old.specifier},{req.specifier}".strip(","))
            old.extras |= req.extras
        else:
            merged[name] = Requirement(str(req))
    lines = [str(merged[n]) for n in sorted(merged)]
    for line in lines:                 # what pip will read: one PEP 508 requirement each
        Requirement(line)
        if line.startswith("-") or "\n" in line:
            raise UsageError(f"refusing requirement line {line!r}")
    return lines


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
