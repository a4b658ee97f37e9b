"""Bad input at the API edge: every refusal is problem+json, and a refused write changes nothing.

Each refused write below is followed by a check that sites, assets, their revisions and
the organization's audit event count are exactly as before (read from the database).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from outpost.app import create_app
from outpost.identity import service as identity
from support.api import (
    Fleet,
    assert_problem,
    error_codes,
    error_paths,
    fingerprint,
    make_fleet,
)

JSON = "application/json"


@pytest.fixture
def fleet(client, tenant) -> Fleet:
    return make_fleet(client, tenant.headers())


@pytest.fixture
def foreign(client, other_tenant) -> Fleet:
    """The other tenant's fleet, with names that must never appear in our responses."""
    return make_fleet(client, other_tenant.headers(), code="SECRET")


@contextmanager
def unchanged(db, *tenants) -> Iterator[None]:
    before = [fingerprint(db, t.org_id) for t in tenants]
    yield
    assert [fingerprint(db, t.org_id) for t in tenants] == before


def if_match(revision: int | str) -> dict[str, str]:
    return {"If-Match": f'"{revision}"'}


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --- bodies -----------------------------------------------------------------------------


def write_targets(fleet: Fleet) -> list[tuple[str, str, dict[str, str]]]:
    """(method, url, extra headers) of every JSON-body write endpoint."""
    return [
        ("POST", "/api/v1/sites", {}),
        ("POST", "/api/v1/assets", {}),
        ("POST", "/api/v1/changesets", {}),
        ("POST", "/api/v1/changesets?dry_run=true", {}),
        ("PATCH", f"/api/v1/sites/{fleet.site['id']}", if_match(1)),
        ("PUT", f"/api/v1/sites/{fleet.site['id']}", if_match(1)),
        ("PATCH", f"/api/v1/assets/{fleet.meter['id']}", if_match(1)),
        ("PUT", f"/api/v1/assets/{fleet.meter['id']}", if_match(1)),
    ]


MALFORMED = {
    "truncated": b'{"name": "x", "code": ',
    "trailing garbage": b'{"name": "x"} yes',
    "single quotes": b"{'name': 'x'}",
    "empty": b"",
    "not utf-8": b'{"name": "\xff\xfe"}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
}


def test_json_of_the_wrong_shape_is_422(client, db, tenant, fleet):
    for method, url, headers in write_targets(fleet):
        with unchanged(db, tenant):
            response = client.open(
                url,
                method=method,
                data=b"null",
                content_type=JSON,
                headers=tenant.headers(**headers),
            )
        assert_problem(response, 422)


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_json_is_400(client, db, tenant, fleet, payload):
    for method, url, headers in write_targets(fleet):
        with unchanged(db, tenant):
            response = client.open(
                url,
                method=method,
                data=payload,
                content_type=JSON,
                headers=tenant.headers(**headers),
            )
        body = assert_problem(response, 400)
        assert "JSON" in body["detail"], (method, url, body)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_json_is_415(client, db, tenant, fleet, content_type):
    for method, url, headers in write_targets(fleet):
        with unchanged(db, tenant):
            response = client.open(
                url,
                method=method,
                data=b'{"name": "x", "code": "X"}',
                content_type=content_type,
                headers=tenant.headers(**headers),
            )
        assert_problem(response, 415)


def test_wrong_types_are_422_naming_each_field(client, db, tenant, fleet):
    with unchanged(db, tenant):
        response = client.post(
            "/api/v1/sites",
            json={
                "name": 5,
                "code": ["X"],
                "latitude": "north",
                "tags": "a",
                "timezone": "Mars/Base",
            },
            headers=tenant.headers(),
        )
    body = assert_problem(response, 422)
    assert {"name", "code", "latitude", "tags", "timezone"} <= error_paths(body)

    with unchanged(db, tenant):
        response = client.post(
            "/api/v1/assets",
            json={"site_id": 1, "type": None, "name": "", "serial": "has space", "config": []},
            headers=tenant.headers(),
        )
    body = assert_problem(response, 422)
    assert {"site_id", "type", "name", "serial", "config"} <= error_paths(body)

    with unchanged(db, tenant):
        response = client.patch(
            f"/api/v1/assets/{fleet.meter['id']}",
            json={"name": 7, "config": {"modbus_address": "one", "ct_ratio": -1, "phases": 2}},
            headers=tenant.headers(**if_match(1)),
        )
    body = assert_problem(response, 422)
    assert {"name"} <= error_paths(body)

    with unchanged(db, tenant):
        response = client.patch(
            f"/api/v1/assets/{fleet.meter['id']}",
            json={"config": {"modbus_address": "one", "ct_ratio": -1, "phases": 2}},
            headers=tenant.headers(**if_match(1)),
        )
    body = assert_problem(response, 422)
    assert error_paths(body) == {"config.modbus_address", "config.ct_ratio", "config.phases"}

    for not_an_object in ([1, 2], "text", 3):
        with unchanged(db, tenant):
            response = client.patch(
                f"/api/v1/assets/{fleet.meter['id']}",
                data=json.dumps(not_an_object),
                content_type="application/merge-patch+json",
                headers=tenant.headers(**if_match(1)),
            )
        assert_problem(response, 422)


def test_unknown_fields_are_422_with_each_path(client, db, tenant, fleet):
    with unchanged(db, tenant):
        response = client.post(
            "/api/v1/sites",
            json={"name": "x", "code": "X", "bogus": 1, "colour": {"r": 1}},
            headers=tenant.headers(),
        )
    body = assert_problem(response, 422)
    assert error_paths(body) == {"bogus", "colour"}
    assert error_codes(body) == {"field.extra_forbidden"}

    with unchanged(db, tenant):
        response = client.post(
            "/api/v1/changesets",
            json={
                "operations": [
                    {"op": "delete", "id": fleet.meter["id"], "force": True},
                    {"op": "teleport", "id": fleet.meter["id"]},
                ],
                "why": "because",
            },
            headers=tenant.headers(),
        )
    body = assert_problem(response, 422)
    paths = error_paths(body)
    assert "why" in paths
    assert any(p.startswith("operations.0") and p.endswith("force") for p in paths), paths
    assert any(p.startswith("operations.1") for p in paths), paths

    with unchanged(db, tenant):
        response = client.patch(
            f"/api/v1/assets/{fleet.meter['id']}",
            json={"revision": 9, "org_id": "org_x", "name": "renamed"},
            headers=tenant.headers(**if_match(1)),
        )
    body = assert_problem(response, 422)
    assert error_codes(body) == {"patch.field_not_editable"}
    assert "org_id" in body["errors"][0]["message"] and "revision" in body["errors"][0]["message"]

    with unchanged(db, tenant):
        response = client.patch(
            f"/api/v1/assets/{fleet.meter['id']}",
            json={"config": {"baud": 9600}},
            headers=tenant.headers(**if_match(1)),
        )
    body = assert_problem(response, 422)
    assert error_paths(body) == {"config.baud"}


def test_a_body_over_the_limit_is_413(settings, db, tenant):
    app = create_app(dataclasses.replace(settings, max_body_bytes=1024), db)
    client = app.test_client()
    fleet = make_fleet(client, tenant.headers())
    big = {"name": "x" * 2000, "code": "BIG"}
    for method, url, headers in write_targets(fleet):
        with unchanged(db, tenant):
            response = client.open(url, method=method, json=big, headers=tenant.headers(**headers))
        assert_problem(response, 413)
    response = client.post(
        "/api/v1/sites", json={"name": "small", "code": "SMALL"}, headers=tenant.headers()
    )
    assert response.status_code == 201, "a body under the limit is still accepted"


# --- ids ------------------------------------------------------------------------------------


def test_unknown_ids_are_404(client, db, tenant, fleet):
    h = tenant.headers(**if_match(1))
    for method, url in [
        ("GET", "/api/v1/sites/sit_nope"),
        ("PATCH", "/api/v1/sites/sit_nope"),
        ("PUT", "/api/v1/sites/sit_nope"),
        ("DELETE", "/api/v1/sites/sit_nope"),
        ("GET", "/api/v1/assets/ast_nope"),
        ("PATCH", "/api/v1/assets/ast_nope"),
        ("PUT", "/api/v1/assets/ast_nope"),
        ("DELETE", "/api/v1/assets/ast_nope"),
        ("DELETE", "/api/v1/tokens/tok_nope"),
        ("GET", "/api/v1/no-such-thing"),
    ]:
        body: dict[str, Any] | None = None
        if method in {"PATCH", "PUT"}:
            body = (
                {"name": "n", "code": "N"}
                if "sites" in url
                else {"site_id": fleet.site["id"], "name": "n", "serial": "N"}
            )
        with unchanged(db, tenant):
            response = client.open(url, method=method, json=body, headers=h)
        assert_problem(response, 404)
    with unchanged(db, tenant):
        response = client.post(
            "/api/v1/assets",
            json={"site_id": "sit_nope", "type": "badge", "name": "b", "serial": "B1"},
            headers=tenant.headers(),
        )
    assert_problem(response, 404)


def test_a_method_the_route_does_not_have_is_405(client, tenant):
    response = client.post("/api/v1/asset-types", json={}, headers=tenant.headers())
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def _leaks(response, foreign: Fleet) -> list[str]:
    text = response.get_data(as_text=True)
    secrets = [
        foreign.site["name"],
        foreign.site["code"],
        foreign.gateway["name"],
        foreign.gateway["serial"],
        foreign.meter["name"],
        foreign.meter["serial"],
    ]
    return [s for s in secrets if s in text]


def test_another_tenants_sites_and_assets_are_404(client, db, tenant, other_tenant, fleet, foreign):
    h = tenant.headers(**if_match(1))
    site_id, asset_id = foreign.site["id"], foreign.meter["id"]
    for method, url, body in [
        ("GET", f"/api/v1/sites/{site_id}", None),
        ("PATCH", f"/api/v1/sites/{site_id}", {"name": "mine now"}),
        ("PUT", f"/api/v1/sites/{site_id}", {"name": "mine now", "code": "MINE"}),
        ("DELETE", f"/api/v1/sites/{site_id}", None),
        ("GET", f"/api/v1/assets/{asset_id}", None),
        ("PATCH", f"/api/v1/assets/{asset_id}", {"name": "mine now"}),
        ("PATCH", f"/api/v1/assets/{asset_id}", {"config": {"modbus_address": 9}}),
        (
            "PUT",
            f"/api/v1/assets/{asset_id}",
            {"site_id": fleet.site["id"], "name": "mine", "serial": "MINE"},
        ),
        ("DELETE", f"/api/v1/assets/{asset_id}", None),
        ("DELETE", f"/api/v1/assets/{foreign.gateway['id']}?cascade=true", None),
    ]:
        with unchanged(db, tenant, other_tenant):
            response = client.open(url, method=method, json=body, headers=h)
        assert_problem(response, 404)
        assert _leaks(response, foreign) == []
    with unchanged(db, tenant, other_tenant):
        response = client.post(
            "/api/v1/assets",
            json={"site_id": site_id, "type": "badge", "name": "b", "serial": "B1"},
            headers=tenant.headers(),
        )
    assert_problem(response, 404)
    listed = client.get(f"/api/v1/assets?site_id={site_id}", headers=tenant.headers())
    assert listed.status_code == 200 and listed.get_json()["items"] == []
    audit = client.get(f"/api/v1/audit?object_id={asset_id}", headers=tenant.headers())
    assert audit.status_code == 200 and audit.get_json()["items"] == []


def test_another_tenants_ids_in_writes_are_not_found_without_leaking(
    client, db, tenant, other_tenant, fleet, foreign
):
    ours, theirs = fleet.meter["id"], foreign.meter["id"]
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([{"op": "update", "id": theirs, "patch": {"name": "x"}}], "asset.not_found"),
        ([{"op": "delete", "id": theirs, "cascade": True}], "asset.not_found"),
        ([{"op": "move", "id": theirs, "site_id": fleet.site["id"]}], "asset.not_found"),
        ([{"op": "move", "id": ours, "site_id": foreign.site["id"]}], "site.not_found"),
        (
            [
                {
                    "op": "create",
                    "site_id": foreign.site["id"],
                    "type": "badge",
                    "name": "b",
                    "serial": "B1",
                    "config": {"holder": "h", "zones": []},
                }
            ],
            "site.not_found",
        ),
        (
            [
                {
                    "op": "create",
                    "site_id": fleet.site["id"],
                    "type": "meter",
                    "parent_id": foreign.gateway["id"],
                    "name": "m",
                    "serial": "M9",
                    "config": {"modbus_address": 7, "ct_ratio": 1, "phases": 1},
                }
            ],
            "parent.missing",
        ),
    ]
    for operations, code in cases:
        for dry_run in (True, False):
            url = "/api/v1/changesets" + ("?dry_run=true" if dry_run else "")
            with unchanged(db, tenant, other_tenant):
                response = client.post(
                    url, json={"operations": operations}, headers=tenant.headers()
                )
            if dry_run:
                assert response.status_code == 200, response.get_json()
                body = response.get_json()
                assert body["valid"] is False and body["applied"] is False
            else:
                body = assert_problem(response, 422)
            assert code in {v["code"] for v in body.get("violations", body.get("errors", []))}
            assert _leaks(response, foreign) == [], (operations, response.get_json())
    for patch, code in [
        ({"parent_id": foreign.gateway["id"]}, "parent.missing"),
        ({"site_id": foreign.site["id"]}, "site.not_found"),
    ]:
        with unchanged(db, tenant, other_tenant):
            response = client.patch(
                f"/api/v1/assets/{ours}", json=patch, headers=tenant.headers(**if_match(1))
            )
        assert code in error_codes(assert_problem(response, 422))
        assert _leaks(response, foreign) == []


def test_serials_and_codes_are_per_tenant(client, tenant, fleet, foreign):
    """Another tenant's serial or site code is neither refused nor revealed."""
    site = client.post(
        "/api/v1/sites",
        json={"name": "dup", "code": foreign.site["code"]},
        headers=tenant.headers(),
    )
    assert site.status_code == 201, site.get_json()
    badge = client.post(
        "/api/v1/assets",
        json={
            "site_id": fleet.site["id"],
            "type": "badge",
            "name": "b",
            "serial": foreign.meter["serial"],
            "config": {"holder": "h", "zones": []},
        },
        headers=tenant.headers(),
    )
    assert badge.status_code == 201, badge.get_json()


# --- query strings ----------------------------------------------------------------------------


LIST_URLS = ["/api/v1/sites", "/api/v1/assets", "/api/v1/audit"]


BAD_CURSORS = ["!!!", "not base64", cursor_of({}), cursor_of({"after": 5}), cursor_of([1]), "e30"]
BAD_LIMITS = ["0", "-1", "100001", "abc", "1.5", "", "1e3"]


@pytest.mark.parametrize("url", LIST_URLS)
def test_an_invalid_cursor_is_400(client, tenant, fleet, url):
    for cursor in BAD_CURSORS:
        response = client.get(f"{url}?cursor={cursor}", headers=tenant.headers())
        assert "cursor" in assert_problem(response, 400)["detail"].lower(), cursor


def test_an_audit_cursor_from_another_list_is_400(client, tenant, fleet):
    sites_cursor = cursor_of({"after": "P1"})
    assert_problem(
        client.get(f"/api/v1/audit?cursor={sites_cursor}", headers=tenant.headers()), 400
    )


@pytest.mark.parametrize("url", LIST_URLS)
def test_an_invalid_limit_is_400(client, tenant, url):
    for limit in BAD_LIMITS:
        response = client.get(f"{url}?limit={limit}", headers=tenant.headers())
        assert "limit" in error_paths(assert_problem(response, 400)), limit


@pytest.mark.parametrize("url", LIST_URLS)
def test_unknown_and_repeated_query_parameters_are_400(client, tenant, url):
    assert_problem(client.get(f"{url}?colour=red", headers=tenant.headers()), 400)
    assert_problem(client.get(f"{url}?limit=1&limit=2", headers=tenant.headers()), 400)


def test_audit_times_need_a_time_zone(client, tenant):
    for query in ["since=2030-01-01T00:00:00", "until=yesterday", "since=2030-13-01T00:00:00Z"]:
        assert_problem(client.get(f"/api/v1/audit?{query}", headers=tenant.headers()), 400)


# --- preconditions ------------------------------------------------------------------------------


def conditional_writes(fleet: Fleet) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("PATCH", f"/api/v1/sites/{fleet.site['id']}", {"name": "renamed"}),
        ("PUT", f"/api/v1/sites/{fleet.site['id']}", {"name": "renamed", "code": "P1"}),
        ("DELETE", f"/api/v1/sites/{fleet.site['id']}", None),
        ("PATCH", f"/api/v1/assets/{fleet.meter['id']}", {"name": "renamed"}),
        (
            "PUT",
            f"/api/v1/assets/{fleet.meter['id']}",
            {
                "site_id": fleet.site["id"],
                "parent_id": fleet.gateway["id"],
                "name": "renamed",
                "serial": "M-P1",
                "config": fleet.meter["config"],
            },
        ),
        ("DELETE", f"/api/v1/assets/{fleet.meter['id']}", None),
    ]


@pytest.mark.parametrize(
    "header", ["3", 'W/"1"', "*", '"abc"', '"1", "2"', '"' + "9" * 13 + '"', "", '"-1"']
)
def test_an_invalid_if_match_is_400(client, db, tenant, fleet, header):
    for method, url, body in conditional_writes(fleet):
        with unchanged(db, tenant):
            response = client.open(
                url, method=method, json=body, headers=tenant.headers(**{"If-Match": header})
            )
        assert "If-Match" in assert_problem(response, 400)["detail"]


def test_a_missing_if_match_is_428(client, db, tenant, fleet):
    for method, url, body in conditional_writes(fleet):
        with unchanged(db, tenant):
            response = client.open(url, method=method, json=body, headers=tenant.headers())
        assert_problem(response, 428)


def test_a_stale_if_match_is_412_with_the_current_object(client, db, tenant, fleet):
    renamed = client.patch(
        f"/api/v1/assets/{fleet.meter['id']}",
        json={"name": "renamed once"},
        headers=tenant.headers(**if_match(1)),
    )
    assert renamed.status_code == 200 and renamed.headers["ETag"] == '"2"'
    site = client.patch(
        f"/api/v1/sites/{fleet.site['id']}",
        json={"name": "renamed once"},
        headers=tenant.headers(**if_match(1)),
    )
    assert site.status_code == 200 and site.headers["ETag"] == '"2"'
    for method, url, body in conditional_writes(fleet):
        for stale in (1, 3, 999):
            with unchanged(db, tenant):
                response = client.open(
                    url, method=method, json=body, headers=tenant.headers(**if_match(stale))
                )
            problem = assert_problem(response, 412)
            assert response.headers["ETag"] == '"2"', (method, url)
            assert problem["current"]["revision"] == 2
            assert problem["current"]["name"] == "renamed once"
            assert problem["current"]["id"] in url


# --- headers and credentials ---------------------------------------------------------------------


def test_an_invalid_request_id_is_400(client, db, tenant, fleet):
    for request_id in ["has space", "x" * 129, "", "semi;colon", "new\u00e9"]:
        with unchanged(db, tenant):
            response = client.post(
                "/api/v1/sites",
                json={"name": "n", "code": "N"},
                headers=tenant.headers(**{"X-Request-Id": request_id}),
            )
        assert "X-Request-Id" in assert_problem(response, 400)["detail"]
        headers = tenant.headers(**{"X-Request-Id": request_id})
        assert_problem(client.get("/api/v1/sites", headers=headers), 400)


def test_a_valid_request_id_is_echoed(client, tenant):
    response = client.get(
        "/api/v1/sites", headers=tenant.headers(**{"X-Request-Id": "abc.1:2-3_4"})
    )
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "abc.1:2-3_4"
    problem = client.get("/api/v1/sites/nope", headers=tenant.headers(**{"X-Request-Id": "r-1"}))
    assert assert_problem(problem, 404)["request_id"] == "r-1"


BAD_AUTHORIZATION = [
    None,
    "Bearer garbage",
    "Bearer",
    "Bearer    ",
    "Basic dXNlcjpwYXNz",
    "Token abc",
    "garbage",
    "Bearer " + "x" * 5000,
    "Bearer \u00e9\u00e9",
]


def test_bad_credentials_are_401(client, db, tenant, fleet):
    for authorization in BAD_AUTHORIZATION:
        headers = {} if authorization is None else {"Authorization": authorization}
        for method, url, body in [
            ("GET", "/api/v1/sites", None),
            ("POST", "/api/v1/sites", {"name": "n", "code": "N"}),
            ("DELETE", f"/api/v1/assets/{fleet.meter['id']}", None),
        ]:
            with unchanged(db, tenant):
                response = client.open(url, method=method, json=body, headers=headers)
            assert_problem(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_revoked_tokens_are_401(client, db, tenant, fleet):
    with db.unit_of_work() as session:
        expired = identity.create_token(
            session, tenant.admin_actor, name="short", expires_in=timedelta(milliseconds=1)
        ).secret
        doomed = identity.create_token(session, tenant.admin_actor, name="doomed")
    time.sleep(0.01)
    revoked = client.delete(f"/api/v1/tokens/{doomed.token.id}", headers=tenant.headers())
    assert revoked.status_code == 204
    for secret in (expired, doomed.secret):
        for method, url, body in [
            ("GET", "/api/v1/assets", None),
            ("PATCH", f"/api/v1/assets/{fleet.meter['id']}", {"name": "x"}),
        ]:
            with unchanged(db, tenant):
                response = client.open(
                    url,
                    method=method,
                    json=body,
                    headers={"Authorization": f"Bearer {secret}", **if_match(1)},
                )
            assert_problem(response, 401)


def test_a_removed_member_token_is_401(client, db, tenant):
    """A token carries no role of its own: it stops working when the membership goes."""
    from sqlalchemy import delete

    from outpost.identity.models import Membership

    with db.unit_of_work() as session:
        viewer = identity.get_user_by_email(session, "viewer@acme-solar.test")
        session.execute(delete(Membership).where(Membership.user_id == viewer.id))
    assert_problem(client.get("/api/v1/sites", headers=tenant.headers("viewer")), 401)


def test_a_viewer_cannot_write(client, db, tenant, fleet):
    viewer = tenant.headers("viewer", **if_match(1))
    assert client.get("/api/v1/assets", headers=viewer).status_code == 200
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/api/v1/sites", {"name": "n", "code": "N"}),
        *conditional_writes(fleet),
        ("PATCH", f"/api/v1/assets/{fleet.meter['id']}", {"config": {"ct_ratio": 5}}),
        (
            "POST",
            "/api/v1/assets",
            {
                "site_id": fleet.site["id"],
                "type": "badge",
                "name": "b",
                "serial": "B1",
                "config": {"holder": "h", "zones": []},
            },
        ),
        ("POST", "/api/v1/changesets", {"operations": [{"op": "delete", "id": fleet.meter["id"]}]}),
        (
            "POST",
            "/api/v1/changesets?dry_run=true",
            {"operations": [{"op": "delete", "id": fleet.meter["id"]}]},
        ),
    ]
    for method, url, body in writes:
        with unchanged(db, tenant):
            response = client.open(url, method=method, json=body, headers=viewer)
        assert_problem(response, 403)


def test_an_operator_cannot_read_other_users_tokens_or_revoke_them(client, db, tenant):
    with db.unit_of_work() as session:
        admin_token = identity.create_token(session, tenant.admin_actor, name="admin only")
    listed = client.get("/api/v1/tokens", headers=tenant.headers("operator"))
    assert listed.status_code == 200
    assert admin_token.token.id not in {t["id"] for t in listed.get_json()["items"]}
    with unchanged(db, tenant):
        response = client.delete(
            f"/api/v1/tokens/{admin_token.token.id}", headers=tenant.headers("operator")
        )
    assert_problem(response, 404)


# --- text and numbers the databases cannot store: refused at the edge --------------------


def test_a_lone_surrogate_in_config_is_refused(client, db, tenant, fleet):
    raw = (
        '{"site_id": "SITE", "type": "badge", "name": "b", "serial": "B-SUR",'
        ' "config": {"holder": "a\\ud800b", "zones": []}}'
    ).replace("SITE", fleet.site["id"])
    with unchanged(db, tenant):
        response = client.post(
            "/api/v1/assets", data=raw, content_type=JSON, headers=tenant.headers()
        )
    body = assert_problem(response, 400)
    assert body["errors"][0]["path"] == "config.holder"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(client, db, tenant, fleet, constant):
    """JSON has no NaN; Python's parser accepts it, and schema bounds compare False with it."""
    raw = json.dumps(
        {
            "site_id": fleet.site["id"],
            "type": "meter",
            "parent_id": fleet.gateway["id"],
            "name": "nan",
            "serial": "M-NAN",
            "config": {"modbus_address": 9, "ct_ratio": 1.0, "phases": 3},
        }
    ).replace("1.0", constant)
    with unchanged(db, tenant):
        response = client.post(
            "/api/v1/assets", data=raw, content_type=JSON, headers=tenant.headers()
        )
    assert constant.lstrip("-") in assert_problem(response, 400)["detail"]


NUL_REQUESTS = {
    "site name": ("POST", "/api/v1/sites", {"name": "a\x00b", "code": "NUL"}),
    "asset list q": ("GET", "/api/v1/assets?q=%00", None),
    "asset list site_id": ("GET", "/api/v1/assets?site_id=%00", None),
    "asset list type": ("GET", "/api/v1/assets?type=%00", None),
    "site list q": ("GET", "/api/v1/sites?q=a%00", None),
    "audit object_id": ("GET", "/api/v1/audit?object_id=%00", None),
    "audit action": ("GET", "/api/v1/audit?action=%00", None),
    "asset id in path": ("GET", "/api/v1/assets/a%00b", None),
}


@pytest.mark.parametrize("request_", NUL_REQUESTS.values(), ids=NUL_REQUESTS.keys())
def test_a_nul_character_is_refused(client, db, tenant, fleet, request_):
    method, url, body = request_
    with unchanged(db, tenant):
        response = client.open(url, method=method, json=body, headers=tenant.headers())
    assert "NUL" in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize("header", ['"0"', '"007x"', 'W/"3"', '"1", "2"'])
def test_an_if_match_that_no_revision_can_have_is_400(client, db, tenant, fleet, header):
    """Found by schemathesis: ``If-Match: "0"`` on a delete used to be a 500."""
    response = client.delete(
        f"/api/v1/assets/{fleet.meter['id']}", headers=tenant.headers(**{"If-Match": header})
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
