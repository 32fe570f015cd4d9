"""Built-in family plugins: cnn, rnn, transformer, gan, gnn.

Each is a package whose ``__init__`` holds only its hooks (no torch import); the
architectures live in submodules that the catalog names as lazy builders. They are
registered exactly as third-party plugins are (the loader lists them in
``BUILTIN_PLUGINS``), only first, so that no third-party model can take a built-in name.
Their models are declared in the shared catalog, ``registry.toml``.
"""
