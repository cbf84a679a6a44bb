"""aiobotocore's aiohttp session, with one verified SSL context per process, not per client.

aiobotocore builds an SSL context for every client and loads the CA bundle into it.
OpenSSL 3 parses a bundle slowly: about 15 ms of CPU and 0.7 MB for each client, so four
per Lambda container and more in a local run, where every emulated container opens its
own (boto/botocore#3171, aio-libs/aiobotocore#1469, both open). An SSL context can serve
any number of connections, so every client that verifies against the same bundle shares
one here. Client certificates, proxies and ``verify=False`` keep aiobotocore's own path.

The shared context also checks that the certificate is the server's. aiobotocore's
context comes from urllib3, which turns the hostname check off because urllib3 matches
hostnames itself; aiohttp does not, so with that context any certificate a trusted CA
signed, for any name, was accepted (``tests/unit/test_tls_session.py`` shows both).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession
from botocore.httpsession import create_urllib3_context, get_cert_path


@functools.cache
def verified_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The SSL context aiobotocore would build for ``ca_bundle`` (None: the system's), with
    the hostname checked, built once. Never modified afterwards, so connections on any
    thread may share it."""
    context: ssl.SSLContext = create_urllib3_context()
    context.check_hostname = True
    if ca_bundle:
        context.load_verify_locations(ca_bundle, None, None)
    return context


class SharedTlsSession(AIOHTTPSession):  # type: ignore[misc]
    """``AioConfig(http_session_cls=...)``: connectors share ``verified_context``."""

    def _create_connector(self, proxy_url: str | None) -> Any:
        if proxy_url or self._cert_file or not self._verify:
            return super()._create_connector(proxy_url)
        return aiohttp.TCPConnector(
            limit=self._max_pool_connections,
            ssl=verified_context(get_cert_path(self._verify)),
            **self._connector_args,
        )
