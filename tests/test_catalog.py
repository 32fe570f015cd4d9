"""The catalog format: the built-in registry.toml validates, and every kind of mistake in a
catalog gives one line naming the file, the line or the model, and the fix."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

import zoo
from conftest import run_zoo
from zoo.errors import CatalogError
from zoo.registry import default_registry
from zoo.registry.catalog import BUILTIN_CATALOG, check_source, load_catalog

GOOD = """
[models.mynet]
family = "cnn"
task = "image-classification"
builder = "zoo.plugins.cnn.lenet:lenet5"
kwargs = { num_classes = 3 }
input = { size = [1, 32, 32] }

[models.mynet.pretrained.toy]
source = "file:weights/toy.safetensors"
metrics = { accuracy = 0.5 }
"""


def write(tmp_path, text, name="cat.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_builtin_catalog_validates_and_every_family_has_two_models():
    specs = load_catalog(BUILTIN_CATALOG, cache=False)
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    per_family = {}
    for s in specs:
        per_family.setdefault(s.family, []).append(s.name)
    assert {"cnn", "rnn", "transformer", "gan", "gnn"} <= set(per_family)
    assert all(len(v) >= 2 for v in per_family.values()), per_family


def test_every_builtin_builder_path_imports():
    from zoo.loading.build import builder_of

    for spec in load_catalog(BUILTIN_CATALOG, cache=False):
        assert callable(builder_of(spec)), spec.name


def test_specs_are_immutable():
    spec = default_registry().spec("lenet5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.kwargs["num_classes"] = 3  # type: ignore[index]


def test_good_catalog_parses_and_file_sources_resolve_next_to_the_catalog(tmp_path):
    [spec] = load_catalog(write(tmp_path, GOOD))
    assert spec.kwargs == {"num_classes": 3}
    assert spec.input.size == (1, 32, 32)
    assert spec.pretrained["toy"].source == f"file:{tmp_path / 'weights' / 'toy.safetensors'}"
    assert spec.pretrained["toy"].metrics == {"accuracy": 0.5}


BAD = [
    # (what, catalog text, expected line, expected words in the message)
    ("syntax error", '[models.a]\nfamily = "cnn"\ntask = \n', 3, ["invalid TOML"]),
    ("unknown key", GOOD.replace('task = "image', 'tsak = "x"\ntask = "image'), 4,
     ["unknown key 'tsak'", "did you mean 'task'"]),
    ("missing builder", GOOD.replace('builder = "zoo.plugins.cnn.lenet:lenet5"\n', ""), 2,
     ["missing required key 'builder'"]),
    ("bad builder", GOOD.replace("zoo.plugins.cnn.lenet:lenet5", "zoo/plugins/lenet.py"), 5,
     ["must be 'package.module:callable'"]),
    ("source without scheme", GOOD.replace("file:weights/toy.safetensors", "weights.bin"), 10,
     ["has no scheme"]),
    ("mistyped scheme", GOOD.replace("file:weights/toy.safetensors", "torchvison:A.B"), 10,
     ["did you mean 'torchvision:'"]),
    ("malformed torchvision", GOOD.replace("file:weights/toy.safetensors", "torchvision:resnet"),
     10, ["expected torchvision:WeightsEnum.MEMBER"]),
    ("https without sha256", GOOD.replace("file:weights/toy.safetensors", "https://x.org/w.pt"),
     10, ["needs a sha256"]),
    ("bad tag", GOOD.replace("pretrained.toy]", "pretrained.Toy]"), 9, ["invalid pretrained tag"]),
    ("bad input", GOOD.replace("size = [1, 32, 32]", "size = [1, -3]"), 7, ["input.size"]),
    ("wrong type", GOOD.replace('task = "image-classification"', "task = 3"), 4,
     ["'task' must be a string"]),
    ("bad name", GOOD.replace("[models.mynet]", "[models.My.Net]").replace(
        "models.mynet.pretrained", "models.x.pretrained"), None, ["invalid model name"]),
]


@pytest.mark.parametrize(("what", "text", "line", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_catalog_gives_one_line_with_file_line_and_fix(tmp_path, what, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path, cache=False)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(str(path) + (f":{line}:" if line else ""))
    for w in words:
        assert w in msg


def test_bad_user_catalog_on_the_command_line_exits_2_with_one_line(tmp_path):
    path = write(tmp_path, BAD[1][1])
    proc = run_zoo("--catalog", str(path), "list")
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [f"Error: {path}:4: model 'mynet': unknown key 'tsak' in model table; "
                     "did you mean 'task'?"]
    assert "Traceback" not in proc.stderr


def test_user_catalog_by_option_and_by_environment(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    proc = run_zoo("--catalog", str(path), "list", "mynet", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"mynet"' in proc.stdout
    proc = run_zoo("list", "mynet", "--json", env={"ZOO_CATALOG": str(path)})
    assert '"plugin": "catalog:' in proc.stdout
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    assert zoo.list_models("myn*") == ["mynet"]
    assert "mynet.toy" in zoo.list_models(pretrained=True, family="cnn")


def test_user_catalog_cannot_shadow_a_builtin_and_the_message_names_both(tmp_path):
    path = write(tmp_path, GOOD.replace("mynet", "lenet5"))
    proc = run_zoo("-c", str(path), "info", "lenet5")
    assert proc.returncode == 2
    assert "clashes with 'lenet5' from plugin 'cnn'" in proc.stderr
    assert f"catalog:{path}" in proc.stderr


def test_user_catalog_unknown_family_close_to_a_known_one_is_refused(tmp_path):
    path = write(tmp_path, GOOD.replace('family = "cnn"', 'family = "cnnn"'))
    proc = run_zoo("-c", str(path), "list")
    assert proc.returncode == 2
    assert "did you mean 'cnn'" in proc.stderr


def test_large_catalog_is_cached_and_a_changed_file_is_reparsed(tmp_path):
    entries = "\n".join(
        f'[models.gen-{i}]\nfamily = "cnn"\ntask = "t"\nbuilder = "m.o:d"\n'
        f'description = "{"x" * 40}"\n' for i in range(1500))
    path = write(tmp_path, entries)
    first = load_catalog(path)
    assert len(first) == 1500
    from zoo.registry import catalog

    catalog._MEMO.clear()
    catalog._RAW_MEMO.clear()
    assert [s.name for s in load_catalog(path)] == [s.name for s in first]
    path.write_text(entries.replace("gen-1499", "renamed"))
    catalog._MEMO.clear()
    assert "renamed" in {s.name for s in load_catalog(path)}


@pytest.mark.parametrize(("source", "ok"), [
    ("hf-hub:org/repo", True), ("hf-hub:org/repo@v1/weights.safetensors", True),
    ("hf-hub:repo", False), ("timm:resnet50.a1_in1k", True),
    ("torchvision:ResNet50_Weights.IMAGENET1K_V2", True), ("file:/x.pt", True),
    ("package:zoo/trained/x.safetensors", True), ("package:zoo", False),
    ("http://example.org/x.pt", False), ("s3://bucket/x", True), ("S 3:x", False),
])
def test_source_uris(source, ok):
    assert (check_source(source, sha256="0" * 64) is None) is ok


def test_cached_specs_are_lazy_and_equal_the_parsed_ones_field_by_field(tmp_path, monkeypatch):
    import pickle

    from zoo.registry import catalog
    from zoo.registry.spec import LazySpec, ModelSpec

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_NO_CACHE", raising=False)
    path = tmp_path / "registry.toml"
    path.write_bytes(BUILTIN_CATALOG.read_bytes())        # > 64 kB: cached
    monkeypatch.setattr(catalog, "_MEMO", {})
    fresh = load_catalog(path)
    monkeypatch.setattr(catalog, "_MEMO", {})
    cached = load_catalog(path)
    assert len(cached) == len(fresh) > 50
    # Both are lazy: the fresh parse keeps the validated fields, the cache their JSON.
    assert all(type(s) is LazySpec for s in cached + fresh)
    assert all(isinstance(s.__dict__["_blob"], int) for s in cached)   # an offset
    assert all(isinstance(s.__dict__["_blob"], dict) for s in fresh)
    # what a listing reads leaves the record packed ...
    for s in cached:
        assert (s.name, s.family, s.task, s.params) and isinstance(s.trained_tags(), tuple)
        assert "_blob" in s.__dict__, f"{s.name} was unpacked by a listing"
    with_tags = [s for s in cached if s.trained_tags()]
    assert with_tags and all(s.trained_tags() == tuple(f.pretrained)
                             for s, f in zip(cached, fresh, strict=True) if s in with_tags)
    # ... and every other field unpacks to exactly the parsed value
    for s, f in zip(cached, fresh, strict=True):
        for field in dataclasses.fields(ModelSpec):
            assert getattr(s, field.name) == getattr(f, field.name), (s.name, field.name)
        assert s.to_dict() == f.to_dict() and s == f and f == s and hash(s) == hash(f)
        assert s.trained_tasks() == f.trained_tasks()
        back = pickle.loads(pickle.dumps(s))
        assert type(back) is ModelSpec and back == f and type(f.full()) is ModelSpec
    lenet = next(s for s in cached if s.name == "lenet5")
    assert lenet.input is not None and lenet.input.size == (1, 32, 32)
    assert dataclasses.replace(lenet, params=1).params == 1
