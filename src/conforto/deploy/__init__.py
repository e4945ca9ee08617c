"""Shipping the model: checking a running service (:mod:`.smoke`) and deploying it."""
