"""The architecture holds: no import circles, and no import from a lower layer up.

Walks the AST of every module in zoo/ (and the built-in plugins and demos, installed as
zoo.plugins and zoo.demos), counting imports at module level *and* inside functions: a
circle hidden in a function is still a circle. The layers, lowest first, are the ones the
README's "Layout" section names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Folders that install under the zoo namespace (pyproject's package-dir).
TREES = {"zoo": ROOT / "zoo", "zoo.plugins": ROOT / "plugins", "zoo.demos": ROOT / "demos"}

# Lowest first. A module may import its own layer and any layer below it, never above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("zoo.errors", "zoo.hookspecs", "zoo.version", "zoo.atomic")),
    ("registry", ("zoo.registry",)),
    ("loading", ("zoo.loading",)),
    ("api", ("zoo.api",)),
    ("verbs", ("zoo.predict", "zoo.recommend", "zoo.shipping", "zoo.finetune", "zoo.publish",
               "zoo.demos", "zoo.plugins", "zoo.tasks")),
    ("cli", ("zoo.cli",)),
    # the package's public face, and old module paths kept as aliases of the new ones
    ("package", ("zoo", "zoo.__main__", "zoo.build", "zoo.weights", "zoo.preprocess",
                 "zoo.plugin_loader")),
]


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for prefix, folder in TREES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            mods[".".join((prefix, *rel))] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The zoo modules ``name`` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]
            # "from zoo import errors" imports the submodule; "from zoo import get" the package
            targets = subs if len(subs) == len(node.names) else [module, *subs]
        else:
            continue
        for target in targets:
            # "import zoo.loading.build" names the module itself, not its parents
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank is not None, f"{name} belongs to no layer; add it to LAYERS and the README"
    return rank


def test_every_module_belongs_to_a_layer():
    for name in MODULES:
        _layer(name)


def test_no_import_runs_from_a_lower_layer_up():
    bad = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
           for a, deps in GRAPH.items() for b in deps if _layer(b) > _layer(a)]
    assert not bad, "imports up the layers:\n" + "\n".join(sorted(bad))


def test_no_import_circles():
    # Tarjan's strongly connected components: any with more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("source, expected", [
    ("from zoo import errors", {"zoo.errors"}),
    ("from zoo import get", {"zoo"}),
    ("import zoo.loading.build", {"zoo.loading.build"}),
    ("def f():\n    from zoo.registry.spec import ModelSpec", {"zoo.registry.spec"}),
    ("from .spec import ModelSpec", {"zoo.registry.spec"}),
])
def test_the_walker_sees_every_kind_of_import(tmp_path, source, expected):
    # a test that cannot fail is a defect: the walker itself must find each form
    f = tmp_path / "probe.py"
    f.write_text(source + "\n")
    assert _imports("zoo.registry.probe", f) == expected


def test_no_module_is_a_giant():
    big = {name: n for name, path in MODULES.items()
           if (n := len(path.read_text(encoding="utf-8").splitlines())) > 520}
    assert not big, f"split these by job (about 500 lines at most): {big}"


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _documented_names() -> set[tuple[str, str | None]]:
    """(module, attribute) for every ``from zoo... import x`` and `zoo.a.b` the docs show."""
    import re

    names: set[tuple[str, str | None]] = set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for mod, attrs in re.findall(r"from (zoo(?:\.\w+)*) import ([\w, ]+)", text):
            names.update((mod, a.strip()) for a in attrs.split(",") if a.strip())
        for dotted in re.findall(r"`(zoo(?:\.\w+)+)[`(]", text):
            names.add((dotted, None))
    return names


@pytest.mark.parametrize("module, attr", sorted(_documented_names(), key=str))
def test_every_name_the_docs_show_can_be_imported(module, attr):
    import importlib

    if attr is None:             # `zoo.a.b.c`: a module, or an attribute of one
        parts = module.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ModuleNotFoundError:
                continue
            for part in parts[i:]:
                obj = getattr(obj, part)
            return
        pytest.fail(f"{module} cannot be imported")
    assert hasattr(importlib.import_module(module), attr), f"{module} has no {attr}"


@pytest.mark.parametrize("old, new", [("zoo.build", "zoo.loading.build"),
                                      ("zoo.weights", "zoo.loading.weights"),
                                      ("zoo.preprocess", "zoo.loading.preprocess"),
                                      ("zoo.plugin_loader", "zoo.registry.plugins")])
def test_old_module_paths_are_the_moved_modules_themselves(old, new):
    import importlib

    assert importlib.import_module(old) is importlib.import_module(new)


def test_the_public_surface_stays():
    import zoo
    import zoo.errors
    import zoo.hookspecs
    import zoo.shipping
    from zoo.finetune import finetune
    from zoo.registry import Registry

    for name in ("get", "list_models", "info", "predict", "hookimpl", "ModelSpec",
                 "ZooError", "UsageError", "__version__"):
        assert hasattr(zoo, name), name
    assert callable(finetune) and callable(zoo.shipping.ship)
    assert Registry.__module__ == "zoo.registry.registry"
    assert zoo.hookimpl is zoo.hookspecs.hookimpl
