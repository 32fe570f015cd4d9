"""Transformer family: attention models (BERT and GPT through transformers configs)."""

from zoo.catalog import BUILTIN_CATALOG
from zoo.hookspecs import hookimpl


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "transformer", description="Attention-based models: encoders, decoders, both",
        finetune={"no_decay": ["bias", "LayerNorm.weight", "layernorm", "ln_"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="transformer")
