"""zoo: a plugin-based model zoo for PyTorch.

    >>> import zoo
    >>> zoo.list_models("resnet*")
    >>> model = zoo.get("lenet5.digits")     # a plain torch.nn.Module

Importing zoo is cheap: torch and the model libraries load only when a model is built.
"""

from zoo.api import finetune_hooks, get, info, list_models, spec
from zoo.errors import (
    BuildError,
    CatalogError,
    PluginError,
    UnknownModelError,
    UsageError,
    WeightsError,
    ZooError,
)
from zoo.hookspecs import hookimpl
from zoo.predict import predict
from zoo.registry.spec import ModelSpec, PretrainedSpec
from zoo.version import DISTRIBUTION, __version__

__all__ = [
    "DISTRIBUTION",
    "BuildError",
    "CatalogError",
    "ModelSpec",
    "PluginError",
    "PretrainedSpec",
    "UnknownModelError",
    "UsageError",
    "WeightsError",
    "ZooError",
    "__version__",
    "finetune_hooks",
    "get",
    "hookimpl",
    "info",
    "list_models",
    "predict",
    "spec",
]
