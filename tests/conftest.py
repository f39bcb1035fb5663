"""Shared fixtures: a real callguard server in a subprocess, on loopback only."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import aiohttp
import numpy as np
import pytest

from relay.client import ApiClient, CallPeer, Recorder
from relay.probe import MarkerSource
from relay.ice import restrict_interfaces

ROOT = Path(__file__).resolve().parent.parent

# The test process's own aiortc peers: loopback candidates only, never another interface.
restrict_interfaces(["127.0.0.1"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    data_dir: Path
    config_path: Path
    process: subprocess.Popen[bytes]
    delay_s: float
    log_path: Path

    def add_user(self, name: str, role: str, password: str = "correct-horse-battery") -> str:
        subprocess.run(
            [sys.executable, "-m", "relay.cli", "users", "add", name, "--role", role, "--password-stdin",
             "--config", str(self.config_path)],
            input=password + "\n", check=True, capture_output=True, text=True, cwd=ROOT,
        )
        return password

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log()


def write_config(path: Path, data_dir: Path, port: int, delay_s: float, extra: str = "",
                 server_extra: str = "") -> None:
    path.write_text(
        f"""
[server]
port = {port}
data_dir = "{data_dir}"
{server_extra}
[auth]
scrypt_n = 1024
[delay]
delay_s = {delay_s}
[webrtc]
interfaces = ["127.0.0.1"]
remote_networks = ["127.0.0.0/8"]
{extra}
"""
    )


def start_server(workdir: Path, delay_s: float = 1.5, extra: str = "", users: bool = True,
                 server_extra: str = "", tls: bool = False) -> RunningServer:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = workdir / "callguard.toml"
    write_config(config_path, workdir / "data", port, delay_s, extra, server_extra)
    log_path = workdir / "server.log"
    scheme, host = ("https", "localhost") if tls else ("http", "127.0.0.1")
    server = RunningServer(f"{scheme}://{host}:{port}", workdir / "data", config_path, None,  # type: ignore[arg-type]
                           delay_s, log_path)
    if users:
        server.add_user("anna", "counselor")
        server.add_user("ben", "counselor")
        server.add_user("sue", "supervisor")
        server.add_user("quinn", "qa")
    with open(log_path, "wb") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "serve", "--config", str(config_path)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("server exited:\n" + server.log())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError("server did not start within 30 s")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture
async def http() -> aiohttp.ClientSession:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def anna(server: RunningServer, http: aiohttp.ClientSession) -> ApiClient:
    api = ApiClient(server.base_url, http)
    await api.login("anna", "correct-horse-battery")
    return api


@dataclass
class LiveCall:
    """A call with both parties connected as real aiortc peers, each recording what it hears."""

    call_id: str
    invite_token: str
    counselor_api: ApiClient
    customer: CallPeer
    counselor: CallPeer
    customer_source: MarkerSource
    counselor_source: MarkerSource

    async def close(self, hangup: bool = True) -> None:
        await self.customer.close()
        await self.counselor.close()
        if hangup:
            await self.counselor_api.hangup(self.call_id)


async def open_call(server: RunningServer, http: aiohttp.ClientSession, counselor: str = "anna",
                    record_s: float = 90.0) -> LiveCall:
    api = ApiClient(server.base_url, http)
    await api.login(counselor, "correct-horse-battery")
    created = await api.create_call()
    customer_source, counselor_source = MarkerSource(freq=600.0), MarkerSource(freq=900.0)
    customer = CallPeer(customer_source, Recorder(record_s))
    counselor_peer = CallPeer(counselor_source, Recorder(record_s))
    token = created["invite"]["token"]
    await customer.join(ApiClient(server.base_url, http, token), created["call_id"], "customer")
    await counselor_peer.join(api, created["call_id"], "counselor")
    await asyncio.gather(customer.wait_connected(), counselor_peer.wait_connected())
    for _ in range(50):  # active once the customer's first frame reached the server
        if (await api.call(created["call_id"]))["state"] == "active":
            break
        await asyncio.sleep(0.1)
    return LiveCall(created["call_id"], token, api, customer, counselor_peer, customer_source, counselor_source)


async def assert_flowing(call: LiveCall, seconds: float = 0.6) -> None:
    """Fails unless the counselor keeps receiving the customer's (delayed) tone."""
    recorder = call.counselor.recorder
    assert recorder is not None
    before = recorder.length
    await asyncio.sleep(seconds)
    fresh = recorder.samples[before:]
    assert len(fresh) >= 0.5 * seconds * recorder.rate, "counselor stopped receiving audio"
    assert np.abs(fresh.astype(np.int32)).max() > 3000, "counselor receives only silence"
