# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What a session costs: one formula, no Odoo.

price = max(minimum, rate_working_hour x working hours + rate_standby_hour x
standby hours + rate_kwh x kWh), the working and the standby time each
rounded up to a whole number of ``rounding_minutes`` (0: not rounded); the
caller rounds the result to its currency."""

import math
from dataclasses import dataclass

# A duration a hair over a whole step (float noise of summed seconds) is the
# step, not one more.
_EPSILON_S = 1e-6


@dataclass(frozen=True)
class Rates:
    working_hour: float = 0.0
    standby_hour: float = 0.0
    kwh: float = 0.0
    minimum: float = 0.0
    rounding_minutes: int = 0


def billed_seconds(seconds: float, rounding_minutes: int) -> float:
    """``seconds`` rounded up to a whole number of ``rounding_minutes``."""
    seconds = max(0.0, seconds or 0.0)
    if rounding_minutes <= 0:
        return seconds
    step = rounding_minutes * 60.0
    return math.ceil(max(0.0, seconds - _EPSILON_S) / step) * step


def price(rates: Rates, working_s: float, standby_s: float, energy_wh: float) -> float:
    """The session's price by ``rates`` (not yet rounded to a currency)."""
    working_h = billed_seconds(working_s, rates.rounding_minutes) / 3600.0
    standby_h = billed_seconds(standby_s, rates.rounding_minutes) / 3600.0
    by_use = (
        rates.working_hour * working_h
        + rates.standby_hour * standby_h
        + rates.kwh * max(0.0, energy_wh or 0.0) / 1000.0
    )
    return max(rates.minimum, by_use)
