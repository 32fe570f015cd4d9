"""Model making, above the registry: build a spec's model and load its weights.

- :mod:`~zoo.loading.build`: build, summarise (one forward pass), example inputs;
- :mod:`~zoo.loading.saved`: the saved-directory format (``save``, ``load_dir``);
- :mod:`~zoo.loading.weights`: read/apply/save state dicts, safely;
- :mod:`~zoo.loading.sources`, :mod:`~zoo.loading.download`, :mod:`~zoo.loading.paths`:
  where weights come from (Hub, timm, torchvision, package, file, https) and their caches;
- :mod:`~zoo.loading.loaders`: the built-in ``zoo_load_pretrained`` hook;
- :mod:`~zoo.loading.hub`: the Hub's read side (snapshots of published models);
- :mod:`~zoo.loading.preprocess`: images to the tensors a model's input spec declares.

Imports only :mod:`zoo.registry` and the base modules below it; torch loads inside functions.
"""
