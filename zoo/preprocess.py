"""Old path of :mod:`zoo.loading.preprocess`, kept for plugins written against zoo 0.1.

``import zoo.preprocess`` gives the very module ``zoo.loading.preprocess`` (not a copy), so patching
or reading it changes the one that zoo uses. New code imports ``zoo.loading.preprocess``.
"""

import sys

import zoo.loading.preprocess

sys.modules[__name__] = zoo.loading.preprocess
