"""The generated OpenAPI document is valid OpenAPI 3.1 and documents every API route."""

from __future__ import annotations

from openapi_spec_validator import validate


def test_document_is_valid_openapi(client):
    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    patch = document["paths"]["/api/v1/assets/{asset_id}"]["patch"]
    assert {p["name"] for p in patch["parameters"]} >= {"asset_id", "If-Match"}
    assert {"412", "422", "428"} <= set(patch["responses"])
    assert "ETag" in patch["responses"]["200"]["headers"]
