"""The prediction service: a FastAPI app around a loaded model artifact.

Serving depends on the artifact and the settings only: it never imports MLflow, ClearML or the
training code, so a container starts in about a second.

May import: model, adaptation, uncertainty, physics, data, predictions, the production pointer
(``registry.pointer``) and the top-level modules.
"""
