"""The bottom layer: what models exist and who declared them.

- :mod:`~zoo.registry.spec`: ModelSpec, one immutable record per model;
- :mod:`~zoo.registry.catalog` (+ :mod:`~zoo.registry.cache`): catalog files parsed and
  validated into specs, cached on disk;
- :mod:`~zoo.registry.registry`: the :class:`Registry` (query, fuzzy lookup, clashes);
- :mod:`~zoo.registry.plugins` (+ ``plugin_import``, ``plugin_checks``): the pluggy
  manager, built-ins and entry points, each isolated;
- :mod:`~zoo.registry.default`: the process-wide registry that every verb uses.

Nothing here imports torch, or any layer above (model making, verbs, CLI).
"""

from zoo.registry.default import (
    CATALOG_ENV,
    add_user_catalogs,
    default_registry,
    reset_default,
    user_catalogs,
)
from zoo.registry.registry import Namespace, Registry

__all__ = ["CATALOG_ENV", "Namespace", "Registry", "add_user_catalogs", "default_registry",
           "reset_default", "user_catalogs"]
