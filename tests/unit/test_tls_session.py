"""The SDK clients share one SSL context, and it checks that a certificate is the server's."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiobotocore.httpsession import AIOHTTPSession
from aiohttp import web
from botocore.httpsession import create_urllib3_context, get_cert_path
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
    """A CA, and a certificate it signed for SERVER_NAME: (CA, server cert, server key).
    The CA also signs a client certificate: folder/client.pem and folder/client.key."""
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
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for stem, name in (("server", SERVER_NAME), ("client", "prism-worker")):
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (folder / f"{stem}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (folder / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@asynccontextmanager
async def _https_server(folder: Path, *, client_certificates: bool) -> AsyncIterator[int]:
    """An HTTPS server on 127.0.0.1 with a certificate for SERVER_NAME (CA: folder/ca.pem);
    ``client_certificates``: it also requires one the CA signed. Yields its port."""
    ca, certificate, key = _certificates(folder)

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    if client_certificates:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(ca)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate for SERVER_NAME: (URL, CA file)."""
    async with _https_server(tmp_path, client_certificates=False) as port:
        yield f"https://127.0.0.1:{port}/", tmp_path / "ca.pem"


@pytest.fixture
async def connect_proxy() -> AsyncIterator[str]:
    """An HTTP proxy on 127.0.0.1 that tunnels ``CONNECT host:port`` to 127.0.0.1:port,
    whatever the host, so that test names need no DNS. Yields its URL."""

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()

    async def tunnel(client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        request = await client.readuntil(b"\r\n\r\n")
        method, target = request.split(b" ", 2)[:2]
        if method != b"CONNECT":
            to_client.close()
            return
        server, to_server = await asyncio.open_connection("127.0.0.1", int(target.split(b":")[1]))
        to_client.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await to_client.drain()
        await asyncio.gather(pipe(client, to_server), pipe(server, to_client))

    proxy = await asyncio.start_server(tunnel, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
    finally:
        proxy.close()
        await proxy.wait_closed()


async def _get_with(
    connector: aiohttp.BaseConnector,
    url: str,
    *,
    proxy: str | None = None,
    server_hostname: str | None = None,
) -> str:
    """GET ``url`` on ``connector`` (closed afterwards), as aiobotocore sends a request."""
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, proxy=proxy, server_hostname=server_hostname) as response,
    ):
        return await response.text()


async def _get(url: str, context: ssl.SSLContext, server_name: str) -> str:
    connector = aiohttp.TCPConnector(ssl=context)
    return await _get_with(connector, url, server_hostname=server_name)


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


async def test_through_a_proxy_the_endpoint_is_still_verified(
    tls_server: tuple[str, Path], connect_proxy: str
) -> None:
    url, ca = tls_server
    port = url.rsplit(":", 1)[1].strip("/")
    right, other = f"https://{SERVER_NAME}:{port}/", f"https://other.example:{port}/"
    proxies = {"https": connect_proxy}

    # The system's CAs do not know the test CA: refused, through the proxy as without it.
    unknown_ca = SharedTlsSession(proxies=proxies)._create_connector(connect_proxy)
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _get_with(unknown_ca, right, proxy=connect_proxy)
    session = SharedTlsSession(verify=str(ca), proxies=proxies)
    connector = session._create_connector(connect_proxy)
    assert await _get_with(connector, right, proxy=connect_proxy) == "ok"
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match="not valid for"):
        await _get_with(session._create_connector(connect_proxy), other, proxy=connect_proxy)
    # Why: aiobotocore's own connector for a proxy verifies nothing, and accepts a
    # certificate from a CA it was never given. Should this start failing, it verifies.
    aiobotocores = AIOHTTPSession(proxies=proxies)._create_connector(connect_proxy)
    assert await _get_with(aiobotocores, other, proxy=connect_proxy) == "ok"


async def test_a_proxy_with_tls_settings_of_its_own_keeps_aiobotocores_path(
    tmp_path: Path,
) -> None:
    _certificates(tmp_path)
    settings = {"proxy_ca_bundle": str(tmp_path / "ca.pem")}
    session = SharedTlsSession(proxies={"https": "https://proxy.example"}, proxies_config=settings)
    connector = session._create_connector("https://proxy.example")
    try:
        # aiobotocore's context: the endpoint's CAs and the proxy's (ours has no place for it).
        endpoint_cas = verified_context(get_cert_path(True)).cert_store_stats()["x509_ca"]
        assert connector._ssl.cert_store_stats()["x509_ca"] == endpoint_cas + 1
    finally:
        await connector.close()


async def test_a_client_certificate_is_presented_from_a_shared_verifying_context(
    tmp_path: Path,
) -> None:
    async with _https_server(tmp_path, client_certificates=True) as port:
        ca, url = str(tmp_path / "ca.pem"), f"https://127.0.0.1:{port}/"
        client_cert = (str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        sessions = [SharedTlsSession(verify=ca, client_cert=client_cert) for _ in range(2)]
        connectors = [session._create_connector(None) for session in sessions]
        context = connectors[0]._ssl
        assert connectors[1]._ssl is context and context.check_hostname
        for connector in connectors:
            await connector.close()
        assert await _get(url, context, SERVER_NAME) == "ok"
        # The server requires the certificate: without it, the handshake fails.
        with pytest.raises(aiohttp.ClientError):
            await _get(url, verified_context(ca), SERVER_NAME)
