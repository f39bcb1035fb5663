"""Shared fixtures: a real callguard server in a subprocess, on loopback only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from relay.webrtc.ice import restrict_interfaces
from testkit.client import ApiClient, CallPeer, Recorder
from testkit.local_postgres import LocalPostgres, prepare_postgres
from testkit.local_server import LocalServer, prepare_server
from testkit.probe import MarkerSource, SentAudio
from tests import tiny_bert, tiny_models
from tests.wav import write_wav

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"
# Test accounts on every server the tests start.
USERS = {"anna": "counselor", "ben": "counselor", "sue": "supervisor", "quinn": "qa"}

# The test process's own aiortc peers: loopback candidates only, never another interface.
restrict_interfaces(["127.0.0.1"])


def start_server(
    workdir: Path,
    delay_s: float = 1.5,
    extra: str = "",
    users: bool = True,
    server_extra: str = "",
    tls: bool = False,
    auth_extra: str = "",
) -> LocalServer:
    server = prepare_server(workdir, delay_s, extra, server_extra, tls, auth_extra)
    if users:
        for name, role in USERS.items():
            server.add_user(name, role, PASSWORD)
    return server.start()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL on a loopback port (scripts/install-test-deps installs it)."""
    pytest.importorskip("psycopg", reason="the cluster extra (psycopg) is not installed")
    pg = prepare_postgres(tmp_path_factory.mktemp("postgres"))
    if pg is None:
        pytest.skip("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql)")
    yield pg.start()
    pg.stop()


# A server that escalates on a counselor's mutes: the customer is warned after two, the
# call ends at three. Its warning is a 2 kHz tone (far from the test voices) at 16 kHz,
# so the configured-file and resampling paths are the ones exercised.
ESCALATION_PROMPT_HZ = 2000.0
ESCALATION_PROMPT_S = 1.0


@pytest.fixture(scope="session")
def escalating_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    workdir = tmp_path_factory.mktemp("escalating")
    n = np.arange(int(ESCALATION_PROMPT_S * 16000))
    tone = (0.3 * 32767 * np.sin(2 * np.pi * ESCALATION_PROMPT_HZ * n / 16000)).astype(np.int16)
    prompt = write_wav(workdir / "warning.wav", tone, rate=16000)
    extra = f'[escalation]\nwarn_after = 2\nend_after = 3\nsources = ["manual"]\nprompt = "{prompt}"\n'
    running = prepare_server(workdir / "server", delay_s=0.6, extra=extra)
    for name in ("anna", "sue"):  # the only ones its tests sign in as: each add is a process start
        running.add_user(name, USERS[name], PASSWORD)
    running.start()
    yield running
    running.stop()


# A server with tight limits for the hardening tests: a short body timeout, a trusted
# proxy on loopback (so tests can speak as the proxy), quick back-off and lockout, few
# sockets and calls per user. Tests that trip its throttle use names of their own.
STRICT_AUTH = """
session_purge_interval_s = 1.0
account_free_failures = 2
address_free_failures = 6
backoff_base_s = 0.4
backoff_max_s = 1.0
lockout_after = 4
"""


@pytest.fixture(scope="session")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    running = start_server(
        tmp_path_factory.mktemp("strict"),
        server_extra='body_timeout_s = 1.0\ntrusted_proxies = ["127.0.0.1"]\n',
        auth_extra=STRICT_AUTH,
        extra="[calls]\nmax_per_counselor = 2\nmax_sockets_per_call = 3\nmax_sockets_per_token = 2\n",
    )
    yield running
    running.stop()


# Tiny random-weight models of the real architectures with the real tokenizers, built
# once per session: Whisper (faster-whisper) and kor_unsmile's BertForSequenceClassification.
tiny_whisper = pytest.fixture(scope="session")(tiny_models.tiny_whisper_fixture)
tiny_bert_model = pytest.fixture(scope="session", name="tiny_bert_model")(tiny_bert.tiny_bert_fixture)


@pytest.fixture
async def http() -> aiohttp.ClientSession:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def anna(server: LocalServer, http: aiohttp.ClientSession) -> ApiClient:
    api = ApiClient(server.base_url, http)
    await api.login("anna", PASSWORD)
    return api


@dataclass
class LiveCall:
    """A call with both parties connected as real aiortc peers, each recording what it hears."""

    call_id: str
    invite_token: str
    counselor_api: ApiClient
    customer: CallPeer
    counselor: CallPeer
    customer_source: SentAudio
    counselor_source: MarkerSource

    async def close(self, hangup: bool = True) -> None:
        await self.customer.close()
        await self.counselor.close()
        if hangup:
            await self.counselor_api.hangup(self.call_id)


async def open_call(
    server: LocalServer,
    http: aiohttp.ClientSession,
    counselor: str = "anna",
    record_s: float = 90.0,
    customer_source: SentAudio | None = None,
) -> LiveCall:
    api = ApiClient(server.base_url, http)
    await api.login(counselor, PASSWORD)
    created = await api.create_call()
    customer_source = customer_source or MarkerSource(freq=600.0)
    counselor_source = MarkerSource(freq=900.0)
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
