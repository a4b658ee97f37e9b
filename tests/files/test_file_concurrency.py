"""Concurrent uploads cannot overrun the quota together, nor create one name twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from outpost.db import Database
from outpost.files.models import File, FileUsage, FileVersion
from outpost.web.context import EXTENSION
from support.files import PDF, put_file

UPLOADS = 8


def _race(app: Flask, tenant: Any, names: list[str]) -> list[int]:
    def upload(name: str) -> int:
        return int(put_file(app.test_client(), tenant.headers(), PDF, name=name).status_code)

    with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
        return list(pool.map(upload, names))


def test_parallel_uploads_stop_at_the_quota(app: Flask, tenant: Any, db: Database) -> None:
    services = app.extensions[EXTENSION]
    quota = 3 * len(PDF)  # room for three of the eight
    app.extensions[EXTENSION] = replace(
        services, settings=replace(services.settings, file_quota_bytes=quota)
    )
    statuses = _race(app, tenant, [f"doc-{i}.pdf" for i in range(UPLOADS)])
    assert sorted(statuses) == [201] * 3 + [413] * 5
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(FileUsage.used_bytes)) == quota
        assert session.scalar(select(func.count()).select_from(File)) == 3


def test_parallel_uploads_of_one_name_make_one_file_with_versions(
    app: Flask, tenant: Any, db: Database
) -> None:
    statuses = _race(app, tenant, ["same.pdf"] * UPLOADS)
    assert sorted(statuses) == [200] * (UPLOADS - 1) + [201]
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(File)) == 1
        numbers = sorted(session.scalars(select(FileVersion.number)))
    assert numbers == list(range(1, UPLOADS + 1))
