"""Watching the model in production: input drift, live performance, and what to do about them.

:mod:`.window` reads what to judge (a file, or a time window of the prediction log),
:mod:`.drift` compares inputs with a reference, :mod:`.performance` estimates and measures
accuracy, :mod:`.push` hands the results to Prometheus, :mod:`.check` runs them all as one
tracked run. Nothing here imports the service; the thresholds live in
:class:`.config.MonitorConfig` (``monitor:`` in ``configs/pipeline.yaml``).

May import: predictions, tracking, model and the layers below it, the top-level modules.
"""
