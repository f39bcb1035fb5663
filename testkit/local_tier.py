"""The inference tier (`callguard stt-tier`) in a subprocess on loopback, for the tests and
the cluster bench: a single-node Ray cluster of its own, stopped with its processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.local_server import ROOT, free_port

# Ray's own start (GCS, raylet, Serve's controller and proxy) takes ~30 s on 2 cores.
TIER_START_TIMEOUT_S = 120.0


@dataclass
class LocalTier:
    url: str  # the Whisper service's
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def classifier_url(self) -> str:
        """The classifier's, where the config deploys one ([classifier] backend = "ray")."""
        return f"http://127.0.0.1:{self.port}/classifier"

    def start(self) -> LocalTier:
        with open(self.log_path, "wb") as log:
            # Its own session: Ray's helper processes go with it when it is stopped.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "relay.cli", "stt-tier", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"},
                start_new_session=True,
            )
        deadline = time.monotonic() + TIER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("stt tier exited:\n" + self.log()[-3000:])
            try:
                self.get("info")
                return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"stt tier did not answer within {TIER_START_TIMEOUT_S:.0f} s:\n" + self.log()[-3000:])

    def get(self, what: str, url: str = "") -> dict[str, Any]:
        with urllib.request.urlopen(f"{url or self.url}/{what}", timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (Serve and Ray shut down), then SIGKILL to the whole session."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever Ray left behind in the session
        except ProcessLookupError:
            pass
        process.wait(timeout=15)


def prepare_tier(workdir: Path, model: str | Path, extra: str = "", classifier: str = "") -> LocalTier:
    """Config for a loopback tier serving `model` on CPU; start() it. `extra`: more of
    [stt_tier]; `classifier`: the body of a [classifier] section whose backend is "ray"
    (the tier deploys that classifier too)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = workdir / "tier.toml"
    config_path.write_text(
        f"""
[stt]
model = "{model}"
device = "cpu"
download = "never"
[stt_tier]
host = "127.0.0.1"
port = {port}
{extra}
"""
        + (f'[classifier]\nbackend = "ray"\ndevice = "cpu"\n{classifier}\n' if classifier else "")
    )
    return LocalTier(f"http://127.0.0.1:{port}/stt", config_path, workdir / "tier.log")
