"""A callguard server in a subprocess on loopback, for the tests and the benchmarks.

It runs the real `callguard serve` with its own data folder and a config that keeps
media on 127.0.0.1 (ICE candidates gathered and accepted on loopback only), and logs to a
file, so a chatty server can never block on a full pipe.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    base_url: str
    port: int
    data_dir: Path
    config_path: Path
    log_path: Path
    delay_s: float
    process: subprocess.Popen[bytes] | None = None
    # A server the tests start never reaches a hub, unless a test points it at the stand-in.
    env: dict[str, str] = field(default_factory=lambda: {"HF_HUB_OFFLINE": "1"})

    def add_user(self, name: str, role: str, password: str) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "relay.cli",
                "users",
                "add",
                name,
                "--role",
                role,
                "--password-stdin",
                "--config",
                str(self.config_path),
            ],
            input=password + "\n",
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )

    def start(self) -> LocalServer:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "relay.cli", "serve", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start within {START_TIMEOUT_S:.0f} s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        """Stops the server (SIGTERM, so it ends its calls) and returns its log."""
        stop_process(self.process)
        return self.log()


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not gone within 15 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def prepare_server(
    workdir: Path,
    delay_s: float = 1.5,
    extra: str = "",
    server_extra: str = "",
    tls: bool = False,
    auth_extra: str = "",
) -> LocalServer:
    """Writes the config for a loopback server under `workdir`; add users, then start()."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data_dir = workdir / "data"
    config_path = workdir / "callguard.toml"
    config_path.write_text(
        f"""
[server]
port = {port}
data_dir = "{data_dir}"
{server_extra}
[auth]
# Fast sign-in for tests; production keeps the default cost.
scrypt_n = 1024
{auth_extra}
[delay]
delay_s = {delay_s}
[webrtc]
interfaces = ["127.0.0.1"]
remote_networks = ["127.0.0.0/8"]
{extra}
"""
    )
    scheme, host = ("https", "localhost") if tls else ("http", "127.0.0.1")
    return LocalServer(f"{scheme}://{host}:{port}", port, data_dir, config_path, workdir / "server.log", delay_s)
