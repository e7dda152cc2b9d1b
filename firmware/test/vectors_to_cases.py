"""Turn docs/vectors/protocol-vectors.json into the line-oriented case file the C driver reads.

The JSON stays the single source of truth: this script only re-spells it, computes nothing, and
refuses input it does not understand (a section or constant it does not know, a missing field),
so a vector added to the JSON is either converted or stops the build.

Format (one record per vector; every string travels as hex of its UTF-8 bytes, so no value
contains a space or a newline)::

    teddy-cases 1
    case <section> <name>
    <field> <value>
    end
    skip <section> <count>
    total <number of case records>

Usage: vectors_to_cases.py VECTORS_JSON OUTPUT
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
TOP_LEVEL = {"meta", "keys", "valid", "invalid", "stateful", "connect"}
CONNECT = {
    "constants",
    "roots",
    "keys",
    "valid_tokens",
    "invalid_tokens",
    "services",
    "invalid_services",
}
SAFE_WORD = re.compile(r"[A-Za-z0-9_.:@-]+")

Record = tuple[str, str, list[tuple[str, str]]]


class ConversionError(Exception):
    """The JSON does not have the shape this converter knows."""


def text_hex(value: Any) -> str:
    if not isinstance(value, str):
        raise ConversionError(f"expected a string, got {value!r}")
    return value.encode("utf-8").hex()


def hex_bytes(value: Any) -> str:
    if not isinstance(value, str) or value != value.lower():
        raise ConversionError(f"expected lowercase hex, got {value!r}")
    bytes.fromhex(value)  # raises ValueError on anything that is not hex
    return value


def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConversionError(f"expected a non-negative integer, got {value!r}")
    return str(value)


def word(value: Any) -> str:
    if not isinstance(value, str) or SAFE_WORD.fullmatch(value) is None:
        raise ConversionError(f"expected a plain word, got {value!r}")
    return value


def constants(meta: dict[str, Any], connect: dict[str, Any]) -> list[Record]:
    records: list[Record] = []
    merged = list(meta["constants"].items())
    merged += [(f"connect.{name}", value) for name, value in connect["constants"].items()]
    for name, value in merged:
        field = ("text_hex", text_hex(value)) if isinstance(value, str) else ("int", number(value))
        records.append(("const", word(name), [field]))
    records.extend(
        (
            "kind",
            word(kind["name"]),
            [("code", number(kind["code"])), ("direction", word(kind["direction"]))],
        )
        for kind in meta["kinds"]
    )
    return records


def frame_keys(document: dict[str, Any]) -> list[Record]:
    records: list[Record] = []
    for index, vector in enumerate(document["keys"]):
        secret = text_hex(vector["fleet_secret"])
        if secret != hex_bytes(vector["fleet_secret_hex"]):
            raise ConversionError(f"keys[{index}]: fleet_secret and fleet_secret_hex differ")
        fields = [
            ("fleet_secret_hex", secret),
            ("device_id_hex", text_hex(vector["device_id"])),
            ("device_key_hex", hex_bytes(vector["device_key_hex"])),
        ]
        records.append(("keys", f"{index}:{word(vector['device_id'])}", fields))
    return records


def frames(document: dict[str, Any]) -> list[Record]:
    records: list[Record] = []
    for vector in document["valid"]:
        fields = vector["fields"]
        records.append(
            (
                "valid",
                word(vector["name"]),
                [
                    ("topic_hex", text_hex(vector["topic"])),
                    ("direction", word(vector["direction"])),
                    ("device_key_hex", hex_bytes(vector["device_key_hex"])),
                    ("kind", word(fields["kind"])),
                    ("kind_code", number(fields["kind_code"])),
                    ("device_id_hex", text_hex(fields["device_id"])),
                    ("timestamp_ms", number(fields["timestamp_ms"])),
                    ("nonce_hex", hex_bytes(fields["nonce_hex"])),
                    ("seq", number(fields["seq"])),
                    ("payload_hex", hex_bytes(fields["payload_hex"])),
                    ("now_ms", number(vector["now_ms"])),
                    ("frame_hex", hex_bytes(vector["frame_hex"])),
                    ("tag_hex", hex_bytes(vector["tag_hex"])),
                ],
            )
        )
    records.extend(
        (
            "invalid",
            word(vector["name"]),
            [
                ("topic_hex", text_hex(vector["topic"])),
                ("direction", word(vector["direction"])),
                ("device_key_hex", hex_bytes(vector["device_key_hex"])),
                ("frame_hex", hex_bytes(vector["frame_hex"])),
                ("now_ms", number(vector["now_ms"])),
                ("reason", word(vector["reason"])),
            ],
        )
        for vector in document["invalid"]
    )
    return records


def root_lookup(connect: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(device id, connect key hex) -> connect root hex, where the JSON itself links them."""
    roots = {entry["fleet_secret"]: entry["connect_root_hex"] for entry in connect["roots"]}
    return {
        (entry["device_id"], entry["connect_key_hex"]): roots[entry["fleet_secret"]]
        for entry in connect["keys"]
        if entry["fleet_secret"] in roots
    }


def with_root(
    fields: list[tuple[str, str]], lookup: dict[tuple[str, str], str], device_id: str, key: str
) -> list[tuple[str, str]]:
    root = lookup.get((device_id, key))
    return [*fields, ("connect_root_hex", hex_bytes(root))] if root is not None else fields


def connect_records(connect: dict[str, Any]) -> list[Record]:
    lookup = root_lookup(connect)
    records: list[Record] = []
    for index, vector in enumerate(connect["roots"]):
        fields = [
            ("fleet_secret_hex", text_hex(vector["fleet_secret"])),
            ("connect_root_hex", hex_bytes(vector["connect_root_hex"])),
        ]
        records.append(("connect_root", str(index), fields))
    for index, vector in enumerate(connect["keys"]):
        fields = [
            ("fleet_secret_hex", text_hex(vector["fleet_secret"])),
            ("device_id_hex", text_hex(vector["device_id"])),
            ("connect_key_hex", hex_bytes(vector["connect_key_hex"])),
        ]
        records.append(("connect_key", f"{index}:{word(vector['device_id'])}", fields))
    for vector in connect["valid_tokens"]:
        fields = [
            ("device_id_hex", text_hex(vector["device_id"])),
            ("client_id_hex", text_hex(vector["client_id"])),
            ("connect_key_hex", hex_bytes(vector["connect_key_hex"])),
            ("timestamp_s", number(vector["timestamp_s"])),
            ("nonce_hex", hex_bytes(vector["nonce_hex"])),
            ("token_hex", text_hex(vector["token"])),
            ("now_s", number(vector["now_s"])),
        ]
        fields = with_root(fields, lookup, vector["device_id"], vector["connect_key_hex"])
        records.append(("valid_token", word(vector["name"]), fields))
    for vector in connect["invalid_tokens"]:
        fields = [
            ("username_hex", text_hex(vector["username"])),
            ("client_id_hex", text_hex(vector["client_id"])),
            ("connect_key_hex", hex_bytes(vector["connect_key_hex"])),
            ("password_hex", text_hex(vector["password"])),
            ("now_s", number(vector["now_s"])),
            ("reason", word(vector["reason"])),
        ]
        fields = with_root(fields, lookup, vector["username"], vector["connect_key_hex"])
        records.append(("invalid_token", word(vector["name"]), fields))
    for vector in connect["services"]:
        fields = [
            ("fleet_secret_hex", text_hex(vector["fleet_secret"])),
            ("name_hex", text_hex(vector["name"])),
            ("username_hex", text_hex(vector["username"])),
            ("password_hex", text_hex(vector["password"])),
        ]
        records.append(("service", word(vector["name"]), fields))
    # The invalid service logins name no fleet: like tests/unit/test_connect_vectors.py, they
    # are checked under the connect root of the first service vector's fleet secret.
    service_fleet = text_hex(connect["services"][0]["fleet_secret"])
    for index, vector in enumerate(connect["invalid_services"]):
        fields = [
            ("fleet_secret_hex", service_fleet),
            ("username_hex", text_hex(vector["username"])),
            ("password_hex", text_hex(vector["password"])),
            ("reason", word(vector["reason"])),
        ]
        records.append(("invalid_service", f"{index}:{word(vector['username'])}", fields))
    return records


def convert(document: dict[str, Any]) -> str:
    if set(document) != TOP_LEVEL:
        raise ConversionError(f"sections {sorted(document)}, expected {sorted(TOP_LEVEL)}")
    connect = document["connect"]
    if set(connect) != CONNECT:
        raise ConversionError(f"connect sections {sorted(connect)}, expected {sorted(CONNECT)}")
    for section in ("keys", "valid", "invalid", "stateful"):
        if not document[section]:
            raise ConversionError(f"section {section} is empty")
    for section in CONNECT - {"constants"}:
        if not connect[section]:
            raise ConversionError(f"connect section {section} is empty")
    records = [
        *constants(document["meta"], connect),
        *frame_keys(document),
        *frames(document),
        *connect_records(connect),
    ]
    lines = [
        f"teddy-cases {FORMAT_VERSION}",
        "# generated by firmware/test/vectors_to_cases.py; do not edit",
    ]
    for section, name, fields in records:
        lines.append(f"case {section} {name}")
        lines.extend(f"{field} {value}" for field, value in fields)
        lines.append("end")
    # The stateful scenarios exercise the hub's revocation list and nonce store, not the core.
    lines.append(f"skip stateful {len(document['stateful'])}")
    lines.append(f"total {len(records)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: vectors_to_cases.py VECTORS_JSON OUTPUT\n")
        return 2
    source, target = Path(argv[1]), Path(argv[2])
    try:
        text = convert(json.loads(source.read_text(encoding="utf-8")))
    except (ConversionError, KeyError, ValueError, TypeError) as error:
        sys.stderr.write(f"vectors_to_cases: {source}: {type(error).__name__}: {error}\n")
        return 1
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="ascii")
    partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
