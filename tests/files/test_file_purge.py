"""Deleted files stay restorable for the retention period, then a job purges them."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from outpost.cli import main
from outpost.clock import utcnow
from outpost.db import Database
from outpost.files import service
from outpost.files.models import File, FileUsage, FileVersion
from outpost.files.storage.local import LocalBlobStore
from support.files import PDF, created, put_file


def _delete(client: FlaskClient, tenant: Any, file: dict[str, Any]) -> None:
    response = client.delete(
        f"/api/v1/files/{file['id']}",
        headers={**tenant.headers(), "If-Match": f'"{file["revision"]}"'},
    )
    assert response.status_code == 200


def test_purge_removes_rows_blobs_and_usage_after_retention(
    client: FlaskClient, tenant: Any, site: dict[str, Any], db: Database, settings: Any
) -> None:
    headers = tenant.headers()
    old = created(put_file(client, headers, PDF, name="old.pdf", site_id=site["id"]))
    created(put_file(client, headers, PDF + b"2", name="old.pdf", site_id=site["id"]))
    recent = created(put_file(client, headers, PDF, name="recent.pdf", site_id=site["id"]))
    kept = created(put_file(client, headers, PDF, name="kept.pdf", site_id=site["id"]))
    _delete(client, tenant, {**old, "revision": 2})
    _delete(client, tenant, recent)
    with db.unit_of_work() as session:
        session.execute(
            update(File)
            .where(File.id == old["id"])
            .values(deleted_at=utcnow() - timedelta(days=31))
        )
    blobs = LocalBlobStore(settings.files_path)

    purged = service.purge_deleted(db, blobs, retention=timedelta(days=30))

    assert purged == 1
    with db.unit_of_work(write=False) as session:
        remaining = set(session.scalars(select(File.id)))
        versions = session.scalar(select(func.count()).select_from(FileVersion))
        used = session.scalar(select(FileUsage.used_bytes))
    assert remaining == {recent["id"], kept["id"]}
    assert versions == 2
    assert used == 2 * len(PDF)
    assert len([p for p in Path(settings.files_path).rglob("*") if p.is_file()]) == 2
    events = client.get("/api/v1/audit?action=files.file.purged", headers=headers).get_json()
    (event,) = events["items"]
    assert (event["object_id"], event["actor_label"], event["after"]) == (
        old["id"],
        "retention",
        None,
    )
    assert service.purge_deleted(db, blobs, retention=timedelta(days=30)) == 0


def test_worker_once_runs_the_purge(
    client: FlaskClient,
    tenant: Any,
    site: dict[str, Any],
    db: Database,
    database_url: str,
    settings: Any,
    monkeypatch: Any,
) -> None:
    file = created(put_file(client, tenant.headers(), PDF, name="x.pdf", site_id=site["id"]))
    _delete(client, tenant, file)
    monkeypatch.setenv("OUTPOST_DATABASE_URL", database_url)
    monkeypatch.setenv("OUTPOST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OUTPOST_FILE_RETENTION_DAYS", "0")
    result = CliRunner().invoke(main, ["worker", "--once"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "files.purge: 1" in result.output
    assert client.get(f"/api/v1/files/{file['id']}", headers=tenant.headers()).status_code == 404


def test_sweep_removes_unreferenced_blobs_after_the_grace_period(
    client: FlaskClient, tenant: Any, site: dict[str, Any], db: Database, settings: Any
) -> None:
    kept = created(put_file(client, tenant.headers(), PDF, name="kept.pdf", site_id=site["id"]))
    blobs = LocalBlobStore(settings.files_path)
    orphan = f"{tenant.org_id}/blob_orphan"
    blobs.put(orphan, io.BytesIO(b"left by a crash"), content_type="text/plain")

    assert service.sweep_orphans(db, blobs) == 0  # still inside the grace period
    later = utcnow() + timedelta(hours=2)
    assert service.sweep_orphans(db, blobs, now=later) == 1
    assert not blobs.exists(orphan)
    response = client.get(f"/api/v1/files/{kept['id']}/content", headers=tenant.headers())
    assert response.data == PDF
