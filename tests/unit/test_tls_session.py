"""The SDK clients share one SSL context, and it checks that a certificate is the server's."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from botocore.httpsession import create_urllib3_context
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from prism.aws import clients
from prism.aws.tls_session import SharedTlsSession, verified_context

SERVER_NAME = "right.example"


async def test_every_client_shares_one_verifying_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # no request is sent
    async with clients.open_clients() as opened:
        connectors = [
            client._endpoint.http_session._create_connector(None)
            for client in (opened.s3, opened.sqs, opened.dynamodb, opened.events)
        ]
        try:
            contexts = {id(connector._ssl) for connector in connectors}
            context = connectors[0]._ssl
            assert isinstance(opened.s3._endpoint.http_session, SharedTlsSession)
            assert len(contexts) == 1
            assert context.verify_mode == ssl.CERT_REQUIRED
            assert context.check_hostname
            assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded
        finally:
            for connector in connectors:
                await connector.close()


async def test_verify_false_keeps_aiobotocores_own_connector() -> None:
    session = SharedTlsSession(verify=False)
    connector = session._create_connector(None)
    try:
        assert connector._ssl is False
    finally:
        await connector.close()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for SERVER_NAME: (CA, server cert, server key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Prism test CA"))
        .issuer_name(_name("Prism test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(SERVER_NAME))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate for SERVER_NAME: (URL, CA file)."""
    ca, certificate, key = _certificates(tmp_path)

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}/", ca
    finally:
        await runner.cleanup()


async def _get(url: str, context: ssl.SSLContext, server_name: str) -> str:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(url, server_hostname=server_name) as response,
    ):
        return await response.text()


async def test_a_certificate_for_another_name_is_refused(tls_server: tuple[str, Path]) -> None:
    url, ca = tls_server
    context = verified_context(str(ca))
    assert await _get(url, context, SERVER_NAME) == "ok"
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match="not valid for"):
        await _get(url, context, "other.example")
    # Why the check is set: the context aiobotocore builds (urllib3's) accepts the same
    # certificate for any name. Should this start failing, the SDK checks names itself now.
    urllib3_context = create_urllib3_context()
    urllib3_context.load_verify_locations(str(ca))
    assert await _get(url, urllib3_context, "other.example") == "ok"
