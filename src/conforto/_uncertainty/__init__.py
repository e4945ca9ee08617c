"""Prediction sets, their calibration, and the confidence estimate of being right.

May import: scoring, data and the top-level modules.
"""
