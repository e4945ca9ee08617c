"""``/explorer`` (and ``/`` for a browser): the comfort explorer, a page that puts the model
beside PMV; its files are the package's own (``conforto/_serving/explorer``), served with a
strict Content-Security-Policy: nothing is loaded from anywhere but this service.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Response

router = APIRouter(include_in_schema=False)

#: The explorer's files and their media types.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "explorer.js": "text/javascript; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
}
#: Scripts, styles, data and images from this service only; no inline code, no frames.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def asset(name: str) -> bytes:
    """One of the explorer's files, read from the package once."""
    return files("conforto._serving").joinpath("explorer", name).read_bytes()


def page() -> Response:
    """The explorer's page, with its security headers."""
    return Response(asset("index.html"), media_type=ASSETS["index.html"], headers=HEADERS)


@router.get("/explorer")
async def explorer() -> Response:
    """The comfort explorer."""
    return page()


@router.get("/explorer/{name}")
async def explorer_asset(name: str) -> Response:
    """The explorer's script and style sheet."""
    if name not in ASSETS or name == "index.html":
        raise HTTPException(404, f"no explorer file {name!r}")
    return Response(asset(name), media_type=ASSETS[name], headers=HEADERS)
