"""conforto: predict how building occupants feel about their thermal environment."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("conforto")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
