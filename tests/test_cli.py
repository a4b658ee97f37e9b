"""The CLI reads OUTPOST_* settings and calls the same services as the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from outpost.cli import main
from outpost.files.models import File


@pytest.fixture
def cli_env(db, database_url, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OUTPOST_DATABASE_URL", database_url)
    monkeypatch.setenv("OUTPOST_DATA_DIR", str(tmp_path))
    return CliRunner()


def run(runner, *args):
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_org_user_token_and_verify(cli_env, client):
    assert run(cli_env, "org", "create", "--name", "Cli Org").exit_code == 0
    assert run(cli_env, "org", "create", "--name", "Cli Org").exit_code == 1
    r = run(
        cli_env,
        "user",
        "create",
        "--org",
        "Cli Org",
        "--email",
        "ops@cli.test",
        "--password",
        "a long enough password",
        "--role",
        "operator",
    )
    assert r.exit_code == 0, r.output
    r = run(
        cli_env,
        "token",
        "create",
        "--org",
        "Cli Org",
        "--email",
        "ops@cli.test",
        "--name",
        "ci",
        "--expires-in",
        "2h",
    )
    assert r.exit_code == 0
    token = r.stdout.strip()
    assert token.startswith("opt_") and "\n" not in token
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["role"] == "operator"
    r = run(cli_env, "audit", "verify")
    assert r.exit_code == 0 and "chain intact" in r.output


def test_audit_verify_exits_nonzero_naming_the_event(cli_env, db):
    run(cli_env, "org", "create", "--name", "Tamper Org")
    run(
        cli_env,
        "user",
        "create",
        "--org",
        "Tamper Org",
        "--email",
        "a@t.test",
        "--password",
        "a long enough password",
        "--role",
        "admin",
    )
    with db.unit_of_work() as session:
        session.execute(text("UPDATE audit_events SET actor_label = 'mallory' WHERE seq = 2"))
    r = run(cli_env, "audit", "verify")
    assert r.exit_code == 1 and "seq 2" in r.output


def test_csv_import_dry_run_then_apply(cli_env, client, tenant, tmp_path):
    site = client.post(
        "/api/v1/sites", json={"name": "Import", "code": "IMP"}, headers=tenant.headers()
    ).get_json()
    assert site["code"] == "IMP"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "site_code,type,name,serial,parent_serial,tags,config\n"
        'IMP,gateway,gw,GW-I,,edge,"{""ip"": ""10.1.0.1"", ""subnet"": ""10.1.0.0/24"", '
        '""upload_interval_s"": 60, ""max_controllers"": 1, ""max_bus_devices"": 2}"\n'
        'IMP,meter,m1,M-I1,GW-I,,"{""modbus_address"": 5, ""ct_ratio"": 1, ""phases"": 3}"\n'
        'IMP,meter,m2,M-I2,GW-I,,"{""modbus_address"": 5, ""ct_ratio"": 1, ""phases"": 3}"\n'
        "NOPE,badge,b,B-I,,,{}\n"
    )
    r = run(cli_env, "import", str(bad), "--org", "Acme Solar")
    assert r.exit_code == 1
    assert "line 5: [site.not_found]" in r.output
    assert "line 3: [modbus.address_taken]" in r.output
    assert "line 4: [modbus.address_taken]" in r.output
    good = tmp_path / "good.csv"
    good.write_text("\n".join(bad.read_text().splitlines()[:3]) + "\n")
    r = run(cli_env, "import", str(good), "--org", "Acme Solar")
    assert r.exit_code == 0 and "valid (dry run)" in r.output
    assert client.get("/api/v1/assets", headers=tenant.headers()).get_json()["items"] == []
    r = run(cli_env, "import", str(good), "--org", "Acme Solar", "--apply")
    assert r.exit_code == 0 and "applied" in r.output
    assert len(client.get("/api/v1/assets", headers=tenant.headers()).get_json()["items"]) == 2
    r = run(cli_env, "import", str(bad), "--org", "Acme Solar")
    assert "line 2: [asset.serial_taken]" in r.output


def test_demo_seed_is_valid_and_idempotent(cli_env, db):
    r = run(cli_env, "demo", "--sites", "3")
    assert r.exit_code == 0 and "seeded 3 sites, 150 assets, 3 files" in r.output
    with db.unit_of_work(write=False) as session:
        types = {name: kind for name, kind in session.execute(select(File.name, File.content_type))}
    assert types == {
        "Commissioning report.pdf": "application/pdf",
        "Inverter datasheet.pdf": "application/pdf",
        "Roof view.png": "image/png",
    }
    assert "already exists" in run(cli_env, "demo", "--sites", "3").output


def test_csv_import_refuses_non_finite_numbers(cli_env, client, tenant, tmp_path):
    """The CSV's JSON config is parsed by Python, which accepts NaN: the schema rule refuses it."""
    client.post("/api/v1/sites", json={"name": "Nan", "code": "NAN"}, headers=tenant.headers())
    path = tmp_path / "nan.csv"
    path.write_text(
        "site_code,type,name,serial,parent_serial,tags,config\n"
        'NAN,gateway,gw,GW-N,,,"{""ip"": ""10.2.0.1"", ""subnet"": ""10.2.0.0/24"", '
        '""upload_interval_s"": 60, ""max_controllers"": 1, ""max_bus_devices"": 2}"\n'
        'NAN,meter,m,M-N,GW-N,,"{""modbus_address"": 5, ""ct_ratio"": NaN, ""phases"": 3}"\n'
    )
    r = run(cli_env, "import", str(path), "--org", "Acme Solar", "--apply")
    assert r.exit_code == 1
    assert "line 3: [config.schema] config.ct_ratio: nan is not a finite number" in r.output
    assert client.get("/api/v1/assets", headers=tenant.headers()).get_json()["items"] == []
