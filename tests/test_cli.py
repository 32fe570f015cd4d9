"""The zoo command as a user meets it: listings, info, get, save/reload, errors, speed rules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import zoo
from conftest import run_zoo

HEAVY = ("torch", "timm", "transformers", "torch_geometric", "peft", "gradio", "torchvision")
# typer (and pydantic behind it) and rich cost more than a listing; its fast path avoids them
FAST_ONLY = ("typer", "rich", "pydantic", "click")


@pytest.mark.parametrize("args", [["list"], ["info", "resnet50"], ["info", "lenet5", "--json"],
                                  ["recommend", "--task", "image-classification"],
                                  ["plugins"], ["list", "--pretrained", "--json"]])
def test_light_commands_import_no_heavy_library(args):
    code = (
        "import sys\n"
        f"sys.argv = ['zoo', *{args!r}]\n"
        "from zoo.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [["list"], ["-c", "x.toml", "list"], ["list", "res*", "-f", "cnn"],
                                  ["list", "--debug"], ["info", "lenet5", "--debug", "--json"],
                                  ["list", "--task=image-classification", "--json"],
                                  ["info", "resnet50"], ["plugins", "--json"],
                                  ["recommend", "-t", "image-classification", "-d", "800"]])
def test_plain_listing_commands_take_the_fast_path(args):
    from zoo.cli import _parse_fast

    assert _parse_fast(args) is not None


@pytest.mark.parametrize("args", [["list", "--help"], ["list", "--famly", "cnn"], ["info"],
                                  ["info", "a", "b"], ["list", "-f"], ["get", "lenet5"],
                                  ["--version"], ["plugins", "extra"], ["list", "--family="],
                                  ["recommend", "--data-size", "800"],
                                  ["recommend", "--task", "x", "--top", "3"]])
def test_anything_else_goes_to_typer(args):
    from zoo.cli import _parse_fast

    assert _parse_fast(args) is None


@pytest.mark.parametrize("args", [["list", "l*", "--family", "cnn"], ["list", "--pretrained"],
                                  ["info", "lenet5", "--json"], ["info", "resnt50"],
                                  ["list", "--task", "image-clasification"], ["plugins"],
                                  ["recommend", "--task", "text-classification", "-d", "50k",
                                   "--compute", "small-gpu", "--json"],
                                  ["recommend", "-t", "image-classification", "--max-params",
                                   "5M"],
                                  ["recommend", "--task", "nothing"],
                                  ["recommend", "--task", "image-classification", "-d", "lots"],
                                  ["recommend", "--task", "image-classification",
                                   "--compute", "tpu"],
                                  ["recommend", "--task", "image-classification", "--offline",
                                   "--different", "--json"],
                                  ["recommend", "--task", "text-classification", "--similar"],
                                  ["recommend", "--task", "image-classification", "--data",
                                   "no/such/folder"]])
def test_fast_path_and_typer_give_the_same_output(args, capsys):
    from zoo.cli import _run_fast, app

    def run(fn):
        try:
            fn()
            code = 0
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err

    fast = run(lambda: _run_fast(args) or pytest.fail("not fast"))
    slow = run(lambda: app(args, prog_name="zoo"))
    assert fast == slow


@pytest.mark.parametrize("args", [["list"], ["list", "--json", "--debug"], ["info", "resnet50"],
                                  ["--debug", "info", "lenet5.digits", "--json"], ["plugins"],
                                  ["recommend", "--task", "image-classification", "-d", "800"],
                                  ["info", "no-such-model"]])
def test_listing_commands_import_neither_typer_nor_rich(args):
    """The fast path's whole point: typer, rich, pydantic and click cost more than the
    listing itself (issue 18). A usage error like an unknown model stays on it too."""
    code = ("import sys, io, contextlib\n"
            f"sys.argv = ['zoo', *{args!r}]\nfrom zoo.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main()\n    except SystemExit:\n        pass\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FAST_ONLY!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_help_and_usage_errors_still_go_through_typer():
    code = ("import sys, io, contextlib\nsys.argv = ['zoo', 'list', '--famly', 'cnn']\n"
            "from zoo.cli import main\n"
            "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
            "    try:\n        main()\n    except SystemExit as e:\n        code = e.code\n"
            "print(code, 'typer' in sys.modules, 'famly' in err.getvalue())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["2", "True", "True"], proc.stdout + proc.stderr


def test_zoo_cli_app_is_the_typer_app_even_after_a_command_module_is_imported():
    code = ("import zoo.cli.get, zoo.cli.listing, typer\nfrom zoo.cli import app\n"
            "import zoo.cli\nassert isinstance(app, typer.Typer) and zoo.cli.app is app\n"
            "print([c.name for c in app.registered_commands])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0].startswith("['list',"), proc.stdout


@pytest.mark.parametrize("command", ["list", "info", "get", "plugins", "recommend"])
def test_every_command_has_help_with_an_example(command):
    proc = run_zoo(command, "--help")
    assert proc.returncode == 0
    assert "Example" in proc.stdout and "--help" in proc.stdout


def test_top_level_help_and_version():
    proc = run_zoo("--help")
    assert proc.returncode == 0 and "list" in proc.stdout and "plugins" in proc.stdout
    assert run_zoo("--version").stdout.strip() == f"zoo {zoo.__version__}"


def test_list_json_is_valid_sorted_and_filters_compose():
    data = json.loads(run_zoo("list", "--json").stdout)
    names = [d["name"] for d in data]
    assert names == sorted(names) and "lenet5" in names
    cnn = json.loads(run_zoo("list", "--family", "cnn", "--task", "image-classification",
                             "--json").stdout)
    assert cnn and all(d["family"] == "cnn" for d in cnn)
    assert json.loads(run_zoo("list", "nothing-like-this*", "--json").stdout) == []
    trained = json.loads(run_zoo("list", "--pretrained", "--json").stdout)
    assert {"name", "model", "tag", "metrics", "source"} <= set(trained[0])


def test_list_table_has_the_promised_columns():
    out = run_zoo("list", "res*").stdout.splitlines()
    assert out[0].split() == ["NAME", "FAMILY", "TASK", "PARAMS", "PRETRAINED"]
    assert any(line.startswith("resnet50 ") and "imagenet" in line for line in out)


def test_unknown_family_or_task_is_a_usage_error_with_a_suggestion():
    proc = run_zoo("list", "--family", "cnnn")
    assert proc.returncode == 2 and "did you mean 'cnn'" in proc.stderr
    proc = run_zoo("list", "--task", "image-clasification")
    assert proc.returncode == 2 and "did you mean 'image-classification'" in proc.stderr


def test_info_shows_metadata_and_provenance():
    data = json.loads(run_zoo("info", "resnet50.imagenet", "--json").stdout)
    assert data["paper"].startswith("Deep Residual Learning")
    assert data["input"]["size"] == [3, 224, 224]
    assert data["selected"]["source"] == "torchvision:ResNet50_Weights.IMAGENET1K_V2"
    assert data["plugin"] == "cnn" and data["demo"] == "image-classification"
    assert data["finetune"]["head"] == "fc"
    table = run_zoo("info", "lenet5").stdout
    assert "LeCun" in table and "zoo.plugins.cnn.lenet:lenet5" in table


@pytest.mark.parametrize("args", [["get", "resnt50"], ["info", "lenet"], ["get", "lenet5.nope"]])
def test_unknown_names_exit_2_with_suggestions_and_no_traceback(args):
    proc = run_zoo(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: unknown")
    assert "did you mean" in proc.stderr or "no trained weights" in proc.stderr or \
        "Trained tags" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback():
    proc = run_zoo("--debug", "get", "resnt50")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = run_zoo("get", "resnt50", env={"ZOO_DEBUG": "1"})
    assert "Traceback" in proc.stderr


def test_get_summarises_one_real_forward_pass():
    data = json.loads(run_zoo("get", "lenet5", "--json").stdout)
    assert data["params"] == data["trainable_params"] == 61706
    assert data["input_shape"] == [1, 1, 32, 32] and data["output_shape"] == [1, 10]
    assert data["gflops"] == pytest.approx(0.000845, rel=0.05)
    assert data["module"] == "zoo.plugins.cnn.lenet.LeNet5"
    data = json.loads(run_zoo("get", "lenet5", "-k", "num_classes=3", "--json").stdout)
    assert data["output_shape"] == [1, 3]


def test_get_save_then_get_dir_rebuilds_the_same_model(tmp_path):
    out = tmp_path / "saved"
    proc = run_zoo("get", "lenet5", "-k", "num_classes=4", "--save", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["kwargs"]["num_classes"] == 4 and config["builder"].endswith(":lenet5")
    data = json.loads(run_zoo("get", str(out), "--json").stdout)
    assert data["output_shape"] == [1, 4]
    a, b = zoo.get(str(out)), zoo.get(str(out))
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), zoo.get("lenet5", num_classes=4).eval()(x))


def test_save_refuses_a_non_model_directory_and_leaves_it_alone(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    proc = run_zoo("get", "lenet5", "--save", str(target))
    assert proc.returncode == 2 and "choose another --save path" in proc.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_damaged_saved_model_is_a_clear_error(tmp_path):
    proc = run_zoo("get", str(tmp_path))
    assert proc.returncode == 2 and "not a zoo model directory" in proc.stderr
    zoo_dir = tmp_path / "m"
    run_zoo("get", "lenet5", "--save", str(zoo_dir))
    (zoo_dir / "model.safetensors").write_bytes(b"garbage")
    proc = run_zoo("get", str(zoo_dir))
    assert proc.returncode == 1 and "model.safetensors" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_tag_kwarg_cannot_be_overridden():
    spec = zoo.ModelSpec(name="x", family="cnn", task="t", builder="zoo.plugins.cnn.lenet:lenet5",
                         pretrained={"t": zoo.PretrainedSpec(tag="t", source="file:/w",
                                                             kwargs={"num_classes": 10})})
    from zoo.loading.build import merged_kwargs

    with pytest.raises(zoo.UsageError, match="needs num_classes=10 to fit its weights"):
        merged_kwargs(spec, "t", {"num_classes": 5})


def test_bad_kwarg_syntax_is_a_usage_error():
    proc = run_zoo("get", "lenet5", "-k", "num_classes")
    assert proc.returncode == 2 and "KEY=VALUE" in proc.stderr


def test_the_console_script_is_installed():
    import shutil

    exe = shutil.which("zoo")
    assert exe, "the 'zoo' console script is not on PATH"
    proc = subprocess.run([exe, "list", "lenet5"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "lenet5" in proc.stdout


def test_table_aligns_wraps_the_last_column_and_colours_only_when_asked():
    from zoo.cli.table import BOLD, render

    rows = [["cnn", "ok", "short"], ["transformer", "error", "word " * 30]]
    plain = render(["PLUGIN", "STATUS", "ERRORS"], rows)
    lines = plain.splitlines()
    assert len(lines) == 3 and "\033" not in plain
    assert lines[1].index("ok") == lines[2].index("error") == lines[0].index("STATUS")
    wrapped = render(["PLUGIN", "STATUS", "ERRORS"], rows, width=60).splitlines()
    assert len(wrapped) > 3 and all(len(ln) <= 60 for ln in wrapped)
    start = lines[0].index("ERRORS")
    assert all(ln[:start].strip() == "" and ln[start:].startswith("word")
               for ln in wrapped[3:])                  # continuation lines under the column
    coloured = render(["PLUGIN", "STATUS", "ERRORS"], rows, colour=True)
    assert coloured.startswith(BOLD) and "\033[31merror" in coloured
    assert render(["A"], []) == "A\n"


def test_colour_follows_no_color_and_force_color():
    env = {"FORCE_COLOR": "1", "NO_COLOR": ""}
    assert run_zoo("plugins", env=env).stdout.startswith("\033[1m")
    assert "\033" not in run_zoo("plugins", env={**env, "NO_COLOR": "1"}).stdout
    assert "\033" not in run_zoo("list", env={"FORCE_COLOR": ""}).stdout   # piped


def test_table_wider_than_the_terminal_cuts_long_middle_columns_not_names():
    from zoo.cli.table import MIDDLE_MIN, render

    rows = [["transformer.dates", "translation", "generated dates " * 6, "exact-match=1, x=2"],
            ["lenet5.digits", "image-classification", "sklearn-digits", "accuracy=0.9889"]]
    out = render(["NAME", "TASK", "DATASET", "METRICS"], rows, width=90).splitlines()
    assert all(len(ln) <= 90 for ln in out), out
    assert out[1].startswith("transformer.dates") and "…" in out[1]
    assert "image-classification" in out[-1]           # short middle cells stay whole
    assert out[0].index("METRICS") - out[0].index("DATASET") - 2 >= MIDDLE_MIN
    piped = render(["NAME", "TASK", "DATASET", "METRICS"], rows)
    assert "generated dates " * 6 in piped and "…" not in piped   # never cut when piped
