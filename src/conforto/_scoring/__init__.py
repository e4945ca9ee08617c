"""How predictions are scored (log loss, macro-F1, calibration, intervals over buildings).

May import: data and the top-level modules.
"""
