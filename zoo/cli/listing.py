"""``zoo list``, ``zoo info``, ``zoo recommend``: the catalog, read without torch."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from zoo.cli.app import JsonOpt, _registry, app, handles_errors
from zoo.cli.render import _check_choice, _json, _table, human_count
from zoo.errors import UsageError
from zoo.registry.spec import GFLOPS_NOTE


@app.command("list")
@handles_errors
def list_cmd(
    patterns: Annotated[list[str] | None, typer.Argument(
        help="Shell-style patterns ('resnet*', '*.digits').", show_default=False)] = None,
    family: Annotated[str | None, typer.Option("--family", "-f", help="Only this family.")] = None,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")] = None,
    pretrained: Annotated[bool, typer.Option(
        "--pretrained", "-p", help="List trained models (NAME.TAG) only.")] = False,
    namespaces: Annotated[bool, typer.Option(
        "--namespaces", "-n",
        help="Also list pass-through namespaces (timm/..., torchvision/...); imports them.",
    )] = False,
    as_json: JsonOpt = False,
) -> None:
    """List models, sorted by name.

    Examples: zoo list   zoo list 'resnet*' --family cnn   zoo list --pretrained --json
    zoo list 'timm/vit_*'
    """
    reg = _registry()
    _check_choice(family, set(reg.families), "family")
    pats = list(patterns or [])
    if pretrained:
        items = reg.trained(pats, family=family, task=task, namespaces=namespaces)
        if task is not None and not items:
            _check_choice(task, {s.task for s in reg}, "task")
        if as_json:
            # A trained model's own size (its tag's kwargs may shrink the architecture).
            return _json([{"name": f"{s.name}.{t}", "model": s.name, "tag": t,
                           "family": s.family, "task": s.task_for(t),
                           "params": s.params_for(t), "gflops": s.gflops_for(t),
                           "dataset": s.pretrained[t].dataset,
                           "metrics": dict(s.pretrained[t].metrics),
                           "source": s.pretrained[t].source} for s, t in items])
        if not items:
            print("No trained models match.", file=sys.stderr)
            return
        _table(["NAME", "FAMILY", "TASK", "PARAMS", "SOURCE", "DATASET", "METRICS"],
               [[f"{s.name}.{t}", s.family, s.task_for(t), human_count(s.params_for(t)),
                 s.pretrained[t].source, s.pretrained[t].dataset or "-",
                 ", ".join(f"{k}={v:g}" for k, v in s.pretrained[t].metrics.items()) or "-"]
                for s, t in items])
        return
    specs = reg.list(pats, family=family, task=task, namespaces=namespaces)
    if task is not None and not specs:
        _check_choice(task, {s.task for s in reg}, "task")
    if as_json:
        return _json([{"name": s.name, "family": s.family, "task": s.task, "params": s.params,
                       "gflops": s.gflops, "pretrained": list(s.trained_tags()),
                       "plugin": s.plugin, "description": s.description} for s in specs])
    if not specs:
        print("No models match. Try 'zoo list' without filters.", file=sys.stderr)
        return
    _table(["NAME", "FAMILY", "TASK", "PARAMS", "PRETRAINED"],
           [[s.name, s.family, s.task, human_count(s.params),
             ", ".join(s.trained_tags()) or "-"] for s in specs])


@app.command("info")
@handles_errors
def info_cmd(
    name: Annotated[str, typer.Argument(help="NAME or NAME.TAG.")],
    as_json: JsonOpt = False,
) -> None:
    """Show everything known about a model: paper, licence, input, size, tags, plugin.

    Examples: zoo info resnet50   zoo info lenet5.digits --json
    """
    from zoo.api import info

    _registry()
    data = info(name)
    if as_json:
        return _json(data)
    title = data["name"] + (f".{data['tag']}" if data["tag"] else "")
    inp = data["input"]
    sel = data.get("selected") or {}
    # a trained model may do another task than its architecture (bert_base.uncased fills
    # in masks; bert_base classifies)
    task = sel.get("task") or data["task"]
    demo = sel.get("demo") or sel.get("task") or data["demo"]
    arch = f"  (architecture {data['name']}: {{}})"
    rows = [
        ["description", data["description"] or "-"],
        *([["trained", sel["description"]]] if sel.get("description") else []),
        ["family", f"{data['family']} ({data['family_description'] or ''})".replace(" ()", "")],
        ["task", task + (arch.format(data["task"]) if task != data["task"] else "")],
        ["demo", demo + (arch.format(data["demo"]) if demo != data["demo"] else "")],
        ["paper", (data["paper"] or "-")
         + (f" <{data['paper_url']}>" if data["paper_url"] else "")],
        ["year", str(data["year"] or "-")],
        ["license", data["license"] or "-"],
        *_size_rows(data),
        ["input", _fmt_input(inp)],
        ["tags", ", ".join(data["tags"]) or "-"],
        ["builder", data["builder"] + (f" {json.dumps(data['kwargs'])}" if data["kwargs"] else "")],
        ["finetune", json.dumps(data["finetune"]) if data["finetune"] else "-"],
        ["plugin", f"{data['plugin']}  ({data['origin'] or '-'})"],
    ]
    for tag, pre in data["pretrained"].items():
        if data["tag"] and tag != data["tag"]:
            continue
        metrics = ", ".join(f"{k}={v:g}" for k, v in pre["metrics"].items())
        # Another tag's size, when it is not the architecture's (the selected tag's is
        # in the params row already).
        size = "" if tag == data["tag"] or pre["params"] == data["params"] else \
            f"  {human_count(pre['params'])} params"
        rows.append([f"{data['name']}.{tag}",
                     pre["source"] + (f"  [{pre['dataset']}]" if pre["dataset"] else "")
                     + (f"  {metrics}" if metrics else "") + size
                     + ("  (default)" if pre["default"] else "")])
    if not data["pretrained"]:
        rows.append(["pretrained", "none (architecture only)"])
    _table(["FIELD", title], rows)


def _size_rows(data: dict[str, Any]) -> list[list[str]]:
    """The params and gflops rows of ``zoo info``: the selected trained model's own figures,
    with the architecture's beside them when its kwargs make it another size."""
    def fmt_params(n: int | None) -> str:
        return f"{n:,}" if n else "-"

    def fmt_gflops(g: float | None) -> str:
        return f"{g:g}" if g is not None else "-"

    arch = (fmt_params(data["params"]), fmt_gflops(data["gflops"]))
    sel = data.get("selected")
    if sel is None:
        rows = [["params", arch[0]], ["gflops", arch[1]]]
    else:
        own = (fmt_params(sel["params"]), fmt_gflops(sel["gflops"]))
        rows = [[key, value + (f"  (architecture {name}: {base})" if value != base else "")]
                for key, value, base, name in (("params", own[0], arch[0], data["name"]),
                                               ("gflops", own[1], arch[1], data["name"]))]
    if rows[1][1] != "-":
        rows[1][1] += f"  [{GFLOPS_NOTE}]"
    return rows


def _fmt_input(inp: dict | None) -> str:
    if not inp:
        return "-"
    s = f"{inp['size']} {inp['dtype']}"
    if inp.get("mean"):
        s += f" mean={inp['mean']} std={inp['std']}"
    return s


@app.command("recommend")
@handles_errors
def recommend_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="What the model must do.")],
    data_size: Annotated[str | None, typer.Option(
        "--data-size", "-d", help="Labelled examples you have (5000, 20k).")] = None,
    compute: Annotated[str, typer.Option(
        "--compute", help="cpu, small-gpu or large-gpu.")] = "cpu",
    max_params: Annotated[str | None, typer.Option(
        "--max-params", help="Largest model to consider (25M, 1.5B).")] = None,
    top: Annotated[int, typer.Option("--top", help="How many models to show.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Rank models for a task and advise a fine-tuning technique, with reasons.

    Examples: zoo recommend --task image-classification --data-size 800
    zoo recommend --task text-classification --data-size 50k --compute small-gpu --json
    """
    from zoo.recommend import parse_count, recommend

    _registry()
    if top < 1:
        raise UsageError("--top must be at least 1")
    size = parse_count(data_size)
    recs = recommend(task, data_size=size, compute=compute,
                     max_params=parse_count(max_params), top=top)
    if as_json:
        return _json([r.to_dict() for r in recs])
    if not recs:
        print("No model fits these limits; raise --max-params or the compute budget.",
              file=sys.stderr)
        return
    _table(["RANK", "MODEL", "PARAMS", "TECHNIQUE", "WHY"],
           [[str(i + 1), r.name, human_count(r.params), r.technique, "; ".join(r.reasons)]
            for i, r in enumerate(recs)])
