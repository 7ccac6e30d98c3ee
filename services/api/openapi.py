"""The API's OpenAPI 3.1 document, generated from the code and kept in the repository
(`deploy/openapi.json`) for integrators; a test fails when it is stale. Regenerate with
`python -m services.api.openapi`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from services.adapters.config import Settings

DOCUMENT = Path(__file__).resolve().parents[2] / "deploy" / "openapi.json"


def document() -> dict[str, Any]:
    from services.api import create_app

    spec: dict[str, Any] = create_app(Settings()).openapi()
    return spec


def render() -> bytes:
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main() -> None:
    DOCUMENT.write_bytes(render())
    sys.stdout.write(f"{DOCUMENT}\n")


if __name__ == "__main__":
    main()
