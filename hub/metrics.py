"""Prometheus metrics of the hub process.

Metrics live in a registry passed to the components (not the global default), so two hubs in
one test process count separately. Label children are resolved once at construction: the hot
path only increments.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from hub.errors import RejectReason
from hub.protocol.kinds import Kind

# `_created` series double every counter's exposition and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class HubMetrics:
    """Counters and gauges named ``teddy_hub_*``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.received = Counter(
            "teddy_hub_frames_received",
            "Uplink messages taken from the broker.",
            registry=self.registry,
        )
        self._rejected = Counter(
            "teddy_hub_frames_rejected",
            "Uplink frames dropped before dispatch, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.rejected = {reason: self._rejected.labels(reason.value) for reason in RejectReason}
        self._dispatched = Counter(
            "teddy_hub_frames_dispatched",
            "Verified frames handed to a handler, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.dispatched = {kind: self._dispatched.labels(kind.topic_name) for kind in Kind}
        self._dropped = Counter(
            "teddy_hub_frames_dropped",
            "Verified frames not dispatched: no handler, or the device's backlog was full.",
            ["reason"],
            registry=self.registry,
        )
        self.dropped_no_handler = self._dropped.labels("no_handler")
        self.dropped_backlog = self._dropped.labels("device_backlog")
        self._handler_failures = Counter(
            "teddy_hub_handler_failures",
            "Handler calls that raised or exceeded their timeout.",
            ["kind", "failure"],
            registry=self.registry,
        )
        self.handler_errors = {
            kind: self._handler_failures.labels(kind.topic_name, "error") for kind in Kind
        }
        self.handler_timeouts = {
            kind: self._handler_failures.labels(kind.topic_name, "timeout") for kind in Kind
        }
        self.handler_seconds = Histogram(
            "teddy_hub_handler_seconds",
            "Time spent in handlers.",
            buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.nonce_store_up = Gauge(
            "teddy_hub_nonce_store_up",
            "1 while the nonce store answers; 0 while the hub is failing closed.",
            registry=self.registry,
        )
        self.nonce_store_outages = Counter(
            "teddy_hub_nonce_store_outages",
            "Times the nonce store stopped answering.",
            registry=self.registry,
        )
        self.broker_connected = Gauge(
            "teddy_hub_broker_connected",
            "1 while the hub is connected and subscribed to the broker.",
            registry=self.registry,
        )
        self.broker_reconnects = Counter(
            "teddy_hub_broker_reconnects",
            "Connection attempts to the broker after the first.",
            registry=self.registry,
        )
        self.revocation_age = Gauge(
            "teddy_hub_revocation_list_age_seconds",
            "Seconds since the revocation list was last refreshed.",
            registry=self.registry,
        )
        self.revoked_devices = Gauge(
            "teddy_hub_revoked_devices",
            "Devices in the revocation list.",
            registry=self.registry,
        )
        self._downlinks = Counter(
            "teddy_hub_downlinks_published",
            "Signed frames published to toys, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.downlinks = {kind: self._downlinks.labels(kind.topic_name) for kind in Kind}
        self.pair_codes = Counter(
            "teddy_hub_pair_codes",
            "Pairing-code requests by outcome (issued, cooldown).",
            ["outcome"],
            registry=self.registry,
        )
        self.turns = Counter(
            "teddy_hub_turns",
            "Conversation turns by how they ended and the voice that served them.",
            ["outcome", "voice"],
            registry=self.registry,
        )
        self.moderation_failures = Counter(
            "teddy_hub_moderation_failures",
            "Provider moderation calls that errored or timed out (the turn failed closed).",
            registry=self.registry,
        )
        self.alerts = Counter(
            "teddy_hub_safety_alerts",
            "Unsafe exchanges redirected and reported to the parent.",
            registry=self.registry,
        )
        self.conversation_rejections = Counter(
            "teddy_hub_conversation_rejections",
            "Conversation messages refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.open_utterances = Gauge(
            "teddy_hub_open_utterances",
            "Unfinished utterances this hub is following (capped per toy and in all).",
            registry=self.registry,
        )
        self.provider_flags = Counter(
            "teddy_hub_provider_moderation_flags",
            "Texts the provider's moderation flagged (the local layer had passed them).",
            registry=self.registry,
        )
