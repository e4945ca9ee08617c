"""Reading, checking and describing the data: columns, bounds, categories, target, profiles.

May import: the top-level modules only.
"""
