"""Publishing: a model repo (weights, config, card) and its Space, pushed to the Hub.

- :mod:`~zoo.publish.repo`: stage a model folder and push it (:func:`publish`);
- :mod:`~zoo.publish.card`: the model card;
- :mod:`~zoo.publish.upload`: the Hub's write side (whoami, one-commit uploads).
"""

from zoo.publish.repo import PublishResult, publish, stage

__all__ = ["PublishResult", "publish", "stage"]
