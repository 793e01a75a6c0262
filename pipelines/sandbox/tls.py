"""A throwaway certificate authority and server certificate for the sandbox.

The official clients refuse plain HTTP (pagerduty >= 6 insists on https), so the sandbox
serves real TLS. Clients trust it through the CA file written here (``verify=...``,
``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``), never by turning verification off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

# Names a client may use to reach a loopback sandbox; the certificate covers all of them.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerTls:
    ca_bundle_path: Path
    # The server's private key and certificate chain, in one PEM file.
    server_pem_path: Path


def make_server_tls(directory: Path, host: str) -> ServerTls:
    """Create a CA, write its certificate to ``directory/ca.pem`` and, to
    ``directory/server.pem``, a server key and certificate (signed by that CA) valid for
    ``host`` and loopback."""
    ca = trustme.CA(organization_name="psafe sandbox")
    names = list(dict.fromkeys((host, *LOOPBACK_NAMES)))
    server_cert = ca.issue_cert(*names)
    ca_bundle_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle_path))
    server_pem_path = directory / "server.pem"
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem_path))
    return ServerTls(ca_bundle_path=ca_bundle_path, server_pem_path=server_pem_path)
