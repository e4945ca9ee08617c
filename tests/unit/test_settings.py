from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from conforto.errors import ConfigError
from conforto.settings import Settings, get_settings


def test_settings_read_prefixed_and_nested_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONFORTO_MEASUREMENTS", str(tmp_path / "m.csv"))
    monkeypatch.setenv("CONFORTO_DOWNLOAD__RETRIES", "5")
    settings = Settings()
    assert settings.measurements == tmp_path / "m.csv"
    assert settings.download.retries == 5
    assert settings.data_cache == settings.home / "cache"


def test_settings_refuse_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFORTO_DOWNLOAD__MEASUREMENTS_SHA256", "not-a-digest")
    with pytest.raises(ValidationError, match="64 hex digits"):
        Settings()
    with pytest.raises(
        ConfigError, match=r"CONFORTO_DOWNLOAD__MEASUREMENTS_SHA256: .*64 hex digits"
    ):
        get_settings()


def test_get_settings_is_cached(home: Path) -> None:
    assert get_settings() is get_settings()
    assert get_settings().home == home
