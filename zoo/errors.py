"""Typed errors a user can meet. Each carries the bad value and says what to do.

The CLI turns every ``ZooError`` into one line on stderr; ``UsageError`` subclasses exit
with code 2, the rest with 1. Nothing here imports torch.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""

    exit_code = 1


class UsageError(ZooError):
    """The user asked for something that does not exist or is malformed (exit code 2)."""

    exit_code = 2


class CatalogError(UsageError):
    """A catalog file (TOML) is malformed; the message names the file, line and model."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 model: str | None = None):
        where = path or "<catalog>"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{where}: " + (f"model '{model}': " if model else "")
        super().__init__(prefix + message)
        self.path, self.line, self.model = path, line, model


class UnknownModelError(UsageError, LookupError):
    """No model (or no pretrained tag) by that name; carries close names to suggest."""

    def __init__(self, name: str, suggestions: list[str] | tuple[str, ...] = (),
                 *, kind: str = "model", hint: str | None = None):
        self.name, self.suggestions, self.kind = name, list(suggestions), kind
        msg = f"unknown {kind} '{name}'"
        if self.suggestions:
            msg += "; did you mean " + ", ".join(f"'{s}'" for s in self.suggestions) + "?"
        else:
            msg += "."
        msg += " " + (hint or "Run 'zoo list' to see every model.")
        super().__init__(msg)

    def __str__(self) -> str:  # LookupError would wrap the message in quotes
        return self.args[0]


class PluginError(ZooError):
    """A plugin failed to import, or raised inside a hook; the message names the plugin."""

    def __init__(self, plugin: str, message: str):
        super().__init__(f"plugin '{plugin}': {message}")
        self.plugin = plugin


class BuildError(ZooError):
    """A model's builder could not be imported or raised while building."""


class WeightsError(ZooError):
    """Pretrained weights are missing, unreachable, corrupt or do not fit the model."""


__all__ = [
    "BuildError",
    "CatalogError",
    "PluginError",
    "UnknownModelError",
    "UsageError",
    "WeightsError",
    "ZooError",
]
