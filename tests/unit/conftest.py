"""Fixtures of the fast suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.factories import make_frames, train_once, variant

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small model of synthetic votes, and a variant of it (another artifact, as far as a
    registry can tell)."""
    folder = tmp_path_factory.mktemp("synthetic")
    measurements, metadata = make_frames(n=600, buildings=10, seed=5)
    paths = folder / "m.csv", folder / "d.csv"
    measurements.to_csv(paths[0], index=False)
    metadata.to_csv(paths[1], index=False)
    budget = {"folds": 2, "search_trials": 1, "inner_folds": 2, "max_rounds": 10}
    one = train_once(tmp_path_factory, "one", paths, **budget)
    return one, variant(one, folder / "two")
