"""A plugin that registers a model and then raises inside its hook: it must add nothing."""

from zoo import hookimpl


@hookimpl
def zoo_register_models(registry):
    registry.add_model(name="half_registered", family="cnn", task="image-classification",
                       builder="zoo.plugins.cnn.lenet:lenet5")
    raise RuntimeError("boom while registering")
