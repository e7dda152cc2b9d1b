"""A development certificate authority and broker certificate (``teddyhub certs``).

Production brokers use certificates from the operator's PKI; for development, ``teddyhub up``
makes a private CA on first start so that toys and services connect over TLS from the first
minute, checking the broker's certificate against that CA like they will in production. The CA
key stays in ``TEDDY_DATA_DIR/certs`` (mode 0600) and signs nothing but this one certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=825)
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertificatePaths:
    """Where the development PKI lives."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, directory: Path) -> CertificatePaths:
        """The standard file names inside ``directory``."""
        return cls(
            directory / "ca.pem",
            directory / "ca-key.pem",
            directory / "server.pem",
            directory / "server-key.pem",
        )

    def exist(self) -> bool:
        """True when every file is present."""
        return all(
            path.exists() for path in (self.ca_cert, self.ca_key, self.server_cert, self.server_key)
        )


def ensure_dev_certificates(
    directory: Path, names: tuple[str, ...] = DEFAULT_NAMES, *, force: bool = False
) -> CertificatePaths:
    """Create the CA and a server certificate for ``names`` unless they exist (or ``force``)."""
    paths = CertificatePaths.in_dir(directory)
    if paths.exist() and not force and _still_good(paths.server_cert, names):
        return paths
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Teddy Hub development CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths.ca_key, _private_pem(ca_key), private=True)
    _write(paths.server_key, _private_pem(server_key), private=True)
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _still_good(server_cert: Path, names: tuple[str, ...]) -> bool:
    """True while the certificate names every requested name and has a month left."""
    try:
        certificate = x509.load_pem_x509_certificate(server_cert.read_bytes())
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound, OSError):
        return False
    named = {str(value) for value in alternative.value.get_values_for_type(x509.DNSName)}
    named |= {str(value) for value in alternative.value.get_values_for_type(x509.IPAddress)}
    wanted = {str(ipaddress.ip_address(n)) if _is_address(n) else n for n in names}
    remaining = certificate.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return wanted <= named and remaining > RENEW_BEFORE


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    # A fresh, unpredictable name opened exclusively: nothing planted there is written through.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644
    )
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    temporary.replace(path)
