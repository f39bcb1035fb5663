"""A stand-in for the Hugging Face hub on loopback: the two routes a model fetch uses.

No hub is reachable from the test machines. This serves model folders the tests build
(tiny random models) under the hub's URL scheme, so `callguard models pull` and a server's
first-start fetch run their real HTTP, resume and checksum code against it:

    GET /api/models/<owner>/<name>/revision/<rev>?blobs=true   commit + files (size, lfs sha256)
    GET /<owner>/<name>/resolve/<commit>/<file>                the bytes, honouring Range

`cut_after` drops the connection after that many bytes of a file, once (a network that
fails mid-fetch); `corrupt` serves a file with one byte flipped (a bad mirror).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "c0ffee" + "0" * 34
# Files the real hub stores in LFS (and publishes a sha256 for) are the large ones.
LFS_MIN_BYTES = 1024


@dataclass
class HubRequest:
    path: str
    range: str | None
    sent: int = 0


@dataclass
class StandInHub:
    repos: dict[str, dict[str, bytes]]
    cut_after: dict[str, int] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    requests: list[HubRequest] = field(default_factory=list)
    url: str = ""

    @classmethod
    def of_folders(cls, folders: dict[str, Path]) -> StandInHub:
        repos = {
            repo: {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
            for repo, folder in folders.items()
        }
        return cls(repos)

    def info(self, repo: str) -> dict[str, object]:
        siblings: list[dict[str, object]] = []
        for name, data in self.repos[repo].items():
            entry: dict[str, object] = {"rfilename": name, "size": len(data)}
            if len(data) >= LFS_MIN_BYTES:
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            siblings.append(entry)
        return {"id": repo, "sha": COMMIT, "siblings": siblings}

    def body(self, repo: str, name: str) -> bytes:
        data = self.repos[repo][name]
        if name in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return data


def _handler(hub: StandInHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            path = unquote(urlparse(self.path).path)
            record = HubRequest(path, self.headers.get("Range"))
            hub.requests.append(record)
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                repo = "/".join(parts[2:4])
                if repo not in hub.repos:
                    return self.send_error(404)
                return self._send(json.dumps(hub.info(repo)).encode(), 200, "application/json")
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                if repo not in hub.repos or name not in hub.repos[repo]:
                    return self.send_error(404)
                return self._send_file(hub.body(repo, name), name, record)
            self.send_error(404)

        def _send_file(self, data: bytes, name: str, record: HubRequest) -> None:
            start, status = 0, 200
            if record.range and record.range.startswith("bytes="):
                start = int(record.range[6:].split("-")[0])
                if start >= len(data):
                    return self.send_error(416)
                status = 206
            chunk = data[start:]
            cut = hub.cut_after.pop(name, None)
            self.send_response(status)
            self.send_header("Content-Length", str(len(chunk)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if cut is not None:
                self.wfile.write(chunk[:cut])
                record.sent = cut
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(chunk)
            record.sent = len(chunk)

        def _send(self, data: bytes, status: int, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serving(hub: StandInHub) -> Iterator[StandInHub]:
    """Runs the stand-in on an ephemeral loopback port; hub.url is its endpoint (HF_ENDPOINT)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="stand-in-hub", daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
