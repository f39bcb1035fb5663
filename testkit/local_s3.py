"""A stand-in for an S3-compatible store, for the tests: moto's server mode (the `moto[server]`
test dependency) on a loopback port, in a subprocess, with one bucket. It is not S3, nor
MinIO: it speaks their API well enough to test uploads, ranged reads and deletes."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.local_server import free_port

START_TIMEOUT_S = 20.0
BUCKET = "callguard-recordings"
# moto takes any credentials; these say so.
ACCESS_KEY = "stand-in-key"
SECRET_KEY = "stand-in-secret"


@dataclass
class LocalS3:
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_toml(self, prefix: str = "") -> str:
        """The [recordings] section that points a server at this stand-in."""
        return (
            f'[recordings]\nbackend = "s3"\nendpoint = "{self.endpoint}"\nbucket = "{BUCKET}"\n'
            f'prefix = "{prefix}"\nregion = "us-east-1"\naccess_key_id = "{ACCESS_KEY}"\n'
            f'secret_access_key = "{SECRET_KEY}"\nupload_interval_s = 0.5\n'
        )

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def start(self) -> LocalS3:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the S3 stand-in did not start: {self.log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def local_s3(folder: Path) -> LocalS3:
    return LocalS3(free_port(), folder / "s3-stand-in.log")
