"""``pair_request`` -> ``pair_code`` through Mosquitto and the hub, on PostgreSQL and SQLite.

The toy receives a verified, signed code; the database holds only its keyed digest; the code
is the one the API redeems (the API's side: tests/api/test_pairing_code.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import URL, select

from hub.db.engine import create_engine_for, session_factory
from hub.db.models import PairingCode
from hub.errors import ToyError
from hub.pairing import code_digest, redeem_code
from hub.protocol.keys import derive_pair_code_key
from hub.protocol.kinds import Kind
from hub.revocation import write_revocation_file
from hub.service import Hub
from hub.settings import Settings
from tests.integration.harness import HubRunner, Toys, dispatched, sample, wait_until
from tests.timing import EVENT_TIMEOUT_S

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgres", "sqlite"])
def pairing_settings(request: pytest.FixtureRequest, hub_settings: Settings) -> Settings:
    """The hub's settings on a fresh PostgreSQL database (migrated) or its own SQLite file."""
    if request.param == "sqlite":
        return hub_settings  # the hub migrates the embedded file itself
    url: URL = request.getfixturevalue("migrated_postgres_url")
    return hub_settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False)}
    )


async def stored_codes(settings: Settings) -> list[PairingCode]:
    engine = create_engine_for(settings)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(PairingCode)))
    finally:
        await engine.dispose()


async def test_a_toy_gets_a_signed_code_that_pairs_once(
    pairing_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    hub = Hub.build(pairing_settings)
    await hubs.start(hub)
    toy = await toys.open()

    code = await toy.request_pair_code(timeout_s=EVENT_TIMEOUT_S)

    assert len(code.code) == 6 and code.code.isdigit()
    assert code.expires_in_s == pairing_settings.pair_code_ttl_s
    assert code.spoken == f"{code.code[:3]} {code.code[3:]}"
    assert toy.rejected == []
    key = derive_pair_code_key(pairing_settings.fleet_secret())
    (row,) = await stored_codes(pairing_settings)
    assert row.device_id == toy.device_id
    assert row.code_digest == code_digest(key, code.code)
    engine = create_engine_for(pairing_settings)
    try:
        async with session_factory(engine)() as session:
            now = datetime.now(UTC)
            assert await redeem_code(session, key, code.code, now=now) == toy.device_id
            assert await redeem_code(session, key, code.code, now=now) is None
            await session.commit()
    finally:
        await engine.dispose()


async def test_requests_inside_the_cooldown_get_no_new_code(
    pairing_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    hub = Hub.build(pairing_settings)
    await hubs.start(hub)
    toy = await toys.open()
    first = await toy.request_pair_code(timeout_s=EVENT_TIMEOUT_S)
    await toy.send(Kind.PAIR_REQUEST)
    await wait_until(
        lambda: sample(hub, "teddy_hub_pair_codes_total", {"outcome": "cooldown"}) == 1,
        "the second request to be turned away",
    )
    (row,) = await stored_codes(pairing_settings)
    assert row.code_digest == code_digest(
        derive_pair_code_key(pairing_settings.fleet_secret()), first.code
    )


async def test_a_revoked_toy_gets_no_code(
    hub_settings: Settings, hubs: HubRunner, toys: Toys
) -> None:
    toy = await toys.open()
    write_revocation_file(hub_settings.revoked_devices_file, {toy.device_id})
    hub = Hub.build(hub_settings)
    await hubs.start(hub)
    with pytest.raises(ToyError, match="no verified pair_code"):
        await toy.request_pair_code(timeout_s=1.0)
    assert dispatched(hub, Kind.PAIR_REQUEST) == 0
    assert await stored_codes(hub_settings) == []
