"""Deployment settings of the app: TLS from config, STUN/TURN handed to clients."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testkit.client import ApiClient

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
