"""One router per resource; :data:`ROUTERS` in the order the app includes them."""

from __future__ import annotations

from conforto._serving.routes import about, admin, explorer, feedback, metrics, model, predict

ROUTERS = (
    about.router,
    predict.router,
    feedback.router,
    metrics.router,
    admin.router,
    model.router,
    explorer.router,
)

__all__ = ["ROUTERS"]
