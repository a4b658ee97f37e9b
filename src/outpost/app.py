"""The composition root: ``create_app(settings)`` wires every domain into one Flask app."""

from __future__ import annotations

import logging

from flask import Flask

from outpost.audit import api as audit_api
from outpost.connectivity import api as connectivity_api
from outpost.db import Database
from outpost.files import api as files_api
from outpost.files.storage import open_blob_store
from outpost.identity import api as identity_api
from outpost.identity import grants_api, invitations_api, members_api, requests_api
from outpost.inventory import api as inventory_api
from outpost.settings import Settings
from outpost.telemetry import api as telemetry_api
from outpost.telemetry import ingest_api
from outpost.web import auth, bodies, context, meta, problems, text_guard, views

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder="web/static", static_url_path="/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.is_production and settings.database_url.startswith("sqlite"):
        log.warning("OUTPOST_ENV=production on the embedded SQLite database; use PostgreSQL.")
    context.init_app(
        app,
        context.Services(
            settings,
            database or Database.connect(settings.database_url, lock_scopes=settings.scope_locking),
            open_blob_store(settings),
        ),
    )
    bodies.init_app(app)
    problems.init_app(app)
    text_guard.init_app(app)
    auth.init_app(app)
    for blueprint in (
        meta.api_bp,
        meta.bp,
        identity_api.bp,
        grants_api.bp,
        invitations_api.bp,
        requests_api.bp,
        members_api.bp,
        inventory_api.bp,
        audit_api.bp,
        files_api.bp,
        telemetry_api.bp,
        connectivity_api.bp,
        ingest_api.bp,
        *views.blueprints(),
    ):
        app.register_blueprint(blueprint)
    return app
