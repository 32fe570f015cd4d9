"""The encoder-decoder Transformer: builds, decoding, training, and the shipped dates model."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import load_script, step_losses

import zoo
from zoo.api import spec as resolve
from zoo.errors import BuildError, UsageError
from zoo.loading.build import save, summarize
from zoo.loading.weights import apply_state_dict, read_state_dict
from zoo.plugins.transformer.seq2seq import (
    Seq2SeqTransformer,
    Tokenizer,
    example_input,
    predict_translation,
    save_vocab,
    transformer,
    translate,
)

ROOT = Path(__file__).resolve().parents[1]
# the module, not the zoo.predict function the package re-exports
predict_module = importlib.import_module("zoo.predict")


dates = load_script("train_transformer_dates")


@pytest.fixture(scope="module")
def shipped():
    return zoo.get("transformer.dates")


def _small(**kw) -> Seq2SeqTransformer:
    torch.manual_seed(0)
    cfg = dict(vocab_size=40, d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
               dim_feedforward=64, dropout=0.0)
    return transformer(**(cfg | kw)).eval()


def test_base_transformer_matches_catalog_and_paper_size():
    s, _ = resolve("transformer")
    model = zoo.get("transformer")
    assert isinstance(model, Seq2SeqTransformer)
    assert sum(p.numel() for p in model.parameters()) == s.params
    # shared vocabulary: the output projection is the embedding table (tied, as in the paper)
    assert model.generator.weight is model.src_embed.weight is model.tgt_embed.weight
    src, tgt = torch.randint(4, 37000, (2, 12)), torch.randint(4, 37000, (2, 7))
    with torch.no_grad():
        assert model.eval()(src, tgt).shape == (2, 7, 37000)
    info = summarize(model, s)
    assert info["output_shape"] == [1, 32, 37000]
    assert info["gflops"] == pytest.approx(s.gflops, rel=1e-3)


def test_embeddings_are_scaled_and_positions_sinusoidal():
    model = _small()
    ids = torch.tensor([[5, 6, 7]])
    emb = model._embed(model.src_embed, ids)
    expected = model.src_embed(ids) * 32 ** 0.5 + model.pos.pe[:3]
    torch.testing.assert_close(emb, expected)
    pe = model.pos.pe
    assert pe[0, 0] == 0 and pe[0, 1] == 1                       # sin(0), cos(0)
    assert torch.isclose(pe[1, 0], torch.sin(torch.tensor(1.0)))
    assert "pos.pe" not in model.state_dict()                     # a function of shape, not saved


def test_separate_vocabularies_have_their_own_tables():
    model = _small(tgt_vocab_size=15)
    assert model.tgt_embed is not model.src_embed
    assert model(torch.randint(4, 40, (3, 9)), torch.randint(4, 15, (3, 5))).shape == (3, 5, 15)
    # one-tensor summaries: the decoder input is derived from the source within its vocabulary
    assert model(torch.randint(4, 40, (1, 9))).shape == (1, 9, 15)


def test_beam_of_one_equals_greedy_on_random_model():
    model = _small()
    src = torch.randint(4, 40, (5, 8))
    src[1, 5:] = 0                                                 # padding must not matter
    greedy = model.greedy(src, max_len=12)
    assert model.beam_search(src, beam=1, max_len=12) == greedy
    assert any(len(g) > 0 for g in greedy)


def test_one_training_step_reduces_loss():
    model = _small().train()
    src, tgt = torch.randint(4, 40, (8, 10)), torch.randint(4, 40, (8, 7))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():
        logits = model(src, tgt[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten())

    before, after = step_losses(opt, loss)
    assert after < before - 1e-3


def test_vocab_json_round_trips_and_is_checked(tmp_path):
    src = Tokenizer(["march", "of", "the"] + list("0123456789,"), level="word", lowercase=True)
    tgt = Tokenizer("0123456789-")
    path = save_vocab(tmp_path / "v.json", src, tgt)
    model = transformer(vocab=f"file:{path}", d_model=16, nhead=2, num_encoder_layers=1,
                        num_decoder_layers=1, dim_feedforward=32)
    assert model.src_vocab.encode("The 21st of MARCH") == src.encode("the 21st of march")
    assert model.src_vocab.split("21st of march") == ["2", "1", "st", "of", "march"]
    assert model.tgt_vocab.decode(tgt.encode("1998-03-21") + [tgt.eos_id, 5]) == "1998-03-21"
    assert model.generator.out_features == len(tgt)
    with pytest.raises(BuildError, match="vocab_size"):
        transformer(vocab=f"file:{path}", vocab_size=99)
    with pytest.raises(BuildError, match="vocabulary JSON"):
        transformer(vocab=f"file:{tmp_path / 'missing.json'}")


def test_translate_without_vocabulary_says_what_to_load():
    with pytest.raises(UsageError, match="transformer.dates"):
        translate(_small(), "3/21/98")


# -- the shipped model ------------------------------------------------------------------

def test_shipped_dates_model_is_small_and_self_describing(shipped):
    s, tag = resolve("transformer.dates")
    path = ROOT / "zoo" / "trained" / "transformer-dates.safetensors"
    assert path.stat().st_size <= 3_000_000
    assert len(shipped.src_vocab) == s.pretrained[tag].kwargs["vocab_size"]
    assert shipped.tokenizer is shipped.src_vocab
    # the family-wide example input reads the tag's vocabulary sizes (the core default
    # reads only the architecture's kwargs, whose 37k-token ids do not fit this model)
    args = example_input(s, tag)
    assert int(args[0].max()) < len(shipped.src_vocab) and int(args[1].max()) < 15
    info = summarize(shipped, s, tag, args=args)
    assert info["output_shape"] == [1, 32, len(shipped.tgt_vocab)]
    # other transformer models get the one token tensor their input spec describes
    gpt, _ = resolve("gpt2")
    (ids,) = example_input(gpt)
    assert ids.shape == (1, 32) and ids.dtype == torch.int64


def test_shipped_dates_exact_match_on_fresh_dates(shipped):
    s, tag = resolve("transformer.dates")
    stated = s.pretrained[tag].metrics["exact-match"]
    held_out = dates.make_pairs(1000, seed=424242)                 # not the script's seeds
    acc = dates.exact_match(shipped, held_out)
    assert stated >= 0.95
    assert acc >= stated - 0.02


@pytest.mark.parametrize(("text", "iso"), [
    ("the twenty-first of march, 1998", "1998-03-21"),
    ("3/21/98", "1998-03-21"),
    ("March 21st 1998", "1998-03-21"),
    ("July 4, 1976", "1976-07-04"),
    ("25.12.2000", "2000-12-25"),
    ("Monday, January 1, 2024", "2024-01-01"),
    ("the second of february nineteen sixty-one", "1961-02-02"),
])
def test_shipped_dates_translates_hand_written_dates(shipped, text, iso):
    assert translate(shipped, text) == iso
    assert translate(shipped, text, beam=4) == iso


def test_shipped_beam_of_one_equals_greedy_and_predict_entry(shipped, monkeypatch):
    texts = [s for s, _ in dates.make_pairs(20, seed=7)]
    src = shipped.src_vocab.batch(texts)
    assert shipped.beam_search(src, beam=1, max_len=12) == shipped.greedy(src, max_len=12)
    s, tag = resolve("transformer.dates")
    assert predict_translation(shipped, s, tag, ["3/21/98", "1 may 2001"], beam=2) == \
        ["1998-03-21", "2001-05-01"]
    monkeypatch.setitem(predict_module.TASKS, ("transformer", "translation"),
                        "zoo.plugins.transformer.seq2seq:predict_translation")
    assert predict_module.predict("transformer.dates", "march 3rd, 2012") == "2012-03-03"


def test_training_script_smoke(tmp_path):
    metrics = dates.main(["--steps", "2", "--batch", "8", "--eval-size", "16",
                          "--out-dir", str(tmp_path)])
    assert 0.0 <= metrics["exact-match"] <= 1.0
    model = transformer(vocab=f"file:{tmp_path / 'transformer-dates.json'}", **dates.CONFIG)
    state = read_state_dict(tmp_path / "transformer-dates.safetensors")
    apply_state_dict(model, state, origin="smoke")


def test_shipped_dates_model_survives_save_and_reload(shipped, tmp_path):
    s, tag = resolve("transformer.dates")
    out = save(shipped, tmp_path / "dates", spec=s, tag=tag)
    again = zoo.get(str(out))
    assert translate(again, "the 5th of november 1955") == "1955-11-05"
