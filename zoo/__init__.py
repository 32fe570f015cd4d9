"""zoo: a plugin-based model zoo for PyTorch.

    >>> import zoo
    >>> zoo.list_models("resnet*")
    >>> model = zoo.get("lenet5.digits")     # a plain torch.nn.Module

Importing zoo is cheap: torch and the model libraries load only when a model is built.
"""

from .api import finetune_hooks, get, info, list_models, spec
from .errors import (
    BuildError,
    CatalogError,
    PluginError,
    UnknownModelError,
    UsageError,
    WeightsError,
    ZooError,
)
from .hookspecs import hookimpl
from .predict import predict
from .spec import ModelSpec, PretrainedSpec

__version__ = "0.1.0"

__all__ = [
    "BuildError",
    "CatalogError",
    "ModelSpec",
    "PluginError",
    "PretrainedSpec",
    "UnknownModelError",
    "UsageError",
    "WeightsError",
    "ZooError",
    "finetune_hooks",
    "get",
    "hookimpl",
    "info",
    "list_models",
    "predict",
    "spec",
]
