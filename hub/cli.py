"""The ``teddyhub`` command.

``up`` runs everything; ``broker``, ``hub`` and ``api`` run one part each (what ``up`` and the
Docker image start); ``toy`` is the reference simulated toy.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import typer
from pydantic import ValidationError

from hub.errors import TeddyError
from hub.logs import configure_logging
from hub.protocol.keys import derive_connect_key, derive_device_key
from hub.protocol.kinds import Kind
from hub.protocol.topics import validate_device_id
from hub.runtime import follow_parent, run_until_signal
from hub.settings import Settings, describe_settings_error, load_settings

if TYPE_CHECKING:
    from hub.toy.simulator import SimulatedToy

T = TypeVar("T")

app = typer.Typer(
    name="teddyhub",
    help="Teddy Hub: broker, hub and API for talking toys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
toy_app = typer.Typer(help="The reference simulated toy.", no_args_is_help=True)
app.add_typer(toy_app, name="toy")
devices_app = typer.Typer(help="Revoke and restore devices.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
keys_app = typer.Typer(help="Keys derived from the fleet secret.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
accounts_app = typer.Typer(help="Parent accounts: administrators.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="The revision to reach.")] = "head",
) -> None:
    """Migrate the configured database (DATABASE_URL, else the embedded SQLite file)."""
    from hub.db.engine import database_url
    from hub.db.migrate import upgrade

    settings = _settings()
    asyncio.run(upgrade(database_url(settings), revision))
    typer.echo(f"database migrated to {revision}")


def _set_role(email: str, *, admin: bool) -> None:
    from sqlalchemy import update

    from hub.db.engine import create_engine_for, session_factory
    from hub.db.models import Parent, ParentRole

    settings = _settings()
    role = ParentRole.ADMIN if admin else ParentRole.PARENT

    async def change() -> int:
        engine = create_engine_for(settings)
        try:
            async with session_factory(engine)() as session:
                result = await session.execute(
                    update(Parent)
                    .where(Parent.email == email.strip().lower())
                    .values(role=role)
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
                return int(getattr(result, "rowcount", 0))
        finally:
            await engine.dispose()

    if asyncio.run(change()) != 1:
        typer.echo(f"teddyhub: no account with the e-mail {email!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{email} is now {role.value}")


@accounts_app.command("grant-admin")
def accounts_grant_admin(email: str) -> None:
    """Make the registered account ``email`` an administrator (list and revoke devices)."""
    _set_role(email, admin=True)


@accounts_app.command("revoke-admin")
def accounts_revoke_admin(email: str) -> None:
    """Make the administrator ``email`` a parent again."""
    _set_role(email, admin=False)


@keys_app.command("connect-root")
def keys_connect_root() -> None:
    """Print the brokers' connect root (hex): the only key a broker is given."""
    typer.echo(_settings().connect_root().hex())


def _settings(role: Literal["service", "broker"] = "service") -> Settings:
    follow_parent()
    try:
        settings = load_settings(role=role)
    except (TeddyError, ValidationError) as error:
        typer.echo(f"teddyhub: {describe_settings_error(error)}", err=True)
        raise typer.Exit(2) from error
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _require_device_id(device_id: str) -> None:
    try:
        validate_device_id(device_id)
    except TeddyError as error:
        typer.echo(f"teddyhub: {error}", err=True)
        raise typer.Exit(2) from error


@app.command()
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete turns and alerts older than TEDDY_RETENTION_DAYS, and conversations left empty."""
    from hub.db.engine import create_engine_for, session_factory
    from hub.purge import PurgeCounts, purge_expired

    settings = _settings()

    async def run() -> PurgeCounts:
        engine = create_engine_for(settings)
        try:
            return await purge_expired(
                session_factory(engine), retention_days=settings.retention_days, dry_run=dry_run
            )
        finally:
            await engine.dispose()

    counts = asyncio.run(run())
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {counts.turns} turns, {counts.alerts} alerts, "
        f"{counts.conversations} conversations older than {settings.retention_days} days"
    )


@app.command()
def up() -> None:
    """Run broker, hub and API together on the embedded defaults (no service or key needed)."""
    from hub.supervisor import supervise

    settings = _settings()
    raise typer.Exit(run_until_signal(supervise(settings)))


@app.command()
def hub() -> None:
    """Run one hub replica: consume uplinks, verify, de-duplicate, dispatch."""
    from hub.service import Hub

    settings = _settings()

    async def main() -> None:
        await Hub.build(settings).run()

    raise typer.Exit(run_until_signal(main()))


@app.command()
def broker() -> None:
    """Run the embedded MQTT broker (development)."""
    from broker.embedded import run_broker

    settings = _settings("broker")
    raise typer.Exit(run_until_signal(run_broker(settings)))


@app.command()
def api() -> None:
    """Run the HTTP API."""
    from hub.asgi_server import serve_asgi
    from hub.ports import bind_listener

    settings = _settings()

    async def main() -> None:
        sock = bind_listener(settings.api_host, settings.api_port, "TEDDY_API_PORT")
        # By name, so that hub/ never imports api/.
        await serve_asgi("api.app:create_app", sock, factory=True)

    raise typer.Exit(run_until_signal(main()))


@app.command()
def certs(
    force: Annotated[bool, typer.Option(help="Replace existing certificates.")] = False,
    name: Annotated[
        list[str] | None,
        typer.Option(help="Host names and addresses the broker certificate names."),
    ] = None,
) -> None:
    """Make a development CA and broker certificate under TEDDY_DATA_DIR/certs."""
    from hub.certs import DEFAULT_NAMES, ensure_dev_certificates

    settings = _settings()
    paths = ensure_dev_certificates(
        settings.certs_dir, tuple(name) if name else DEFAULT_NAMES, force=force
    )
    typer.echo(f"CA certificate (give it to toys and clients): {paths.ca_cert}")
    typer.echo(f"broker certificate and key: {paths.server_cert}, {paths.server_key}")


def _change_revocations(device_id: str, *, revoke: bool) -> None:
    from hub.revocation import change_revocation

    settings = _settings()
    _require_device_id(device_id)
    path = settings.revoked_devices_file
    change_revocation(path, device_id, revoked=revoke)
    verb = "revoked" if revoke else "restored"
    typer.echo(f"{device_id} {verb}; hubs and brokers reading {path} apply it within seconds")


@devices_app.command("revoke")
def devices_revoke(device_id: str) -> None:
    """Refuse a device at the broker and the hub from now on."""
    _change_revocations(device_id, revoke=True)


@devices_app.command("restore")
def devices_restore(device_id: str) -> None:
    """Lift a device's revocation."""
    _change_revocations(device_id, revoke=False)


def _with_toy(device_id: str, action: Callable[[SimulatedToy], Awaitable[T]]) -> T:
    """Connect the simulated toy ``device_id`` (fresh connect token) and run ``action``.

    Exits 1 with one line when the broker cannot be reached or the hub does not answer.
    """
    from hub.toy.simulator import SimulatedToy

    settings = _settings()
    _require_device_id(device_id)
    toy = SimulatedToy(
        device_id,
        derive_device_key(settings.fleet_secret(), device_id),
        settings.broker_address(),
        settings.topic_root,
        connect_key=derive_connect_key(settings.connect_root(), device_id),
    )

    async def run() -> T:
        async with toy:
            return await action(toy)

    try:
        return asyncio.run(run())
    except TeddyError as error:
        typer.echo(f"teddyhub: {error}", err=True)
        raise typer.Exit(1) from error
    except OSError as error:  # the CA file, most often: no broker has been set up here yet
        typer.echo(
            f"teddyhub: {error}; is `teddyhub up` running (or TEDDY_TLS_CA_FILE set)?", err=True
        )
        raise typer.Exit(1) from error


@toy_app.command("ping")
def toy_ping(
    device_id: Annotated[str, typer.Option(help="The simulated toy's device id.")] = "toy-0001",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pong.")] = 5.0,
) -> None:
    """Send a signed ping and wait for the hub's verified pong."""
    rtt_ms = _with_toy(device_id, lambda toy: toy.ping(timeout))
    typer.echo(f"pong for {device_id}: verified, round trip {rtt_ms:.1f} ms")


@toy_app.command("pair")
def toy_pair(
    device_id: Annotated[str, typer.Option(help="The simulated toy's device id.")] = "toy-0001",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the code.")] = 30.0,
) -> None:
    """Ask the hub for a pairing code and print it, as the toy would speak it.

    The parent posts the code with a child id to POST /api/v1/pair/code.
    """
    code = _with_toy(device_id, lambda toy: toy.request_pair_code(timeout))
    typer.echo(f"pairing code for {device_id}: {code.spoken} (valid for {code.expires_in_s} s)")


@toy_app.command("listen")
def toy_listen(
    device_id: Annotated[str, typer.Option(help="The simulated toy's device id.")] = "toy-0001",
    seconds: Annotated[float, typer.Option(help="How long to listen at most.")] = 30.0,
    until: Annotated[
        str | None,
        typer.Option(help="Stop at the first verified downlink of this kind (e.g. unpaired)."),
    ] = None,
) -> None:
    """Print every verified downlink the toy receives (``unpaired`` after an unpairing).

    Prints "<device> is listening" once subscribed, so a script can wait for that line
    instead of guessing how long logging in takes. With ``--until``, exits 0 at that kind
    and 1 when ``--seconds`` pass without it.
    """
    if until is not None and until not in {kind.topic_name for kind in Kind}:
        typer.echo(f"teddyhub: --until: no message kind is called {until!r}", err=True)
        raise typer.Exit(2)

    async def listen(toy: SimulatedToy) -> tuple[int, bool]:
        typer.echo(f"{device_id} is listening")
        count = 0
        async for frame in toy.listen(seconds):
            count += 1
            payload = frame.payload.decode("utf-8", errors="replace") if frame.payload else ""
            typer.echo(f"{device_id} received {frame.kind.topic_name} {payload}".rstrip())
            if frame.kind.topic_name == until:
                return count, True
        return count, False

    received, seen = _with_toy(device_id, listen)
    typer.echo(f"{device_id}: {received} verified downlink(s)")
    if until is not None and not seen:
        typer.echo(f"teddyhub: no {until} within {seconds:g} s", err=True)
        raise typer.Exit(1)


@toy_app.command("say")
def toy_say(  # noqa: PLR0917 - typer maps one parameter per option
    text: Annotated[str | None, typer.Argument(help="What the child says.")] = None,
    wav: Annotated[
        Path | None, typer.Option(help="Recorded speech to send instead (any WAV).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Save the spoken reply as a WAV file.")] = None,
    codec: Annotated[str, typer.Option(help="Uplink and playback codec: pcm16 or opus.")] = "pcm16",
    typed: Annotated[bool, typer.Option(help="Send the text typed, not spoken.")] = False,
    device_id: Annotated[str, typer.Option(help="The simulated toy's device id.")] = "toy-0001",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 60.0,
) -> None:
    """Talk to the hub like a child pressing the button; print and save the toy's reply.

    Without --wav the words are spoken with the offline voice on this machine and sent as
    16 kHz audio (PCM16 or Opus), as a toy's microphone would.
    """
    from hub.protocol.conversation import CODEC_BY_NAME
    from hub.toy.talk import Reply, Talker
    from hub.voice.audio import pcm_to_wav, resample, wav_to_pcm

    if (text is None) == (wav is None):
        typer.echo("teddyhub: give the words to say, or --wav with recorded speech", err=True)
        raise typer.Exit(2)
    uplink = CODEC_BY_NAME.get(codec)
    if uplink is None:
        typer.echo("teddyhub: --codec is pcm16 or opus", err=True)
        raise typer.Exit(2)
    speech = b""
    if wav is not None:
        pcm, rate = wav_to_pcm(wav.read_bytes())
        speech = resample(pcm, rate, 16_000)
    elif not typed:
        speech = asyncio.run(_speak_locally(text or ""))

    async def talk(toy: SimulatedToy) -> Reply:
        talker = Talker(toy)
        await talker.hello(codecs=(codec,), sample_rates=(16_000,))
        if typed:
            return await talker.say_text(text or "", timeout)
        return await talker.say_audio(speech, uplink, timeout)

    reply = _with_toy(device_id, talk)
    typer.echo(f"toy says: {reply.text}")
    first = "-" if reply.first_audio_ms is None else f"{reply.first_audio_ms:.0f} ms"
    typer.echo(f"first audio after {first}, whole reply after {reply.total_ms:.0f} ms")
    if reply.hub_timings_ms:
        stages = ", ".join(f"{name} {ms:.0f} ms" for name, ms in reply.hub_timings_ms.items())
        typer.echo(f"hub: {stages} (ended: {reply.reason})")
    if out is not None:
        out.write_bytes(pcm_to_wav(reply.pcm16, reply.sample_rate))
        seconds = len(reply.pcm16) / (2 * reply.sample_rate)
        typer.echo(f"saved {seconds:.1f} s of speech to {out}")


async def _speak_locally(text: str) -> bytes:
    """``text`` as 16 kHz speech from the offline voice (the simulated child's voice)."""
    from hub.voice.audio import resample
    from hub.voice.offline import offline_voice

    settings = _settings()
    _, tts = await asyncio.to_thread(offline_voice, settings)
    pcm = b"".join([chunk async for chunk in tts.synthesize(text, "en")])
    return resample(pcm, tts.sample_rate, 16_000)


@toy_app.command("claim-proof")
def toy_claim_proof(
    account: Annotated[str, typer.Option(help="The claiming parent's account id (UUID).")],
    device_id: Annotated[str, typer.Option(help="The simulated toy's device id.")] = "toy-0001",
) -> None:
    """Print the toy's claim proof for a parent's account (JSON, for POST /api/v1/pair/claim).

    Development: the frame key is derived from this machine's fleet secret.
    """
    import json
    import secrets
    import time
    import uuid

    from hub.protocol.claims import CLAIM_NONCE_SIZE, make_claim_proof

    settings = _settings()
    _require_device_id(device_id)
    try:
        account_id = uuid.UUID(account)
    except ValueError as error:
        typer.echo(f"teddyhub: --account must be a UUID, not {account!r}", err=True)
        raise typer.Exit(2) from error
    frame_key = derive_device_key(settings.fleet_secret(), device_id)
    proof = make_claim_proof(
        frame_key,
        device_id,
        account_id,
        int(time.time()),
        secrets.token_bytes(CLAIM_NONCE_SIZE),
    )
    typer.echo(json.dumps(proof))


@toy_app.command("status")
def toy_status(
    device_id: Annotated[str, typer.Option(help="The simulated toy's device id.")] = "toy-0001",
    api_url: Annotated[
        str | None, typer.Option(help="The API's base URL (default: 127.0.0.1, TEDDY_API_PORT).")
    ] = None,
) -> None:
    """Post a signed status report to the API, as the toy does over HTTP, and print the answer."""
    import json

    from hub.toy.http import report_status

    settings = _settings()
    _require_device_id(device_id)
    url = api_url or f"http://127.0.0.1:{settings.api_port}"
    frame_key = derive_device_key(settings.fleet_secret(), device_id)
    try:
        answer = asyncio.run(report_status(url, device_id, frame_key))
    except TeddyError as error:
        typer.echo(f"teddyhub: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(json.dumps(answer))


def main() -> None:
    """Entry point of the ``teddyhub`` script."""
    sys.exit(app())
