"""aiobotocore's aiohttp session, with one verified SSL context per process, not per client.

aiobotocore builds an SSL context for every client and loads the CA bundle into it.
OpenSSL 3 parses a bundle slowly: about 15 ms of CPU and 0.7 MB for each client, so four
per Lambda container and more in a local run, where every emulated container opens its
own (boto/botocore#3171, aio-libs/aiobotocore#1469, both open). An SSL context can serve
any number of connections, so every client that verifies against the same bundle (and
presents the same client certificate, if any) shares one here.

The shared context also verifies what aiobotocore's does not (``tests/unit/
test_tls_session.py`` shows each case):
- that the certificate is the server's. aiobotocore's context comes from urllib3, which
  turns the hostname check off because urllib3 matches hostnames itself; aiohttp does
  not, so with that context any certificate a trusted CA signed, for any name, passed;
- through a proxy (``HTTPS_PROXY``, or the ``proxies`` setting): aiobotocore then gives
  its connector no context at all, unless the proxy has TLS settings of its own
  (``proxy_ca_bundle``, ``proxy_client_cert``), and aiohttp takes that as "do not verify":
  any certificate, even a self-signed one, was accepted for an AWS endpoint.
A proxy with TLS settings of its own, and ``verify=False``, keep aiobotocore's path.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession
from botocore.httpsession import create_urllib3_context, get_cert_path

# Proxy settings for which aiobotocore builds a context of its own (for the proxy, which
# aiohttp then also uses for the endpoint).
_PROXY_TLS_SETTINGS = ("proxy_ca_bundle", "proxy_client_cert")


@functools.cache
def verified_context(
    ca_bundle: str | None, client_cert: tuple[str, str | None] | None = None
) -> ssl.SSLContext:
    """The SSL context aiobotocore would build for ``ca_bundle`` (None: the system's) and
    ``client_cert`` (certificate file, key file or None: the client certificate the
    client presents, if any), with the hostname checked, built once. Never modified
    afterwards, so connections on any thread may share it."""
    context: ssl.SSLContext = create_urllib3_context()
    context.check_hostname = True
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    if ca_bundle:
        context.load_verify_locations(ca_bundle, None, None)
    return context


class SharedTlsSession(AIOHTTPSession):  # type: ignore[misc]
    """``AioConfig(http_session_cls=...)``: connectors share ``verified_context``."""

    def _create_connector(self, proxy_url: str | None) -> Any:
        if not self._verify or (proxy_url and self._proxy_has_tls_settings()):
            return super()._create_connector(proxy_url)
        client_cert = (self._cert_file, self._key_file) if self._cert_file else None
        return aiohttp.TCPConnector(
            limit=self._max_pool_connections,
            # Through a plain proxy too: aiohttp verifies the endpoint (and an https://
            # proxy) with the connector's context.
            ssl=verified_context(get_cert_path(self._verify), client_cert),
            **self._connector_args,
        )

    def _proxy_has_tls_settings(self) -> bool:
        settings = self._proxy_config.settings
        return any(settings.get(name) is not None for name in _PROXY_TLS_SETTINGS)
