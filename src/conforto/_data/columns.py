"""Column vocabulary, name resolution and required-column checks.

The canonical names are the ASHRAE Global Thermal Comfort Database II's own (``ta``, ``tr``,
``rh``, ``vel``, ``met``, ``clo``, …). :func:`resolve_columns` maps the names people actually
use onto them: pythermalcomfort's (``tdb``, ``vr``), spelled-out English and Portuguese names
(``air_temperature``, ``temperatura_ar``), in any case, with spaces, accents and unit suffixes.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import TYPE_CHECKING

from conforto.errors import ColumnError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import pandas as pd

#: Columns that training data must have.
REQUIRED_TRAINING: tuple[str, ...] = (
    "building_id",
    "ta",
    "rh",
    "vel",
    "met",
    "clo",
    "thermal_sensation",
)


def _names(text: str) -> tuple[str, ...]:
    """The names in ``text``, split on white space (the tables below read as words)."""
    return tuple(text.split())


#: Numeric columns of the measurements and metadata tables.
NUMERIC: tuple[str, ...] = _names(
    "record_id building_id age ht wt ta ta_h ta_m ta_l top tr tg tg_h tg_m tg_l rh vel vel_h "
    "vel_m vel_l met clo activity_10 activity_20 activity_30 activity_60 thermal_sensation "
    "thermal_comfort blind_curtain fan window door heater t_out rh_out t_out_monthly t_out_isd "
    "rh_out_isd t_mot_isd set pmv ppd pmv_ce ppd_ce lat lon year records isd_distance database"
)

#: Text and categorical columns.
CATEGORICAL: tuple[str, ...] = _names(
    "season gender subject_id thermal_acceptability thermal_preference "
    "air_movement_acceptability air_movement_preference building_id_inf contributor publication "
    "region country city climate building_type cooling_type has_age has_ec has_timestamp "
    "timezone met_source isd_station quality_assurance"
)

#: Other canonical columns.
OTHER: tuple[str, ...] = ("index", "timestamp", "mes_ano")

CANONICAL: frozenset[str] = frozenset(NUMERIC + CATEGORICAL + OTHER)

#: Alternative names per canonical column (compared after :func:`normalise_name`).
ALIASES: dict[str, tuple[str, ...]] = {
    "ta": _names(
        "tdb t_a t_air air_temp air_temperature dry_bulb_temperature temperatura temperatura_ar "
        "temperatura_do_ar temp_ar"
    ),
    "tr": _names(
        "t_r mrt mean_radiant_temperature radiant_temperature temperatura_radiante "
        "temperatura_radiante_media"
    ),
    "top": _names("t_op operative_temperature temperatura_operativa"),
    "tg": _names("globe_temperature temperatura_de_globo temperatura_globo"),
    "rh": _names("relative_humidity humidity umidade umidade_relativa ur hr humidade_relativa"),
    "vel": _names("v vr air_speed air_velocity velocity velocidade_ar velocidade_do_ar vel_ar"),
    "met": _names("metabolic_rate metabolism metabolismo taxa_metabolica atividade"),
    "clo": _names(
        "clothing clothing_insulation vestimenta roupa isolamento_roupa isolamento_da_vestimenta"
    ),
    "thermal_sensation": _names("tsv sensation vote sensacao sensacao_termica voto voto_sensacao"),
    "building_id": _names("building edificio predio id_edificio id_predio"),
    "record_id": _names("id record"),
    "timestamp": _names("date datetime time data data_hora"),
    "season": _names("estacao estacao_do_ano"),
    "age": _names("idade"),
    "gender": _names("sex sexo genero"),
    "ht": _names("height altura"),
    "wt": _names("weight peso massa"),
    "t_out": _names("outdoor_temperature temperatura_externa"),
    "rh_out": _names("outdoor_humidity umidade_externa"),
    "t_mot_isd": _names(
        "t_running_mean t_rm running_mean_outdoor_temperature temperatura_media_movel"
    ),
    "climate": _names("clima koppen"),
    "building_type": _names("tipo_edificio tipo_de_edificio"),
    "cooling_type": _names("cooling ventilation tipo_resfriamento condicionamento"),
    "country": _names("pais"),
    "city": _names("cidade"),
    "mes_ano": _names("month_year year_month"),
}

# Trailing tokens that only name a unit: "ta_c", "Ta (°C)", "rh_pct", "vel [m/s]".
_UNIT_TOKENS = frozenset(_names("c degc celsius pct percent ms m_s mps kg cm yrs years anos k m"))


def normalise_name(name: str) -> str:
    """Reduce a column name to a comparable key.

    Lower-cases, strips accents and bracketed units, and joins words with ``_``.

    Parameters
    ----------
    name
        A column name as found in a file.

    Returns
    -------
    str
        The key, e.g. ``"temperatura_do_ar"`` for ``"Temperatura do Ar (°C)"``.

    Examples
    --------
    >>> normalise_name("Temperatura do Ar (°C)")
    'temperatura_do_ar'
    >>> normalise_name("  RH [%] ")
    'rh'
    """
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[\(\[\{][^\)\]\}]*[\)\]\}]", " ", text)
    text = text.replace("%", " pct ").replace("/", "_")
    return "_".join(re.findall(r"[a-z0-9]+", text))


def _strip_unit(key: str) -> str:
    parts = key.split("_")
    while len(parts) > 1 and parts[-1] in _UNIT_TOKENS:
        parts.pop()
    if len(parts) > 2 and "_".join(parts[-2:]) in _UNIT_TOKENS:
        parts = parts[:-2]
    return "_".join(parts)


def _build_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {name: name for name in CANONICAL}
    for canonical, aliases in ALIASES.items():
        for alias in aliases:
            key = normalise_name(alias)
            if lookup.get(key, canonical) != canonical:
                raise ValueError(f"alias {alias!r} maps to {lookup[key]!r} and {canonical!r}")
            lookup[key] = canonical
    return lookup


_LOOKUP = _build_lookup()


def resolve_name(name: str) -> str | None:
    """Return the canonical name for ``name``, or ``None`` when it is not in the vocabulary.

    Parameters
    ----------
    name
        A column name in any supported spelling.

    Returns
    -------
    str or None
        The canonical column name.

    Examples
    --------
    >>> resolve_name("Air Temperature (°C)"), resolve_name("umidade_relativa"), resolve_name("x")
    ('ta', 'rh', None)
    """
    key = normalise_name(name)
    for candidate in (key, _strip_unit(key)):
        if candidate in _LOOKUP:
            return _LOOKUP[candidate]
    return None


def closest_names(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names from ``choices`` that look most like ``name`` or its aliases.

    Examples
    --------
    >>> closest_names("rh", ["humidity_pct", "ta", "building"])
    ['humidity_pct']
    """
    targets = [normalise_name(name)] + [normalise_name(a) for a in ALIASES.get(name, ())]
    scored = []
    for choice in choices:
        key = _strip_unit(normalise_name(choice))
        score = max(difflib.SequenceMatcher(None, key, t).ratio() for t in targets)
        if targets[0] in key.split("_"):  # "rh_renamed", "old_ta": the name is one word of it
            score = max(score, 0.9)
        if score >= 0.6:
            scored.append((-score, choice))
    return [choice for _, choice in sorted(scored)[:n]]


def resolve_columns(
    frame: pd.DataFrame, *, unknown: str = "keep", renames: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Rename the columns of ``frame`` to the canonical vocabulary.

    Parameters
    ----------
    frame
        Data with columns in any supported spelling.
    unknown
        ``"keep"`` leaves names outside the vocabulary as they are; ``"error"`` refuses them.
    renames
        Explicit ``{name in file: canonical name}`` mappings that take precedence.

    Returns
    -------
    pandas.DataFrame
        The same data (not copied) with canonical column names.

    Raises
    ------
    ColumnError
        When two columns map to the same canonical name (ambiguous), or, with
        ``unknown="error"``, when a name is not in the vocabulary; the message lists candidates.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame(columns=["Temperatura do ar", "RH (%)", "vr"])
    >>> list(resolve_columns(frame).columns)
    ['ta', 'rh', 'vel']
    """
    if unknown not in ("keep", "error"):
        raise ValueError(f"unknown must be 'keep' or 'error', got {unknown!r}")
    renames = dict(renames or {})
    mapping: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    unresolved: list[str] = []
    for column in map(str, frame.columns):
        target = renames.get(column) or resolve_name(column)
        if target is None:
            unresolved.append(column)
            target = column
        mapping[column] = target
        sources.setdefault(target, []).append(column)
    clashes = {t: s for t, s in sources.items() if len(s) > 1}
    if clashes:
        detail = "; ".join(f"{', '.join(map(repr, s))} all mean {t!r}" for t, s in clashes.items())
        raise ColumnError(
            f"ambiguous columns: {detail}. Keep one of each, or rename the others "
            "to something outside the vocabulary."
        )
    if unknown == "error" and unresolved:
        hints = "; ".join(
            f"{c!r} (closest: {', '.join(closest_names(c, CANONICAL)) or 'none'})"
            for c in unresolved
        )
        raise ColumnError(f"unknown columns: {hints}. Rename them to a canonical name.")
    return frame.rename(columns=mapping)


def validate_columns(columns: Sequence[str], required: Iterable[str] = REQUIRED_TRAINING) -> None:
    """Check that every required column is present.

    Parameters
    ----------
    columns
        Canonical column names present (after :func:`resolve_columns`).
    required
        Column names that must be present.

    Raises
    ------
    ColumnError
        Naming every missing column and, for each, the closest names that are present.
    """
    present = [str(c) for c in columns]
    missing = [c for c in required if c not in present]
    if not missing:
        return
    hints = []
    for name in missing:
        near = ", ".join(map(repr, closest_names(name, present))) or "none"
        hints.append(f"{name!r} (closest present: {near})")
    message = f"missing required columns: {'; '.join(hints)}."
    if len(present) == 1 and re.search(r"[;\t|]", present[0]):
        message += (
            f" The file was read as one column named {present[0][:60]!r}: "
            "is it separated by ',' ? Save it as comma-separated CSV."
        )
    else:
        message += " Rename the columns in the file or add the missing ones."
    raise ColumnError(message)
