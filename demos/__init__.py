"""Gradio demos generated from the registry: task adapters, the app builder, the gallery.

Adapters are provided through the ``zoo_demo_adapter`` hook, one per task.
"""
