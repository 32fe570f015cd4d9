"""Old path of :mod:`zoo.registry.plugins`, kept for plugins written against zoo 0.1.

``import zoo.plugin_loader`` gives the very module ``zoo.registry.plugins`` (not a
copy), so patching or reading it changes the one that zoo uses. New code imports
``zoo.registry.plugins``.
"""

import sys

import zoo.registry.plugins

sys.modules[__name__] = zoo.registry.plugins
