"""Deployment settings of the app: TLS from config, STUN/TURN handed to clients."""

from __future__ import annotations

import asyncio
import datetime
import logging
import sqlite3
import ssl
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from relay.config import parse_config
from relay.web.app import warn_about_invite_links
from testkit.client import ApiClient
from testkit.local_server import LocalServer

from .conftest import start_server


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_tls_and_ice_servers_from_config(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = start_server(
        tmp_path,
        server_extra=f'tls_cert = "{cert}"\ntls_key = "{key}"\npublic_url = "https://calls.example.org"',
        extra=(
            '[[webrtc.ice_servers]]\nurls = ["stun:127.0.0.1:3478"]\n'
            '[[webrtc.ice_servers]]\nurls = ["turn:127.0.0.1:3478?transport=udp"]\n'
            'username = "cg"\ncredential = "s3cret"\n'
        ),
        tls=True,
    )
    try:
        assert server.base_url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            api = ApiClient(server.base_url, http)
            await api.login("anna", "correct-horse-battery")
            ice = (await api.request("GET", "/api/rtc-config"))["ice_servers"]
            assert ice == [
                {"urls": ["stun:127.0.0.1:3478"]},
                {"urls": ["turn:127.0.0.1:3478?transport=udp"], "username": "cg", "credential": "s3cret"},
            ]
            created = await api.create_call()
            assert created["invite"]["url"].startswith(f"https://calls.example.org/join/{created['call_id']}#")
            customer = ApiClient(server.base_url, http, token=created["invite"]["token"])
            assert (await customer.call(created["call_id"]))["ice_servers"] == ice
            await api.hangup(created["call_id"])
        # Plain HTTP is not served on the TLS port.
        async with aiohttp.ClientSession() as http:
            try:
                async with http.get(server.base_url.replace("https", "http") + "/login") as response:
                    assert response.status >= 400
            except aiohttp.ClientError:
                pass
    finally:
        server.stop()


async def test_expired_sessions_are_purged_while_the_server_runs(strict: LocalServer) -> None:
    # strict: auth.session_purge_interval_s = 1
    db = sqlite3.connect(strict.data_dir / "callguard.db", timeout=5)
    with db:
        db.execute("INSERT INTO sessions (token_hash, user_name, expires_at) VALUES (?, 'anna', ?)", (b"x" * 32, 1.0))
    for _ in range(40):
        await asyncio.sleep(0.1)
        if db.execute("SELECT COUNT(*) FROM sessions WHERE expires_at < 2").fetchone()[0] == 0:
            break
    assert db.execute("SELECT COUNT(*) FROM sessions WHERE expires_at < 2").fetchone()[0] == 0
    db.close()
    assert "purged 1 expired sessions" in strict.log()


def test_a_public_server_without_public_url_warns_at_start(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING):
        warn_about_invite_links(parse_config({"server": {"host": "127.0.0.1"}}))
        warn_about_invite_links(
            parse_config({"server": {"host": "0.0.0.0", "public_url": "https://calls.example.org"}})
        )
        assert not caplog.records
        warn_about_invite_links(parse_config({"server": {"host": "0.0.0.0"}}))
    assert "set server.public_url" in caplog.text
