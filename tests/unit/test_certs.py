"""The development CA and broker certificate."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from hub.certs import ensure_dev_certificates


def test_certificates_are_made_once_with_private_keys_private(tmp_path: Path) -> None:
    paths = ensure_dev_certificates(tmp_path)
    for key in (paths.ca_key, paths.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = paths.server_cert.read_bytes()
    assert ensure_dev_certificates(tmp_path).server_cert.read_bytes() == first
    context = ssl.create_default_context(cafile=str(paths.ca_cert))
    context.load_cert_chain(paths.server_cert, paths.server_key)


def test_a_new_name_gets_a_new_certificate(tmp_path: Path) -> None:
    first = ensure_dev_certificates(tmp_path).server_cert.read_bytes()
    again = ensure_dev_certificates(tmp_path, ("localhost", "127.0.0.1", "::1", "teddy.lan"))
    assert again.server_cert.read_bytes() != first
    assert ensure_dev_certificates(tmp_path, ("localhost",)).server_cert.read_bytes() == (
        again.server_cert.read_bytes()
    ), "a subset of the names already covered changes nothing"
