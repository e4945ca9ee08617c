"""Shipping the model: checking a running service (:mod:`.smoke`) and deploying it.

May import: model, data, the production pointer (``registry.pointer``) and the top-level
modules.
"""
