"""zoo's version and distribution name, in a module of its own so that any layer can read
them without importing the package's public API (which imports every layer)."""

__version__ = "0.1.0"
#: The distribution that installs ``import zoo`` (PyPI's ``zoo`` is an unrelated project).
DISTRIBUTION = "zoo-models"
