"""``python -m bench``: throughput of the hub path against bare aiomqtt, then latency, then
conversation turns (``bench/conversation.py``; ``--only`` picks one section).

Phases run alternately (raw, hub, raw, hub, ...) so that a burst of load from something else on
the machine hits both sides rather than one; each figure is the median over the rounds and the
ratio is the ratio of the medians. Every phase gets its own topic root (a frame left in the
broker by one phase can never reach the next), all nonces live under one Redis key prefix that
is deleted at the end, and the dedicated Mosquitto is stopped whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
from importlib import metadata

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bench.broker import BenchBroker, mosquitto_version
from bench.conversation import conversation_phase, print_conversation
from bench.hubpath import delete_keys
from bench.latency import LatencyResult, latency_phase
from bench.throughput import FloodOptions, PhaseResult, hub_phase, raw_phase
from hub.logs import configure_logging
from hub.mqtt import BrokerAddress
from hub.nonces import RedisNonceStore

TARGET_RATIO = 0.8


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Raw aiomqtt receive rate vs the full hub path, and QoS 1 latency.",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=50_000,
        help="QoS 0 frames per throughput phase (default 50,000)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="raw/hub phase pairs, run alternately (default 3)"
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=1000,
        help="toys the frames are spread over, round-robin (default 1,000)",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=1000.0,
        help="QoS 1 msg/s in the latency phase (default 1,000)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=3.0,
        help="length of the latency phase (default 3 s; 0 skips it)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=3.0,
        help="end a phase after this many seconds without a message",
    )
    parser.add_argument(
        "--only",
        choices=("throughput", "conversation"),
        help="run one section only: throughput (with latency) or conversation (default: both)",
    )
    parser.add_argument(
        "--conversation-turns",
        type=int,
        default=100,
        help="spoken turns of one toy with the cloud fake (default 100; 0 skips the section)",
    )
    parser.add_argument(
        "--conversation-toys",
        type=int,
        default=50,
        help="toys talking at once with the cloud fake (default 50)",
    )
    parser.add_argument(
        "--conversation-toy-turns",
        type=int,
        default=10,
        help="turns each of those toys takes (default 10)",
    )
    parser.add_argument(
        "--conversation-input",
        choices=("voice", "text"),
        default="voice",
        help="what the concurrent toys send: spoken PCM or typed text (default voice)",
    )
    parser.add_argument(
        "--offline-turns",
        type=int,
        default=20,
        help="spoken turns of one toy with the offline voice (default 20)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    if args.messages < 2 or args.rounds < 1 or args.devices < 1:
        parser.error("need --messages >= 2, --rounds >= 1 and --devices >= 1")
    if args.conversation_toys < 1 or args.conversation_toy_turns < 1 or args.offline_turns < 1:
        parser.error("need --conversation-toys, --conversation-toy-turns, --offline-turns >= 1")
    return args


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


async def _redis_version(url: str) -> str:
    """Redis's version; raises ``RedisError`` or ``OSError`` when it does not answer."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


def _print_context(args: argparse.Namespace, broker: BenchBroker, redis_version: str) -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print("Teddy Hub benchmark")
    print(
        f"  machine : {os.cpu_count()} CPUs ({usable} usable), {platform.system()} "
        f"{platform.machine()}, load average {load}"
    )
    print(
        f"  python  : {platform.python_version()} ({platform.python_implementation()}), "
        f"aiomqtt {_version('aiomqtt')}, paho-mqtt {_version('paho-mqtt')}, "
        f"redis-py {_version('redis')}"
    )
    print(f"  broker  : {mosquitto_version()}, dedicated on {broker.host}:{broker.port}")
    print(f"  redis   : {redis_version} at {args.redis_url}")
    print(
        f"  load    : {args.messages:,} QoS 0 frames per phase from {args.devices:,} toys, "
        f"{args.rounds} round(s) of raw then hub"
    )
    print(flush=True)


def _print_phase(round_number: int, result: PhaseResult) -> None:
    label = "raw aiomqtt receive" if result.name == "raw" else "full hub path"
    publisher = result.publisher
    notes = [f"publisher wrote {publisher.published:,} in {publisher.seconds * 1000:.0f} ms"]
    if publisher.exit_code != 0:
        notes.append(f"publisher exit code {publisher.exit_code}")
    if result.name == "hub":
        rejected = ", ".join(f"{reason} {count:,}" for reason, count in result.rejected.items())
        notes.append(f"rejected: {rejected or 'none'}")
        notes.append(f"dropped: {result.dropped:,}")
        notes.append(f"mean claim batch {result.mean_batch:.0f}")
    print(
        f"  round {round_number}  {label:<20} {result.received:>9,} of {result.expected:,}  "
        f"{result.rate:>9,.0f} msg/s  ({'; '.join(notes)})",
        flush=True,
    )


def _print_summary(
    raw: list[PhaseResult], hub: list[PhaseResult], latency: LatencyResult | None
) -> None:
    raw_median = statistics.median(result.rate for result in raw)
    hub_median = statistics.median(result.rate for result in hub)
    ratio = hub_median / raw_median if raw_median else float("nan")
    raw_received = sum(result.received for result in raw)
    hub_received = sum(result.received for result in hub)
    expected = sum(result.expected for result in raw)

    def spread(results: list[PhaseResult]) -> str:
        rates = [result.rate for result in results]
        return f"{min(rates):,.0f}-{max(rates):,.0f}"

    print()
    print("Results")
    print(
        f"  raw aiomqtt receive (a) : {raw_median:>9,.0f} msg/s  (median of {len(raw)}; "
        f"range {spread(raw)}; received {raw_received:,} of {expected:,})"
    )
    print(
        f"  full hub path (b)       : {hub_median:>9,.0f} msg/s  (median of {len(hub)}; "
        f"range {spread(hub)}; received {hub_received:,} of {expected:,})"
    )
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    # Each round's own ratio compares two phases run seconds apart, so a burst of load from
    # something else on the machine shows up as one outlying round rather than a shifted median.
    rounds = [b.rate / a.rate if a.rate else float("nan") for a, b in zip(raw, hub, strict=True)]
    per_round = ", ".join(f"{value:.2f}" for value in rounds)
    print(
        f"  ratio (b/a)             : {ratio:>9.2f}        ({verdict} the {TARGET_RATIO} aim; "
        f"per round {per_round})"
    )
    if latency is not None:
        print(
            f"  latency QoS 1 publish->handler: p50 {latency.percentile(50):.2f} ms, "
            f"p99 {latency.percentile(99):.2f} ms, max {latency.percentile(100):.2f} ms  "
            f"({latency.received:,} of {latency.expected:,} frames, published at "
            f"{latency.publisher.rate:,.0f} msg/s)"
        )
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"  load average at the end : {load}  (others' work on the machine makes figures noisy)")
    print(flush=True)


async def _run(args: argparse.Namespace, broker: BenchBroker, run_id: str) -> int:
    if args.only != "conversation":
        await _throughput(args, broker, run_id)
    if args.only != "throughput" and args.conversation_turns > 0:
        result = await conversation_phase(
            BrokerAddress(broker.host, broker.port),
            f"bench-{run_id}-conv",
            turns=args.conversation_turns,
            toys=args.conversation_toys,
            turns_per_toy=args.conversation_toy_turns,
            offline_turns=args.offline_turns,
            many_input=args.conversation_input,
        )
        print_conversation(result)
    return 0


async def _throughput(args: argparse.Namespace, broker: BenchBroker, run_id: str) -> None:
    address = BrokerAddress(broker.host, broker.port)
    key_prefix = f"teddy-bench:{run_id}:"
    nonces = RedisNonceStore.from_url(args.redis_url, key_prefix)
    flood = FloodOptions(args.messages, args.devices, idle_timeout_s=args.idle_timeout)
    raw: list[PhaseResult] = []
    hub: list[PhaseResult] = []
    latency: LatencyResult | None = None
    try:
        for round_number in range(1, args.rounds + 1):
            raw.append(await raw_phase(address, f"bench-{run_id}-a{round_number}", flood))
            _print_phase(round_number, raw[-1])
            hub.append(await hub_phase(address, f"bench-{run_id}-b{round_number}", flood, nonces))
            _print_phase(round_number, hub[-1])
        if args.latency_seconds > 0:
            latency = await latency_phase(
                address,
                f"bench-{run_id}-lat",
                nonces,
                rate=args.latency_rate,
                seconds=args.latency_seconds,
                devices=args.devices,
            )
            print(
                f"  latency  QoS 1 at {args.latency_rate:,.0f} msg/s for "
                f"{args.latency_seconds:g} s: {latency.received:,} of {latency.expected:,} "
                "frames reached the handler",
                flush=True,
            )
    finally:
        await nonces.close()
        try:
            deleted = await delete_keys(args.redis_url, key_prefix)
        except (RedisError, OSError) as error:
            print(
                f"bench: could not delete the keys under {key_prefix} ({error}); they expire "
                "by themselves within two minutes",
                file=sys.stderr,
            )
        else:
            print(f"  cleanup  deleted {deleted:,} nonce keys under {key_prefix}", flush=True)
    _print_summary(raw, hub, latency)


def main(argv: list[str] | None = None) -> int:
    """Run every phase and print the figures; exit 1 only when something needed is missing."""
    args = _arguments(argv)
    configure_logging("WARNING")
    run_id = secrets.token_hex(4)
    try:
        redis_version = asyncio.run(_redis_version(args.redis_url))
    except (RedisError, OSError) as error:
        print(f"bench: Redis at {args.redis_url} does not answer ({error})", file=sys.stderr)
        return 1
    try:
        with BenchBroker() as broker:
            _print_context(args, broker, redis_version)
            return asyncio.run(_run(args, broker, run_id))
    except (OSError, RuntimeError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
