"""Layering rules the design brief fixes, checked on the source itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path] = names
    return found


def test_protocol_is_sans_io() -> None:
    forbidden = {"asyncio", "aiomqtt", "paho", "redis", "openai", "socket", "amqtt", "httpx"}
    for path, names in imported_modules("hub/protocol").items():
        roots = {name.split(".")[0] for name in names}
        assert not roots & forbidden, f"{path} imports {roots & forbidden}"


def test_importing_the_protocol_pulls_in_no_io_library() -> None:
    code = (
        "import sys, hub.protocol; "
        "bad = [m for m in ('asyncio', 'aiomqtt', 'redis', 'openai', 'paho') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hub_and_broker_never_import_api() -> None:
    for package in ("hub", "broker"):
        for path, names in imported_modules(package).items():
            assert not any(name == "api" or name.startswith("api.") for name in names), path


def test_only_the_cli_starts_the_broker() -> None:
    # The broker builds on the hub's protocol and settings; the hub's core never depends on
    # the broker. The CLI is the one composition root that runs either.
    for path, names in imported_modules("hub").items():
        if path.name == "cli.py":
            continue
        assert not any(name == "broker" or name.startswith("broker.") for name in names), path
