"""Property tests over the API: whatever arrives, no 500, and no write leaves an invalid fleet.

Arbitrary JSON, query strings and header values go to every write and list endpoint;
structurally plausible bodies (right keys, random values, real asset types) reach the
rules engine. After every request the stored fleet is loaded from the database and must
satisfy every rule (``rules.check_all`` over all assets, ``changed`` = all of them).

Three inputs are left out of the generators because each is a known bug pinned by its own
test in ``test_bad_input.py``: NaN (passes JSON Schema bounds), NUL characters (PostgreSQL
refuses them in text) and lone surrogates (the database drivers cannot encode them).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from outpost.inventory.catalogue import CATALOGUE, SENSOR_KINDS
from outpost.inventory.models import Asset, Site
from outpost.inventory.rules import check_all
from outpost.inventory.state import AssetState, ProposedState, SiteState
from support.api import assert_problem, make_fleet

pytestmark = pytest.mark.slow

EXAMPLES = 150
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- generators -------------------------------------------------------------------------------

CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
TEXT = st.text(CHARACTERS, max_size=20)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | TEXT
)
FIELD_NAMES = sorted(
    {
        "name",
        "code",
        "timezone",
        "address",
        "latitude",
        "longitude",
        "grid_connection_kw",
        "tags",
        "site_id",
        "parent_id",
        "serial",
        "config",
        "type",
        "operations",
        "op",
        "id",
        "patch",
        "ref",
        "parent_ref",
        "if_revision",
        "cascade",
        "reason",
        *(key for t in CATALOGUE.values() for key in t.config_schema["properties"]),
    }
)
KEYS = st.sampled_from(FIELD_NAMES) | TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=15,
)
JSON_OBJECTS = st.dictionaries(KEYS, JSON_VALUES, max_size=6)
ANY_BODY = JSON_VALUES | JSON_OBJECTS
NAMES = st.from_regex(r"\A[a-z][a-z ]{0,8}\Z")
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
QUERY_KEYS = st.sampled_from(
    [
        "site_id",
        "type",
        "parent_id",
        "tag",
        "q",
        "limit",
        "cursor",
        "object_type",
        "object_id",
        "actor_id",
        "action",
        "request_id",
        "since",
        "until",
        "dry_run",
        "cascade",
    ]
) | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)
QUERY_VALUES = (
    TEXT
    | st.integers(-5, 2000).map(str)
    | st.sampled_from(["2030-01-01T00:00:00Z", "2000-01-01", "true", "false", "gateway", "meter"])
)
QUERIES = st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=5)


def mostly(
    good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], odds: int = 10
) -> st.SearchStrategy[Any]:
    """``good`` except once in ``odds`` draws, when ``bad``."""
    return st.integers(1, odds).flatmap(lambda n: bad if n == 1 else good)


def config_for(type_key: str) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly valid configs with values from small pools, so relational rules bite."""
    ints = st.integers(-1, 10) | st.integers(0, 300)
    ips = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.1.5", "192.168.1.1", "10.0.0.300", "x"])
    subnets = st.sampled_from(["10.0.0.0/24", "10.0.0.1/24", "10.0.0.0/33", "10.0.0.0/16"])
    pools: dict[str, st.SearchStrategy[Any]] = {
        "ip": ips,
        "subnet": subnets,
        "upload_interval_s": mostly(st.integers(5, 3600), st.integers(0, 4000)),
        "max_controllers": ints,
        "max_bus_devices": ints,
        "firmware": NAMES,
        "channels": mostly(st.integers(1, 8), st.integers(0, 70)),
        "channel": st.integers(-1, 5),
        "kind": st.sampled_from([*SENSOR_KINDS, "smell"]),
        "unit": NAMES,
        "sampling_interval_s": st.integers(0, 90),
        "modbus_address": st.integers(0, 12) | st.integers(240, 250),
        "ct_ratio": mostly(st.floats(0.5, 1000), st.floats(-1, 200_000)),
        "phases": st.sampled_from([1, 2, 3]),
        "rated_power_kw": st.floats(0, 500, allow_nan=False),
        "door": NAMES,
        "zone": st.sampled_from(["north", "south", ""]),
        "holder": NAMES,
        "zones": st.lists(st.sampled_from(["north", "south", "east"]), max_size=3),
        "valid_until": st.sampled_from(["2030-01-01T00:00:00Z", "2030-01-01T00:00:00", "soon"]),
    }
    schema = CATALOGUE[type_key].config_schema
    required = {key: mostly(pools[key], JSON_VALUES, 30) for key in schema["required"]}
    optional = {
        key: mostly(pools[key], JSON_VALUES, 30)
        for key in schema["properties"]
        if key not in required
    }
    return mostly(
        st.fixed_dictionaries(required, optional=optional),
        st.dictionaries(st.sampled_from(sorted(pools)), st.one_of(*pools.values()), max_size=4),
    )


def plausible_asset(fleet: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    def parent_for(type_key: str) -> st.SearchStrategy[str | None]:
        wanted = sorted(CATALOGUE[type_key].parent_types)
        good = st.sampled_from([fleet[t] for t in wanted]) if wanted else st.none()
        return mostly(good, st.sampled_from([*fleet.values(), "ast_unknown"]) | st.none())

    return st.sampled_from(sorted(CATALOGUE)).flatmap(
        lambda type_key: st.fixed_dictionaries(
            {
                "site_id": mostly(st.just(fleet["site"]), st.sampled_from(["sit_unknown", ""])),
                "type": mostly(st.just(type_key), st.sampled_from(["robot", ""])),
                "parent_id": parent_for(type_key),
                "name": mostly(NAMES, TEXT),
                "serial": mostly(
                    st.uuids().map(lambda u: f"S-{u.hex[:10]}"),
                    st.sampled_from(["GW-P1", "M-P1", "dup", " "]) | TEXT,
                ),
                "config": config_for(type_key),
            },
            optional={"tags": st.lists(st.from_regex(r"\A[a-z][a-z0-9-]{0,5}\Z"), max_size=3)},
        )
    )


def plausible_patch(fleet: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(CHARACTERS, max_size=10) | st.none(),
            "parent_id": st.sampled_from([*fleet.values(), "x"]) | st.none(),
            "site_id": st.sampled_from([fleet["site"], "sit_unknown"]),
            "config": config_for("meter") | st.dictionaries(KEYS, JSON_VALUES, max_size=3),
            "tags": st.lists(st.from_regex(r"\A[a-z]{1,4}\Z"), max_size=3) | JSON_VALUES,
            "type": st.sampled_from(["meter", "inverter"]),
        },
    )


def plausible_operations(fleet: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    existing = st.sampled_from([fleet["gateway"], fleet["controller"], fleet["meter"], "ast_x"])
    create = plausible_asset(fleet).flatmap(
        lambda body: st.fixed_dictionaries(
            {"op": st.just("create"), **{k: st.just(v) for k, v in body.items()}},
            optional={
                "ref": st.sampled_from(["a", "b"]),
                "parent_ref": st.sampled_from(["a", "b"]),
            },
        )
    )
    update = st.fixed_dictionaries(
        {"op": st.just("update"), "id": existing, "patch": plausible_patch(fleet)},
        optional={"if_revision": st.integers(0, 3)},
    )
    move = st.fixed_dictionaries(
        {"op": st.just("move"), "id": existing},
        optional={
            "site_id": st.just(fleet["site"]),
            "parent_id": existing,
            "parent_ref": st.sampled_from(["a", "b"]),
            "if_revision": st.integers(1, 3),
        },
    )
    delete = st.fixed_dictionaries(
        {"op": st.just("delete"), "id": existing},
        optional={"cascade": st.booleans(), "if_revision": st.integers(1, 3)},
    )
    return st.fixed_dictionaries(
        {"operations": st.lists(create | update | move | delete, min_size=1, max_size=5)},
        optional={"reason": TEXT},
    )


# --- the property -------------------------------------------------------------------------------


def stored_violations(db, org_id: str) -> list[str]:
    """Every rule violation in the organization's stored fleet."""
    with db.unit_of_work(write=False) as session:
        sites = {
            s.id: SiteState(s.id, s.code, s.grid_connection_kw)
            for s in session.scalars(select(Site).where(Site.org_id == org_id))
        }
        assets = {
            a.id: AssetState(
                a.id, a.site_id, a.type, a.parent_id, a.name, a.serial, a.config, tuple(a.tags)
            )
            for a in session.scalars(select(Asset).where(Asset.org_id == org_id))
        }
    state = ProposedState(sites, assets, frozenset(assets))
    return [f"{v.code} {v.path} {v.object_id}: {v.message}" for v in check_all(state)]


def check(response, db, org_id: str) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert_problem(response, response.status_code)
    assert stored_violations(db, org_id) == []


def headers(tenant, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, **tenant.headers()}


EXTRA_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "X-Request-Id": HEADER_TEXT,
        "X-Change-Reason": HEADER_TEXT,
        "If-Match": HEADER_TEXT,
        "Accept": HEADER_TEXT,
    },
)


@pytest.fixture
def fleet(client, tenant) -> dict[str, str]:
    """Ids of a site (100 kW grid connection), its gateway, a meter and a controller."""
    made = make_fleet(client, tenant.headers())
    grid = client.patch(
        f"/api/v1/sites/{made.site['id']}",
        json={"grid_connection_kw": 100},
        headers=tenant.headers(**{"If-Match": '"1"'}),
    )
    assert grid.status_code == 200, grid.get_json()
    controller = client.post(
        "/api/v1/assets",
        json={
            "site_id": made.site["id"],
            "type": "controller",
            "parent_id": made.gateway["id"],
            "name": "controller",
            "serial": "CTL-P1",
            "config": {"channels": 4},
        },
        headers=tenant.headers(),
    )
    assert controller.status_code == 201, controller.get_json()
    return {
        "site": made.site["id"],
        "gateway": made.gateway["id"],
        "meter": made.meter["id"],
        "controller": controller.get_json()["id"],
    }


def test_post_sites(client, db, tenant, fleet):
    @PROPERTY
    @given(body=ANY_BODY, extra=EXTRA_HEADERS)
    def run(body, extra):
        response = client.post("/api/v1/sites", json=body, headers=headers(tenant, extra))
        check(response, db, tenant.org_id)

    run()


def test_post_assets(client, db, tenant, fleet):
    @PROPERTY
    @given(body=ANY_BODY | plausible_asset(fleet), extra=EXTRA_HEADERS)
    def run(body, extra):
        response = client.post("/api/v1/assets", json=body, headers=headers(tenant, extra))
        check(response, db, tenant.org_id)

    run()


def test_post_plausible_assets(client, db, tenant, fleet):
    outcomes: Counter[str] = Counter()

    @PROPERTY
    @given(body=plausible_asset(fleet))
    def run(body):
        if body["serial"].startswith("S-"):  # hypothesis repeats draws: keep serials unique
            body["serial"] += f"-{sum(outcomes.values())}"
        response = client.post("/api/v1/assets", json=body, headers=tenant.headers())
        check(response, db, tenant.org_id)
        problems = response.get_json().get("errors", []) if response.status_code >= 400 else []
        outcomes.update([str(response.status_code), *(e["code"] for e in problems)])

    run()
    print(f"\nplausible assets: {dict(outcomes.most_common())}")


def test_patch_asset(client, db, tenant, fleet):
    @PROPERTY
    @given(
        body=ANY_BODY | plausible_patch(fleet),
        target=st.sampled_from(["controller", "gateway", "meter"]),
    )
    def run(body, target):
        url = f"/api/v1/assets/{fleet[target]}"
        etag = client.get(url, headers=tenant.headers()).headers["ETag"]
        response = client.patch(url, json=body, headers=tenant.headers(**{"If-Match": etag}))
        check(response, db, tenant.org_id)

    run()


@pytest.mark.parametrize("dry_run", [False, True])
def test_post_changesets(client, db, tenant, fleet, dry_run):
    url = "/api/v1/changesets" + ("?dry_run=true" if dry_run else "")

    @PROPERTY
    @given(body=ANY_BODY | plausible_operations(fleet), extra=EXTRA_HEADERS)
    def run(body, extra):
        response = client.post(url, json=body, headers=headers(tenant, extra))
        check(response, db, tenant.org_id)
        if dry_run and response.status_code == 200:
            assert response.get_json()["applied"] is False

    run()


@pytest.mark.parametrize("path", ["/api/v1/assets", "/api/v1/audit", "/api/v1/sites"])
def test_list_queries(client, db, tenant, fleet, path):
    @PROPERTY
    @given(query=QUERIES, extra=EXTRA_HEADERS)
    def run(query, extra):
        response = client.get(f"{path}?{urlencode(query)}", headers=headers(tenant, extra))
        check(response, db, tenant.org_id)
        if response.status_code == 200:
            assert isinstance(response.get_json()["items"], list)

    run()
