"""Registry queries and the rules plugins live by: staging, clashes, namespaces, suggestions."""

from __future__ import annotations

import pytest

import zoo
from zoo.errors import UnknownModelError, UsageError
from zoo.registry import Registry
from zoo.registry.plugins import Plugins, build_registry
from zoo.registry.spec import ModelSpec, split_name_tag


def lenet_fields(**over):
    base = dict(family="cnn", task="image-classification", builder="zoo.plugins.cnn.lenet:lenet5",
                input={"size": [1, 32, 32]})
    base.update(over)
    return base


def test_split_name_tag_is_the_one_parser():
    assert split_name_tag("resnet50.imagenet") == ("resnet50", "imagenet")
    assert split_name_tag(" LeNet5 ") == ("lenet5", None)
    assert split_name_tag("timm/vit_tiny.augreg") == ("timm/vit_tiny", "augreg")


def test_list_filters_sort_and_patterns():
    names = zoo.list_models()
    assert names == sorted(names)
    assert {"lenet5", "resnet50", "lstm", "gru", "dcgan", "gcn"} <= set(names)
    assert zoo.list_models("res*") == [n for n in names if n.startswith("res")]
    assert set(zoo.list_models(family="gnn")) >= {"gcn", "gat"}
    assert all(zoo.info(n)["family"] == "gnn" for n in zoo.list_models(family="gnn"))
    assert "resnet50.imagenet" in zoo.list_models(pretrained=True)
    assert zoo.list_models("*.imagenet", pretrained=True) == [
        n for n in zoo.list_models(pretrained=True) if n.endswith(".imagenet")]
    assert zoo.list_models("no-such-*") == []


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError) as exc:
        zoo.spec("resnt50")
    assert "did you mean 'resnet50'" in str(exc.value)
    assert exc.value.suggestions[0] == "resnet50"
    assert exc.value.exit_code == 2


def test_unknown_tag_lists_the_tags_that_exist():
    with pytest.raises(UnknownModelError) as exc:
        zoo.spec("resnet50.imagenett")
    assert "resnet50.imagenet" in str(exc.value)
    with pytest.raises(UnknownModelError, match="no trained weights"):
        zoo.spec("gat.karate-club-v9")
    with pytest.raises(UsageError, match="empty model name"):
        zoo.spec("")


def test_a_plugin_that_fails_half_way_adds_nothing_and_others_keep_working():
    class Good:
        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(name="good_one", **lenet_fields())

    class HalfThenBoom:
        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(name="half", **lenet_fields())
            raise RuntimeError("boom")

    plugins = Plugins()
    plugins.load(entry_points=False)
    plugins.register_object("boom", HalfThenBoom())
    plugins.register_object("good", Good())
    reg = build_registry(plugins=plugins)
    assert "good_one" in reg and "half" not in reg and "lenet5" in reg
    assert plugins.infos["boom"].status == "error"
    assert "RuntimeError: boom" in plugins.infos["boom"].errors[0]
    assert plugins.infos["good"].models == ["good_one"]


def test_a_clash_never_overwrites_and_names_both_plugins():
    class Impostor:
        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(name="lenet5", **lenet_fields(description="impostor"))
            registry.add_model(name="mine", **lenet_fields())

    plugins = Plugins()
    plugins.load(entry_points=False)
    plugins.register_object("impostor", Impostor())
    reg = build_registry(plugins=plugins)
    assert reg.spec("lenet5").plugin == "cnn"
    assert reg.spec("lenet5").description != "impostor"
    assert reg.spec("mine").plugin == "impostor"
    [err] = plugins.infos["impostor"].errors
    assert "from plugin 'impostor' clashes with 'lenet5' from plugin 'cnn'" in err
    assert "impostor/lenet5" in err


def test_models_given_in_code_are_validated_like_catalog_tables():
    reg = Registry()
    reg.add_family("cnn")
    reg.begin("p")
    reg.add_model(name="ok", **lenet_fields(pretrained={"t": {"source": "file:/w.safetensors"}}))
    reg.add_model(name="bad", **lenet_fields(famly="cnn"))
    reg.add_model(name="Bad.Name", **lenet_fields())
    reg.add_model(name="badsrc", **lenet_fields(pretrained={"t": {"source": "nowhere"}}))
    reg.add_model(name="typo", **lenet_fields(family="cnnn"))
    reg.commit()
    assert list(reg.list()) == [reg.spec("ok")]
    assert reg.spec("ok").pretrained["t"].source == "file:/w.safetensors"
    problems = " | ".join(reg.problems["p"])
    assert "unknown key 'famly'" in problems and "invalid model name" in problems
    assert "has no scheme" in problems and "did you mean 'cnn'" in problems


def test_a_plugin_may_bring_its_own_family_and_callable_builders():
    from zoo.plugins.cnn.lenet import lenet5

    reg = Registry()
    reg.begin("p")
    reg.add_model(name="x", family="mlp", task="t", builder=lenet5, input={"size": [1, 32, 32]})
    reg.commit()
    assert reg.spec("x").builder is lenet5
    assert reg.families["mlp"].plugin == "p"
    assert reg.spec("x").builder_path == "zoo.plugins.cnn.lenet:lenet5"


def test_hook_may_return_models_instead_of_calling_the_registry():
    class Returns:
        @zoo.hookimpl
        def zoo_register_models(self):
            return [dict(name="returned", **lenet_fields()),
                    ModelSpec(name="returned2", **lenet_fields(input=None))]

    plugins = Plugins()
    plugins.load(entry_points=False)
    plugins.register_object("returns", Returns())
    reg = build_registry(plugins=plugins)
    assert "returned" in reg and "returned2" in reg
    assert reg.spec("returned").input.size == (1, 32, 32)


def test_pass_through_namespace_resolves_lazily_and_lists_only_on_request():
    calls = []

    def resolve(name):
        calls.append(("resolve", name))
        if name in ("alpha", "beta"):
            return ModelSpec(name=f"lib/{name}", family="cnn", task="t", builder="m.o:d")
        return None

    def names():
        calls.append(("names",))
        return ["alpha", "beta"]

    reg = Registry()
    reg.add_namespace("lib", resolve=resolve, names=names)
    assert [s.name for s in reg.list()] == [] and calls == []
    assert reg.spec("lib/alpha").name == "lib/alpha"
    with pytest.raises(UnknownModelError, match="lib/beta"):
        reg.spec("lib/betta")
    assert [s.name for s in reg.list(["lib/*"])] == ["lib/alpha", "lib/beta"]
    assert [s.name for s in reg.list(namespaces=True)] == ["lib/alpha", "lib/beta"]


def test_rollback_takes_back_a_failing_plugins_families_namespaces_and_models():
    reg = Registry()
    reg.begin("good")
    reg.add_family("cnn", description="images")
    reg.add_model(name="lenet5", **lenet_fields())
    reg.commit()
    reg.begin("bad")
    reg.add_family("mlp", description="perceptrons")
    reg.add_namespace("acme", resolve=lambda n: None, names=lambda: [], description="x")
    reg.add_model(name="half", **lenet_fields(family="mlp"))
    reg.rollback()
    assert set(reg.families) == {"cnn"} and "acme" not in reg.namespaces
    assert "half" not in reg and "lenet5" in reg


def test_remove_plugin_drops_what_it_committed_and_nothing_else():
    reg = Registry()
    for plugin, fam, model in (("a", "cnn", "one"), ("b", "mlp", "two")):
        reg.begin(plugin)
        reg.add_family(fam)
        reg.add_model(name=model, **lenet_fields(family=fam))
        reg.commit()
    reg.remove_plugin("b")
    assert "two" not in reg and "mlp" not in reg.families
    assert "one" in reg and "cnn" in reg.families


@pytest.mark.parametrize("bad", [{"name": "Bad Name"}, {"name": 5}, {"name": "a/b"},
                                 {"description": 3}, {"finetune": "head"}])
def test_bad_families_are_reported_for_plugins_and_raised_for_catalogs(bad):
    from zoo.errors import CatalogError

    args = {"name": "mlp", **bad}
    reg = Registry()
    reg.begin("plugin")
    reg.add_family(args.pop("name"), **args)
    reg.commit()
    assert reg.problems["plugin"] and len(reg.families) == 0
    reg.begin("catalog:/x.toml")
    args = {"name": "mlp", **bad}
    with pytest.raises(CatalogError):
        reg.add_family(args.pop("name"), **args)


def test_add_model_validates_specs_and_dicts_like_keyword_fields():
    import dataclasses

    reg = Registry()
    reg.begin("p")
    reg.add_family("cnn")
    reg.add_model({"name": "ok", **lenet_fields()})
    reg.add_model("not a model")
    reg.commit()
    assert "ok" in reg and reg.spec("ok").plugin == "p"
    assert any("not a value of type str" in p for p in reg.problems["p"]), reg.problems
    broken = dataclasses.replace(reg.spec("ok"), name="broken", params="lots")
    reg.begin("q")
    reg.add_model(broken)
    reg.commit()
    assert "broken" not in reg
    assert any("params" in p for p in reg.problems["q"]), reg.problems
