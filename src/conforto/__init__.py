"""conforto: predict how building occupants feel about their thermal environment."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed package's metadata when first asked for (the
    command line starts without reading it).
    """
    if name != "__version__":
        raise AttributeError(f"module 'conforto' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("conforto")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        found = "0.0.0"
    globals()["__version__"] = found
    return found
