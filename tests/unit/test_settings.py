from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from conforto._settings import Settings, get_settings
from conforto.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


def test_settings_read_prefixed_and_nested_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONFORTO_MEASUREMENTS", str(tmp_path / "m.csv"))
    monkeypatch.setenv("CONFORTO_DOWNLOAD__RETRIES", "5")
    settings = Settings()
    assert settings.measurements == tmp_path / "m.csv"
    assert settings.download.retries == 5
    assert settings.data_cache == settings.home / "cache"


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("CONFORTO_DOWNLOAD__MEASUREMENTS_SHA256", "not-a-digest", "64 hex digits"),
        ("CONFORTO_SERVE__LOG_URL", "predictions.db", "not a SQLAlchemy database URL"),
        ("CONFORTO_DEPLOY__GCP_PROJECT", "My_Project", "should match pattern"),
        ("CONFORTO_DEPLOY__REGION", "Europe West", "should match pattern"),
    ],
)
def test_settings_refuse_bad_values(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=reason):
        Settings()
    with pytest.raises(ConfigError, match=f"{variable}: .*{reason}"):
        get_settings()


def test_get_settings_is_cached(home: Path) -> None:
    assert get_settings() is get_settings()
    assert get_settings().home == home


@pytest.mark.parametrize("home", ["relative"], indirect=True)
def test_relative_paths_are_made_absolute_where_the_settings_are_read(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFORTO_SERVE__SPOOL_DIR", "spool")
    monkeypatch.setenv("CONFORTO_MEASUREMENTS", "data/m.csv")
    settings = Settings()
    assert settings.home == home  # the default .conforto, in the working directory
    assert settings.home.is_absolute()
    assert settings.registry_dir == home / "registry"  # what nginx, workers and writers get
    assert settings.spool_dir == home.parent / "spool"
    assert settings.measurements == home.parent / "data" / "m.csv"
