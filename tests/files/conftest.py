"""Fixtures of the file pole's tests: a site to attach files to."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from fleet import post


@pytest.fixture
def site(client: FlaskClient, tenant: Any) -> dict[str, Any]:
    return post(
        client,
        "/api/v1/sites",
        {"name": "Plant F1", "code": "F1", "timezone": "Europe/Paris"},
        tenant.headers(),
    )
