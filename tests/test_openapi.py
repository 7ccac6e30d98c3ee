"""The OpenAPI 3.1 document kept in the repository (deploy/openapi.json) is the one the code
generates: regenerate with `python -m services.api.openapi` when this fails."""

from __future__ import annotations

import orjson

from services.api import openapi


def test_the_kept_openapi_document_is_current() -> None:
    kept = openapi.DOCUMENT.read_bytes()
    assert kept == openapi.render(), "stale: run `python -m services.api.openapi`"


def test_every_route_is_versioned_and_documented() -> None:
    spec = orjson.loads(openapi.DOCUMENT.read_bytes())
    assert spec["openapi"].startswith("3.1")
    paths = set(spec["paths"])
    probes = {"/healthz", "/readyz", "/metrics"}
    assert paths - probes and all(p.startswith("/api/v1/") for p in paths - probes)
    assert probes <= paths
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "/api/v1/events" in paths and "post" in spec["paths"]["/api/v1/events"]
