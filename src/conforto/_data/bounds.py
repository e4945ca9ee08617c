"""The one table of physical bounds.

It is the single source of truth for data validation, for flags in batch prediction and for the
API's input limits. Two severities:

* *impossible* (``hard_min``/``hard_max``): a value outside can't be real; one row fails
  validation.
* *implausible* (``soft_min``/``soft_max``): possible but suspicious; validation warns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    """Physical limits of one numeric column.

    Parameters
    ----------
    unit
        Unit of the column, e.g. ``"°C"``.
    description
        What the column measures, for reports and the API schema.
    hard_min, hard_max
        Values outside this closed interval are impossible.
    soft_min, soft_max
        Values outside this closed interval are implausible (warned, not refused); default to
        the hard limits.
    """

    unit: str
    description: str
    hard_min: float = -math.inf
    hard_max: float = math.inf
    soft_min: float = -math.inf
    soft_max: float = math.inf

    def __post_init__(self) -> None:
        """Take the hard limits as the soft ones where none are given."""
        # Without soft limits, everything possible is also plausible.
        if math.isinf(self.soft_min):
            object.__setattr__(self, "soft_min", self.hard_min)
        if math.isinf(self.soft_max):
            object.__setattr__(self, "soft_max", self.hard_max)
        if not self.hard_min <= self.soft_min <= self.soft_max <= self.hard_max:
            raise ValueError(f"bounds of {self.description!r} are not nested: {self}")


#: Physical bounds per canonical column name (see :mod:`conforto._data.columns`).
PHYSICAL_BOUNDS: dict[str, Bounds] = {
    "ta": Bounds("°C", "Air temperature", 0.0, 50.0, 10.0, 40.0),
    "tr": Bounds("°C", "Mean radiant temperature", -10.0, 70.0, 10.0, 45.0),
    "top": Bounds("°C", "Operative temperature", -10.0, 60.0, 10.0, 42.0),
    "tg": Bounds("°C", "Globe temperature", -10.0, 70.0, 10.0, 45.0),
    "rh": Bounds("%", "Relative humidity", 0.0, 100.0, 5.0, 95.0),
    "vel": Bounds("m/s", "Air speed", 0.0, 10.0, 0.0, 2.0),
    "met": Bounds("met", "Metabolic rate", 0.3, 10.0, 0.7, 4.0),
    "clo": Bounds("clo", "Clothing insulation", 0.0, 5.0, 0.0, 2.5),
    "age": Bounds("years", "Age of the occupant", 0.0, 120.0, 5.0, 100.0),
    "ht": Bounds("m", "Height of the occupant", 0.3, 2.6, 0.9, 2.2),
    "wt": Bounds("kg", "Weight of the occupant", 2.0, 350.0, 20.0, 200.0),
    "thermal_sensation": Bounds("vote", "ASHRAE 7-point thermal sensation vote", -3.0, 3.0),
    "t_out": Bounds("°C", "Outdoor air temperature", -70.0, 60.0, -40.0, 50.0),
    "t_out_isd": Bounds("°C", "Outdoor air temperature (ISD station)", -70.0, 60.0, -40.0, 50.0),
    "t_out_monthly": Bounds("°C", "Monthly mean outdoor temperature", -70.0, 60.0, -40.0, 45.0),
    "t_mot_isd": Bounds(
        "°C", "Running-mean outdoor temperature (ISD station)", -70.0, 60.0, -40.0, 45.0
    ),
    # Outdoor humidity slightly above 100 % is source rounding (29 rows of the database).
    "rh_out": Bounds("%", "Outdoor relative humidity", 0.0, 101.0, 0.0, 100.0),
    "rh_out_isd": Bounds("%", "Outdoor relative humidity (ISD station)", 0.0, 101.0, 0.0, 100.0),
    "lat": Bounds("°", "Latitude of the building", -90.0, 90.0),
    "lon": Bounds("°", "Longitude of the building", -180.0, 180.0),
}
