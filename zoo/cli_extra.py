"""Commands that live outside cli.py (demo, space, finetune, publish...), registered on import.

Each module listed here does ``from zoo.cli import app`` and decorates its commands;
it must import nothing heavy at module level.
"""

COMMAND_MODULES: tuple[str, ...] = ("zoo.cli_demo", "zoo.cli_finetune", "zoo.cli_publish")
