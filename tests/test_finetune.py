"""Fine-tuning techniques, trained for real on small data; each test checks the effect."""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")

from zoo.errors import UsageError  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

FAST = dict(progress=False, val_limit=300)


def _ft(*args, **kwargs):
    from zoo.finetune import finetune

    return finetune(*args, **{**FAST, **kwargs})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """LeNet-5 trained on 1,000 digits: the pretrained model later tests start from."""
    out = tmp_path_factory.mktemp("ft") / "base"
    result = _ft("lenet5", "digits", out=out, epochs=4, limit=1000, lr=3e-3, batch_size=32)
    return out, result


def _images(root, classes=("circle", "square", "triangle"), per_class=40, seed=0):
    """An image folder (one sub-folder per class) of synthetic shapes, as PNG files."""
    import numpy as np
    from PIL import Image

    from zoo.plugins.cnn.shapes import render_shapes

    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(classes, 0)
    while min(counts.values()) < per_class:
        img, _boxes, labels = render_shapes(rng, 32, min_objects=1, max_objects=1)
        name = ("circle", "square", "triangle")[int(labels[0])]
        if name in counts and counts[name] < per_class:
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / name / f"{counts[name]}.png")
            counts[name] += 1
    return root


def _parity_folder(root, n=160):
    """Digits as PNG files sorted into 'even' and 'odd' folders: a new task whose classes a
    digit backbone's features separate."""
    from PIL import Image

    from zoo.finetune.data import _digits

    x, y, _ = _digits()
    for i in range(n):
        j = 1000 + i
        cls = "odd" if y[j] % 2 else "even"
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[j, 0].numpy() * 255).astype("uint8")).save(root / cls / f"{j}.png")
    return root


# -- full fine-tuning and what a user keeps ------------------------------------------------------

def test_full_finetune_learns_digits_and_writes_a_model_dir_zoo_get_rebuilds(base):
    import zoo

    out, result = base
    assert result.metrics["accuracy"] > 0.85, result.history
    assert result.trainable_params == result.total_params == 61706
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "accuracy", "macro_f1", "samples_per_s"):
        assert key in metrics["epochs"][-1]
    # Learning happened: the validation loss fell and accuracy rose over the epochs.
    assert metrics["epochs"][-1]["val_loss"] < metrics["epochs"][0]["val_loss"]
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "checkpoints" / "last.pt").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == [str(i) for i in range(10)]
    assert config["technique"] == "full"
    assert config["metrics"]["accuracy"] == pytest.approx(result.metrics["accuracy"])
    rebuilt = zoo.get(str(out))
    x = torch.randn(4, 1, 32, 32)
    result.model.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(x), result.model(x))


def test_gcn_learns_karate_club_communities(tmp_path):
    result = _ft("gcn", "karate", out=tmp_path / "gcn", epochs=30, lr=0.05, batch_size=64)
    # 4 communities, 13 training nodes: a GCN on one-hot ids beats chance (0.25) by far.
    assert result.metrics["accuracy"] > 0.6, result.history
    assert json.loads((tmp_path / "gcn" / "config.json").read_text())["labels"][0] == \
        "community 0"


def test_lora_on_gcn_uses_target_parameters_and_merges_to_a_plain_model(tmp_path):
    import zoo

    result = _ft("gcn.karate", "karate", out=tmp_path / "gcnlora", technique="lora",
                 epochs=20, lr=0.01, batch_size=64)
    assert result.trainable_params < result.total_params
    rebuilt = zoo.get(str(tmp_path / "gcnlora"))
    assert type(rebuilt).__name__ == "GCN"
    assert not any("lora" in k for k in rebuilt.state_dict())
    assert result.metrics["accuracy"] > 0.6, result.history


def test_builtin_shapes_fit_the_models_input(tmp_path):
    from zoo.finetune.data import prepare
    from zoo.plugins.cnn.lenet import lenet5

    s, _ = zoo_spec("lenet5")
    task = prepare("shapes", lenet5(), s)
    assert task.labels == ["circle", "square", "triangle"]
    assert task.train.inputs["x"].shape[1:] == (1, 32, 32)
    assert len(task.train) + len(task.val) == 600
    assert set(task.train.y.tolist()) == {0, 1, 2}


def zoo_spec(name):
    import zoo

    return zoo.spec(name)


# -- train/serve parity ----------------------------------------------------------------------

def _digit_uploads(root, rows, seed=0):
    """Digits as users upload them: dark ink on light paper, scaled up, off centre, RGB,
    one folder per digit."""
    import numpy as np
    from PIL import Image

    from zoo.finetune.data import _digits

    rng = np.random.default_rng(seed)
    x, y, _ = _digits()
    for i in rows:
        ink = Image.fromarray((x[i, 0].numpy() * 255).astype("uint8")).resize(
            (int(rng.integers(24, 64)),) * 2, Image.BILINEAR)
        paper = Image.new("L", (96, 80), 235)
        paper.paste(Image.fromarray(255 - np.asarray(ink)),
                    (int(rng.integers(0, 96 - ink.width)), int(rng.integers(0, 80 - ink.height))))
        (root / str(y[i])).mkdir(parents=True, exist_ok=True)
        paper.convert("RGB").save(root / str(y[i]) / f"{i}.png")
    return root


def test_zoo_predict_scores_held_out_files_exactly_as_the_trainer_did(tmp_path):
    """One preprocessing per model, saved with it: the trainer's held-out accuracy and the
    one zoo.predict gets on the same files are the same number."""
    from pathlib import Path

    import zoo
    from zoo.finetune.data import _digits

    _, y, _ = _digits()
    rows = [i for i in range(900) if y[i] in (3, 5, 8)]
    train = _digit_uploads(tmp_path / "train", rows[:60])
    val = _digit_uploads(tmp_path / "val", rows[60:120], seed=1)
    out = tmp_path / "vit"
    result = _ft("vit.digits", str(train), val_data=str(val), out=out, num_classes=3,
                 epochs=3, lr=3e-4, batch_size=16)      # measured 0.950: not saturated
    config = json.loads((out / "config.json").read_text())
    assert config["input"]["center"] is True          # the preprocessing travels along
    assert config["task"] == "image-classification"
    assert config["metrics_split"] == "validation"
    assert config["evaluation"] == {"split": "validation", "samples": 60,
                                    "source": f"--val-data {val}"}
    files = sorted(Path(val).rglob("*.png"))
    right = sum(zoo.predict(str(out), f, top_k=1)[0][0] == f.parent.name for f in files)
    assert right / len(files) == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    # the demo (and so an exported Space) reads the same saved preprocessing
    from PIL import Image

    from zoo.demos.tasks_image import ImageClassification

    demo = ImageClassification().load(str(out))
    shown = [demo.run(demo.model(), Image.open(f).convert("RGB")) for f in files]
    assert sum(max(d, key=d.get) == f.parent.name for d, f in zip(shown, files, strict=True)) \
        == right
    assert 0.5 < result.metrics["accuracy"] < 1.0     # a metric that can tell them apart


# -- freeze ---------------------------------------------------------------------------------------

def test_freeze_keeps_the_first_layer_groups_bit_identical(base, tmp_path):
    import zoo

    out, _ = base
    before = zoo.get(str(out)).state_dict()
    result = _ft(str(out), "digits", out=tmp_path / "frozen", technique="freeze",
                 freeze_groups=2, epochs=1, limit=300, lr=1e-2)
    after = result.model.state_dict()
    for key in ("features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert not torch.equal(before["classifier.1.weight"], after["classifier.1.weight"])
    assert result.trainable_params < result.total_params


def test_freeze_n_on_a_transformer_freezes_its_embeddings_and_first_layers(tmp_path):
    """--freeze 3 on MiniLM: the classifier zoo builds nests the encoder under 'bert.', and
    its groups are the embeddings and each encoder layer."""
    import zoo

    before = zoo.get("minilm.sentence").state_dict()
    out = tmp_path / "frozen"
    result = _ft("minilm.sentence", str(_reviews_csv(tmp_path)), out=out, freeze_groups=3,
                 text_column="review", epochs=1, limit=16, batch_size=16, max_length=12,
                 lr=1e-3)
    after = result.model.state_dict()
    frozen = [k for k in before if k.startswith(("embeddings.", "encoder.layer.0.",
                                                 "encoder.layer.1."))]
    assert frozen and all(torch.equal(before[k], after["bert." + k]) for k in frozen)
    moved = [k for k in before if k.startswith("encoder.layer.2.") and k.endswith("weight")]
    assert moved and not any(torch.equal(before[k], after["bert." + k]) for k in moved)
    config = json.loads((out / "config.json").read_text())
    assert config["technique"] == "freeze"            # --freeze N alone asks for it
    assert config["task"] == "text-classification"    # no longer feature extraction
    assert config["finetune"]["frozen"] == len(frozen)


def test_num_classes_gives_a_from_scratch_torchvision_classifier_its_head(tmp_path):
    import zoo

    folder = _images(tmp_path / "imgs", per_class=3)
    out = tmp_path / "r18"
    result = _ft("resnet18", str(folder), out=out, num_classes=3, epochs=1, batch_size=8,
                 val_fraction=0.34)
    assert result.model.fc.out_features == 3
    config = json.loads((out / "config.json").read_text())
    assert config["kwargs"]["num_classes"] == 3 and config["task"] == "image-classification"
    assert zoo.get(str(out)).fc.out_features == 3


def test_defaults_learn_a_small_image_folder_and_say_what_they_chose(tmp_path, capsys):
    """No epochs, batch size or lr given: 36 training images get batches of 8 and enough
    epochs for at least 100 steps (3 epochs of 32 would be 6 steps)."""
    from zoo.finetune import finetune
    from zoo.finetune.data import _digits

    _, y, _ = _digits()
    folder = _digit_uploads(tmp_path / "photos", [i for i in range(400) if y[i] in (3, 5, 8)]
                            [:45])
    result = finetune("lenet5.digits", str(folder), out=tmp_path / "out", num_classes=3)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("settings:"))
    config = json.loads((tmp_path / "out" / "metrics.json").read_text())["config"]
    steps = len(result.history) * -(-36 // config["batch_size"])
    assert config["batch_size"] == 8 and steps >= 100, line
    assert "chosen by zoo: batch size, epochs, lr" in line and f"lr {config['lr']:g}" in line
    assert result.metrics["accuracy"] > 0.85, result.history      # chance: 0.33


def test_default_settings_follow_the_data_size_technique_and_base():
    from zoo.finetune.defaults import choose

    small = choose(technique="full", family="cnn", params=61_706, trained=True, samples=48,
                   epochs=None, batch_size=None, lr=None)
    assert (small.batch_size, small.epochs, small.lr) == (8, 17, 1e-3)      # 102 steps
    scratch = choose(technique="full", family="cnn", params=61_706, trained=False,
                     samples=48, epochs=None, batch_size=None, lr=None)
    assert scratch.epochs == 33                                              # 198 steps
    big = choose(technique="full", family="transformer", params=22_566_531, trained=True,
                 samples=34_000, epochs=None, batch_size=None, lr=None)
    assert (big.batch_size, big.epochs, big.lr) == (32, 3, 5e-5)
    huge = choose(technique="lora", family="transformer", params=22_566_531, trained=True,
                  samples=500_000, epochs=None, batch_size=None, lr=None)
    assert huge.epochs == 1 and huge.lr == 1e-3
    head = choose(technique="feature-extract", family="transformer", params=22_566_531,
                  trained=True, samples=1200, epochs=None, batch_size=None, lr=None,
                  cached_head=True)
    assert head.lr == 5e-3 and head.epochs * 38 >= 300
    given = choose(technique="full", family="cnn", params=1, trained=True, samples=48,
                   epochs=2, batch_size=4, lr=0.5)
    assert (given.epochs, given.batch_size, given.lr, given.chosen) == (2, 4, 0.5, [])


def test_freeze_by_name_pattern(base, tmp_path):
    out, _ = base
    result = _ft(str(out), "digits", out=tmp_path / "pat", technique="freeze",
                 freeze_patterns=["classifier", "*.bias"], epochs=1, limit=100)
    frozen = {n for n, p in result.model.named_parameters() if not p.requires_grad}
    assert {"classifier.1.weight", "classifier.3.weight", "fc.bias"} <= frozen
    assert "fc.weight" not in frozen


# -- feature extraction ---------------------------------------------------------------------

def test_feature_extract_trains_a_new_head_on_a_frozen_backbone(base, tmp_path):
    import zoo

    out, _ = base
    before = zoo.get(str(out)).state_dict()
    folder = _parity_folder(tmp_path / "parity")
    timings = {}
    for cache in (True, False):
        import time

        t0 = time.perf_counter()
        result = _ft(str(out), str(folder), out=tmp_path / f"fe{cache}", epochs=8,
                     technique="feature-extract", num_classes=2, lr=1e-2, batch_size=16,
                     cache_features=cache)
        timings[cache] = time.perf_counter() - t0
        after = result.model.state_dict()
        for key in before:
            if not key.startswith("fc."):
                assert torch.equal(before[key], after[key]), key
        assert after["fc.weight"].shape == (2, 84)
        assert result.trainable_params == 84 * 2 + 2
        # Digit features make parity (even/odd) separable by a linear head.
        assert result.metrics["accuracy"] > 0.8, result.history
        if cache:
            cached_acc = result.metrics["accuracy"]
        else:
            # Same seed, same head init, same batches: the cache changes speed only.
            assert result.metrics["accuracy"] == pytest.approx(cached_acc, abs=0.05)
    print(f"feature-extract: cached {timings[True]:.2f}s, uncached {timings[False]:.2f}s")


# -- class count, data errors ---------------------------------------------------------------------

def test_class_count_mismatch_says_to_pass_num_classes(base, tmp_path):
    out, _ = base
    folder = _images(tmp_path / "imgs", per_class=3)
    with pytest.raises(UsageError, match=r"has 10 classes but the data has 3.*--num-classes 3"):
        _ft(str(out), str(folder), out=tmp_path / "x", epochs=1)
    with pytest.raises(UsageError, match="--num-classes 4 but the data has 3"):
        _ft(str(out), str(folder), out=tmp_path / "y", epochs=1, num_classes=4)


def test_data_errors_are_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no class sub-folders"):
        _ft("lenet5", str(empty), out=tmp_path / "o1")
    (empty / "cats").mkdir()
    with pytest.raises(UsageError, match="hold no images"):
        _ft("lenet5", str(empty), out=tmp_path / "o2")
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("text,sentiment\nlovely,pos\nawful,neg\n")
    with pytest.raises(UsageError, match="no 'label' column.*--label-column"):
        _ft("lstm", str(csv_file), out=tmp_path / "o3")
    train = _images(tmp_path / "train", classes=("circle", "square"), per_class=3)
    val = _images(tmp_path / "val", per_class=2)
    with pytest.raises(UsageError, match="'triangle' do not occur in the training data"):
        _ft("lenet5", str(train), val_data=str(val), out=tmp_path / "o4")
    with pytest.raises(UsageError, match="holds images but model 'lstm' takes text"):
        _ft("lstm", "digits", out=tmp_path / "o5")
    with pytest.raises(UsageError, match="did you mean 'lora'"):
        _ft("lenet5", "digits", out=tmp_path / "o6", technique="lorra")


def _reviews_csv(tmp_path):
    """240 short synthetic reviews; one sentiment word decides the label."""
    import random

    rng = random.Random(0)
    good = ["great", "lovely", "superb", "happy", "wonderful"]
    bad = ["awful", "terrible", "sad", "horrible", "dreadful"]
    filler = ["the", "film", "was", "really", "quite", "a", "day"]
    rows = ["review,label"]
    for i in range(240):
        words = rng.sample(filler, 4) + [rng.choice(good if i % 2 else bad)]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{'pos' if i % 2 else 'neg'}")
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_text_csv_with_label_column_trains_an_lstm(tmp_path):
    path = _reviews_csv(tmp_path)
    result = _ft("lstm", str(path), out=tmp_path / "lstm", text_column="review", epochs=6,
                 lr=1e-2, batch_size=16)
    assert result.metrics["accuracy"] > 0.9, result.history
    import zoo

    rebuilt = zoo.get(str(tmp_path / "lstm"))  # vocabulary travels with the model
    ids, lengths = rebuilt.tokenizer.batch(["a superb film", "a dreadful day"])
    with torch.no_grad():
        pred = rebuilt(ids, lengths).argmax(-1).tolist()
    labels = json.loads((tmp_path / "lstm" / "config.json").read_text())["labels"]
    assert [labels[i] for i in pred] == ["pos", "neg"]


# -- LoRA -------------------------------------------------------------------------------------

def test_lora_saves_adapter_and_merged_weights_that_agree(base, tmp_path):
    import zoo

    out, _ = base
    before = zoo.get(str(out)).state_dict()
    result = _ft(str(out), "digits", out=tmp_path / "lora", technique="lora", epochs=2,
                 limit=400, lr=5e-3, lora_r=4)
    assert 0 < result.trainable_percent < 50
    metrics = json.loads((tmp_path / "lora" / "metrics.json").read_text())
    assert metrics["trainable_percent"] == pytest.approx(result.trainable_percent, abs=1e-3)
    adapter = tmp_path / "lora" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    merged = zoo.get(str(tmp_path / "lora"))
    assert not any("lora" in k for k in merged.state_dict())
    assert not torch.equal(merged.state_dict()["features.0.weight"], before["features.0.weight"])
    # The adapter alone, put on the base model, gives the merged model's outputs.
    from peft import PeftModel

    with_adapter = PeftModel.from_pretrained(zoo.get(str(out)), str(adapter)).eval()
    x = torch.randn(8, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(with_adapter(x), merged(x), atol=1e-4)
    assert result.metrics["accuracy"] > 0.85


def test_lora_on_bert_attention_trains_under_one_percent_of_the_weights(tmp_path, capsys):
    import zoo

    path = _reviews_csv(tmp_path)
    out = tmp_path / "bert"
    result = _ft("bert_mini", str(path), out=out, technique="lora", text_column="review",
                 epochs=3, lr=5e-3, batch_size=16, max_length=16)
    # bert_mini is an architecture: adapters on random weights deserve one line of warning
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "'bert_mini', an architecture with random weights" in \
        warned[0] and "--technique full" in warned[0]
    assert result.trainable_percent < 1.0
    # Measured 0.83 (from 0.5 at random): adapters on query/key/value and the new head.
    assert result.metrics["accuracy"] > 0.7, result.history
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    merged = zoo.get(str(out))          # rebuilt with its tokenizer (BERT uncased vocab)
    enc = merged.tokenizer(["the film was superb", "a dreadful day"], return_tensors="pt",
                           padding=True)
    with torch.no_grad():
        got = merged(**enc).logits
        want = result.model.eval()(**enc).logits
    assert torch.allclose(got, want, atol=1e-4)


# -- distillation ----------------------------------------------------------------------------------

def test_distilled_student_beats_the_same_student_without_teacher(base, tmp_path):
    out, _ = base
    # 60 labelled digits; 25 epochs of 4 steps. Measured (seed 0 / 1): alone 0.853 / 0.853,
    # distilled 0.897 / 0.917.
    common = dict(epochs=25, limit=60, lr=3e-3, batch_size=16, seed=0)
    alone = _ft("lenet5", "digits", out=tmp_path / "alone", **common)
    taught = _ft("lenet5", "digits", out=tmp_path / "kd", technique="distill",
                 teacher=str(out), temperature=4.0, alpha=0.5, **common)
    print(f"student alone {alone.metrics['accuracy']:.3f}, "
          f"distilled {taught.metrics['accuracy']:.3f}")
    assert taught.metrics["accuracy"] > alone.metrics["accuracy"] + 0.03


def test_distill_loss_is_kl_times_t_squared_plus_cross_entropy():
    import torch.nn.functional as F

    from zoo.finetune.distill import distill_loss

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0])
    kl = F.kl_div(F.log_softmax(s / 2, -1), F.softmax(t / 2, -1), reduction="batchmean") * 4
    ce = F.cross_entropy(s, y)
    got = distill_loss(s, t, y, temperature=2.0, alpha=0.25)
    assert got == pytest.approx(float(0.25 * kl + 0.75 * ce), rel=1e-5)
    assert distill_loss(t, t, y, alpha=1.0) == pytest.approx(0.0, abs=1e-5)


# -- learning rates and regularisation -----------------------------------------------------

def test_layer_decay_and_group_lrs_go_into_the_optimizer_param_groups():
    from zoo.finetune.optim import make_optimizer, param_groups
    from zoo.plugins.cnn.lenet import lenet5

    model = lenet5()
    groups = ["features.0", "features.3", "classifier", "fc"]
    pg = param_groups(model, lr=1.0, layer_groups=groups, layer_decay=0.5, weight_decay=0.1)
    lr_of = {n: g["lr"] for g in pg for n in g["names"]}
    assert lr_of["fc.weight"] == 1.0
    assert lr_of["classifier.1.weight"] == 0.5
    assert lr_of["features.3.weight"] == 0.25
    assert lr_of["features.0.weight"] == 0.125
    wd_of = {n: g["weight_decay"] for g in pg for n in g["names"]}
    assert wd_of["fc.bias"] == 0.0 and wd_of["features.0.bias"] == 0.0
    assert wd_of["fc.weight"] == 0.1
    opt = make_optimizer(pg, lr=1.0)
    assert sorted({g["lr"] for g in opt.param_groups}) == [0.125, 0.25, 0.5, 1.0]
    pg = param_groups(model, lr=1.0, group_lrs={"features": 0.01})
    lr_of = {n: g["lr"] for g in pg for n in g["names"]}
    assert lr_of["features.0.weight"] == 0.01 and lr_of["fc.weight"] == 1.0


def test_group_lr_zero_leaves_that_group_untouched(base, tmp_path):
    import zoo

    out, _ = base
    before = zoo.get(str(out)).state_dict()
    result = _ft(str(out), "digits", out=tmp_path / "glr", group_lrs={"features": 0.0},
                 epochs=1, limit=200, lr=1e-2)
    after = result.model.state_dict()
    assert torch.equal(before["features.0.weight"], after["features.0.weight"])
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_warmup_then_linear_decay_schedule():
    from zoo.finetune.optim import make_optimizer, make_schedule, param_groups
    from zoo.plugins.cnn.lenet import lenet5

    opt = make_optimizer(param_groups(lenet5(), lr=1.0), lr=1.0)
    sched = make_schedule(opt, 10, warmup=0.2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:], strict=False))
    assert lrs[-1] == pytest.approx(1 / 9)


def test_label_smoothing_makes_the_model_less_confident(tmp_path):
    confidences = {}
    for ls in (0.0, 0.3):
        result = _ft("lenet5", "digits", out=tmp_path / f"ls{ls}", label_smoothing=ls, epochs=3,
                     limit=400, lr=3e-3)
        from zoo.finetune.data import _digits, encode_images
        from zoo.loading.preprocess import model_input

        x, _, _ = _digits()
        xs = encode_images(x[:200], model_input(zoo_spec("lenet5")[0]))
        with torch.no_grad():
            confidences[ls] = float(result.model(xs).softmax(-1).max(-1).values.mean())
    assert confidences[0.3] < confidences[0.0] - 0.05, confidences


def test_dropout_override_sets_every_dropout_layer():
    from zoo.finetune.techniques import set_dropout
    from zoo.plugins.rnn.text import text_classifier

    model = text_classifier(vocab_size=50, embed_dim=8, hidden_size=8).train()
    ids = torch.randint(2, 50, (4, 6))
    assert set_dropout(model, 0.0) >= 1
    with torch.no_grad():
        assert torch.equal(model(ids), model(ids))
    set_dropout(model, 0.5)
    assert all(m.p == 0.5 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    with torch.no_grad():
        assert not torch.equal(model(ids), model(ids))


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path):
    # lr 0: nothing improves after epoch 1, so patience 2 stops after epoch 3.
    result = _ft("lenet5", "digits", out=tmp_path / "es", lr=0.0, epochs=8, limit=64,
                 early_stopping=2)
    assert len(result.history) == 3
    metrics = json.loads((tmp_path / "es" / "metrics.json").read_text())
    assert metrics["stopped_early"] is True and metrics["best_epoch"] == 1


# -- SFT --------------------------------------------------------------------------------------

PAIRS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black", "blood": "red",
         "sun": "yellow", "leaf": "green", "milk": "white", "night": "black", "rose": "red",
         "sea": "blue", "lemon": "yellow"}


def test_sft_learns_responses_with_the_loss_masked_to_them(tmp_path):
    from zoo.finetune.lm import IGNORE, encode_pairs

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"colour of {k}? ", "response": v}) + "\n"
                            for k, v in PAIRS.items()))
    result = _ft("gpt_tiny", str(data), val_data=str(data), out=tmp_path / "sft",
                 technique="sft", epochs=40, lr=3e-3, batch_size=12)
    model, tok = result.model.eval(), result.model.tokenizer
    assert result.metrics["accuracy"] > 0.9, result.history   # response tokens, teacher-forced
    split = encode_pairs(tok, [f"colour of {k}? " for k in PAIRS], list(PAIRS.values()), 64)
    prompt_pos = split.y == IGNORE
    prompt_pos[:, 0] = False           # nothing predicts <bos>
    prompt_pos &= split.inputs["attention_mask"].bool()
    with torch.no_grad():
        logits = model(**split.inputs).logits
    per_token = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), split.inputs["input_ids"][:, 1:], reduction="none")
    prompt_loss = per_token[prompt_pos[:, 1:]].mean()
    response_loss = per_token[(split.y != IGNORE)[:, 1:]].mean()
    # Only responses were trained: they are predicted well, the prompts' text is not.
    assert response_loss < 0.3 and prompt_loss > 1.5, (float(response_loss), float(prompt_loss))
    right = 0
    for k, v in PAIRS.items():
        ids = torch.tensor([tok.encode(f"colour of {k}? ", bos=True)])
        for _ in range(len(v)):
            with torch.no_grad():
                nxt = model(input_ids=ids).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
        right += tok.decode(ids[0, -len(v):].tolist()) == v
    assert right >= 10
    import zoo

    assert zoo.get(str(tmp_path / "sft")).tokenizer is not None  # vocabulary travels along
