"""CLI manners: --debug anywhere, status lines for long waits, help examples one per line,
tables that fit 100 columns on a terminal, one meaning of a bare NAME, and registry
messages that point at the right name (namespaced names, disabled plugins)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import textwrap
import time

import pytest
from typer.testing import CliRunner

from conftest import run_zoo
from zoo.cli import app

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def on_terminal(*args: str, stream: str = "stdout", env: dict[str, str] | None = None,
                timeout: float = 120) -> tuple[str, subprocess.CompletedProcess]:
    """Run ``zoo ARGS`` with ``stream`` (stdout or stderr) on a pseudo-terminal 100 columns
    wide; returns what the terminal showed and the process (the other stream piped)."""
    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("ZOO_PROGRESS", "NO_COLOR", "FORCE_COLOR")}
    full_env.update({"COLUMNS": "100", "LINES": "50", "TERM": "xterm", **(env or {})})
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: slave}
    proc = subprocess.Popen([sys.executable, "-m", "zoo", *args], env=full_env,
                            text=True, **streams)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:        # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    other = proc.communicate(timeout=timeout)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, *other)
    shown = ANSI.sub("", b"".join(chunks).decode()).replace("\r", "")
    return shown, done


# -- --debug after the subcommand -------------------------------------------------------------

def test_debug_after_the_subcommand_shows_the_traceback():
    res = invoke("info", "resnt50", "--debug")
    assert res.exit_code != 0
    # with --debug the error propagates (a traceback), instead of one line and exit 2
    assert type(res.exception).__name__ == "UnknownModelError"
    proc = run_zoo("get", "resnt50", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert "UnknownModelError" in proc.stderr


def test_debug_after_the_subcommand_is_accepted_by_every_command():
    for args in (["list", "--debug"], ["recommend", "--task", "image-classification",
                                      "--debug"], ["plugins", "--debug"]):
        res = invoke(*args)
        assert res.exit_code == 0, (args, res.output)
    assert "No such option" not in invoke("demo", "nosuch", "--debug").output


# -- status lines -----------------------------------------------------------------------------

def test_long_waits_say_what_they_do_on_a_terminal_only():
    shown, proc = on_terminal("get", "lenet5", stream="stderr")
    assert proc.returncode == 0, shown
    assert "Building lenet5 (61.7K parameters) with random weights" in shown
    assert proc.stdout.startswith("FIELD")
    piped = invoke("get", "lenet5", env={"ZOO_PROGRESS": ""})   # stderr: no terminal
    assert piped.exit_code == 0 and piped.stderr == ""        # logs and pipes: data only
    forced = invoke("get", "lenet5.digits", env={"ZOO_PROGRESS": "1"})
    assert forced.exit_code == 0
    assert "Building lenet5 (61.7K parameters) with its digits weights" in forced.stderr


def test_namespace_listing_announces_the_library_import(monkeypatch, capsys):
    from zoo.cli.status import namespace_wait
    from zoo.registry import Registry

    reg = Registry()
    reg.add_namespace("lib", resolve=lambda n: None, names=lambda: ["a"], description="x")
    monkeypatch.setenv("ZOO_PROGRESS", "1")
    namespace_wait(reg, ["lib/a*", "lib/b"], listing=True)
    namespace_wait(reg, ["lib/x.tag"])
    namespace_wait(reg, ["resnet50", "other/x"])     # no namespace: nothing to wait for
    assert capsys.readouterr().err.splitlines() == [
        "Listing lib/ models (importing lib takes a few seconds)...",
        "Looking up lib/x.tag (importing lib takes a few seconds)..."]
    monkeypatch.setenv("ZOO_PROGRESS", "0")
    namespace_wait(reg, ["lib/a"])
    assert capsys.readouterr().err == ""


def test_finetune_says_it_is_loading_before_the_first_epoch(tmp_path):
    res = invoke("finetune", "lenet5", "--data", "digits", "--out", str(tmp_path / "ft"),
                 "--epochs", "1", "--limit", "64", "--val-limit", "32",
                 env={"ZOO_PROGRESS": "1", "OMP_NUM_THREADS": "1"})
    assert res.exit_code == 0, res.output
    first = res.stderr.splitlines()[0]
    assert first == "Fine-tuning lenet5 on digits: loading the model and the data..."


# -- help -------------------------------------------------------------------------------------

def _commands() -> list[str]:
    import typer.main

    return sorted(typer.main.get_group(app).commands)


@pytest.mark.parametrize("command", [None, *_commands()])
def test_help_examples_are_one_per_line(command):
    args = ["--help"] if command is None else [command, "--help"]
    res = invoke(*args, env={"COLUMNS": "100"})
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    examples = []
    for line in lines[start + 1:]:
        if not line.strip() or line.lstrip().startswith("╭"):
            break
        examples.append(line.strip())
    assert len(examples) >= 2, res.stdout
    for ex in examples:
        assert ex.startswith(("zoo ", "cd ", "ZOO_")), ex
        assert ex.count("zoo ") <= 1, f"two examples on one line: {ex!r}"
        assert command is None or f"zoo {command}" in ex or ex.startswith("cd ")


@pytest.mark.parametrize("command, sentence", [
    ("space", "NAME.TAG exports that trained model; a bare NAME (random weights) is refused "
              "unless --random-weights is given, as for 'zoo demo'."),
    (None, "NAME is an architecture (random weights); NAME.TAG is a trained model (see "
           "'zoo list --pretrained'). 'zoo COMMAND --help' shows a command's options."),
])
def test_help_prose_wraps_to_the_terminal_not_to_the_docstring(command, sentence):
    """On a wide terminal a paragraph is one line: typer kept the docstring's own breaks."""
    args = ["--help"] if command is None else [command, "--help"]
    res = invoke(*args, env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert sentence in [line.strip() for line in res.stdout.splitlines()], res.stdout


# -- 100 columns on a terminal ----------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["list", "--pretrained"],
    ["list"],
    ["recommend", "--task", "image-classification", "--data-size", "800"],
    ["recommend", "--task", "text-classification", "--data-size", "500", "--top", "8"],
    ["recommend", "--task", "image-classification", "--data", "digits", "--different"],
])
def test_tables_fit_100_columns_on_a_terminal(args):
    shown, proc = on_terminal(*args)
    assert proc.returncode == 0, proc.stderr
    lines = shown.splitlines()
    assert len(lines) > 2
    too_wide = [line for line in lines if len(line) > 100]
    assert not too_wide, "\n".join(too_wide)
    # every row still starts on its own line with its name (wrapping only continues)
    header = lines[0].split()
    assert header[0] in ("NAME", "RANK")


def test_pretrained_table_shows_whole_sources_when_piped():
    out = run_zoo("list", "--pretrained", "lenet5*").stdout.splitlines()
    assert out[0].split() == ["NAME", "TASK", "PARAMS", "SOURCE", "METRICS"]
    assert out[1].split()[:4] == ["lenet5.digits", "image-classification", "61.7K",
                                  "package:zoo/trained/lenet5-digits.safetensors"]


# -- a bare NAME means the architecture in get, demo and space --------------------------------

def test_bare_name_is_the_architecture_everywhere():
    from zoo.demos.targets import resolve

    assert resolve("lenet5").tag is None           # as zoo.get('lenet5'): random weights
    assert resolve("lenet5.digits").tag == "digits"
    res = invoke("get", "lenet5", "--json")
    assert res.exit_code == 0 and '"weights": "random"' in res.stdout


def test_demo_of_an_architecture_with_trained_tags_names_them_without_loading_anything():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom zoo.cli import app\n"
            "r = CliRunner().invoke(app, ['demo', 'resnet50'])\n"
            "print(r.exit_code, 'gradio' in sys.modules, 'torch' in sys.modules)\n"
            "print(r.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.splitlines()
    assert out[0] == "2 False False"
    assert out[1].startswith("Error: 'resnet50' is the architecture, with random weights")
    assert "zoo demo resnet50.imagenet" in out[1] and "--random-weights" in out[1]
    assert len([line for line in out[1:] if line]) == 1


def test_demo_of_an_untrained_architecture_says_it_would_be_noise():
    res = invoke("demo", "detr_compact")   # (detr has real weights since detr.coco)
    assert res.exit_code == 2
    assert "'detr_compact' has no trained weights" in res.stderr
    assert "zoo finetune detr_compact" in res.stderr and "--random-weights" in res.stderr


def test_space_refuses_random_weights_unless_asked(tmp_path):
    res = invoke("space", "gcn", "--out", str(tmp_path / "s"))
    assert res.exit_code == 2 and "zoo space gcn.karate" in res.stderr
    assert not (tmp_path / "s").exists()
    res = invoke("space", "lenet5", "--random-weights", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    assert "Note: lenet5 has random weights" in res.stderr
    assert (tmp_path / "r" / "model" / "model.safetensors").is_file()


# -- registry messages ------------------------------------------------------------------------

VAE_CATALOG = textwrap.dedent('''
    [models."vae/beta_vae"]
    family = "vae"
    task = "image-generation"
    builder = "zoo_vae_test.models:beta_vae"

    [models."vae/vae_mlp"]
    family = "vae"
    task = "image-generation"
    builder = "zoo_vae_test.models:vae_mlp"
''')


@pytest.fixture
def vae_plugin(tmp_path, monkeypatch):
    """An installed plugin (a distribution with a ``zoo`` entry point) whose catalog, shipped
    in its package, names its models ``vae/...``, as the VAE plugin of issue 17 did."""
    import importlib

    import zoo.registry

    site = tmp_path / "site"
    pkg = site / "zoo_vae_test"
    pkg.mkdir(parents=True)
    (pkg / "catalog.toml").write_text(VAE_CATALOG)
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from pathlib import Path
        import zoo

        @zoo.hookimpl
        def zoo_register_models(registry):
            registry.add_catalog(Path(__file__).with_name("catalog.toml"))
    '''))
    info = site / "zoo_vae_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-vae-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zoo]\nvae = zoo_vae_test\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    zoo.registry.reset_default()
    yield site
    sys.modules.pop("zoo_vae_test", None)
    zoo.registry.reset_default()


def one_error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    return lines[0]


def test_misspelt_namespaced_name_suggests_it_instead_of_a_directory_error(vae_plugin):
    assert "vae/beta_vae" in invoke("list", "vae/*").stdout
    for args in (["get", "vae/beta_vaee"], ["info", "vae/beta_vaee"],
                 ["demo", "vae/beta_vaee"]):
        msg = one_error(invoke(*args))
        assert "did you mean 'vae/beta_vae'" in msg, msg
        assert "config.json" not in msg
    # the bare name finds its namespaced model too
    assert "did you mean 'vae/beta_vae'" in one_error(invoke("get", "beta_vae"))


def test_slashed_name_that_is_no_model_and_no_folder_says_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = one_error(invoke("get", "out/lenet5"))
    assert "unknown model 'out/lenet5'" in msg and "No directory by that name either" in msg
    assert "'lenet5'" in msg
    # a folder that exists is still a folder
    (tmp_path / "out" / "lenet5").mkdir(parents=True)
    assert "config.json" in one_error(invoke("get", "out/lenet5"))


def test_unknown_model_of_a_disabled_plugin_says_how_to_enable_it(vae_plugin, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "vae")
    msg = one_error(invoke("get", "vae/beta_vae"))
    assert msg == ("Error: unknown model 'vae/beta_vae'. It comes from plugin 'vae' "
                   "(zoo-vae-test), disabled by ZOO_DISABLE_PLUGINS=vae; unset "
                   "ZOO_DISABLE_PLUGINS to enable it.")
    assert "zoo_vae_test" not in sys.modules          # found without importing it
    monkeypatch.delenv("ZOO_DISABLE_PLUGINS")
    monkeypatch.setenv("ZOO_PLUGINS", "other")
    res = invoke("info", "vae/vae_mlp")
    # 'other' names nothing installed: a warning line says so before the error
    warning, msg = res.stderr.strip().splitlines()
    assert warning.startswith("zoo: warning: ZOO_PLUGINS names 'other', which is no ")
    assert res.exit_code == 2 and msg.startswith("Error: ")
    assert "which ZOO_PLUGINS=other leaves out; set ZOO_PLUGINS=other,vae to load it" in msg


def test_unknown_model_of_a_disabled_builtin_plugin(monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "gan,cnn")
    msg = one_error(invoke("info", "lenet5.digits"))
    assert "It comes from plugin 'cnn', disabled by ZOO_DISABLE_PLUGINS=gan,cnn; set " \
           "ZOO_DISABLE_PLUGINS=gan to enable it" in msg
    # a name no disabled plugin declares: the usual message, and which plugins are off
    msg = one_error(invoke("info", "qqqqqqqq"))
    assert "unknown model 'qqqqqqqq'" in msg and "Disabled plugins: cnn, gan" in msg
