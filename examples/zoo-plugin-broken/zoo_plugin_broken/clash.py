"""A plugin that reuses a built-in name (refused) next to a good model (kept)."""

from zoo import hookimpl


@hookimpl
def zoo_register_models(registry):
    registry.add_model(name="lenet5", family="cnn", task="image-classification",
                       builder="zoo.plugins.cnn.lenet:lenet5", description="an impostor")
    registry.add_model(name="clash_ok", family="cnn", task="image-classification",
                       builder="zoo.plugins.cnn.lenet:lenet5", kwargs={"num_classes": 3},
                       input={"size": [1, 32, 32]})
