"""Fitting, cross-validating, judging and saving a model.

May import: model and everything below it (uncertainty, scoring, physics, data).
"""
