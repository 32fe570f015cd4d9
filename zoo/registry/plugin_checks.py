"""Checks of what plugins give zoo: their plugin objects, and their hooks' answers.

Each check turns a plugin's mistake into one line that says what it gave and what zoo
expects, for :mod:`zoo.registry.plugins` to record against the plugin. What a plugin adds to
the registry (models, families, namespaces) is checked by :class:`zoo.registry.Registry`.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from zoo import hookspecs

HOOK_NAMES = tuple(n for n in dir(hookspecs) if n.startswith("zoo_"))
MARK = hookspecs.PROJECT + "_impl"      # the attribute @zoo.hookimpl sets on a function


def call_hook(function: Callable[..., Any], args: dict[str, Any]) -> Any:
    """Call one hook implementation; an ``async def`` one is refused (TypeError), its
    coroutine closed so that Python does not warn it was never awaited."""
    result = function(**args)
    if inspect.iscoroutine(result):
        result.close()
        raise TypeError("the hook is an async function; zoo calls hooks synchronously: "
                        "use a plain def")
    return result


def safe_getattr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` that also gives ``None`` when the lookup raises."""
    try:
        return getattr(obj, name, None)
    except Exception:  # a module __getattr__ or property that raises something else
        return None


def check_plugin_object(obj: Any) -> list[str]:
    """Refuse a class whose hooks need an instance; return warnings for likely mistakes.

    Raises:
        TypeError: ``obj`` is a class whose hooks are instance methods.
    """
    if inspect.isclass(obj):
        for name in HOOK_NAMES:
            fn = safe_getattr(obj, name)
            if inspect.isfunction(fn) and safe_getattr(fn, MARK) is not None:
                params = list(inspect.signature(fn).parameters)
                if params and params[0] == "self":
                    raise TypeError(
                        f"{obj.__qualname__} is a class whose hooks take 'self'; point the "
                        "entry point at a module or at an instance of it")
    out = []
    for name in HOOK_NAMES:
        fn = safe_getattr(obj, name)
        if callable(fn) and safe_getattr(fn, MARK) is None:
            out.append(f"defines '{name}' without @zoo.hookimpl, so zoo never calls it")
    return out + unknown_hooks(obj)


def describe(e: BaseException) -> str:
    """``Type: message`` on one line (multi-line messages joined), at most 300 characters."""
    try:
        text = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
    except Exception:  # an exception whose __str__ raises
        text = ""
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def kind(value: Any) -> str:
    """``an int (5)``: what a plugin gave, for messages."""
    name = type(value).__name__
    try:
        shown = repr(value)
    except Exception:
        shown = ""
    shown = f" ({shown[:40]}{'...' if len(shown) > 40 else ''})" if shown else ""
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}{shown}"


def unknown_hooks(obj: Any) -> list[str]:
    """Functions named ``zoo_*`` that match no hook: almost always a typo."""
    out = []
    try:
        attrs = dir(obj)
    except Exception:
        return out
    for attr in attrs:
        if attr.startswith("zoo_") and attr not in HOOK_NAMES \
                and callable(safe_getattr(obj, attr)):
            import difflib  # only for a message (~1.5 ms to import)

            close = difflib.get_close_matches(attr, HOOK_NAMES, n=1)
            out.append(f"defines '{attr}', which is no zoo hook"
                       + (f"; did you mean '{close[0]}'?" if close else ""))
    return out


_LIST_KEYS = ("lora_targets", "layer_groups", "no_decay", "target_parameters")


def check_finetune(answer: Any, _kwargs: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``zoo_finetune_hooks`` answer (a dict of FINETUNE_KEYS), or None."""
    from zoo.registry.catalog import FINETUNE_KEYS

    if not isinstance(answer, Mapping):
        return kind(answer) + ", not a dict of " + ", ".join(sorted(FINETUNE_KEYS))
    unknown = sorted(str(k) for k in answer if k not in FINETUNE_KEYS)
    if unknown:
        return (f"unknown keys {', '.join(unknown)} (known: "
                + ", ".join(sorted(FINETUNE_KEYS)) + ")")
    for key, value in answer.items():
        if key in _LIST_KEYS:
            ok = isinstance(value, str) or (isinstance(value, list | tuple)
                                            and all(isinstance(v, str) for v in value))
            if not ok:
                return f"{key} = {kind(value)}; give a list of names"
        elif value is not None and not isinstance(value, str):
            return f"{key} = {kind(value)}; give a name"
    return None


def check_model(result: Any, _kwargs: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``zoo_load_pretrained`` answer (an nn.Module), or None."""
    # torch is loaded by whoever asks a loader; never imported here (zoo list stays light).
    torch = sys.modules.get("torch")
    if torch is None or isinstance(result, torch.nn.Module):
        return None
    return kind(result) + ", not the model (an nn.Module)"


def check_adapter(result: Any, _kwargs: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``zoo_demo_adapter`` answer (an adapter instance), or None."""
    # Duck-typed: the contract is zoo.demos.base.Adapter, but only its methods matter.
    if not inspect.isclass(result) and callable(safe_getattr(result, "load")):
        return None
    return kind(result) + ", not an adapter (an instance of zoo.demos.base.Adapter)"


def check_task_adapter(result: Any, _kwargs: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``zoo_task_adapter`` answer (a TaskAdapter instance), or None."""
    # Duck-typed like demo adapters: the three lookups are what zoo calls.
    parts = ("predictor_for", "demo_for", "recipe_for")
    if not inspect.isclass(result) and all(callable(safe_getattr(result, p)) for p in parts):
        return None
    return kind(result) + ", not a task adapter (an instance of zoo.tasks.TaskAdapter)"


# Hook -> check of one answer: ``check(answer, hook kwargs)`` gives None or what is wrong.
RESULT_CHECKS: dict[str, Callable[[Any, Mapping[str, Any]], str | None]] = {
    "zoo_finetune_hooks": check_finetune,
    "zoo_load_pretrained": check_model,
    "zoo_demo_adapter": check_adapter,
    "zoo_task_adapter": check_task_adapter,
}


def returned_models(returned: Any) -> Iterator[Any]:
    """The models a ``zoo_register_models`` hook returned (plugins may return their models,
    ModelSpecs or dicts of catalog fields, instead of adding them), one by one.

    Each item is for ``Registry.add_model``, which refuses and reports an invalid model.

    Raises:
        TypeError: the answer, or an item of it, is not a model at all (fails the plugin).
    """
    from zoo.registry.spec import ModelSpec

    what = ("return ModelSpecs or dicts of catalog fields (or call registry.add_model "
            "and return None)")
    if isinstance(returned, ModelSpec | Mapping):
        yield returned
        return
    if isinstance(returned, str | bytes) or not isinstance(returned, Iterable):
        raise TypeError(f"zoo_register_models returned {kind(returned)}; {what}")
    for item in returned:
        if not isinstance(item, ModelSpec | Mapping):
            raise TypeError(f"zoo_register_models returned a list holding {kind(item)}; "
                            f"{what}")
        yield item
