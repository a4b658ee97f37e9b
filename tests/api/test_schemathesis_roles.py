"""Schemathesis over the served OpenAPI document, once per role token.

The document is loaded from the in-process Flask app (``/api/v1/openapi.json``) and every
documented operation is exercised with the token of each built-in role of one tenant, and
of a member whose only access is a grant of operator on one site.
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
from datetime import timedelta
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
from outpost.clock import utcnow
from outpost.db import Database
from outpost.identity import grants
from outpost.identity import service as identity
from outpost.identity.roles import NO_ROLE
from outpost.inventory import service as inventory
from outpost.inventory.schemas import SiteCreate
from outpost.models import metadata
from outpost.settings import Settings
from support.tenants import Tenant, insert_token, make_tenant

pytestmark = pytest.mark.slow

#: The built-in roles on the whole organization, and "site_operator": a member with no
#: role of their own holding operator on one site through a grant (7 days).
ROLES = ("viewer", "technician", "operator", "admin", "site_operator")
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
) -> tuple[Flask, dict[str, str]]:
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
    tenant = make_tenant(database, "Acme Solar")
    return create_app(app_settings, database), _with_grant_holders(database, tenant)


def _with_grant_holders(database: Database, tenant: Tenant) -> dict[str, str]:
    """Bearer tokens by role: the tenant's, a technician's, and a site operator's whose
    access is a grant on a site of their own."""
    tokens = {role: getattr(tenant, role) for role in ("viewer", "operator", "admin")}
    with database.unit_of_work() as session:
        system = identity.system_actor(tenant.org_id, "schemathesis")
        site = inventory.create_site(
            session, system, SiteCreate(name="Granted plant", code="GRANTED", timezone="UTC")
        )
        for role in ("technician", "site_operator"):
            user = identity.add_user(
                session,
                system,
                email=f"{role}@acme.test",
                password="correct horse battery",
                role=role if role == "technician" else NO_ROLE,
            )
            if role == "site_operator":
                spec = grants.GrantSpec(
                    user_id=user.id,
                    role="operator",
                    reason="schemathesis",
                    site_id=site.id,
                    expires_at=utcnow() + timedelta(days=7),
                )
                grants.create_grant(session, system, spec)
            tokens[role] = insert_token(session, tenant.org_id, user.id)
    return tokens


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_no_server_error_and_documented_responses(
    case: Case, served: tuple[Flask, dict[str, str]], role: str
) -> None:
    app, tokens = served
    case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {tokens[role]}"}, checks=CHECKS
    )
