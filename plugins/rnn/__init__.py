"""RNN family: recurrent text models (embedding, recurrent stack, head).

Architectures live in :mod:`zoo.plugins.rnn.text` (classifiers, taggers, the text
predictor) and :mod:`zoo.plugins.rnn.tokenizer` (the word-level tweet tokenizer); this
module only holds hooks, so listing never imports torch.
"""

from zoo.hookspecs import hookimpl
from zoo.registry.catalog import BUILTIN_CATALOG


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "rnn", description="Recurrent networks (RNN, LSTM, GRU) for sequences",
        # Full-length ids valid for any vocabulary (a trained tag's may be smaller than
        # the architecture's vocab_size), so summaries and FLOP counts always run.
        example_input="zoo.plugins.rnn.text:example_input",
        finetune={"head": "head", "layer_groups": ["embedding", "rnn", "head"],
                  "no_decay": ["bias", "norm"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="rnn")
