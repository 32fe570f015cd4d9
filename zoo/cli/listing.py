"""``zoo list``, ``zoo info``, ``zoo recommend``: the catalog, read without torch."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

from zoo.cli.base import JSON_HELP, _registry, command, handles_errors, typer
from zoo.cli.render import _check_choice, _json, _table, human_count
from zoo.cli.status import namespace_wait, status
from zoo.errors import UsageError
from zoo.registry.spec import GFLOPS_NOTE


@command("list")
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
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List models, sorted by name.

    A pattern with a dot ('*.digits') matches trained models NAME.TAG; a pattern
    'timm/...' or 'torchvision/...' lists that library's models (it imports the library).

    Examples:
      zoo list
      zoo list 'resnet*' --family cnn
      zoo list --pretrained --json
      zoo list 'timm/vit_*'
    """
    reg = _registry()
    _check_choice(family, set(reg.families), "family")
    pats = list(patterns or [])
    if namespaces:
        for prefix in sorted(reg.namespaces):
            status(f"Listing {prefix}/ models (importing {prefix} takes a few seconds)...")
    else:
        namespace_wait(reg, pats, listing=True)
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
        # No FAMILY or DATASET column (the name says one; --json and `zoo info` have both):
        # with them the table could not fit 100 columns. On a terminal the task and source
        # are cut first; piped output is whole.
        _table(["NAME", "TASK", "PARAMS", "SOURCE", "METRICS"],
               [[f"{s.name}.{t}", s.task_for(t), human_count(s.params_for(t)),
                 s.pretrained[t].source,
                 ", ".join(f"{k}={v:g}" for k, v in s.pretrained[t].metrics.items()) or "-"]
                for s, t in items], floors={"TASK": 10, "SOURCE": 10})
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
             ", ".join(s.trained_tags()) or "-"] for s in specs],
           floors={"FAMILY": 6, "TASK": 10})


@command("info")
@handles_errors
def info_cmd(
    name: Annotated[str, typer.Argument(help="NAME or NAME.TAG.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show everything known about a model: paper, licence, input, size, tags, plugin.

    NAME shows the architecture and its trained models; NAME.TAG one trained model.

    Examples:
      zoo info resnet50
      zoo info lenet5.digits --json
    """
    from zoo.api import info

    namespace_wait(_registry(), [name])
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


@command("recommend")
@handles_errors
def recommend_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="What the model must do.")],
    data_size: Annotated[str | None, typer.Option(
        "--data-size", "-d", help="Labelled examples you have (5000, 20k).")] = None,
    compute: Annotated[str, typer.Option(
        "--compute", help="cpu, small-gpu or large-gpu.")] = "cpu",
    max_params: Annotated[str | None, typer.Option(
        "--max-params", help="Largest model to consider (25M, 1.5B).")] = None,
    similar: Annotated[bool | None, typer.Option(
        "--similar/--different", help="Your data is like (or unlike) what the models were "
        "trained on: photos for ImageNet weights, web text for text encoders.",
        show_default=False)] = None,
    data: Annotated[str | None, typer.Option(
        "--data", help="Your training data (as for zoo finetune): counts it and checks "
        "how far it is from each model's.", metavar="PATH")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Only weights on this machine (also when ZOO_OFFLINE or "
        "HF_HUB_OFFLINE is set).")] = False,
    top: Annotated[int, typer.Option("--top", help="How many models to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Rank models for a task and advise a fine-tuning technique, with reasons.

    From the catalog alone (no torch, no network): how far each model's pretrained
    weights transfer to your data, its size for the compute budget, your data size.

    Examples:
      zoo recommend --task image-classification --data-size 800
      zoo recommend --task image-classification --data photos/ --different
      zoo recommend --task text-classification --data-size 50k --compute small-gpu --json
      zoo recommend --task image-generation --offline
    """
    from zoo.recommend import offline_env, parse_count, probe, recommend

    _registry()
    if top < 1:
        raise UsageError("--top must be at least 1")
    size = parse_count(data_size)
    profile = probe(data) if data is not None else None
    if profile is not None and not as_json:
        print(f"Data: {profile.describe()}", file=sys.stderr)
    offline = offline or offline_env()
    recs = recommend(task, data_size=size, compute=compute,
                     max_params=parse_count(max_params), top=top, data=profile,
                     domain=None if similar is None else ("similar" if similar else "different"),
                     offline=offline)
    if as_json:
        return _json([r.to_dict() for r in recs])
    if not recs:
        print("No model fits these limits; raise --max-params or the compute budget.",
              file=sys.stderr)
        return
    if offline:
        print("Offline: only weights on this machine (shipped or cached) are advised.",
              file=sys.stderr)
    _table(["RANK", "MODEL", "PARAMS", "TECHNIQUE", "WHY"],
           [[str(i + 1), r.name, human_count(r.params), r.technique, r.why]
            for i, r in enumerate(recs)])
