"""Fitting, cross-validating, judging and saving a model.

May import: model and everything below it (adaptation, uncertainty, scoring, physics, data).
"""
