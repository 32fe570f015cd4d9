"""Old path of :mod:`zoo.loading.build`, kept for plugins written against zoo 0.1.

``import zoo.build`` gives the very module ``zoo.loading.build`` (not a copy), so patching
or reading it changes the one that zoo uses. New code imports ``zoo.loading.build``.
"""

import sys

import zoo.loading.build

sys.modules[__name__] = zoo.loading.build
