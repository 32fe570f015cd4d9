"""GNN family: graph neural networks from torch_geometric (node and graph classification)."""

from zoo.hookspecs import hookimpl
from zoo.registry.catalog import BUILTIN_CATALOG


@hookimpl
def zoo_register_families(registry):
    registry.add_family(
        "gnn", description="Graph neural networks (torch_geometric)",
        example_input="zoo.plugins.gnn.graphs:example_input",
        finetune={"no_decay": ["bias", "norm"]},
    )


@hookimpl
def zoo_register_models(registry):
    registry.add_catalog(BUILTIN_CATALOG, family="gnn")
