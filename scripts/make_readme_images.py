"""Regenerate the README's pictures of the CLI, offline and deterministically.

    python scripts/make_readme_images.py                 # every image
    python scripts/make_readme_images.py zoo-list curve  # some: zoo-list, zoo-recommend, curve

Writes into docs/images/:

- ``zoo-list.svg`` / ``.png``: ``zoo list`` as a 110-column terminal shows it. The real CLI
  runs in a pseudo-terminal (on a terminal ``zoo`` prints bold headers and colours and wraps
  to the width; piped, plain columns), its ANSI output is replayed into a recording rich
  console and saved as SVG, cropped to the columns used. The PNG is that SVG rendered by
  Debian's chromium through playwright (skipped, with a message, when ``/usr/bin/chromium``
  is missing): every Markdown viewer shows a PNG.
- ``zoo-recommend.svg`` / ``.png``: ``zoo recommend --task image-classification
  --data-size 800 --top 3``, the same way.
- ``finetune-curve.png``: the ``curve.png`` that a real ``zoo finetune lenet5 --data digits``
  run writes (10 epochs, seed 0, one thread: about 15 s).

Run twice, it writes byte-identical files (checked on this machine; fonts and library
versions elsewhere may change the PNGs' pixels).

Only built-in plugins are loaded (``ZOO_PLUGINS=""``), so plugins installed on the machine
do not change the pictures. Nothing touches the network: the SVG carries no web-font URL
and the browser refuses every request that is not for a local file.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"
WIDTH = 110  # terminal columns of the screenshots

# image name -> the zoo command's arguments
SHOTS: dict[str, list[str]] = {
    "zoo-list": ["list"],
    "zoo-recommend": ["recommend", "--task", "image-classification", "--data-size", "800",
                      "--top", "3"],
}
CURVE = "curve"
CURVE_ARGS = ["finetune", "lenet5", "--data", "digits", "--epochs", "10", "--seed", "0"]


def zoo_env(**extra: str) -> dict[str, str]:
    """The environment of every ``zoo`` run: built-in plugins only, a private catalog cache."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ZOO_") and k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env.update(ZOO_PLUGINS="", OMP_NUM_THREADS="1", PYTHONHASHSEED="0", **extra)
    return env


def terminal_output(args: list[str], *, width: int = WIDTH) -> str:
    """Run ``zoo ARGS`` with stdout on a pseudo-terminal ``width`` columns wide; its ANSI text.

    Raises:
        RuntimeError: the command failed (its stderr is in the message).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 500, width, 0, 0))
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "stderr", "w+") as err:
        env = zoo_env(ZOO_CACHE_DIR=str(Path(tmp) / "cache"), TERM="xterm-256color",
                      COLORTERM="truecolor", COLUMNS=str(width), LINES="500")
        # cwd is an empty folder: a folder named like a model would otherwise shadow it
        proc = subprocess.Popen([sys.executable, "-m", "zoo", *args], stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=err, env=env, cwd=tmp)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        code = proc.wait(timeout=120)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"zoo {' '.join(args)} exited with {code}: {err.read()}")
    # the terminal turned "\n" into "\r\n"
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def _offline_svg_format() -> str:
    """rich's SVG template without the web-font URLs (a viewer would fetch them)."""
    from rich._export_format import CONSOLE_SVG_FORMAT

    text = re.sub(r',\s*url\("https://[^"]+"\) format\("[^"]+"\)', "", CONSOLE_SVG_FORMAT)
    text = text.replace("font-family: Fira Code, monospace;",
                        'font-family: "Fira Code", "DejaVu Sans Mono", Menlo, Consolas, monospace;')
    if re.search(r"url\(\"?https?:", text):
        raise RuntimeError("rich's SVG template changed: it still refers to a URL")
    return text


def save_terminal_svg(ansi: str, command: str, path: Path, *, width: int = WIDTH) -> Path:
    """Replay ``ansi`` (after a ``$ command`` prompt line) into a recording console; save SVG."""
    import io

    from rich.console import Console
    from rich.text import Text

    # The command ran WIDTH columns wide; the picture keeps only the columns it used.
    used = max(len(line) for line in [f"$ {command}", *Text.from_ansi(ansi).plain.splitlines()])
    console = Console(record=True, width=min(width, used + 2), file=io.StringIO(),
                      force_terminal=True,
                      color_system="truecolor", legacy_windows=False)
    prompt = Text("$ ", style="bold green")
    prompt.append(command, style="bold")
    console.print(prompt)
    console.print(Text.from_ansi(ansi.rstrip("\n")), end="\n", soft_wrap=True)
    console.save_svg(str(path), title=command, code_format=_offline_svg_format())
    return path


def svg_to_png(svg: Path, png: Path, *, scale: float = 1.0) -> Path | None:
    """Render ``svg`` with Debian's chromium to ``png``; ``None`` when chromium is missing."""
    if not Path(CHROMIUM).exists():
        print(f"skip {png.name}: {CHROMIUM} is missing (apt-get install -y chromium)")
        return None
    from playwright.sync_api import sync_playwright

    text = svg.read_text()
    w, h = (float(v) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', text).groups())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": int(w + 0.999), "height": int(h + 0.999)},
                                    device_scale_factor=scale)
            # local files only: nothing may leave the machine
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(("file:", "data:")) else route.abort())
            page.goto(svg.resolve().as_uri())
            page.locator("svg").first.screenshot(path=str(png), omit_background=True)
        finally:
            browser.close()
    return _palette_png(png)


def _palette_png(png: Path, colours: int = 64) -> Path:
    """Rewrite ``png`` with a small palette: terminal text needs few colours, a third the bytes."""
    from PIL import Image

    with Image.open(png) as im:
        small = im.convert("RGBA").quantize(colours, method=Image.Quantize.FASTOCTREE)
    small.save(png, optimize=True)
    return png


def make_shot(name: str) -> list[Path]:
    """``docs/images/NAME.svg`` (and ``.png``) of the command ``SHOTS[name]``."""
    args = SHOTS[name]
    command = shlex.join(["zoo", *args])
    svg = save_terminal_svg(terminal_output(args), command, IMAGES / f"{name}.svg")
    png = svg_to_png(svg, IMAGES / f"{name}.png")
    return [svg] + ([png] if png else [])


def make_curve() -> list[Path]:
    """``docs/images/finetune-curve.png``: the curve a real ``zoo finetune`` run plots."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        proc = subprocess.run([sys.executable, "-m", "zoo", *CURVE_ARGS, "--out", str(out)],
                              capture_output=True, text=True, cwd=tmp, timeout=600,
                              env=zoo_env(ZOO_CACHE_DIR=str(Path(tmp) / "cache")))
        if proc.returncode != 0:
            raise RuntimeError(f"zoo {' '.join(CURVE_ARGS)} failed: {proc.stderr}")
        dest = IMAGES / "finetune-curve.png"
        shutil.copyfile(out / "curve.png", dest)
    return [dest]


def main(argv: list[str] | None = None) -> list[Path]:
    """Make the images named in ``argv`` (default: all); print and return their paths."""
    names = [*SHOTS, CURVE]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help=f"some of: {', '.join(names)} (default: all)")
    wanted = parser.parse_args(argv).images or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        parser.error(f"unknown image {', '.join(unknown)}; choose from {', '.join(names)}")
    IMAGES.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in wanted:
        paths = make_curve() if name == CURVE else make_shot(name)
        for path in paths:
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1024:.1f} kB")
        written += paths
    return written


if __name__ == "__main__":
    main()
