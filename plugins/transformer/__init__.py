"""Transformer family: attention models (BERT/MiniLM, ViT, DETR, GPT and seq2seq).

Hooks only: architectures live in the submodules the catalog's builder strings name,
and nothing here imports torch.
"""

from zoo.hookspecs import hookimpl
from zoo.registry.catalog import BUILTIN_CATALOG

# Builders whose weights go through zoo.plugins.transformer.minilm:load_pretrained, which
# understands the Hub's BertModel checkpoints (the MiniLM package's) and zoo LoRA adapters.
_BERT_BUILDERS = ("zoo.plugins.transformer.minilm:", "zoo.plugins.transformer.hf:bert")


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "transformer", description="Attention-based models: encoders, decoders, both",
        example_input="zoo.plugins.transformer.seq2seq:example_input",
        finetune={"no_decay": ["bias", "LayerNorm.weight", "layernorm", "ln_", "norm"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="transformer")


@hookimpl
def zoo_load_pretrained(spec, model, source, tag):
    """Load a whole transformers Hub repo (``hf-hub:ORG/REPO[@REV]``) into any transformers
    model, and ``package:``/``file:`` weights into BERT/MiniLM models (adapters included)."""
    if source.lower().startswith("hf-hub:") and _is_transformers_model(model):
        from zoo.plugins.transformer.hub import load_repo, whole_repo

        return load_repo(model, source) if whole_repo(source) is not None else None
    if spec.family != "transformer" or not spec.builder_path.startswith(_BERT_BUILDERS):
        return None
    scheme, _, rest = source.partition(":")
    if scheme not in ("package", "file"):
        return None
    from pathlib import Path

    from zoo.loading.paths import resolve_package_path
    from zoo.plugins.transformer.minilm import load_pretrained

    path = resolve_package_path(rest) if scheme == "package" else Path(rest).expanduser()
    return load_pretrained(model, path, sha256=tag.sha256 if tag is not None else None)


def _is_transformers_model(model) -> bool:
    """A ``transformers.PreTrainedModel``, checked without importing transformers."""
    return any(c.__module__ == "transformers.modeling_utils" and c.__name__ == "PreTrainedModel"
               for c in type(model).__mro__)
