"""Stored data that already breaks a rule blocks only the writes that touch the problem."""

from __future__ import annotations

from sqlalchemy import update

from fleet import build_fleet, codes, patch
from outpost.inventory.models import Asset


def plant_duplicate_address(db, fleet):
    """Two bus devices on one Modbus address, as if imported before the rule existed."""
    with db.unit_of_work() as session:
        session.execute(
            update(Asset)
            .where(Asset.id == fleet.inverter["id"])
            .values(config={**fleet.inverter["config"], "modbus_address": 1})
        )


def write(client, tenant, asset, body):
    return patch(client, f"/api/v1/assets/{asset['id']}", body, tenant.headers())


def test_unrelated_writes_pass_and_new_or_changed_problems_are_refused(client, tenant, db):
    fleet = build_fleet(client, tenant.headers())
    plant_duplicate_address(db, fleet)

    assert write(client, tenant, fleet.sensor, {"name": "renamed"}).status_code == 200
    assert write(client, tenant, fleet.meter, {"config": {"ct_ratio": 150}}).status_code == 200

    r = write(client, tenant, fleet.gateway, {"config": {"max_bus_devices": 1}})
    assert r.status_code == 422 and "gateway.bus_devices_exceeded" in codes(r)

    r = client.post(
        "/api/v1/assets",
        headers=tenant.headers(),
        json={
            "site_id": fleet.site["id"],
            "parent_id": fleet.gateway["id"],
            "type": "meter",
            "name": "third",
            "serial": "M-3",
            "config": {"modbus_address": 1, "ct_ratio": 1, "phases": 1},
        },
    )
    assert r.status_code == 422 and "modbus.address_taken" in codes(r)

    assert (
        write(client, tenant, fleet.inverter, {"config": {"modbus_address": 7}}).status_code == 200
    )
    assert (
        write(client, tenant, fleet.gateway, {"config": {"max_bus_devices": 2}}).status_code == 200
    )
