"""Behavioural expectations that hold for any sensible thermal-sensation model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from conforto._data.load import load_dataset
from conforto._model.artifact import load_model
from conforto._model.behaviour import behaviour_checks

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_behavioural_suite_passes_on_ordinary_rooms(full_model: Path) -> None:
    failed = [c for c in behaviour_checks(load_model(full_model)) if not c.passed]
    assert not failed, failed


def test_warmer_air_never_lowers_p_warm_on_real_votes(
    full_model: Path, dev_paths: tuple[Path, Path]
) -> None:
    model = load_model(full_model)
    rooms = load_dataset(*dev_paths).frame.sample(500, random_state=0)
    check = behaviour_checks(model, rooms)[0]
    assert check.passed, check.detail
