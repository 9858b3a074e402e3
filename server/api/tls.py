"""Server TLS: credentials from the tls_cert / tls_key / tls_client_ca settings."""
from __future__ import annotations

from pathlib import Path

import grpc

from flowdeck.core.errors import InvalidArgumentError


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {setting} file {path!r}: {e.strerror or e}",
                                   reason="TLS_SETTINGS_INVALID") from None


def _check_pair(cert_pem: bytes, key_pem: bytes, cert_path: str, key_path: str) -> None:
    """A clear error now rather than failed handshakes later."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise InvalidArgumentError(f"--tls-cert {cert_path!r} holds no PEM certificate",
                                   reason="TLS_SETTINGS_INVALID") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise InvalidArgumentError(
            f"--tls-key {key_path!r} holds no unencrypted PEM private key",
            reason="TLS_SETTINGS_INVALID") from None
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if certs[0].public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
        raise InvalidArgumentError(f"--tls-key {key_path!r} does not belong to the certificate in {cert_path!r}",
                                   reason="TLS_SETTINGS_INVALID")


def server_credentials(settings) -> grpc.ServerCredentials | None:
    """None without TLS settings; TLS with tls_cert + tls_key; mutual TLS
    (clients must present a certificate signed by it) with tls_client_ca too."""
    cert, key, client_ca = settings.tls_cert, settings.tls_key, settings.tls_client_ca
    if not cert and not key:
        if client_ca:
            raise InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)",
                                       reason="TLS_SETTINGS_INVALID")
        return None
    if not cert or not key:
        raise InvalidArgumentError("TLS needs both --tls-cert and --tls-key (FLOWDECK_TLS_CERT, FLOWDECK_TLS_KEY)",
                                   reason="TLS_SETTINGS_INVALID")
    cert_pem, key_pem = _read(cert, "--tls-cert"), _read(key, "--tls-key")
    _check_pair(cert_pem, key_pem, cert, key)
    ca_pem = _read(client_ca, "--tls-client-ca") if client_ca else None
    return grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=ca_pem,
                                       require_client_auth=ca_pem is not None)
