"""The demo fleet: one organization, 500 sites of 50 valid assets each, an admin and a viewer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from outpost.identity import service as identity
from outpost.identity.models import Organization
from outpost.inventory import service as inventory
from outpost.inventory.schemas import ChangeSetIn, CreateOp, SiteCreate

DEMO_ORG = "Demo Energy"
ADMIN_EMAIL = "admin@demo.outpost.local"
ADMIN_PASSWORD = "outpost-demo-admin"  # the published demo login
VIEWER_EMAIL = "viewer@demo.outpost.local"
VIEWER_PASSWORD = "outpost-demo-viewer"  # the published demo login

TIMEZONES = (
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Berlin",
    "Africa/Casablanca",
    "America/New_York",
    "Asia/Singapore",
)
SENSOR_KINDS = (
    ("temperature", "degC", 30),
    ("irradiance", "W/m2", 10),
    ("humidity", "%", 60),
    ("pressure", "hPa", 60),
    ("wind_speed", "m/s", 10),
    ("door_contact", "bool", 5),
)
ZONES = ("lobby", "inverter-room")


@dataclass(frozen=True)
class DemoResult:
    org_id: str
    sites: int
    assets: int
    created: bool


def seed_demo(session: Session, *, sites: int = 500) -> DemoResult:
    """Create the demo organization and fleet through the same services as the API."""
    existing = session.scalar(select(Organization).where(Organization.name == DEMO_ORG))
    if existing is not None:
        return DemoResult(existing.id, 0, 0, created=False)
    org = identity.create_organization(session, DEMO_ORG, label="demo seed")
    actor = identity.system_actor(org.id, "demo seed")
    identity.add_user(
        session,
        actor,
        email=ADMIN_EMAIL,
        password=ADMIN_PASSWORD,
        role="admin",
        display_name="Demo Admin",
    )
    identity.add_user(
        session,
        actor,
        email=VIEWER_EMAIL,
        password=VIEWER_PASSWORD,
        role="viewer",
        display_name="Demo Viewer",
    )
    created = inventory.create_sites(
        session,
        actor,
        [
            SiteCreate(
                name=f"Plant {number + 1:03d}",
                code=f"PLT-{number + 1:03d}",
                timezone=TIMEZONES[number % len(TIMEZONES)],
                grid_connection_kw=1000.0,
                latitude=35 + (number % 20),
                longitude=-5 + (number % 30),
                tags=["demo", "solar"],
            )
            for number in range(sites)
        ],
    )
    operations = [op for number, site in enumerate(created) for op in site_assets(site.id, number)]
    outcome = inventory.run_changeset(
        session, actor, ChangeSetIn(operations=operations), dry_run=False
    )
    return DemoResult(org.id, sites, len(outcome.plan.diffs), created=True)


def site_assets(site_id: str, number: int) -> list[CreateOp]:
    """50 assets: a gateway, 2 controllers, 24 sensors, 2 badge readers, 2 meters,
    10 inverters and 9 badges."""
    prefix = f"S{number + 1:03d}"
    net = f"10.{number // 250}.{number % 250}"
    gateway = f"{prefix}-GW"

    def op(
        ref: str,
        type_: str,
        name: str,
        config: dict[str, object],
        parent: str | None = None,
        tags: list[str] | None = None,
    ) -> CreateOp:
        return CreateOp(
            op="create",
            ref=ref,
            site_id=site_id,
            parent_ref=parent,
            type=type_,
            name=name,
            serial=ref,
            config=config,
            tags=tags or [],
        )

    ops = [
        op(
            gateway,
            "gateway",
            f"{prefix} gateway",
            {
                "ip": f"{net}.1",
                "subnet": f"{net}.0/24",
                "upload_interval_s": 60,
                "max_controllers": 4,
                "max_bus_devices": 16,
                "firmware": "2.4.1",
            },
            tags=["edge"],
        )
    ]
    for c in range(2):
        controller = f"{prefix}-CTL{c + 1}"
        ops.append(
            op(
                controller,
                "controller",
                f"{prefix} controller {c + 1}",
                {"channels": 16, "ip": f"{net}.{10 + c}"},
                gateway,
            )
        )
        for channel in range(12):
            kind, unit, interval = SENSOR_KINDS[(channel + c) % len(SENSOR_KINDS)]
            ops.append(
                op(
                    f"{controller}-SN{channel:02d}",
                    "sensor",
                    f"{prefix} {kind} {c + 1}.{channel}",
                    {
                        "channel": channel,
                        "kind": kind,
                        "unit": unit,
                        "sampling_interval_s": interval,
                    },
                    controller,
                )
            )
        ops.append(
            op(
                f"{controller}-BR",
                "badge_reader",
                f"{prefix} door {c + 1}",
                {"channel": 12, "door": f"Door {c + 1}", "zone": ZONES[c]},
                controller,
            )
        )
    for m in range(2):
        ops.append(
            op(
                f"{prefix}-MTR{m + 1}",
                "meter",
                f"{prefix} meter {m + 1}",
                {"modbus_address": m + 1, "ct_ratio": 200, "phases": 3},
                gateway,
            )
        )
    for i in range(10):
        ops.append(
            op(
                f"{prefix}-INV{i + 1:02d}",
                "inverter",
                f"{prefix} inverter {i + 1}",
                {"modbus_address": 10 + i, "rated_power_kw": 50.0},
                gateway,
            )
        )
    for b in range(9):
        ops.append(
            op(
                f"{prefix}-BDG{b + 1}",
                "badge",
                f"{prefix} badge {b + 1}",
                {"holder": f"Technician {b + 1}", "zones": list(ZONES[: 1 + b % 2])},
            )
        )
    return ops
