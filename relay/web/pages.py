"""The browser pages: static files, no build step."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/", index),
        web.get("/login", _page("login.html")),
        web.get("/counselor", _page("counselor.html")),
        web.get("/qa", _page("qa.html")),
        web.get("/supervisor", _page("supervisor.html")),
        web.get("/join/{call_id}", _page("customer.html")),
        web.static("/static", STATIC),
    ]


async def index(request: web.Request) -> web.StreamResponse:
    # The page itself asks /api/me and goes on to the right place.
    raise web.HTTPFound("/login")


def _page(name: str):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.FileResponse:
        response = web.FileResponse(STATIC / name)
        response.headers["Cache-Control"] = "no-store"
        return response

    return handler
