"""Thermal-comfort physics (PMV/PPD, SET, operative temperature) and the features built on it.

May import: data and the top-level modules.
"""
