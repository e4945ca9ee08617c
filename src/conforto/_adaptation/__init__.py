"""Site adaptation: each building's answers adjusted by what its own occupants voted before.

The model answers every building alike (zero-shot). A site's earlier votes show how its
occupants differ from the buildings the model learned from; :mod:`.site` learns that difference
as an adjustment of the model's log-probabilities, shrunk toward the general model, and
:mod:`.replay` replays held-out buildings day by day to measure what it is worth and to choose
how strongly to shrink.

May import: scoring, data and the top-level modules.
"""
