"""Recordings on an S3-compatible store: against a stand-in (moto's server mode) on loopback.
A real call's files are uploaded when it ends; QA plays them (with ranges) and exports them
from the store; retention deletes them there; a store that is down keeps the local file."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from relay.config import parse_config
from relay.records import retention
from relay.records.database import open_database
from relay.records.db_thread import DatabaseThread
from relay.records.s3_recordings import RecordingUploads, S3Recordings
from testkit.client import ApiClient
from testkit.local_s3 import ACCESS_KEY, BUCKET, SECRET_KEY, LocalS3, local_s3
from testkit.local_server import LocalServer

from .conftest import PASSWORD, open_call, start_server

pytest.importorskip("boto3", reason="the s3 extra (boto3) is not installed")
pytest.importorskip("moto", reason="the S3 stand-in (moto[server]) is not installed")

PREFIX = "node-a/"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    store = local_s3(tmp_path_factory.mktemp("s3")).start()
    yield store
    store.stop()


@pytest.fixture
def s3_server(tmp_path: Path, s3: LocalS3) -> Iterator[LocalServer]:
    server = start_server(tmp_path, extra=s3.config_toml(PREFIX))
    yield server
    server.stop()


def objects(s3: LocalS3, call_id: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}calls/{call_id}/").get("Contents", [])
    return {o["Key"].rsplit("/", 1)[1]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


async def test_a_calls_recordings_go_to_the_store_and_qa_reads_them_there(
    s3_server: LocalServer, s3: LocalS3, http: aiohttp.ClientSession
) -> None:
    server = s3_server
    call = await open_call(server, http, counselor="anna", record_s=20)
    await asyncio.sleep(3.0)
    local = server.data_dir / "calls" / call.call_id
    assert sorted(p.name for p in local.glob("*.opus")) == ["counselor.opus", "customer.opus", "delivered.opus"]
    await call.close()
    for _ in range(100):  # uploaded within a few sweeps of the end
        stored = objects(s3, call.call_id)
        if len(stored) == 3 and not local.exists():
            break
        await asyncio.sleep(0.2)
    assert sorted(stored) == ["counselor.opus", "customer.opus", "delivered.opus"], sorted(stored)
    assert not local.exists(), "the local copy outlived its upload"
    delivered = stored["delivered.opus"]
    assert delivered.startswith(b"OggS") and len(delivered) > 5000

    qa = ApiClient(server.base_url, http)
    await qa.login("quinn", PASSWORD)
    url = f"{server.base_url}/api/qa/calls/{call.call_id}/audio/delivered"
    auth = {"Authorization": f"Bearer {qa.token}"}
    async with http.get(url, headers=auth) as r:
        assert r.status == 200 and r.headers["Accept-Ranges"] == "bytes"
        assert await r.read() == delivered
    async with http.get(url, headers={**auth, "Range": "bytes=100-299"}) as r:  # the player seeking
        assert r.status == 206 and r.headers["Content-Range"] == f"bytes 100-299/{len(delivered)}"
        assert await r.read() == delivered[100:300]
    async with http.get(url, headers={**auth, "Range": "bytes=-64"}) as r:
        assert r.status == 206 and await r.read() == delivered[-64:]
    async with http.get(url, headers={**auth, "Range": f"bytes={len(delivered) + 10}-"}) as r:
        assert r.status == 416
    async with http.get(f"{server.base_url}/api/qa/calls/{call.call_id}/export", headers=auth) as r:
        assert r.status == 200
        with zipfile.ZipFile(io.BytesIO(await r.read())) as zf:
            assert zf.read("audio/delivered.opus") == delivered
            assert zf.read("audio/customer.opus") == stored["customer.opus"]

    # Retention deletes the call in the store too.
    db = open_database(server.data_dir / "callguard.db")
    try:
        store = store_at(s3.endpoint)
        report = retention.purge(db, server.data_dir, 1, ("test", "cli"), now=time.time() + 3 * 86400, store=store)
    finally:
        db.close()
    assert call.call_id in {c.call_id for c in report.calls} and not report.errors
    assert objects(s3, call.call_id) == {}


def store_at(endpoint: str) -> S3Recordings:
    """The product's store client, pointed at `endpoint` with the stand-in's keys."""
    config = {
        "backend": "s3",
        "endpoint": endpoint,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "region": "us-east-1",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
    }
    return S3Recordings(parse_config({"recordings": config}).recordings)


async def test_a_store_that_is_down_keeps_the_file_and_the_upload_is_retried(tmp_path: Path, s3: LocalS3) -> None:
    db = open_database(tmp_path / "callguard.db")
    db.execute(
        "INSERT INTO calls (call_id, counselor, created_at, ended_at, delay_s, invite_hash, invite_expires_at) "
        "VALUES ('c_down', 'anna', 0, 1, 1.5, x'01', 0)"
    )
    folder = tmp_path / "calls" / "c_down"
    folder.mkdir(parents=True)
    (folder / "customer.opus").write_bytes(b"OggS" + bytes(range(256)) * 40)
    database = DatabaseThread(db, queue_max=100, spill=tmp_path / "spill.jsonl")
    try:
        down = store_at("http://127.0.0.1:9")  # nothing listens there
        uploads = RecordingUploads(down, tmp_path, database, lambda: [], 1.0)
        started = time.monotonic()
        assert await uploads.run_once() == 0
        assert uploads.failed == 1 and (folder / "customer.opus").exists()
        assert time.monotonic() - started < 15  # bounded: the store's timeouts, not a hang
        uploads = RecordingUploads(store_at(s3.endpoint), tmp_path, database, lambda: [], 1.0)
        assert await uploads.run_once() == 1
    finally:
        database.close(5.0)
    assert not folder.exists()
    client = s3.client()
    body = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}calls/c_down/customer.opus")["Body"].read()
    assert body == b"OggS" + bytes(range(256)) * 40
