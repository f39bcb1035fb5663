"""Recordings on an S3-compatible store (recordings.backend = "s3", the `s3` extra: boto3).

A call's recordings are written to the local data folder while it runs
(relay/records/ogg_opus.py: pages flushed every half second, readable after a crash),
exactly as with the folder backend. Once the call has ended, RecordingUploads puts each
file at PREFIX + calls/<call_id>/<stream>.opus, checks the stored size, and only then
removes the local copy; a failed upload leaves the file where it is and is tried again
every recordings.upload_interval_s, so a store that is down costs disk, never audio.

The call log keeps the same relative path (call_recordings.path) whichever backend holds
the file: readers (QA playback and export, retention) look on the local disk first, then
in the store.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.config import RecordingsConfig
from relay.records.db_thread import DatabaseThread

log = logging.getLogger(__name__)

CHUNK = 1 << 16


class StoreError(Exception):
    """The store did not answer, or refused (the message says which)."""


class RangeNotSatisfiable(StoreError):
    pass


@dataclass
class StoredObject:
    body: Any  # a file-like object: read(n)
    length: int  # bytes in this answer
    content_range: str | None  # "bytes a-b/total" for a ranged read

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.body.read(CHUNK):
            yield chunk


class S3Recordings:
    def __init__(self, config: RecordingsConfig) -> None:
        try:
            import boto3
            from botocore.config import Config as BotoConfig
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise StoreError('recordings.backend = "s3" needs the s3 extra: pip install "callguard[s3]"') from None
        self._errors = (BotoCoreError, ClientError)
        self._client_error = ClientError
        self.bucket = config.bucket
        self.prefix = config.prefix
        self._client = boto3.client(
            "s3",
            endpoint_url=config.endpoint or None,
            region_name=config.region or None,
            aws_access_key_id=config.access_key_id or None,
            aws_secret_access_key=config.secret_access_key or None,
            # Bounded: an upload that hangs is retried next sweep, a QA read gets a 503.
            config=BotoConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
        )

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def upload(self, path: Path, relative: str) -> None:
        """Puts the file in the store; raises StoreError unless it is there whole."""
        key = self.key(relative)
        size = path.stat().st_size
        try:
            self._client.upload_file(str(path), self.bucket, key)
            stored = self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except self._errors as exc:
            raise StoreError(f"upload of {key}: {exc}") from None
        if stored != size:
            raise StoreError(f"upload of {key}: the store holds {stored} bytes of {size}")

    def get(self, relative: str, start: int | None = None, stop: int | None = None) -> StoredObject | None:
        """The object (bytes [start, stop) as Python slices them; start < 0: the last -start
        bytes), or None when the store has no such object."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(relative)}
        if start is not None and start < 0:
            args["Range"] = f"bytes={start}"
        elif start is not None or stop is not None:
            args["Range"] = f"bytes={start or 0}-" + ("" if stop is None else str(stop - 1))
        try:
            answer = self._client.get_object(**args)
        except self._client_error as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None
            if code == "InvalidRange":
                raise RangeNotSatisfiable(str(exc)) from None
            raise StoreError(str(exc)) from None
        except self._errors as exc:
            raise StoreError(str(exc)) from None
        return StoredObject(answer["Body"], int(answer["ContentLength"]), answer.get("ContentRange"))

    def download(self, relative: str, destination: Path) -> bool:
        """The object into a local file; False when the store has no such object."""
        found = self.get(relative)
        if found is None:
            return False
        with open(destination, "wb") as out:
            for chunk in found.chunks():
                out.write(chunk)
        return True

    def call_objects(self, call_id: str) -> list[tuple[str, int]]:
        """(key, size) of every object of the call."""
        objects: list[tuple[str, int]] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(f"calls/{call_id}/")
            )
            for page in pages:
                objects += [(o["Key"], int(o["Size"])) for o in page.get("Contents", [])]
        except self._errors as exc:
            raise StoreError(f"listing call {call_id}: {exc}") from None
        return objects

    def delete(self, keys: Collection[str]) -> None:
        try:
            for key in keys:
                self._client.delete_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            raise StoreError(f"deleting: {exc}") from None


def recording_store(config: RecordingsConfig) -> S3Recordings | None:
    """The store of recordings.backend = "s3"; None for the folder backend."""
    return S3Recordings(config) if config.backend == "s3" else None


def _ended_among(db: sqlite3.Connection, call_ids: list[str]) -> set[str]:
    ended: set[str] = set()
    for i in range(0, len(call_ids), 500):
        part = call_ids[i : i + 500]
        marks = ", ".join("?" * len(part))
        sql = f"SELECT call_id FROM calls WHERE ended_at IS NOT NULL AND call_id IN ({marks})"
        ended |= {r[0] for r in db.execute(sql, part)}
    return ended


class RecordingUploads:
    """The server's uploads: every upload_interval_s, the recordings of ended calls still
    on the local disk go to the store (one file at a time, in a thread)."""

    def __init__(
        self,
        store: S3Recordings,
        data_dir: Path,
        database: DatabaseThread,
        running: Callable[[], Collection[str]],
        interval_s: float,
    ) -> None:
        self._store = store
        self._data_dir = data_dir
        self._database = database
        self._running = running
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.uploaded = 0
        self.failed = 0  # uploads that failed (each is tried again next sweep)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def waiting(self) -> int:
        """Recordings on the local disk (running calls' included)."""
        return sum(1 for _ in (self._data_dir / "calls").glob("*/*.opus"))

    async def run_once(self) -> int:
        """Uploads what is waiting; how many files went up."""
        calls = self._data_dir / "calls"
        running = set(self._running())
        folders = await asyncio.to_thread(
            lambda: [p for p in calls.iterdir() if p.is_dir() and p.name not in running] if calls.is_dir() else []
        )
        if not folders:
            return 0
        try:
            ended = await self._database.run(_ended_among, self._database.db, [p.name for p in folders])
        except sqlite3.Error as exc:  # which calls have ended is not known now: next sweep
            log.warning("recordings: uploads wait for the database: %s", exc)
            return 0
        done = 0
        for folder in folders:
            if folder.name in ended:
                done += await asyncio.to_thread(self._upload_folder, folder)
        return done

    def _upload_folder(self, folder: Path) -> int:
        done = 0
        for path in sorted(folder.glob("*.opus")):
            relative = path.relative_to(self._data_dir).as_posix()
            try:
                self._store.upload(path, relative)
            except (StoreError, OSError) as exc:
                self.failed += 1
                log.warning("recordings: %s stays on the local disk, upload retried later: %s", relative, exc)
                return done
            path.unlink()
            done += 1
            self.uploaded += 1
        try:
            folder.rmdir()
        except OSError:
            pass  # something else is in it: left alone
        return done

    async def _run_forever(self) -> None:
        while True:
            try:
                if uploaded := await self.run_once():
                    log.info("recordings: %d file(s) uploaded to the store", uploaded)
            except Exception:  # noqa: BLE001 - an upload sweep must never stop the server
                log.exception("recordings: upload sweep failed")
            await asyncio.sleep(self._interval_s)
