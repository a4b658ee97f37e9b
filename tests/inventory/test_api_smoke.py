from __future__ import annotations


def test_create_site_and_asset(client, tenant):
    h = tenant.headers()
    r = client.post(
        "/api/v1/sites",
        json={"name": "Plant 1", "code": "P1", "grid_connection_kw": 500},
        headers=h,
    )
    assert r.status_code == 201, r.get_json()
    site = r.get_json()
    assert r.headers["ETag"] == '"1"'
    r = client.post(
        "/api/v1/assets",
        json={
            "site_id": site["id"],
            "type": "gateway",
            "name": "gw",
            "serial": "GW1",
            "config": {
                "ip": "10.0.0.1",
                "subnet": "10.0.0.0/24",
                "upload_interval_s": 60,
                "max_controllers": 2,
                "max_bus_devices": 4,
            },
        },
        headers=h,
    )
    assert r.status_code == 201, r.get_json()
