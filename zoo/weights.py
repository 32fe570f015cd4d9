"""Old path of :mod:`zoo.loading.weights`, kept for plugins written against zoo 0.1.

``import zoo.weights`` gives the very module ``zoo.loading.weights`` (not a copy), so patching
or reading it changes the one that zoo uses. New code imports ``zoo.loading.weights``.
"""

import sys

import zoo.loading.weights

sys.modules[__name__] = zoo.loading.weights
