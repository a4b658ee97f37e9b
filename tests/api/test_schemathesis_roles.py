"""Schemathesis over the served OpenAPI document, once per role token.

The document is loaded from the in-process Flask app (``/api/v1/openapi.json``) and every
documented operation is exercised with the viewer, operator and admin tokens of one tenant.
Each response must pass four checks: no 5xx (``not_a_server_error``), a documented status
code, a documented content type and a body matching the documented response schema.

Examples per operation and role are bounded by ``EXAMPLES`` to keep the run short. One
app and tenant serve the whole module (see ``served``), so later operations see whatever
earlier ones created: files, sites, assets, links, tokens.

Nothing is excluded. Its first runs found four defects, fixed since with a regression
test each (tests/files/test_files_api.py, tests/api/test_bad_input.py): a multipart part
without a name (500), ``If-Match: "0"`` on an asset delete (500), an upload's 200 (new
version) and the folder list's 422 left out of the document. Generation is random
(``database=None``), so a run can still find something new.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import BaseSchema, Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from outpost.app import create_app
from outpost.db import Database
from outpost.models import metadata
from outpost.settings import Settings
from support.tenants import Tenant, make_tenant

pytestmark = pytest.mark.slow

ROLES = ("viewer", "operator", "admin")
EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _load_schema() -> BaseSchema:
    """The document as served by an app built like the test app, on an unused database.

    Loaded at import because pytest parametrizes over its operations at collection; the
    requests themselves go to the module's ``served`` app. (``schemathesis.pytest.
    from_fixture`` would avoid the second app, but its lazy runner writes
    ``Node._nodeid``, which pytest 9.2 no longer has.)
    """
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.connect("sqlite://")
        try:
            app_settings = Settings(
                data_dir=Path(tmp), database_url="sqlite://", secret_key="schema-only"
            )
            loaded = schemathesis.openapi.from_wsgi(
                "/api/v1/openapi.json", create_app(app_settings, database)
            )
        finally:
            database.dispose()
    return loaded


schema = _load_schema()


@pytest.fixture(scope="module")
def served(
    database: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Flask, Tenant]:
    """One app and tenant for the whole module, on a database emptied first.

    Built once rather than per item: the per-test ``app``/``tenant`` fixtures cost about
    half a second each (three password hashes), which over operations x roles items was
    most of the run. Later tests are unaffected, since ``db`` empties the database again.
    """
    with database.unit_of_work() as session:
        for table in reversed(metadata.sorted_tables):
            session.execute(table.delete())
    app_settings = Settings(
        data_dir=tmp_path_factory.mktemp("schemathesis"),
        database_url=database_url,
        secret_key="test-secret-key",
    )
    return create_app(app_settings, database), make_tenant(database, "Acme Solar")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_no_server_error_and_documented_responses(
    case: Case, served: tuple[Flask, Tenant], role: str
) -> None:
    app, tenant = served
    case.call_and_validate(app=app, headers=tenant.headers(role), checks=CHECKS)
