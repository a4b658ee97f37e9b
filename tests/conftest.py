"""Shared fixtures. Database tests run on SQLite, or on PostgreSQL when
``OUTPOST_TEST_POSTGRES_URL`` is set (CI runs the suite both ways)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from outpost.app import create_app
from outpost.db import Database
from outpost.migrate import upgrade
from outpost.models import metadata
from outpost.settings import Settings
from support.s3 import running_s3_server
from support.tenants import Tenant, make_tenant

pytest_plugins = ["support.influx", "support.mosquitto"]

POSTGRES_URL = os.environ.get("OUTPOST_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if POSTGRES_URL:
        engine_db = Database.connect(POSTGRES_URL, pool=False)
        with engine_db.write_engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine_db.dispose()
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'outpost.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database.connect(database_url)
    yield db
    db.dispose()


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    """A database emptied before each test."""
    with database.unit_of_work() as session:
        for table in reversed(metadata.sorted_tables):
            session.execute(table.delete())
    yield database


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on loopback, started once per session."""
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, secret_key="test-secret-key")


@pytest.fixture
def app(settings: Settings, db: Database) -> Iterator[Flask]:
    app = create_app(settings, db)
    yield app
    for store in app.extensions["outpost"].telemetry_slot:  # its writer thread
        store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tenant(db: Database) -> Tenant:
    return make_tenant(db, "Acme Solar")


@pytest.fixture
def other_tenant(db: Database) -> Tenant:
    return make_tenant(db, "Other Corp")
