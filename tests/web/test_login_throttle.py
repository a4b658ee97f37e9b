"""Failed logins slow down per account and per address, the same for unknown accounts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from outpost.clock import utcnow
from outpost.db import Database
from outpost.identity import throttle
from outpost.identity.models import LoginThrottle
from support.web import log_in

EMAIL = "admin@acme-solar.test"


def _fail(app: Flask, email: str, times: int, address: str = "10.0.0.1") -> list[Any]:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return [log_in(client, email, "not the password at all") for _ in range(times)]


def test_wait_doubles_after_the_free_failures() -> None:
    waits = [throttle.wait_after(n, throttle.ACCOUNT).total_seconds() for n in range(1, 8)]
    assert waits == [0, 0, 0, 2, 4, 8, 16]
    assert throttle.wait_after(100, throttle.ACCOUNT) == throttle.MAX_WAIT


@pytest.mark.parametrize("email", [EMAIL, "nobody@acme-solar.test"])
def test_an_account_is_throttled_the_same_whether_it_exists_or_not(
    app: Flask, tenant: Any, email: str
) -> None:
    responses = _fail(app, email, 5)
    assert [r.status_code for r in responses] == [401, 401, 401, 401, 429]
    assert int(responses[-1].headers["Retry-After"]) >= 1
    assert "Too many failed logins" in responses[-1].get_data(as_text=True)


def test_the_right_password_waits_too_then_works_and_clears_the_count(
    app: Flask, tenant: Any, db: Database
) -> None:
    _fail(app, EMAIL, 4)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert log_in(client, EMAIL).status_code == 429  # the account waits, from any address
    with db.unit_of_work() as session:  # the wait is over
        session.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))
    assert log_in(client, EMAIL).status_code == 303
    assert [r.status_code for r in _fail(app, EMAIL, 3, "10.0.0.3")] == [401, 401, 401]


def test_an_address_is_throttled_across_accounts(app: Flask, tenant: Any) -> None:
    statuses = [
        _fail(app, f"user{n}@acme-solar.test", 1, "192.0.2.7")[0].status_code for n in range(22)
    ]
    assert statuses[:20] == [401] * 20
    assert statuses[-1] == 429
