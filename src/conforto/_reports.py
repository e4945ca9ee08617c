"""HTML rendering and figures for the reports people read."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import jinja2

from conforto._lineage import package_version

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("conforto", "templates"),
    autoescape=jinja2.select_autoescape(("html",)),
    undefined=jinja2.StrictUndefined,
)


def render(template: str, **context: Any) -> str:
    """Render a packaged HTML template with ``context`` (values are escaped).

    Parameters
    ----------
    template
        File name under ``conforto/templates``.
    **context
        Template variables.

    Returns
    -------
    str
        The HTML page.
    """
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _ENV.get_template(template).render(version=package_version(), generated=stamp, **context)


def new_figure(
    width: float = 4.0,
    height: float = 2.6,
    *,
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained",
) -> Figure:
    """Return a matplotlib figure drawn off-screen (no display needed).

    Parameters
    ----------
    width, height
        Size [inch].
    layout
        Matplotlib layout engine; ``None`` for large grids, where constrained layout is slow.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def figure_uri(fig: Figure, dpi: int = 90) -> str:
    """Encode a figure as a PNG ``data:`` URI to embed in a self-contained HTML page."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
