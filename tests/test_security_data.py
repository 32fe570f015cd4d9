"""Issue 14 items 10 and 11 on the training side: a user's data file and a ``--resume``
checkpoint are data; crafted ones are refused in one line, naming the file and row, with
nothing written and nothing run.

Every case runs ``zoo finetune`` in-process through typer's CliRunner. Refusals happen
before training, so each case costs a model build and a file read.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import helpers
import pytest
import torch
from canary import files_under, pickle_bomb
from typer.testing import CliRunner

from zoo.cli import app
from zoo.finetune.tabular import read_table


def finetune(*args: str):
    return CliRunner().invoke(app, ["finetune", *args])


def refused(res, *names: str) -> str:
    # the run's chosen settings are printed before training starts; the refusal is the rest
    return helpers.refused(res, *names, after_settings=True)


def _text_run(data: Path, out: Path):
    return finetune("lstm", "--data", str(data), "--out", str(out), "--epochs", "1")


ROWS = [("a good film", "pos"), ("a bad film", "neg"), ("good fun", "pos"), ("dull", "neg")]


def _csv(rows) -> str:
    return "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows)


# -- item 10: files that used to raise tracebacks ----------------------------------------------

def test_h10_csv_field_over_128_kib_is_read(tmp_path):
    """Python's csv module refuses fields over 128 KiB by default: a long review is data."""
    path = tmp_path / "long.csv"
    path.write_text(_csv([("x" * 140_000, "pos"), *ROWS]))
    texts, labels = read_table(path, "text", "label")
    assert len(texts[0]) == 140_000 and labels == ["pos", "pos", "neg", "pos", "neg"]
    res = _text_run(path, tmp_path / "out")
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_h10_csv_with_a_byte_order_mark_is_decoded(tmp_path, encoding):
    path = tmp_path / "bom.csv"
    path.write_text(_csv([("café", "pos"), *ROWS]), encoding=encoding)
    assert read_table(path, "text", "label")[0][0] == "café"


@pytest.mark.parametrize(("name", "content", "says"), [
    ("latin1.csv", _csv([("café", "pos"), *ROWS]).encode("latin-1"), "byte 0xe9 at offset"),
    ("bad.jsonl", b'{"text": "ok", "label": "a"}\n{"text": "\xff\xfe", "label": "b"}\n',
     "not UTF-8"),
    ("nested.jsonl", b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b', "label": "a"}\n',
     ":1: nested too deeply"),
    ("list.jsonl", b'{"text": "ok", "label": "a"}\n["a list", "b"]\n', ":2: a JSON list"),
    ("text-dict.jsonl", b'{"text": {"html": "<b>"}, "label": "a"}\n', "not a string of text"),
    ("broken.csv", b'text,label\n"unterminated,pos\n' + b"x" * 20 + b"\n", "broken.csv"),
])
def test_h10_crafted_data_files_are_one_line_and_write_nothing(tmp_path, name, content, says):
    path = tmp_path / name
    path.write_bytes(content)
    before = files_under(tmp_path)
    refused(_text_run(path, tmp_path / "out"), name, says)
    assert files_under(tmp_path) == before and not (tmp_path / "out").exists()


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header for ``width`` x ``height`` grey pixels with a few rows of data:
    a few hundred bytes that would inflate to ``width * height`` bytes if decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = zlib.compress(b"\0" * (width + 1) * 4, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                             0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [9_000, 30_000])     # over zoo's cap; over PIL's own
def test_h10_decompression_bomb_png_in_training_data_is_refused(tmp_path, side):
    from PIL import Image

    for c in ("circle", "square"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / "imgs" / c / f"{i}.png")
    (tmp_path / "imgs" / "square" / "bomb.png").write_bytes(_bomb_png(side, side))
    res = finetune("lenet5", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "out"),
                   "--epochs", "1")
    refused(res, "bomb.png")
    assert not (tmp_path / "out").exists()


# -- item 11: what becomes a class --------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "says"), [
    ("short-row.csv", _csv(ROWS) + "a row without its label\n", "short-row.csv:6: no 'label'"),
    ("empty-label.csv", _csv(ROWS) + "an empty label,\n", "empty-label.csv:6: no 'label'"),
    ("missing.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', "missing.jsonl:2: no"),
    ("null.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n', ":2: no"),
    ("dict.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": {"y": 1}}\n',
     "'label' is dict"),
    ("list.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": ["y"]}\n',
     "'label' is list"),
])
def test_h11_rows_without_a_label_do_not_become_a_class(tmp_path, name, content, says):
    path = tmp_path / name
    path.write_text(content)
    refused(_text_run(path, tmp_path / "out"), says)
    assert not (tmp_path / "out").exists()


def test_h11_single_class_folder_does_not_train_to_accuracy_one(tmp_path):
    from PIL import Image

    (tmp_path / "imgs" / "cats").mkdir(parents=True)
    for i in range(6):
        Image.new("L", (8, 8), 30 * i).save(tmp_path / "imgs" / "cats" / f"{i}.png")
    res = finetune("lenet5", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "out"),
                   "--epochs", "1")
    refused(res, "one class only", "'cats'")
    path = tmp_path / "one.csv"
    path.write_text(_csv([(t, "pos") for t, _ in ROWS]))
    refused(_text_run(path, tmp_path / "out"), "one class only")
    assert not (tmp_path / "out").exists()


def test_h11_integer_labels_are_class_names(tmp_path):
    path = tmp_path / "ints.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": int(lab == "pos")}) + "\n"
                            for t, lab in ROWS))
    assert read_table(path, "text", "label")[1] == ["1", "0", "1", "0"]


# -- item 10: every malformed --resume checkpoint --------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished one-epoch lenet5 run on 32 digits, with its checkpoint."""
    out = tmp_path_factory.mktemp("run") / "out"
    res = finetune("lenet5", "--data", "digits", "--out", str(out), "--epochs", "1",
                   "--limit", "32")
    assert res.exit_code == 0, res.stderr
    return out


def _damaged(ck: dict, how: str, marker: Path, path: Path) -> None:
    if how == "pickle":
        pickle_bomb(path, marker)
        return
    if how == "truncated":
        buf = io.BytesIO()
        torch.save(ck, buf)
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        return
    if how == "not-a-zip":
        path.write_bytes(b"PK\x03\x04" + b"\0" * 64)
        return
    ck = dict(ck)
    if how.startswith("drop-"):
        ck.pop(how[5:])
    elif how == "epoch-str":
        ck["epoch"] = "1"
    elif how == "model-list":
        ck["model"] = [1, 2]
    elif how == "model-misfit":
        ck["model"] = {k: torch.zeros(1) for k in ck["model"]}
    elif how == "rng-float":
        ck["rng"] = torch.zeros(3)
    elif how == "scheduler-attr":
        ck["scheduler"] = {**ck["scheduler"], "step": "not a method"}
    elif how == "fingerprint-list":
        ck["fingerprint"] = [1]
    elif how == "history-long":
        ck["history"] = ck["history"] * 3
    elif how == "a-list":
        ck = [ck]
    torch.save(ck, path)


@pytest.mark.parametrize("how", [
    "pickle", "truncated", "not-a-zip", "drop-model", "drop-optimizer", "drop-rng",
    "epoch-str", "model-list", "model-misfit", "rng-float", "scheduler-attr",
    "fingerprint-list", "history-long", "a-list",
])
def test_h10_every_malformed_resume_checkpoint_is_one_line(run_dir, tmp_path, how):
    import shutil

    out = Path(shutil.copytree(run_dir, tmp_path / "out"))
    ckpt = out / "checkpoints" / "last.pt"
    ck = torch.load(ckpt, weights_only=True)
    marker = tmp_path / "payload-ran"
    _damaged(ck, how, marker, ckpt)
    before = files_under(out)
    res = finetune("lenet5", "--data", "digits", "--out", str(out), "--epochs", "1",
                   "--limit", "32", "--resume")
    refused(res, str(ckpt), "--overwrite")
    assert not marker.exists(), "the checkpoint's pickle ran"
    assert files_under(out) == before, "a refused resume changed the run's files"


def test_h10_a_sound_checkpoint_still_resumes(run_dir, tmp_path):
    import shutil

    out = Path(shutil.copytree(run_dir, tmp_path / "out"))
    res = finetune("lenet5", "--data", "digits", "--out", str(out), "--epochs", "1",
                   "--limit", "32", "--resume")
    assert res.exit_code == 0, res.stderr
    history = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == [1]
    assert zipfile.is_zipfile(out / "checkpoints" / "last.pt")
