"""The model registry: versions in a store (MLflow), the production pointer the service reads,
the audit log of every move, the journals that make moves survive a crash (one file, or shared
through a tracking server), the index that answers without MLflow, pushes to a tracking server
and upgrades of models of an earlier format.

May import: tracking, model and the layers below them, and the top-level modules.
"""
