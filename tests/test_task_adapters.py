"""The zoo_task_adapter hook: a task (zoo's or a plugin's) brings its predictor, demo and
fine-tuning recipe as one unit; built-ins answer last, so plugins add and override tasks.

Each test registers a throwaway plugin made here and installs it as the process-wide
plugin manager (conftest resets zoo after every test)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402
from zoo.errors import CatalogError, PluginError, UsageError  # noqa: E402
from zoo.registry import plugins as plugin_loader  # noqa: E402
from zoo.registry.plugins import Plugins  # noqa: E402
from zoo.tasks import TaskAdapter  # noqa: E402

torch.set_num_threads(1)


class Inverter(torch.nn.Module):
    """A one-parameter 'model' of the plugin's new task: x -> scale * (1 - x)."""

    def __init__(self, *, scale: float = 0.5):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x):
        return self.scale * (1 - x)


def invert(model, spec, tag, inputs, *, clip: bool = False):
    """The plugin's predictor: a list of numbers in, the model's answer out."""
    with torch.no_grad():
        out = model(torch.tensor(inputs, dtype=torch.float32))
    return (out.clamp(0, 1) if clip else out).tolist()


class InversionDemo:
    """The plugin's demo adapter (duck-typed: load() is what zoo needs of it)."""

    def load(self, target, lazy=False):
        self.target = target
        return self


def _recipe_class():
    from zoo.finetune.recipes import Recipe

    class InversionRecipe(Recipe):
        """Learn scale on random inputs: loss is the squared error to 1 - x."""

        task = "image-inversion"
        metric = "error"
        modes = {"error": "min", "loss": "min"}
        lr = 0.1

        def prepare(self, data, loaded, options):
            x = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
            return self.task_data(self.split({"x": x[:48]}), self.split({"x": x[48:]}),
                                  name=str(data))

        def loss_sum(self, model, batch):
            x = batch.inputs["x"]
            return ((model(x) - (1 - x)) ** 2).mean(1).sum()

        def evaluate(self, model, data, split):
            err = float(self.loss_sum(model, split)) / len(split)
            return {"error": err, "loss": err}

    return InversionRecipe


class InversionPlugin:
    """A plugin of a new task: its model, and the task's three parts in one adapter."""

    @zoo.hookimpl
    def zoo_register_models(self, registry):
        registry.add_model(name="inv/flip", family="toy", task="image-inversion",
                           builder=Inverter, kwargs={"scale": 0.5})

    @zoo.hookimpl
    def zoo_task_adapter(self, task, spec):
        if task != "image-inversion":
            return None
        return TaskAdapter(task, predictor=invert, demo=InversionDemo, recipe=_recipe_class())


def install(monkeypatch, *objects) -> Plugins:
    """Built-ins plus ``objects`` (name, plugin), as the process-wide plugins."""
    plugins = Plugins()
    plugins.load(entry_points=False)
    for name, obj in objects:
        info = plugins.register_object(name, obj)
        assert info.status == "ok", info.errors
    monkeypatch.setattr(plugin_loader, "_PLUGINS", plugins)
    return plugins


def test_a_plugins_task_brings_predictor_demo_and_recipe(monkeypatch, tmp_path):
    install(monkeypatch, ("inv", InversionPlugin()))
    assert zoo.predict("inv/flip", [0.0, 1.0]) == [0.5, 0.0]
    assert zoo.predict("inv/flip", [-1.0], clip=True) == [1.0]      # options pass through
    from zoo.demos.app import make_adapter

    demo = make_adapter("inv/flip", lazy=True)
    assert isinstance(demo, InversionDemo) and demo.target.spec.name == "inv/flip"
    from zoo.finetune import finetune

    result = finetune("inv/flip", "anything", out=tmp_path / "out", epochs=5,
                      batch_size=16, progress=False)
    assert result.metrics["error"] < 0.1 * result.extra["initial"]["error"]
    assert abs(result.model.scale.item() - 1.0) < 0.2       # from 0.5 towards the answer, 1
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["task"] == "image-inversion" and saved["metric"] == "error"
    with pytest.raises(UsageError, match="unknown --metric 'accuracy' for image-inversion; "
                                         "use one of error, loss"):
        finetune("inv/flip", "x", out=tmp_path / "o2", metric="accuracy", progress=False)


def test_a_plugin_overrides_a_builtin_task_for_its_models_only(monkeypatch):
    from zoo.tasks import predictor_for
    from zoo.tasks.builtin import ImageClassification

    def top_one(model, spec, tag, inputs):
        return "mine"

    class Mine(ImageClassification):
        predictor = staticmethod(top_one)

    class Override:
        @zoo.hookimpl
        def zoo_task_adapter(self, task, spec):
            return Mine() if task == "image-classification" and spec.name == "lenet5" else None

    install(monkeypatch, ("override", Override()))
    assert zoo.predict("lenet5.digits", "ignored") == "mine"
    # other models keep zoo's predictor; the subclass kept zoo's recipe for lenet5
    assert predictor_for(zoo.api.spec("alexnet")[0]).__name__ == "classify_image"
    from zoo.tasks import recipe_for

    assert type(recipe_for(zoo.api.spec("lenet5")[0])).__name__ == "Classification"


def test_a_task_adapter_of_the_wrong_kind_is_reported_and_the_next_is_asked(monkeypatch,
                                                                           capsys):
    class Junk:
        @zoo.hookimpl
        def zoo_task_adapter(self, task):
            return TaskAdapter           # the class, not an instance

    install(monkeypatch, ("junk", Junk()))
    top = zoo.predict("lenet5.digits", [[0] * 8] * 8, top_k=1)
    assert len(top) == 1
    assert "plugin 'junk': zoo_task_adapter returned a type" in capsys.readouterr().err


def test_a_crashing_task_adapter_names_its_plugin(monkeypatch):
    class Crashes:
        @zoo.hookimpl
        def zoo_task_adapter(self, task):
            raise KeyError(task)

    install(monkeypatch, ("crashy", Crashes()))
    with pytest.raises(PluginError, match="plugin 'crashy': zoo_task_adapter raised KeyError"):
        zoo.predict("lenet5.digits", [[0] * 8] * 8)


def test_a_task_nobody_claims_says_so_in_one_line(monkeypatch):
    class Model:
        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(name="lone/m", family="toy", task="speech-recognition",
                               builder=Inverter)

    install(monkeypatch, ("lone", Model()))
    with pytest.raises(UsageError, match="no plugin handles task 'speech-recognition'.*"
                                         "zoo_task_adapter hook"):
        zoo.predict("lone/m", [1.0])


def test_every_builtin_task_has_an_adapter_and_every_trained_model_a_predictor():
    from zoo.registry.tasks import BUILTIN_TASKS
    from zoo.tasks import predictor_for, recipe_for
    from zoo.tasks.builtin import TASK_ADAPTERS

    assert set(TASK_ADAPTERS) == set(BUILTIN_TASKS)
    for spec in zoo.api.default_registry().list():
        assert spec.task in BUILTIN_TASKS, spec.name
        assert recipe_for(spec) is not None, spec.name
        for tag in spec.pretrained:
            assert predictor_for(spec, tag=tag) is not None, f"{spec.name}.{tag}"


def test_image_generation_predicts_for_any_model_with_the_generation_interface(monkeypatch,
                                                                            tmp_path):
    class Decoder(torch.nn.Module):
        """forward(z) -> images in [-1, 1]: the documented interface, nothing else."""

        def __init__(self, *, latent_dim: int = 3):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(latent_dim, 16), torch.nn.Tanh())

        def forward(self, z):
            return self.net(z).view(-1, 1, 4, 4)

    class Gen:
        @zoo.hookimpl
        def zoo_register_models(self, registry):
            registry.add_model(name="gen/dec", family="decoders", task="image-generation",
                               builder=Decoder, input={"size": [3]})

    install(monkeypatch, ("gen", Gen()))
    grid = zoo.predict("gen/dec", 7, n=4)
    assert grid.shape == (2 * 33 + 1, 2 * 33 + 1, 3) and grid.dtype.name == "uint8"
    assert (zoo.predict("gen/dec", 7, n=4) == grid).all()          # same seed, same images
    # zoo's recipe trains GANs; a generator without a discriminator is told what to do
    from zoo.finetune import finetune

    with pytest.raises(UsageError, match="no discriminator.*brings its own recipe"):
        finetune("gen/dec", "digits", out=tmp_path / "o", progress=False)


def test_the_catalog_refuses_a_task_one_typo_from_a_builtin_one(tmp_path):
    from zoo.registry.catalog import load_catalog

    cat = tmp_path / "c.toml"
    cat.write_text('[models.m]\nfamily = "cnn"\ntask = "image-clasification"\n'
                   'builder = "zoo.plugins.cnn.lenet:lenet5"\n')
    with pytest.raises(CatalogError, match=r"c.toml:3: model 'm': unknown task "
                                           r"'image-clasification'; did you mean "
                                           r"'image-classification'\?"):
        load_catalog(cat, cache=False)
    cat.write_text('[models.m]\nfamily = "cnn"\ntask = "image-inpainting"\n'
                   'builder = "zoo.plugins.cnn.lenet:lenet5"\n')
    assert load_catalog(cat, cache=False)[0].task == "image-inpainting"   # a plugin's task
