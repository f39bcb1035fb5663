"""The API description (docs/openapi.yaml, packaged as relay/web/openapi.yaml), served as JSON.

tests/test_openapi.py keeps it true: every route of the app is described and every
described route exists; the fuzz test drives the server from it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

SPEC = Path(__file__).resolve().parent / "openapi.yaml"


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return loaded


def routes() -> list[web.RouteDef]:
    return [web.get("/api/openapi.json", openapi_json)]


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(spec())
