"""Third-party plugins through entry points: the example plugin works end to end, broken
plugins are isolated and reported, the allow/deny variables work, hooks are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import zoo
from conftest import run_zoo
from zoo.errors import PluginError, WeightsError
from zoo.registry.plugins import Plugins, build_registry


def plugins_json(env):
    proc = run_zoo("plugins", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return {p["name"]: p for p in json.loads(proc.stdout)}, proc


def test_example_plugin_is_listed_built_and_its_shipped_weights_load(with_plugins):
    assert "tinymlp" in zoo.list_models()
    assert "tinymlp.digits" in zoo.list_models(pretrained=True)
    info = zoo.info("tinymlp.digits")
    assert info["plugin"] == "example" and info["family"] == "mlp"
    assert info["finetune"]["head"] == "head"          # from its zoo_finetune_hooks
    model = zoo.get("tinymlp.digits")
    assert type(model) is torch.nn.Sequential         # the plain module, no wrapper
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    _, xte, _, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    with torch.no_grad():
        pred = model(torch.tensor(xte / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)).argmax(1)
    acc = float((pred.numpy() == yte).mean())
    assert acc == pytest.approx(info["selected"]["metrics"]["accuracy"], abs=1e-3)
    assert acc > 0.95
    random_model = zoo.get("tinymlp")
    assert not torch.equal(random_model.head.weight, model.head.weight)


def test_broken_plugins_are_reported_and_everything_else_keeps_working(plugin_site):
    env = {"PYTHONPATH": str(plugin_site)}
    infos, proc = plugins_json(env)
    assert infos["broken_import"]["status"] == "error"
    missing = "No module named 'zoo_dependency_that_does_not_exist'"
    assert missing in infos["broken_import"]["errors"][0]
    assert infos["broken_hook"]["status"] == "error"
    assert infos["broken_hook"]["models"] == []
    assert infos["clash"]["status"] == "warning"
    assert infos["clash"]["models"] == ["clash_ok"]
    assert "clashes with 'lenet5' from plugin 'cnn'" in infos["clash"]["errors"][0]
    assert infos["example"]["status"] == "ok"
    assert infos["example"]["version"] == "0.2.0"
    assert infos["example"]["distribution"] == "zoo-plugin-example"
    assert sorted(infos["example"]["models"]) == ["tinymlp", "widemlp"]
    assert infos["cnn"]["source"] == "built-in"
    for name in ("broken_import", "broken_hook", "clash"):
        assert f"zoo: warning: plugin '{name}'" in proc.stderr
    listing = run_zoo("list", "--json", env=env)
    names = [m["name"] for m in json.loads(listing.stdout)]
    assert "half_registered" not in names and "tinymlp" in names and "clash_ok" in names
    lenet = json.loads(run_zoo("info", "lenet5", "--json", env=env).stdout)
    assert lenet["plugin"] == "cnn"


def test_allow_list_and_deny_list_variables(plugin_site):
    base = {"PYTHONPATH": str(plugin_site)}
    infos, proc = plugins_json({**base, "ZOO_PLUGINS": "example"})
    assert infos["example"]["status"] == "ok"
    assert infos["broken_import"]["status"] == "disabled"
    assert "warning" not in proc.stderr
    infos, _ = plugins_json({**base, "ZOO_DISABLE_PLUGINS": "broken_import,broken_hook,clash"})
    assert [n for n, i in infos.items() if i["status"] == "disabled"] == [
        "broken_hook", "broken_import", "clash"]
    infos, _ = plugins_json({**base, "ZOO_PLUGINS": ""})
    assert all(i["status"] == "disabled" for i in infos.values() if i["source"] != "built-in")
    infos, _ = plugins_json({**base, "ZOO_PLUGINS": "", "ZOO_DISABLE_PLUGINS": "gan"})
    assert infos["gan"]["status"] == "disabled"
    names = [m["name"] for m in json.loads(run_zoo(
        "list", "--json", env={**base, "ZOO_DISABLE_PLUGINS": "gan"}).stdout)]
    assert "dcgan" not in names and "lenet5" in names


def test_bad_hook_signature_is_refused_and_typos_are_reported():
    class BadSignature:
        @zoo.hookimpl
        def zoo_register_models(self, registry, surprise):
            raise AssertionError("never called")

    class Typo:
        @zoo.hookimpl
        def zoo_regster_models(self, registry):
            raise AssertionError("never called")

    plugins = Plugins()
    bad = plugins.register_object("badsig", BadSignature())
    typo = plugins.register_object("typo", Typo())
    assert bad.status == "error" and "surprise" in bad.errors[0]
    assert typo.status == "warning"
    assert "did you mean 'zoo_register_models'" in typo.errors[0]


class _TinyState:
    """A plugin claiming the 'mem:' scheme, loading ones into any model."""

    @zoo.hookimpl
    def zoo_load_pretrained(self, model, source):
        if not source.startswith("mem:"):
            return None
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(1.0)
        return model


def _registry_with(plugin_obj, name):
    plugins = Plugins()
    plugins.load(entry_points=False)
    plugins.register_object(name, plugin_obj)
    reg = build_registry(plugins=plugins)
    return plugins, reg


def test_a_plugin_loader_claims_its_scheme_and_is_named(monkeypatch):
    from zoo.loading import build
    from zoo.registry import plugins as plugin_loader

    class Catalogue:
        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(name="memnet", family="cnn", task="t",
                               builder="zoo.plugins.cnn.lenet:lenet5",
                               pretrained={"ones": {"source": "mem:anything"}})

    plugins, reg = _registry_with(Catalogue(), "catalogue")
    plugins.register_object("mem", _TinyState())
    monkeypatch.setattr(plugin_loader, "_PLUGINS", plugins)
    model = build.build(reg.spec("memnet"), "ones")
    assert all(bool((p == 1).all()) for p in model.parameters())
    spec = reg.spec("memnet")
    result, who = plugins.first_result("zoo_load_pretrained", model=model, source="mem:x",
                                       spec=spec, tag=spec.pretrained["ones"])
    assert who == "mem" and result is model
    assert plugins.first_result("zoo_load_pretrained", model=model, source="nope:x",
                                spec=spec, tag=spec.pretrained["ones"]) == (None, None)


def test_a_crashing_loader_becomes_a_plugin_error_naming_it(monkeypatch):
    class Crashes:
        @zoo.hookimpl
        def zoo_load_pretrained(self, source):
            raise KeyError("oops")

    plugins = Plugins()
    plugins.register_object("crashy", Crashes())
    with pytest.raises(PluginError, match="plugin 'crashy': zoo_load_pretrained raised KeyError"):
        plugins.first_result("zoo_load_pretrained", source="x:y", model=None, spec=None, tag=None)


def test_no_loader_for_a_scheme_is_one_clear_error():
    spec_obj = zoo.ModelSpec(name="x", family="cnn", task="t",
                             builder="zoo.plugins.cnn.lenet:lenet5",
                             pretrained={"t": zoo.PretrainedSpec(tag="t", source="s3:b/k")})
    from zoo.loading.build import build

    with pytest.raises(WeightsError, match="no plugin loads 's3:' sources"):
        build(spec_obj, "t")


def test_example_plugin_model_saves_and_reloads_from_a_directory(with_plugins, tmp_path):
    model = zoo.get("tinymlp.digits")
    from zoo.loading.build import save

    spec, tag = zoo.spec("tinymlp.digits")
    out = save(model, tmp_path / "saved", spec=spec, tag=tag)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["plugin"] == "example" and cfg["plugin_distribution"] == "zoo-plugin-example"
    again = zoo.get(str(out))
    x = torch.tensor(np.random.default_rng(0).random((2, 1, 8, 8)), dtype=torch.float32)
    assert torch.equal(model(x), again(x))
