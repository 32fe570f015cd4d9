"""The documentation is tested: the plugin guide's files make a plugin that installs, loads,
builds and passes its own tests; every picture and relative link in README.md and docs/
resolves; the README's screenshots come from the real CLI.

The guide (docs/plugins.md) marks what the tests use with HTML comments, invisible on
GitHub: ``<!-- file: PATH -->`` before a fenced block that is a file of the plugin,
``<!-- output: COMMAND -->`` before a block of output the command must print, and
``<!-- run: python -->`` before a snippet that must run once the plugin is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import run_zoo

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAX_IMAGE_BYTES = 200 * 1024
CHROMIUM = "/usr/bin/chromium"

BLOCK_RE = re.compile(r"^<!-- (?P<kind>file|output|run): (?P<what>.+?) -->[ \t]*\n"
                      r"```[\w-]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
FENCE_RE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
LINK_RE = re.compile(r"!?\[[^\]]*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)"   # [text](target)
                     r"|<img[^>]*\ssrc=\"([^\"]+)\"")


def guide_blocks(kind: str) -> list[tuple[str, str]]:
    """``(what, body)`` of every block of the guide marked ``<!-- KIND: what -->``."""
    return [(m["what"], m["body"]) for m in BLOCK_RE.finditer(GUIDE.read_text())
            if m["kind"] == kind]


def with_path(site: Path) -> dict[str, str]:
    """Environment overrides that put ``site`` first on the path of a child Python."""
    rest = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([str(site), *([rest] if rest else [])]),
            "OMP_NUM_THREADS": "1"}


def python(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300):
    full = {k: v for k, v in os.environ.items()
            if k not in ("ZOO_CATALOG", "ZOO_PLUGINS", "ZOO_DISABLE_PLUGINS", "ZOO_DEBUG")}
    full.update(env)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def guide_projects(tmp_path_factory) -> tuple[dict[str, tuple[Path, str]], Path]:
    """Every plugin of the guide written out, its weights made by its own script, and all
    of them pip-installed (built, not linked) into one folder:
    ``({project folder: (path, script output)}, site)``."""
    root = tmp_path_factory.mktemp("guide")
    files = guide_blocks("file")
    assert files, f"{GUIDE} marks no files"
    for rel, body in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    projects = {}
    for name in dict.fromkeys(Path(rel).parts[0] for rel, _ in files):
        project = root / name
        made = python("make_weights.py", env={"OMP_NUM_THREADS": "1"}, cwd=project)
        assert made.returncode == 0, made.stderr
        projects[name] = (project, made.stdout)
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(site),
         *(str(p) for p, _ in projects.values())],
        check=True, capture_output=True, text=True, timeout=300)
    return projects, site


@pytest.fixture(scope="module")
def guide_plugin(guide_projects) -> tuple[Path, Path, str]:
    """The guide's first plugin, zoo-mini: ``(project, site, script output)``."""
    projects, site = guide_projects
    project, printed = projects["zoo-mini"]
    return project, site, printed


def test_guide_weights_script_prints_the_catalogs_sha256_and_accuracy(guide_plugin):
    project, _, printed = guide_plugin
    catalog = tomllib.loads((project / "zoo_mini" / "catalog.toml").read_text())
    tag = catalog["models"]["mini/centroid"]["pretrained"]["digits"]
    assert f"sha256 {tag['sha256']}" in printed
    accuracy = float(re.search(r"accuracy ([\d.]+)", printed).group(1))
    assert accuracy == tag["metrics"]["accuracy"] and accuracy > 0.85
    weights = project / "zoo_mini" / "weights" / "centroid-digits.safetensors"
    assert weights.stat().st_size < 4096  # the guide says 2.7 kB


def test_guide_plugin_is_listed_builds_and_prints_the_documented_output(guide_plugin):
    _, site, _ = guide_plugin
    env = with_path(site)
    proc = run_zoo("plugins", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    mini = {p["name"]: p for p in json.loads(proc.stdout)}["mini"]
    assert (mini["status"], mini["models"]) == ("ok", ["mini/centroid"]), mini["errors"]
    assert (mini["distribution"], mini["version"]) == ("zoo-mini", "0.1.0")
    assert "warning" not in proc.stderr

    listing = {m["name"]: m for m in json.loads(run_zoo("list", "--json", env=env).stdout)}
    entry = listing["mini/centroid"]
    assert (entry["family"], entry["plugin"], entry["pretrained"]) == ("linear", "mini",
                                                                      ["digits"])

    documented = dict(guide_blocks("output"))
    assert "zoo get mini/centroid.digits" in documented, "the guide shows no 'zoo get' output"
    for command, body in documented.items():
        args = command.split()
        assert args[0] == "zoo", command
        proc = run_zoo(*args[1:], env=env)
        assert proc.returncode == 0, proc.stderr
        printed = {" ".join(line.split()) for line in proc.stdout.splitlines()}
        for line in body.splitlines():
            assert " ".join(line.split()) in printed, f"{command}: {line!r} not printed"
        if args[1] == "get":      # one forward pass: an 8x8 image in, 10 class scores out
            fields = dict(line.split(None, 1) for line in printed if " " in line)
            assert (fields["input"], fields["output"]) == ("[1, 1, 8, 8]", "[1, 10]")
            assert fields["params"] == str(entry["params"]) == "650"


def test_guide_plugin_passes_its_own_tests(guide_plugin):
    project, site, _ = guide_plugin
    proc = python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                  env=with_path(site), cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b5 passed\b", proc.stdout), proc.stdout


def test_guide_snippets_run(guide_plugin, tmp_path):
    _, site, _ = guide_plugin
    snippets = guide_blocks("run")
    assert snippets
    for _, code in snippets:
        proc = python("-c", code, env=with_path(site), cwd=tmp_path)
        assert proc.returncode == 0, f"{code}\n{proc.stderr}"


# -- the guide's second plugin: a new family with its own task adapter -----------------------

VAE_VERBS = r"""
import json, sys
import zoo
from zoo.demos.app import build_demo
from zoo.demos.space import export_space
from zoo.publish import publish

tmp = sys.argv[1]
out = {"grid": list(zoo.predict("vae/mlp.digits", 3, n=16).shape),
       "same_seed": bool((zoo.predict("vae/mlp.digits", 3, n=4)
                          == zoo.predict("vae/mlp.digits", 3, n=4)).all())}
demo = build_demo("vae/mlp.digits")
out["demo_image"] = list(demo.zoo_adapter.predict(0, 4, 1.0).size)
out["demo_inputs"] = [c.label for c in demo.zoo_adapter.inputs()]
import torch
for name in ("vae/mlp.digits", "vae/conv", tmp + "/ft"):
    with torch.no_grad():
        out[name] = list(zoo.get(name)(torch.zeros(1, 16 if "conv" in name else 8)).shape)
pub = publish("vae/mlp.digits", "me/vae-digits", dry_run=True, out=tmp + "/hub")
out["published"] = sorted(p for p, _ in pub.files)
out["space"] = str(export_space("vae/mlp.digits", tmp + "/space"))
print(json.dumps(out))
"""


def _digit_pngs(folder: Path, n: int = 300) -> Path:
    from PIL import Image

    from zoo.finetune.data import _digits

    x, _, _ = _digits()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):       # inverted digits: a domain the trained model has not seen
        Image.fromarray(((1 - x[i, 0].numpy()) * 255).astype("uint8")).save(
            folder / f"{i}.png")
    return folder


def test_guide_vae_weights_script_ships_into_its_own_package(guide_projects):
    projects, _ = guide_projects
    project, printed = projects["zoo-vae"]
    assert "add to zoo_vae/catalog.toml:" in printed and "registry.toml" not in printed
    block = tomllib.loads(printed[printed.index("[models."):])
    tag = block["models"]["vae/mlp"]["pretrained"]["digits"]
    assert tag["source"] == "package:zoo_vae/weights/mlp-digits.safetensors"
    assert re.fullmatch(r"[0-9a-f]{64}", tag["sha256"]) and tag["metrics"]["heldout-mse"] < 0.2
    catalog = tomllib.loads((project / "zoo_vae" / "catalog.toml").read_text())
    assert catalog["models"]["vae/mlp"]["pretrained"]["digits"]["source"] == tag["source"]


def test_guide_vae_plugin_gets_every_verb(guide_projects, tmp_path):
    _, site = guide_projects
    env = with_path(site)
    plugins = {p["name"]: p for p in json.loads(run_zoo("plugins", "--json", env=env).stdout)}
    assert (plugins["vae"]["status"], plugins["vae"]["models"]) == \
        ("ok", ["vae/mlp", "vae/conv"]), plugins["vae"]["errors"]
    listing = {m["name"]: m for m in json.loads(run_zoo("list", "vae/*", "--json",
                                                        env=env).stdout)}
    assert listing["vae/mlp"]["pretrained"] == ["digits"] and "vae/conv" in listing
    info = json.loads(run_zoo("info", "vae/mlp.digits", "--json", env=env).stdout)
    assert info["finetune"]["layer_groups"] == ["encoder", "decoder"]
    # the plugin's recipe (its ELBO) through zoo finetune, on a user's folder of images
    data = _digit_pngs(tmp_path / "inverted")
    run = run_zoo("finetune", "vae/mlp.digits", "--data", str(data), "--out",
                  str(tmp_path / "ft"), "--epochs", "3", "--json", env=env)
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert metrics["technique"] == "full" and metrics["metric"] == "fd"
    assert metrics["final"]["fd"] < 0.7 * metrics["initial"]["fd"], metrics["epochs"]
    # zoo's generation predictor and demo with no code from the plugin; get, publish, space
    verbs = python("-c", VAE_VERBS, str(tmp_path), env=env, cwd=tmp_path)
    assert verbs.returncode == 0, verbs.stderr
    answers = json.loads(verbs.stdout.splitlines()[-1])
    assert answers["grid"] == [4 * 33 + 1, 4 * 33 + 1, 3] and answers["same_seed"]
    assert answers["demo_image"][0] > 32 and "seed" in answers["demo_inputs"]
    assert answers["vae/mlp.digits"] == answers[str(tmp_path / "ft")] == [1, 1, 8, 8]
    assert answers["vae/conv"] == [1, 1, 16, 16]
    assert "model.safetensors" in answers["published"]
    space = Path(answers["space"])
    assert (space / "zoo_vae" / "models.py").is_file()      # the Space carries the plugin
    _serve_and_ask(space, env)


def _serve_and_ask(space: Path, env: dict[str, str]) -> None:
    """Run the Space's app.py (the plugin importable, as the Space's requirements make it)
    and ask its /predict endpoint for 4 samples."""
    import time

    from gradio_client import Client
    from helpers import free_port, stop
    from PIL import Image

    port = free_port()
    log = space / "app.log"
    full = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    full.update(env, GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=full, stdout=fh,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while "Serving on " not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        url = log.read_text().split("Serving on ", 1)[1].split()[0]
        answer = Client(url, verbose=False).predict(0, 4, 1.0, api_name="/predict")
        with Image.open(answer) as im:
            assert im.width > 32 and im.height > 32
    finally:
        stop(proc)


# -- the guide's reference tables match the code -------------------------------------------

def guide_table(marker: str) -> list[list[str]]:
    """Rows (cells, backticks stripped) of the table after ``<!-- marker -->``."""
    text = GUIDE.read_text()
    start = text.index(f"<!-- {marker} -->")
    rows = []
    for line in text[start:].splitlines()[3:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().strip("`") for c in line.strip().strip("|").split("|")])
    return rows


def test_guide_lists_every_task_every_key_and_every_field():
    from zoo.registry.catalog import FINETUNE_KEYS, INPUT_KEYS, MODEL_KEYS, PRETRAINED_KEYS
    from zoo.registry.plugin_checks import HOOK_NAMES
    from zoo.registry.tasks import BUILTIN_TASKS

    assert {r[0]: r[1] for r in guide_table("tasks")} == BUILTIN_TASKS
    assert {r[0] for r in guide_table("finetune-keys")} == FINETUNE_KEYS

    def names(rows):
        return {n.strip().strip("`") for r in rows for n in r[0].split(",")}

    assert names(guide_table("model-fields")) == set(MODEL_KEYS) | {"name"}
    assert names(guide_table("pretrained-fields")) == set(PRETRAINED_KEYS)
    text = GUIDE.read_text()
    assert all(f"`{k}`" in text for k in INPUT_KEYS)
    hooks = {m for m in re.findall(r"^\| `(zoo_\w+)\(", text, re.M)}
    assert hooks == set(HOOK_NAMES)


def test_guide_exit_codes_are_the_codes_zoo_exits_with():
    import zoo.errors

    for code, _meaning, raised in guide_table("exit-codes"):
        for name in filter(None, (n.strip().strip("`") for n in raised.split(","))):
            assert getattr(zoo.errors, name).exit_code == int(code), name
    proc = run_zoo("get", "lenet5.nosuchtag")
    assert proc.returncode == 2 and proc.stderr.startswith("Error: ")


# -- links and pictures --------------------------------------------------------------------

def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE_RE.sub("", page.read_text())
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def relative_links(page: Path) -> list[str]:
    """Link and image targets of ``page`` outside code blocks that are not web addresses."""
    text = FENCE_RE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [a or b for a, b in LINK_RE.findall(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_anchor_slugs_follow_github():
    assert slug("Names, namespaces and clashes") == "names-namespaces-and-clashes"
    assert slug("`zoo_mini/__init__.py`: the hooks") == "zoo_mini__init__py-the-hooks"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page):
    links = relative_links(page)
    broken = []
    for link in links:
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no {target}")
        elif not target.is_relative_to(ROOT):
            broken.append(f"{link}: outside the repository")
        elif fragment and target.suffix == ".md" and fragment not in anchors(target):
            broken.append(f"{link}: no heading '#{fragment}' in {target.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_skips_code():
    page = ROOT / "README.md"
    links = relative_links(page)
    assert "docs/images/demo-lenet5.png" in links
    assert "docs/finetune.md" in links
    assert relative_links(GUIDE).count("../examples/zoo-plugin-example/") >= 1


def test_pictures_in_the_docs_are_small():
    images = sorted((ROOT / "docs" / "images").iterdir())
    assert images
    big = [f"{p.name} {p.stat().st_size // 1024} kB" for p in images
           if p.stat().st_size > MAX_IMAGE_BYTES]
    assert not big, f"over {MAX_IMAGE_BYTES // 1024} kB (every reader downloads them): {big}"
    fetching = [p.name for p in images
                if p.suffix == ".svg" and re.search(r"url\(\"?https?:", p.read_text())]
    assert not fetching, f"SVGs that fetch from the web when shown: {fetching}"


# -- the README's screenshots ----------------------------------------------------------------

@pytest.fixture(scope="module")
def images_script():
    path = ROOT / "scripts" / "make_readme_images.py"
    spec = importlib.util.spec_from_file_location("make_readme_images", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshot_is_the_real_cli_in_a_terminal_and_needs_no_network(images_script, tmp_path):
    ansi = images_script.terminal_output(["list", "lenet*"])
    assert "\x1b[1m" in ansi                    # on a terminal the header is bold
    assert re.search(r"^lenet5\s+cnn\s+image-classification\s+61\.7K\s+digits$",
                     re.sub(r"\x1b\[[0-9;]*m", "", ansi), re.M)
    svg = images_script.save_terminal_svg(ansi, "zoo list 'lenet*'", tmp_path / "shot.svg")
    text = svg.read_text()
    assert "lenet5" in text and "61.7K" in text and "zoo&#160;list" in text
    assert not re.search(r"url\(\"?https?:", text)       # no web fonts to fetch
    if Path(CHROMIUM).exists():
        from PIL import Image

        png = images_script.svg_to_png(svg, tmp_path / "shot.png")
        with Image.open(png) as im:
            assert im.width > 300 and im.height > 60
            assert len(im.getcolors(256) or []) > 4   # text drawn, not a blank frame


def test_readme_images_script_refuses_unknown_names(images_script, capsys):
    with pytest.raises(SystemExit):
        images_script.main(["zoo-lst"])
    assert "choose from zoo-list" in capsys.readouterr().err
