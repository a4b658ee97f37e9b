"""The demo simulator's model: plausible telemetry as pure functions of (asset, time).

``readings(asset, t_s, every_s)`` is a function of the asset's constants and the time,
nothing else, so a restart picks up exactly where the last run left off. Inverters follow
the sun of their site's time zone (standard time: the sun ignores daylight saving) with
some cloud; meters follow a working-day load; counters (``energy_total_kwh``,
``energy_import_kwh``) are closed-form integrals of the mean of those curves since
:data:`EPOCH_S`, so they only grow, across batches and restarts. Noise comes from a hash
of (asset, time), never from a random generator.

``describe`` turns one asset into the model's constants (:class:`SimAsset`); loading the
fleet and sending its readings is ``simulator.py``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

Value = float | int | bool
Values = dict[str, Value]

DAY_S: Final = 86_400
#: Counters integrate from 2020-01-01 (local midnight of each site).
EPOCH_DAY: Final = 18_262
EPOCH_S: Final = EPOCH_DAY * DAY_S
#: Gateways were (re)booted in the 90 days after this moment (2025-01-01).
BOOT_EPOCH_S: Final = 20_089 * DAY_S
_MASK: Final = (1 << 64) - 1
_TWO_PI: Final = 2 * math.pi


@dataclass(frozen=True, slots=True)
class SimAsset:
    """What the model needs of one asset, computed once."""

    asset_id: str
    type: str
    seed: int  # noise of this asset
    site_seed: int  # weather shared by the site's assets
    offset_s: int  # the site's standard UTC offset
    scale: float  # rated kW (inverter), base load W (meter)
    kind: str = ""  # a sensor's kind
    start: float = 0.0  # a counter's value at EPOCH_S, or a boot time
    climate: float = 0.0  # the site's temperature offset, °C


@dataclass(frozen=True, slots=True)
class SensorModel:
    """A sensor kind: ``base + amplitude·cos(day phase from peak_hour) + noise``, clamped."""

    base: float
    amplitude: float
    peak_hour: float
    noise: float
    low: float
    high: float
    climate: float = 0.0  # how much the site's climate shifts the base
    shape: str = "daily"  # "daily", "solar" (follows the sun), "contact" (0/1)


SENSOR_MODELS: Final[Mapping[str, SensorModel]] = {
    "temperature": SensorModel(14.0, 7.0, 15.0, 0.3, -30.0, 50.0, climate=1.0),
    "humidity": SensorModel(65.0, -15.0, 15.0, 2.0, 5.0, 100.0),
    "pressure": SensorModel(1013.0, 1.5, 10.0, 0.3, 950.0, 1050.0, climate=0.5),
    "wind_speed": SensorModel(3.5, 2.0, 14.0, 1.5, 0.0, 40.0),
    "irradiance": SensorModel(1000.0, 0.0, 12.0, 5.0, 0.0, 1400.0, shape="solar"),
    "door_contact": SensorModel(0.0, 0.0, 0.0, 0.0, 0.0, 1.0, shape="contact"),
}
DEFAULT_SENSOR: Final = "temperature"


def unit(seed: int, n: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, n): splitmix64."""
    x = (seed * 0x9E3779B97F4A7C15 + n * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / 18446744073709551616.0


def _window(hour: float, start: float) -> float:
    """A bell over the 12 hours from ``start``: sin², 0 outside; its daily integral is 6 h."""
    if not start <= hour < start + 12:
        return 0.0
    s = math.sin(math.pi * (hour - start) / 12)
    return s * s


def _window_hours(t_local: float, start: float) -> float:
    """∫ _window dh from local midnight of EPOCH_DAY to ``t_local`` (local seconds), hours."""
    day, second = divmod(t_local, DAY_S)
    x = math.pi * min(max(second / 3600 - start, 0.0), 12.0) / 12
    return (day - EPOCH_DAY) * 6.0 + 12 / math.pi * (x / 2 - math.sin(2 * x) / 4)


SUNRISE_H: Final = 6.0  # production from 06:00 to 18:00 local standard time
WORK_H: Final = 7.0  # a working day's load from 07:00 to 19:00
CLOUD_DEPTH: Final = 0.4  # clouds take up to 40% of the sun ...
MEAN_CLOUD: Final = 1 - CLOUD_DEPTH / 2  # ... 20% on average, which the counters integrate
CLOUD_S: Final = 900  # the weather changes over 15 minutes
METER_DAY_LOAD: Final = 1.5  # a meter's load rises to 2.5x its base in working hours
BADGE_EVERY_S: Final = 300  # a door sees a badge every 5 minutes in working hours


def local_hour(asset: SimAsset, t_s: float) -> float:
    return ((t_s + asset.offset_s) % DAY_S) / 3600


def sun(asset: SimAsset, t_s: float) -> float:
    """The clear-sky production curve at the site, 0..1."""
    return _window(local_hour(asset, t_s), SUNRISE_H)


def cloud(asset: SimAsset, t_s: float) -> float:
    """The share of the sun the site's clouds let through, 1 - CLOUD_DEPTH .. 1, smooth."""
    bucket, into = divmod(t_s, CLOUD_S)
    n = int(bucket)
    a, b = unit(asset.site_seed, n), unit(asset.site_seed, n + 1)
    return 1 - CLOUD_DEPTH * (a + (b - a) * into / CLOUD_S)


def inverter_energy_kwh(asset: SimAsset, t_s: float) -> float:
    """The production counter: its start plus the mean production since EPOCH_S."""
    hours = _window_hours(t_s + asset.offset_s, SUNRISE_H)
    return asset.start + asset.scale * MEAN_CLOUD * hours


def meter_energy_kwh(asset: SimAsset, t_s: float) -> float:
    """The import counter: its start plus the mean load since EPOCH_S."""
    t_local = t_s + asset.offset_s
    base_hours = (t_local - EPOCH_S) / 3600
    day_hours = METER_DAY_LOAD * _window_hours(t_local, WORK_H)
    return asset.start + asset.scale * (base_hours + day_hours) / 1000


def _inverter(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    level = sun(asset, t_s)
    if level == 0.0:
        power = voltage = 0.0
    else:
        jitter = 0.97 + 0.06 * unit(asset.seed, t_s)
        power = round(asset.scale * level * cloud(asset, t_s) * jitter, 3)
        voltage = round(560 + 90 * level + 10 * unit(asset.seed + 1, t_s), 1)
    return {
        "ac_power_kw": power,
        "energy_total_kwh": round(inverter_energy_kwh(asset, t_s), 3),
        "dc_voltage_v": voltage,
    }


def _meter(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    day = _window(local_hour(asset, t_s), WORK_H)
    jitter = 0.95 + 0.1 * unit(asset.seed, t_s)
    return {
        "active_power_w": round(asset.scale * (1 + METER_DAY_LOAD * day) * jitter, 1),
        "energy_import_kwh": round(meter_energy_kwh(asset, t_s), 3),
        "voltage_l1_v": round(231 - 3 * day + 4 * (unit(asset.seed + 1, t_s) - 0.5), 1),
    }


def _sensor(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    model = SENSOR_MODELS.get(asset.kind) or SENSOR_MODELS[DEFAULT_SENSOR]
    noise = unit(asset.seed, t_s) - 0.5
    if model.shape == "solar":
        level = model.base * sun(asset, t_s) * cloud(asset, t_s)
        value = level + model.noise * noise if level else 0.0
    elif model.shape == "contact":
        open_now = working(asset, t_s) and unit(asset.seed, t_s // 60) < 0.05
        value = 1.0 if open_now else 0.0
    else:
        phase = _TWO_PI * (local_hour(asset, t_s) - model.peak_hour) / 24
        base = model.base + model.climate * asset.climate
        value = base + model.amplitude * math.cos(phase) + 2 * model.noise * noise
    return {"value": round(min(max(value, model.low), model.high), 2)}


def working(asset: SimAsset, t_s: float) -> bool:
    """Monday to Friday, 08:00 to 18:00 at the site (standard time)."""
    day, second = divmod(t_s + asset.offset_s, DAY_S)
    return (int(day) + 3) % 7 < 5 and 8 * 3600 <= second < 18 * 3600


def _badge_reader(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    """Now and then in working hours (a badge per door every BADGE_EVERY_S on average)."""
    if not working(asset, t_s) or unit(asset.seed, t_s) >= every_s / BADGE_EVERY_S:
        return None
    return {"access_granted": unit(asset.seed + 1, t_s) >= 0.08}


def _cpu(asset: SimAsset, t_s: int, idle: float, busy: float) -> float:
    day = _window(local_hour(asset, t_s), WORK_H)
    return idle + busy * day + 12 * unit(asset.seed, t_s)


def _gateway(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    return {
        "cpu_load_pct": round(_cpu(asset, t_s, 6, 20), 1),
        "uptime_s": max(0, t_s - int(asset.start)),
    }


def _controller(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    cpu = _cpu(asset, t_s, 10, 30)
    ambient = 16 + asset.climate + 6 * math.cos(_TWO_PI * (local_hour(asset, t_s) - 15) / 24)
    return {"cpu_load_pct": round(cpu, 1), "temperature_c": round(ambient + 12 + 0.2 * cpu, 1)}


Model = Callable[[SimAsset, int, int], Values | None]
MODELS: Final[Mapping[str, Model]] = {
    "inverter": _inverter,
    "meter": _meter,
    "sensor": _sensor,
    "badge_reader": _badge_reader,
    "gateway": _gateway,
    "controller": _controller,
}


def readings(asset: SimAsset, t_s: int, every_s: int = 10) -> Values | None:
    """The asset's values at ``t_s`` (whole seconds), or None when it has nothing to say."""
    return MODELS[asset.type](asset, t_s, every_s)


@lru_cache(maxsize=256)
def standard_offset_s(timezone: str) -> int:
    """The zone's UTC offset without daylight saving (in January 2025)."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        return 0
    moment = datetime(2025, 1, 15, 12, tzinfo=UTC).astimezone(zone)
    offset, dst = moment.utcoffset(), moment.dst()
    return int(offset.total_seconds() - (dst.total_seconds() if dst else 0)) if offset else 0


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def describe(
    asset_id: str, asset_type: str, config: Mapping[str, Any], site_id: str, timezone: str
) -> SimAsset | None:
    """The model's constants for one asset; None for a type the simulator does not feed."""
    if asset_type not in MODELS:
        return None
    seed, site_seed = _seed(asset_id), _seed(site_id)
    scale, start = 1.0, 0.0
    if asset_type == "inverter":
        rated = config.get("rated_power_kw")
        scale = float(rated) if isinstance(rated, int | float) and rated > 0 else 50.0
        # 1 to 4 years of some 1,100 full-load hours before 2020
        start = scale * (1100 + 3300 * unit(seed, 2))
    elif asset_type == "meter":
        scale = 8_000 + 12_000 * unit(seed, 2)  # base load, W
        start = scale / 1000 * 8760 * unit(seed, 3)
    elif asset_type == "gateway":
        start = float(BOOT_EPOCH_S + int(90 * DAY_S * unit(seed, 2)))
    return SimAsset(
        asset_id=asset_id,
        type=asset_type,
        seed=seed,
        site_seed=site_seed,
        offset_s=standard_offset_s(timezone),
        scale=scale,
        kind=str(config.get("kind", "")) if asset_type == "sensor" else "",
        start=start,
        climate=10 * unit(site_seed, 1) - 5,
    )
