"""docs/openapi.yaml stays true: the routes it describes are the app's routes, and it is served."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from relay.config import parse_config
from relay.web.app import build_app
from relay.web.openapi import SPEC, spec
from testkit.local_server import LocalServer

ROOT = Path(__file__).resolve().parent.parent


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for resource in app.router.resources():
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path += "/{filename}"
        for route in resource:
            if route.method not in ("HEAD", "*"):
                found.add((route.method.lower(), path))
    return found


def _spec_routes() -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {(m, path) for path, item in spec()["paths"].items() for m in item if m in methods}


def test_every_route_is_described_and_every_description_is_a_route(tmp_path: Path) -> None:
    app = build_app(parse_config({"server": {"data_dir": str(tmp_path)}, "stt": {"enabled": False}}))
    assert _app_routes(app) == _spec_routes()


def test_the_description_is_openapi_3_1_and_its_references_resolve() -> None:
    document = spec()
    assert document["openapi"] == "3.1.0"
    assert SPEC.resolve() == (ROOT / "docs" / "openapi.yaml").resolve()  # one file, packaged from docs/

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        target: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, ref
            target = target[part]


async def test_it_is_served_as_json(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.base_url + "/api/openapi.json") as response:
        assert response.status == 200 and (await response.json()) == spec()
