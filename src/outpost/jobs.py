"""Background jobs, run by ``outpost worker`` (and, in the embedded default, by ``serve``).

A job is a named function of the settings, the database and the blob store that
returns how many things it did. Each is safe to run in several workers at once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import timedelta

from outpost.db import Database
from outpost.files import service as files
from outpost.files.storage import BlobStore, open_blob_store
from outpost.identity import grants, requests
from outpost.settings import Settings
from outpost.telemetry import retention
from outpost.telemetry.store import open_telemetry_store

log = logging.getLogger(__name__)

Job = Callable[[Settings, Database, BlobStore], int]


def purge_deleted_files(settings: Settings, db: Database, blobs: BlobStore) -> int:
    return files.purge_deleted(db, blobs, retention=timedelta(days=settings.file_retention_days))


def sweep_orphan_blobs(settings: Settings, db: Database, blobs: BlobStore) -> int:
    return files.sweep_orphans(db, blobs)


def record_grant_expiries(settings: Settings, db: Database, blobs: BlobStore) -> int:
    return grants.record_expiries(db)


def expire_access_requests(settings: Settings, db: Database, blobs: BlobStore) -> int:
    return requests.expire_requests(db)


def downsample_telemetry(settings: Settings, db: Database, blobs: BlobStore) -> int:
    store = open_telemetry_store(settings)
    try:
        return retention.downsample(store)
    finally:
        store.close()


def apply_telemetry_retention(settings: Settings, db: Database, blobs: BlobStore) -> int:
    store = open_telemetry_store(settings)
    try:
        return retention.apply_retention(db, store)
    finally:
        store.close()


JOBS: dict[str, Job] = {
    "files.purge": purge_deleted_files,
    "files.sweep": sweep_orphan_blobs,
    "identity.grant_expiry": record_grant_expiries,
    "identity.request_expiry": expire_access_requests,
    "telemetry.downsample": downsample_telemetry,
    "telemetry.retention": apply_telemetry_retention,
}


def run_once(settings: Settings, db: Database) -> dict[str, int]:
    """Run every job once; a failing job is logged and does not stop the others."""
    blobs = open_blob_store(settings)
    done: dict[str, int] = {}
    for name, job in JOBS.items():
        try:
            done[name] = job(settings, db, blobs)
        except Exception:
            log.exception("job %s failed", name)
            done[name] = -1
    return done


def run_forever(
    settings: Settings, db: Database, *, interval_s: float, parent_pid: int | None = None
) -> None:
    """Run the jobs every ``interval_s``; with ``parent_pid``, stop once that process is gone."""
    while True:
        for name, count in run_once(settings, db).items():
            if count:
                log.info("job %s: %d done", name, count)
        deadline = time.monotonic() + interval_s
        while time.monotonic() < deadline:
            if parent_pid is not None and os.getppid() != parent_pid:
                return
            time.sleep(1)
