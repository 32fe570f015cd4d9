"""Hardening: third-party plugins that fail, hang, print or return garbage are isolated and
reported; built-in models and healthy plugins keep working.

Most cases run in-process: plugin objects go through ``Plugins.register_object``, and
entry points are faked (``discover_entry_points`` monkeypatched) so that the threaded,
timed import path runs without a subprocess. A few cases need a fresh interpreter and real
entry points (generated ``.dist-info`` folders on ``PYTHONPATH``): a plugin that hangs at
import (the command must still finish and exit), prints to stdout (``--json`` must stay
JSON), raises SystemExit or KeyboardInterrupt, and imports torch past its time limit.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import zoo
from conftest import run_zoo
from zoo.errors import PluginError
from zoo.registry import plugins as plugin_loader
from zoo.registry.plugins import PluginInfo, Plugins, build_registry
from zoo.registry.spec import ModelSpec

# No shrinking: a failing example is printed as generated; shrinking one that builds
# registries took minutes.
_BASE = settings(derandomize=True, deadline=None, database=None,
                 phases=(Phase.explicit, Phase.reuse, Phase.generate),
                 suppress_health_check=[HealthCheck.too_slow,
                                        HealthCheck.function_scoped_fixture])


def HYPO(n: int) -> settings:  # noqa: N802 - reads like a decorator
    """Deterministic settings with ``n`` examples (CI runs must not vary)."""
    return settings(_BASE, max_examples=n)


LENET = "zoo.plugins.cnn.lenet:lenet5"


def model(name: str, **extra) -> dict:
    return {"name": name, "family": "cnn", "task": "image-classification",
            "builder": LENET, **extra}


# -- plugin objects, one per way of going wrong -----------------------------------------
#
# Each factory returns (plugin object, expectation). Every plugin tries to add models named
# after itself: "<name>-a", "<name>-b". Expectations:
#   "error":   status error, none of its models appear
#   "partial": status warning, "<name>-ok" appears, its bad models do not
#   "warning": status warning, no models (it adds nothing, and says why)

def _hooks(**fns) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{k: zoo.hookimpl(v) for k, v in fns.items()})


def raises_in_models(n):
    def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-a"))
        raise RuntimeError("boom half-way")
    return _hooks(zoo_register_models=zoo_register_models), "error"


def raises_in_families(n):
    def zoo_register_families(registry):
        registry.add_family(f"{n}-fam", description="half declared")
        registry.add_namespace(f"{n}-ns", resolve=lambda x: None, names=lambda: [])
        registry.add_model(**model(f"{n}-a"))
        raise ValueError("families broke")

    def zoo_register_models(registry):    # must not even be called
        registry.add_model(**model(f"{n}-b"))
    return _hooks(zoo_register_families=zoo_register_families,
                  zoo_register_models=zoo_register_models), "error"


def fails_after_families_hook(n):
    def zoo_register_families(registry):
        registry.add_family(f"{n}-fam")
        registry.add_model(**model(f"{n}-a", family=f"{n}-fam"))

    def zoo_register_models(registry):
        raise KeyError("later")
    return _hooks(zoo_register_families=zoo_register_families,
                  zoo_register_models=zoo_register_models), "error"


def system_exit_in_hook(n):
    def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-a"))
        sys.exit(3)
    return _hooks(zoo_register_models=zoo_register_models), "error"


def returns(value_of):
    def factory(n):
        def zoo_register_models(registry):
            return value_of(n)
        return _hooks(zoo_register_models=zoo_register_models), "error"
    factory.__name__ = f"returns_{value_of.__name__}"
    return factory


def an_int(n):
    return 5


def a_str(n):
    return f"{n}-a"


def nones(n):
    return [model(f"{n}-a"), None, None]


def a_generator_raising_halfway(n):
    yield model(f"{n}-a")
    yield ModelSpec(name=f"{n}-b", family="cnn", task="t", builder=LENET)
    raise OSError("the disk went away")


def async_hook(n):
    async def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-a"))
    return _hooks(zoo_register_models=zoo_register_models), "error"


def bad_fields(n):
    def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-ok"))
        registry.add_model(ModelSpec(name=f"{n}-a", family="cnn", task="t", builder=LENET,
                                     params="lots", tags=("x", 5)))      # type: ignore[arg-type]
        return [model(f"{n}-b", colour="blue"),                         # unknown key
                model(f"{n}-c", params="many"),                         # bad value
                {**model(f"{n}-d"), 7: "non-text key"},
                ModelSpec(name=f"{n}-e", family="cnn", task="t", builder=LENET,
                          input="32x32")]                             # type: ignore[arg-type]
    return _hooks(zoo_register_models=zoo_register_models), "partial"


def clashes(n):
    def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-ok"))
        registry.add_model(**model("lenet5", description="an impostor"))
        registry.add_model(**model(f"{n}-ok"))                          # its own twice
    return _hooks(zoo_register_models=zoo_register_models), "partial"


def bad_signature(n):
    def zoo_register_models(registry, surprise):
        registry.add_model(**model(f"{n}-a"))

    def zoo_load_pretrained(model, source):
        return "never asked: the plugin was refused"
    return _hooks(zoo_register_models=zoo_register_models,
                  zoo_load_pretrained=zoo_load_pretrained), "error"


def a_class(n):
    class Plugin:
        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(**model(f"{n}-a"))
    return Plugin, "error"


def no_hooks(n):
    return types.ModuleType(f"{n}_empty"), "warning"


def undecorated(n):
    mod = types.ModuleType(f"{n}_undecorated")

    def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-a"))
    mod.zoo_register_models = zoo_register_models
    return mod, "warning"


def getattr_raises(n):
    mod = types.ModuleType(f"{n}_lazy")

    def __getattr__(attr):       # noqa: N807 - a module-level __getattr__, badly written
        raise RuntimeError(f"lazy attribute {attr} exploded")

    def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-ok"))
    mod.__getattr__ = __getattr__
    mod.zoo_register_models = zoo.hookimpl(zoo_register_models)
    mod.zoo_typo_hook = lambda: None
    return mod, "partial"


def garbage_declarations(n):
    def zoo_register_families(registry):
        registry.add_family(5, description="a number for a name")      # type: ignore[arg-type]
        registry.add_family(f"{n}-fam", finetune="head")               # type: ignore[arg-type]
        registry.add_namespace(7, resolve="m:f", names="m:g")          # type: ignore[arg-type]
        registry.add_namespace(f"{n}-ns", resolve=3, names=None)       # type: ignore[arg-type]
        return 42                                                       # ignored

    def zoo_register_models(registry):
        registry.add_model(**model(f"{n}-ok"))
    return _hooks(zoo_register_families=zoo_register_families,
                  zoo_register_models=zoo_register_models), "partial"


def dir_raises(n):
    class Opaque:
        def __dir__(self):
            raise RuntimeError("no listing")

        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(**model(f"{n}-a"))
    return Opaque(), "error"


BROKEN = [dir_raises, garbage_declarations, raises_in_models, raises_in_families,
          fails_after_families_hook,
          system_exit_in_hook, returns(an_int), returns(a_str), returns(nones),
          returns(a_generator_raising_halfway), async_hook, bad_fields, clashes,
          bad_signature, a_class, no_hooks, undecorated, getattr_raises]


def healthy(n, k):
    def zoo_register_models(registry):
        for i in range(k):
            registry.add_model(**model(f"{n}-m{i}"))
        # a family nobody declared: checked against the others for typos (only one
        # such plugin, or their families' names could be close enough to be refused)
        registry.add_model(**model(f"{n}-own", family=f"{n}-family" if k == 1 else "cnn"))
        return [ModelSpec(name=f"{n}-spec", family="cnn", task="t", builder=LENET,
                          plugin="cnn")]         # claims to be another plugin's: it is not
    return _hooks(zoo_register_models=zoo_register_models)


def _builtins() -> Plugins:
    plugins = Plugins()
    plugins.load(entry_points=False)
    return plugins


_name = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)


@HYPO(25)
@given(bad=st.lists(st.sampled_from(BROKEN), min_size=1, max_size=4),
       n_healthy=st.integers(0, 2),
       names=st.lists(_name, min_size=6, max_size=6, unique=True),
       order=st.randoms(use_true_random=False))
def test_broken_plugins_are_isolated_reported_and_the_rest_works(bad, n_healthy, names,
                                                                 order, capsys):
    names = [n for n in names if n not in {p for p, _ in plugin_loader.BUILTIN_PLUGINS}]
    if len(names) < len(bad) + n_healthy:
        return
    plugins = _builtins()
    roles = [("bad", f, None) for f in bad] + [("ok", None, k) for k in range(n_healthy)]
    order.shuffle(roles)
    expect = {}
    capsys.readouterr()
    for name, (role, factory, k) in zip(names, roles, strict=False):
        if role == "bad":
            obj, expect[name] = factory(name)
        else:
            obj, expect[name] = healthy(name, k + 1), "ok"
        plugins.register_object(name, obj)
    reg = build_registry(plugins=plugins)
    err = capsys.readouterr()
    assert err.out == ""
    listed = {s.name: s for s in reg}
    # the rest works: built-in models, with their own plugin, build from the registry
    assert listed["lenet5"].plugin == "cnn" and "resnet50" in listed
    assert len([s for s in reg if s.plugin in {"cnn", "rnn", "transformer", "gan", "gnn"}]) > 50
    assert all(isinstance(f, str) for f in reg.families)
    assert all(isinstance(p, str) for p in reg.namespaces)
    for name, want in expect.items():
        info = plugins.infos[name]
        mine = sorted(s.name for s in reg if s.name.startswith(f"{name}-"))
        assert sorted(info.models) == mine
        assert all(listed[m].plugin == name for m in mine)
        json.dumps(info.to_dict())
        if want == "ok":
            assert info.status == "ok", info.errors
            assert set(mine) >= {f"{name}-m0", f"{name}-spec", f"{name}-own"}
            assert listed[f"{name}-own"].family in reg.families
            continue
        assert info.errors and all("\n" not in e for e in info.errors)
        assert f"zoo: warning: plugin '{name}': " in err.err
        if want == "error":
            assert info.status == "error", info.errors
            assert mine == []
            assert f"{name}-fam" not in reg.families and f"{name}-ns" not in reg.namespaces
            # a refused plugin is out of pluggy too: none of its other hooks is called
            assert info.failed or plugins.pm.get_plugin(name) is None
        elif want == "partial":
            assert info.status == "warning", info.errors
            assert mine == [f"{name}-ok"]
        else:
            assert info.status == "warning" and mine == [], info.errors


def test_messages_say_what_went_wrong(capsys):
    plugins = _builtins()
    for f in (returns(an_int), returns(a_str), returns(nones), async_hook, a_class,
              no_hooks, undecorated, bad_signature, system_exit_in_hook):
        plugins.register_object(f.__name__, f(f.__name__.replace("_", "-"))[0])
    build_registry(plugins=plugins)
    errs = {n: " | ".join(i.errors) for n, i in plugins.infos.items()}
    assert "returned an int (5); return ModelSpecs or dicts" in errs["returns_an_int"]
    assert "returned a str ('returns-an-int-a')" not in errs["returns_a_str"]
    assert "returned a str" in errs["returns_a_str"]
    assert "a list holding a NoneType" in errs["returns_nones"]
    assert "async function" in errs["async_hook"]
    assert "is a class whose hooks take 'self'" in errs["a_class"]
    assert "has no @zoo.hookimpl functions" in errs["no_hooks"]
    assert "defines 'zoo_register_models' without @zoo.hookimpl" in errs["undecorated"]
    assert "refused: PluginValidationError" in errs["bad_signature"]
    assert "surprise" in errs["bad_signature"]
    assert "raised SystemExit: 3" in errs["system_exit_in_hook"]
    assert "coroutine" not in capsys.readouterr().err      # closed, not left un-awaited


def test_a_plugin_name_taken_by_a_builtin_is_refused_without_hiding_the_builtin():
    plugins = _builtins()
    info = plugins.register_object("cnn", healthy("cnn", 1))
    reg = build_registry(plugins=plugins)
    assert info.status == "error" and "already taken" in info.errors[0]
    assert plugins.infos["cnn"].status == "ok" and reg.spec("lenet5").plugin == "cnn"
    assert "cnn-m0" not in reg


def test_a_rebuild_counts_models_and_errors_once():
    plugins = _builtins()
    plugins.register_object("twice", bad_fields("twice")[0])
    plugins.register_object("typo", getattr_raises("typo")[0])
    first = build_registry(plugins=plugins)
    snapshot = {n: (list(i.models), list(i.errors)) for n, i in plugins.infos.items()}
    second = build_registry(plugins=plugins)
    assert {n: (i.models, i.errors) for n, i in plugins.infos.items()} == snapshot
    assert len(first) == len(second)
    assert any("zoo_typo_hook" in e for e in plugins.infos["typo"].errors)


def test_ten_thousand_models_from_one_plugin_are_fast():
    n = 10_000

    def zoo_register_models(registry):
        for i in range(n // 2):
            registry.add_model(**model(f"bulk-{i}", params=i))
        return [ModelSpec(name=f"bulk-s{i}", family="cnn", task="t", builder=LENET)
                for i in range(n // 2)]

    plugins = _builtins()
    t = time.perf_counter()
    plugins.register_object("bulk", _hooks(zoo_register_models=zoo_register_models))
    reg = build_registry(plugins=plugins)
    listed = reg.list(["bulk-*"])
    took = time.perf_counter() - t
    assert len(listed) == n and plugins.infos["bulk"].status == "ok"
    assert reg.spec("bulk-9").params == 9
    assert took < 10, took          # ~1.5 s on a loaded 2-core machine


# -- hooks called after registration ---------------------------------------------------------

_garbage = st.one_of(
    st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["head", "colour", "lora_targets", "no_decay"]),
                    st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
                    min_size=1, max_size=3),
)


@HYPO(30)
@given(answer=_garbage)
def test_finetune_hooks_garbage_is_reported_and_ignored(answer, capsys):
    def zoo_finetune_hooks(spec):
        return answer

    def good(spec):
        return {"head": "fc", "lora_targets": ["conv1"]}

    plugins = Plugins()
    plugins.register_object("junk", _hooks(zoo_finetune_hooks=zoo_finetune_hooks))
    plugins.register_object("good", _hooks(zoo_finetune_hooks=good))
    capsys.readouterr()
    got = dict(plugins.collect("zoo_finetune_hooks", spec=None))
    err = capsys.readouterr().err
    assert got["good"] == {"head": "fc", "lora_targets": ["conv1"]}
    valid = isinstance(answer, dict) and set(answer) <= {"head", "lora_targets", "no_decay"} \
        and all(v is None for k, v in answer.items() if k == "head") \
        and all(isinstance(v, list) and v == [] for k, v in answer.items() if k != "head")
    assert ("junk" in got) == valid
    if not valid:
        assert "zoo: warning: plugin 'junk': zoo_finetune_hooks returned" in err
        assert plugins.infos["junk"].status == "warning"


def test_finetune_hooks_exceptions_are_isolated(capsys):
    def zoo_finetune_hooks(spec):
        raise SystemExit("no")

    plugins = Plugins()
    plugins.register_object("exits", _hooks(zoo_finetune_hooks=zoo_finetune_hooks))
    assert plugins.collect("zoo_finetune_hooks", spec=None) == []
    assert "zoo_finetune_hooks raised SystemExit: no" in capsys.readouterr().err


@pytest.mark.parametrize("garbage", ["loaded!", 1, {"weights": 1}, True])
def test_a_loader_returning_garbage_is_skipped_for_the_next(garbage, capsys):
    import torch

    net = torch.nn.Linear(2, 2)

    def junk(model, source):
        return garbage

    def real(model, source):
        return model if source.startswith("mem:") else None

    plugins = Plugins()
    plugins.register_object("real", _hooks(zoo_load_pretrained=real))
    plugins.register_object("junk", _hooks(zoo_load_pretrained=junk))     # asked first
    result, who = plugins.first_result("zoo_load_pretrained", model=net, source="mem:x",
                                       spec=None, tag=None)
    assert result is net and who == "real"
    assert "plugin 'junk': zoo_load_pretrained returned" in capsys.readouterr().err
    with pytest.raises(PluginError, match=r"plugin 'junk': zoo_load_pretrained returned "
                                          r".*not the model.*ZOO_DISABLE_PLUGINS=junk"):
        plugins.first_result("zoo_load_pretrained", model=net, source="s3:x", spec=None,
                             tag=None)


def test_a_demo_adapter_that_is_not_one_is_skipped(capsys):
    class Adapter:
        def load(self, name):
            return self

    good = Adapter()
    plugins = Plugins()
    plugins.register_object("good", _hooks(zoo_demo_adapter=lambda task: good))
    plugins.register_object("junk", _hooks(zoo_demo_adapter=lambda task: Adapter))  # a class
    assert plugins.first_result("zoo_demo_adapter", task="t") == (good, "good")
    assert "plugin 'junk': zoo_demo_adapter returned a type" in capsys.readouterr().err


def test_a_plugin_that_failed_at_registration_is_not_asked_to_load(capsys):
    import torch

    def zoo_register_models(registry):
        raise RuntimeError("broken")

    def zoo_load_pretrained(model, source):
        raise AssertionError("a failed plugin must not be called")

    plugins = Plugins()
    plugins.register_object("failed", _hooks(zoo_register_models=zoo_register_models,
                                             zoo_load_pretrained=zoo_load_pretrained))
    build_registry(plugins=plugins)
    assert plugins.first_result("zoo_load_pretrained", model=torch.nn.Linear(1, 1),
                                source="x:y", spec=None, tag=None) == (None, None)
    assert plugins.collect("zoo_load_pretrained", model=None, source="x") == []


# -- entry points, in-process (faked discovery, the real threaded import) --------------------

class FakeEP:
    def __init__(self, name: str, load, value: str | None = None):
        self.name, self._load, self.value = name, load, value or f"fake_{name}"

    def load(self):
        return self._load()


def good_module(n, k=2):
    return healthy(n, k)


@pytest.fixture
def fake_eps(monkeypatch):
    """Install fake entry points: ``fake_eps([(ep, dist), ...])``; returns a loader."""
    def install(items):
        rows = [(ep, dist, "0.1") for ep, dist in items]
        monkeypatch.setattr(plugin_loader, "discover_entry_points",
                            lambda: sorted(rows, key=lambda r: r[0].name))
        plugins = Plugins()
        plugins.load()
        return plugins
    return install


def test_slow_and_hanging_imports_are_timed_and_abandoned(fake_eps, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_PLUGIN_SLOW_SECONDS", "0.2")
    monkeypatch.setenv("ZOO_PLUGIN_IMPORT_TIMEOUT", "0.6")
    release = threading.Event()

    def slow():
        time.sleep(0.3)
        return good_module("slowpoke")

    def hang():
        release.wait()      # released at the end, so that no thread outlives the test
        return good_module("hangs")

    def keep_going():
        return good_module("after")

    try:
        t = time.perf_counter()
        plugins = fake_eps([(FakeEP("a_slow", slow), "d1"), (FakeEP("b_hang", hang), "d2"),
                            (FakeEP("c_after", keep_going), "d3")])
        took = time.perf_counter() - t
        reg = build_registry(plugins=plugins)
    finally:
        release.set()
    infos = plugins.infos
    assert took < 3, took
    assert infos["a_slow"].status == "warning" and infos["a_slow"].import_seconds >= 0.3
    assert infos["a_slow"].errors[0].startswith("took 0.3 s to import; every zoo command "
                                                "waits for it; ZOO_DISABLE_PLUGINS=a_slow")
    assert infos["b_hang"].status == "error"
    assert infos["b_hang"].errors == [
        "did not finish importing in 0.6 s; skipped (it may hang at import: "
        "ZOO_PLUGIN_IMPORT_TIMEOUT=SECONDS waits longer, ZOO_DISABLE_PLUGINS=b_hang "
        "skips it)"]
    assert 0.6 <= infos["b_hang"].import_seconds < 2
    assert infos["c_after"].status == "ok" and infos["c_after"].import_seconds < 0.5
    assert "after-m0" in reg and "slowpoke-m0" in reg and "hangs-m0" not in reg
    assert infos["cnn"].import_seconds is not None
    err = capsys.readouterr().err
    assert "zoo: warning: plugin 'b_hang': did not finish importing in 0.6 s" in err
    assert "zoo: warning: plugin 'a_slow': took 0.3 s" in err


@HYPO(12)
@given(kinds=st.lists(st.sampled_from(["ok", "import_error", "system_exit", "missing_attr",
                                       "prints", "path_front", "path_remove", "dup",
                                       "base_exc"]), min_size=1, max_size=5))
def test_entry_point_import_failures_are_isolated(kinds, fake_eps, capsys):
    class Custom(BaseException):
        pass

    def load_for(kind, n):
        def load():
            if kind == "import_error":
                raise ModuleNotFoundError("No module named 'missing_dependency'")
            if kind == "system_exit":
                raise SystemExit(2)
            if kind == "base_exc":
                raise Custom("a BaseException of its own")
            if kind == "missing_attr":
                raise AttributeError(f"module 'pkg_{n}' has no attribute 'nothing'")
            if kind == "prints":
                print(f"{n} says hello on stdout")
            if kind == "path_front":
                sys.path.insert(0, f"/nonexistent/{n}")
            if kind == "path_remove":
                sys.path.remove(saved_path[-1])
            return good_module(n)
        return load

    saved_path = list(sys.path)
    items = []
    for i, kind in enumerate(kinds):
        n = f"p{i}"
        items.append((FakeEP(n, load_for(kind, n)), f"dist{i}"))
        if kind == "dup":
            items.append((FakeEP(n, load_for("ok", f"q{i}")), f"other{i}"))
    capsys.readouterr()
    try:
        plugins = fake_eps(items)
        reg = build_registry(plugins=plugins)
        path_after = list(sys.path)
    finally:
        sys.path[:] = saved_path
    out, err = capsys.readouterr()
    assert out == ""                                  # plugins' prints went to stderr
    assert reg.spec("lenet5").plugin == "cnn"
    assert path_after[:len(saved_path)] == saved_path  # nothing shadows what was there
    for i, kind in enumerate(kinds):
        info = plugins.infos[f"p{i}"]
        fails = kind in ("import_error", "system_exit", "missing_attr", "base_exc")
        assert (f"p{i}-m0" in reg) == (not fails)
        if fails:
            assert info.status == "error" and info.errors[0].startswith("failed to import: ")
            assert f"zoo: warning: plugin 'p{i}': failed to import" in err
        elif kind in ("path_front", "path_remove"):
            assert info.status == "warning" and "sys.path" in info.errors[0]
        else:
            assert info.status == "ok", info.errors
        if kind == "prints":
            assert f"p{i} says hello on stdout" in err
        if kind == "dup":
            dup = plugins.infos[f"p{i} (other{i})"]
            assert dup.status == "error" and "already taken by dist" in dup.errors[0]
            assert f"q{i}-m0" not in reg


def test_keyboard_interrupt_at_import_stops_loading_and_a_retry_loads_everything(
        fake_eps, monkeypatch):
    calls = []

    def interrupted():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return good_module("ctrlc")

    rows = [(FakeEP("ctrlc", interrupted), "d", "0.1")]
    monkeypatch.setattr(plugin_loader, "discover_entry_points", lambda: rows)
    plugin_loader.reset()
    with pytest.raises(KeyboardInterrupt):
        plugin_loader.get_plugins()
    again = plugin_loader.get_plugins()      # not the half-loaded manager
    assert again.infos["ctrlc"].status == "ok" and "gnn" in again.infos


def test_plugins_are_reloaded_when_the_plugin_variables_change(fake_eps, monkeypatch):
    rows = [(FakeEP("toggled", lambda: good_module("toggled")), "d", "0.1")]
    monkeypatch.setattr(plugin_loader, "discover_entry_points", lambda: rows)
    assert "toggled-m0" in zoo.list_models()
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "toggled")
    assert "toggled-m0" not in zoo.list_models()
    assert plugin_loader.get_plugins().infos["toggled"].status == "disabled"


def test_plugins_table_and_json_show_import_time(fake_eps, monkeypatch):
    from typer.testing import CliRunner

    from zoo.cli import app

    monkeypatch.setenv("ZOO_PLUGIN_SLOW_SECONDS", "0.05")

    def slow():
        time.sleep(0.1)
        return good_module("tabled")

    rows = [(FakeEP("tabled", slow), "zoo-tabled", "0.1")]
    monkeypatch.setattr(plugin_loader, "discover_entry_points", lambda: rows)
    res = CliRunner().invoke(app, ["plugins"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = lines[0].split()
    assert header[0] == "PLUGIN" and {"STATUS", "ERRORS"} <= set(header)
    row = next(ln for ln in lines if ln.startswith("tabled "))
    assert "warning" in row and "took 0.1 s to import" in row
    res = CliRunner().invoke(app, ["plugins", "--json"])
    data = {p["name"]: p for p in json.loads(res.stdout)}
    assert data["tabled"]["import_seconds"] >= 0.1
    assert isinstance(data["cnn"]["import_seconds"], float)


def test_a_plugin_needing_the_main_thread_is_imported_there(fake_eps):
    import signal

    def needs_main():
        signal.signal(signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
        return good_module("mainonly")

    plugins = fake_eps([(FakeEP("mainonly", needs_main), "d")])
    assert plugins.infos["mainonly"].status == "ok"


def test_loading_from_inside_an_import_does_not_wait_on_itself(tmp_path, monkeypatch):
    """``zoo.list_models()`` at the top of a module being imported, with a plugin that
    imports that very module: in a worker thread that import would wait for the caller's
    module lock until the time limit; plugins load in the calling thread instead."""
    monkeypatch.setenv("ZOO_PLUGIN_IMPORT_TIMEOUT", "3")
    (tmp_path / "zp_selfref.py").write_text(
        "from zoo import plugin_loader\n"
        "import time\n"
        "t0 = time.perf_counter()\n"
        "PLUGINS = plugin_loader.Plugins()\n"
        "PLUGINS.load(builtins=False)\n"
        "TOOK = time.perf_counter() - t0\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def load():
        import zp_selfref  # noqa: F401 - the module whose import is under way
        return good_module("selfref")

    rows = [(FakeEP("selfref", load), "d", "0.1")]
    monkeypatch.setattr(plugin_loader, "discover_entry_points", lambda: rows)
    monkeypatch.delitem(sys.modules, "zp_selfref", raising=False)
    import zp_selfref
    try:
        assert zp_selfref.TOOK < 2, zp_selfref.TOOK
        assert zp_selfref.PLUGINS.infos["selfref"].status == "ok"
    finally:
        del sys.modules["zp_selfref"]


def test_plugin_info_keeps_its_public_fields():
    info = PluginInfo(name="x", module="m", source="code")
    assert set(info.to_dict()) == {"name", "module", "source", "distribution", "version",
                                   "models", "errors", "loaded", "disabled", "failed",
                                   "import_seconds", "status"}


# -- real entry points in a fresh interpreter --------------------------------------------------

HOOK = '''
from zoo import hookimpl

@hookimpl
def zoo_register_models(registry):
    print("{name} hook prints")
    registry.add_model(name="{name}-m0", family="cnn", task="image-classification",
                       builder="zoo.plugins.cnn.lenet:lenet5")
'''

SITE_MODULES = {
    "healthy": HOOK,
    "chatty": 'print("chatty says hello at import")\n' + HOOK,
    "sleeper": "import time\ntime.sleep(1e9)\n" + HOOK,
    "spinner": "while True:\n    pass\n" + HOOK,
    "listener": ("import socket\n_s = socket.socket()\n_s.bind(('127.0.0.1', 0))\n"
                 "_s.listen()\n_s.accept()\n") + HOOK,
    "slowish": "import time\ntime.sleep(0.5)\n" + HOOK,
    "quitter": "import sys\nsys.exit('bye')\n" + HOOK,
    "pathy": "import sys\nsys.path.insert(0, '/nonexistent/pathy')\n" + HOOK,
    "ctrlc": "raise KeyboardInterrupt\n",
    "heavy": "import torch  # noqa\n" + HOOK,
}


def write_site(root: Path, plugins: dict[str, str], extra_eps: dict[str, str] = ()) -> Path:
    """Each plugin as a module plus a hand-written ``.dist-info`` (what pip leaves)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in plugins.items():
        (root / f"zp_{name}.py").write_text(source.replace("{name}", name))
        dist = root / f"zp_{name}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zp-{name}\nVersion: 0.1\n")
        eps = f"{name} = zp_{name}\n" + dict(extra_eps).get(name, "")
        (dist / "entry_points.txt").write_text(f"[zoo]\n{eps}")
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    mods = {k: v for k, v in SITE_MODULES.items() if k not in ("ctrlc", "heavy")}
    # Two distributions both naming an entry point "healthy"; one pointing at nothing.
    return write_site(tmp_path_factory.mktemp("ep-site"), mods,
                      {"chatty": "healthy = zp_chatty\nnothing = zp_chatty:nothing\n"})


def test_real_entry_points_hang_print_exit_and_the_command_still_works(site):
    env = {"PYTHONPATH": str(site), "ZOO_PLUGIN_IMPORT_TIMEOUT": "1",
           "ZOO_PLUGIN_SLOW_SECONDS": "0.3"}
    t = time.perf_counter()
    proc = run_zoo("plugins", "--json", env=env, timeout=120)
    took = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)                               # stdout stayed JSON
    infos = {p["name"]: p for p in rows if p["distribution"] != "zp-chatty"
             or p["name"] != "healthy"}
    assert "says hello" in proc.stderr and "hook prints" in proc.stderr
    # three hangs of 1 s each; the process exits although their threads never end
    assert took < 60, took
    for hung in ("sleeper", "spinner", "listener"):
        assert infos[hung]["status"] == "error"
        assert infos[hung]["errors"][0].startswith("did not finish importing in 1 s")
        assert f"zoo: warning: plugin '{hung}': did not finish" in proc.stderr
    assert infos["slowish"]["status"] == "warning"
    assert infos["slowish"]["import_seconds"] >= 0.5
    assert infos["slowish"]["models"] == ["slowish-m0"]
    assert infos["quitter"]["errors"] == ["failed to import: SystemExit: bye"]
    assert "AttributeError" in infos["nothing"]["errors"][0]
    assert infos["pathy"]["status"] == "warning" and "sys.path" in infos["pathy"]["errors"][0]
    dup = [p for p in rows if p["name"] == "healthy" and p["distribution"] == "zp-chatty"]
    assert len(dup) == 1 and dup[0]["status"] == "error"
    assert dup[0]["errors"] == ["plugin name 'healthy' from zp-chatty is already taken by "
                                "zp-healthy; rename its entry point"]
    for ok in ("healthy", "chatty"):
        assert infos[ok]["models"] == [f"{ok}-m0"]
    listing = run_zoo("list", "--json", env={**env, "ZOO_DISABLE_PLUGINS":
                                             "sleeper,spinner,listener"})
    names = {m["name"] for m in json.loads(listing.stdout)}
    assert {"lenet5", "healthy-m0", "chatty-m0", "slowish-m0", "pathy-m0"} <= names
    assert not names & {"sleeper-m0", "quitter-m0"}


def test_ctrl_c_at_plugin_import_stops_the_command(tmp_path):
    site = write_site(tmp_path / "site", {"ctrlc": SITE_MODULES["ctrlc"]})
    proc = run_zoo("list", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 130 and proc.stdout == ""
    assert "Interrupted." in proc.stderr and "Traceback" not in proc.stderr


def test_a_plugin_importing_torch_past_its_time_limit_does_not_block_zoo(tmp_path):
    """The abandoned thread is still importing torch when the command needs torch: the
    main thread waits for that import to finish (module lock), then builds the model."""
    site = write_site(tmp_path / "site", {"heavy": SITE_MODULES["heavy"]})
    proc = run_zoo("get", "lenet5", env={"PYTHONPATH": str(site),
                                         "ZOO_PLUGIN_IMPORT_TIMEOUT": "0.05"}, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "params     61,706" in proc.stdout
    assert "plugin 'heavy': did not finish importing in 0.05 s" in proc.stderr
