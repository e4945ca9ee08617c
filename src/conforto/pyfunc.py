"""The loader module every registered ``MLmodel`` names: a stable import path for MLflow.

Versions registered by any release of conforto name ``conforto.pyfunc`` as their
``python_function`` loader, so this path stays; the model itself lives in
:mod:`conforto._model.pyfunc`.
"""

from conforto._model.pyfunc import PyfuncModel, _load_pyfunc

__all__ = ["PyfuncModel", "_load_pyfunc"]
