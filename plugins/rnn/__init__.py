"""RNN family: recurrent text models (embedding, recurrent stack, head)."""

from zoo.catalog import BUILTIN_CATALOG
from zoo.hookspecs import hookimpl


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "rnn", description="Recurrent networks (RNN, LSTM, GRU) for sequences",
        finetune={"head": "head", "layer_groups": ["embedding", "rnn", "head"],
                  "no_decay": ["bias", "norm"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="rnn")
