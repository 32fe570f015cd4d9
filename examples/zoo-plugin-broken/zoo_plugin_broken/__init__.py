"""Deliberately broken zoo plugins, for zoo's isolation tests."""
