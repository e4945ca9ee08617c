from __future__ import annotations

import pandas as pd
import pytest

from conforto._data.columns import (
    REQUIRED_TRAINING,
    closest_names,
    normalise_name,
    resolve_columns,
    resolve_name,
    validate_columns,
)
from conforto.errors import ColumnError


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("ta", "ta"),
        ("TA", "ta"),
        ("tdb", "ta"),
        ("Air Temperature (°C)", "ta"),
        ("air_temperature_c", "ta"),
        ("Temperatura do ar", "ta"),
        ("temperatura_ar", "ta"),
        ("umidade_relativa", "rh"),
        ("Umidade Relativa (%)", "rh"),
        ("rh_pct", "rh"),
        ("RH [%]", "rh"),
        ("velocidade_ar", "vel"),
        ("vr", "vel"),
        ("vel [m/s]", "vel"),
        ("vestimenta", "clo"),
        ("metabolismo", "met"),
        ("Metabolic rate", "met"),
        ("mean radiant temperature", "tr"),
        ("Sensação térmica", "thermal_sensation"),
        ("t_running_mean", "t_mot_isd"),
        ("building", "building_id"),
    ],
)
def test_resolve_name_maps_spellings_to_canonical(name: str, canonical: str) -> None:
    assert resolve_name(name) == canonical


def test_resolve_name_returns_none_for_unknown() -> None:
    assert resolve_name("favourite_colour") is None


def test_normalise_name_strips_accents_units_and_case() -> None:
    assert normalise_name(" Velocidade do Ar (m/s) ") == "velocidade_do_ar"


def test_resolve_columns_renames_and_keeps_unknown() -> None:
    frame = pd.DataFrame(columns=["Temperatura do ar", "RH (%)", "notes"])
    assert list(resolve_columns(frame).columns) == ["ta", "rh", "notes"]


def test_resolve_columns_refuses_unknown_when_strict() -> None:
    frame = pd.DataFrame(columns=["ta", "air_temprature"])
    with pytest.raises(ColumnError, match=r"unknown columns: 'air_temprature' \(closest: .*"):
        resolve_columns(frame, unknown="error")


def test_resolve_columns_refuses_two_names_for_one_column() -> None:
    frame = pd.DataFrame(columns=["ta", "air_temperature", "rh"])
    with pytest.raises(
        ColumnError, match=r"ambiguous columns: 'ta', 'air_temperature' all mean 'ta'"
    ):
        resolve_columns(frame)


def test_resolve_columns_explicit_renames_win() -> None:
    frame = pd.DataFrame(columns=["temp1", "rh"])
    assert list(resolve_columns(frame, renames={"temp1": "ta"}).columns) == ["ta", "rh"]


def test_validate_columns_names_every_missing_column_and_closest() -> None:
    present = ["building_id", "ta", "humidity_x", "vel", "met", "thermal_sensation"]
    with pytest.raises(ColumnError) as info:
        validate_columns(present)
    message = str(info.value)
    assert "'rh' (closest present: 'humidity_x')" in message
    assert "'clo' (closest present: none)" in message


def test_validate_columns_passes_when_complete() -> None:
    validate_columns([*list(REQUIRED_TRAINING), "tr"])


def test_validate_columns_hints_at_wrong_delimiter() -> None:
    with pytest.raises(ColumnError, match="separated by ','"):
        validate_columns(["building_id;ta;rh;vel;met;clo;thermal_sensation"])


def test_closest_names_uses_aliases() -> None:
    assert closest_names("ta", ["air_temp_x", "rh"]) == ["air_temp_x"]
