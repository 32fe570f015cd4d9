"""GPT-2 models: builds, generation, training, and the shipped character-level generator."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import load_script, step_losses

import zoo
from zoo.api import spec as resolve
from zoo.errors import UsageError
from zoo.loading.build import summarize
from zoo.loading.weights import apply_state_dict, read_state_dict
from zoo.plugins.transformer.gpt import generate_text, gpt2, predict_text

ROOT = Path(__file__).resolve().parents[1]
# the module, not the zoo.predict function the package re-exports
predict_module = importlib.import_module("zoo.predict")
VOCAB = f"file:{ROOT / 'zoo' / 'trained' / 'gpt-tiny-pydoc.json'}"


script = load_script("train_gpt_pydoc")


@pytest.fixture(scope="module")
def shipped():
    return zoo.get("gpt_tiny.pydoc")


@pytest.mark.parametrize("name", ["gpt2", "gpt2_medium", "gpt_tiny"])
def test_gpt_builds_match_catalog(name):
    s, _ = resolve(name)
    model = zoo.get(name)                       # gpt2_medium is built here and only here
    assert sum(p.numel() for p in model.parameters()) == s.params
    assert model.lm_head.weight is model.transformer.wte.weight      # tied, as in GPT-2
    ids = torch.randint(0, s.kwargs["vocab_size"], (2, 8))
    with torch.no_grad():
        assert model.eval()(input_ids=ids).logits.shape == (2, 8, s.kwargs["vocab_size"])
    if name != "gpt2_medium":                   # its gflops were measured once, offline
        info = summarize(model, s)
        assert info["gflops"] == pytest.approx(s.gflops, rel=1e-3)


def test_hf_generate_works_on_tiny_config():
    torch.manual_seed(0)
    model = zoo.get("gpt_tiny").eval()
    out = model.generate(torch.tensor([[1, 5, 6]]), max_new_tokens=5, do_sample=False)
    assert out.shape == (1, 8)
    assert out[0, :3].tolist() == [1, 5, 6]


def test_one_training_step_reduces_loss():
    torch.manual_seed(0)
    model = gpt2(n_layer=1, n_embd=32, n_head=2, n_positions=16, vocab_size=30).train()
    x = torch.randint(0, 30, (4, 16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():
        logits = model(input_ids=x[:, :-1]).logits
        return F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())

    before, after = step_losses(opt, loss)
    assert after < before - 1e-3


def test_cached_generation_slides_like_a_full_recompute():
    """Past the context the KV-cached sampler must agree with recomputing the window."""
    torch.manual_seed(0)
    model = gpt2(vocab=VOCAB, n_layer=1, n_embd=32, n_head=2, n_positions=16).eval()
    tok = model.tokenizer
    prompt = "def f(x):"
    got = generate_text(model, prompt, max_new_tokens=40, temperature=0)
    context = tok.encode(prompt, bos=True)
    want = []
    with torch.no_grad():
        for _ in range(40):
            if len(context) > 16:
                context = context[-8:]
            logits = model(input_ids=torch.tensor([context])).logits[0, -1]
            logits[:4] = float("-inf")                              # no special tokens
            want.append(int(logits.argmax()))
            context.append(want[-1])
    assert got == tok.decode(want)
    assert len(got) == 40


def test_generate_without_tokenizer_says_what_to_load():
    with pytest.raises(UsageError, match="gpt_tiny.pydoc"):
        generate_text(gpt2(n_layer=1, n_embd=16, n_head=2, vocab_size=20), "hi")


# -- the shipped model ------------------------------------------------------------------

def test_shipped_generator_is_small_and_carries_its_vocabulary(shipped):
    s, tag = resolve("gpt_tiny.pydoc")
    assert (ROOT / "zoo" / "trained" / "gpt-tiny-pydoc.safetensors").stat().st_size <= 3_000_000
    assert len(shipped.tokenizer) == s.pretrained[tag].kwargs["vocab_size"]
    assert shipped.tokenizer.decode(shipped.tokenizer.encode("print(x)")) == "print(x)"


def test_shipped_heldout_loss_beats_unigram_as_stated(shipped):
    s, tag = resolve("gpt_tiny.pydoc")
    metrics = s.pretrained[tag].metrics
    train, held = script.corpus()
    loss = script.heldout_loss(shipped, shipped.tokenizer, held)
    assert loss <= metrics["heldout-loss"] + 0.02
    assert metrics["heldout-ppl"] == pytest.approx(math.exp(metrics["heldout-loss"]), rel=1e-3)
    assert metrics["heldout-loss"] < metrics["unigram-loss"] - 0.5


def test_shipped_generation_is_seeded_and_exact_length(shipped, monkeypatch):
    a = generate_text(shipped, "The ", max_new_tokens=60, temperature=0.8, seed=3)
    b = generate_text(shipped, "The ", max_new_tokens=60, temperature=0.8, seed=3)
    c = generate_text(shipped, "The ", max_new_tokens=60, temperature=0.8, seed=4)
    assert a == b and a != c
    assert len(a) == 60
    state = torch.random.get_rng_state()
    generate_text(shipped, "x", max_new_tokens=3, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())       # global RNG untouched
    s, tag = resolve("gpt_tiny.pydoc")
    out = predict_text(shipped, s, tag, "The ", max_new_tokens=60, seed=3)
    assert out == "The " + a
    monkeypatch.setitem(predict_module.TASKS, ("transformer", "text-generation"),
                        "zoo.plugins.transformer.gpt:predict_text")
    assert predict_module.predict("gpt_tiny.pydoc", "The ", max_new_tokens=60, seed=3) == out


def test_training_script_smoke(tmp_path):
    metrics = script.main(["--steps", "2", "--batch", "4", "--max-chars", "3000",
                           "--out-dir", str(tmp_path)])
    assert metrics["heldout-loss"] > 0 and metrics["unigram-loss"] > 0
    model = gpt2(vocab=f"file:{tmp_path / 'gpt-tiny-pydoc.json'}", **script.CONFIG)
    state = read_state_dict(tmp_path / "gpt-tiny-pydoc.safetensors")
    apply_state_dict(model, state, origin="smoke")
