"""The public API: ``conforto``'s own names, imported when first used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import conforto

#: Print the modules outside the standard library that importing conforto loaded.
LOADED = (
    "import sys; before = set(sys.modules); import conforto; "
    "print(sorted(m for m in set(sys.modules) - before "
    "if m.split('.')[0] not in sys.stdlib_module_names))"
)


def test_importing_conforto_loads_the_standard_library_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "['conforto']"


def test_every_public_name_is_there_and_is_what_its_module_defines() -> None:
    public = [name for name in conforto.__all__ if name != "__version__"]
    assert sorted(public) == sorted(conforto._PUBLIC)
    for name in public:
        found = getattr(conforto, name)
        assert found is getattr(sys.modules[conforto._PUBLIC[name]], name)
        assert name in dir(conforto)
    assert issubclass(conforto.NoProductionModel, conforto.ConfortoError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'train'"):
        conforto.train  # noqa: B018 - the access is the test
