"""amqtt plugins: device authentication and per-device topic ACLs.

amqtt builds plugins from dotted paths and hydrates their ``Config`` dataclasses from the
broker configuration (``broker.embedded.broker_config``), so each plugin owns what it needs:
the authentication plugin a :class:`broker.auth.LoginChecker` over the connect root, the topic
plugin the topic root. The principal a login establishes travels on the amqtt session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from amqtt.contexts import Action as AmqttAction
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.acl import Action, Principal, is_allowed
from broker.auth import LoginChecker, LoginPolicy
from hub.errors import ConnectRefused
from hub.revocation import FileRevocations

log = structlog.get_logger("broker.plugins")
PRINCIPAL_ATTRIBUTE = "teddy_principal"
REVOCATION_REFRESH_S = 2.0
_ACTIONS = {
    AmqttAction.PUBLISH: Action.PUBLISH,
    AmqttAction.SUBSCRIBE: Action.SUBSCRIBE,
    AmqttAction.RECEIVE: Action.RECEIVE,
}


def principal_of(session: Session) -> Principal | None:
    """The principal the authentication plugin attached to ``session``."""
    principal = getattr(session, PRINCIPAL_ATTRIBUTE, None)
    return principal if isinstance(principal, Principal) else None


class RevocationWatch:
    """The revocation file, re-read at most every two seconds when a login asks."""

    def __init__(self, path: Path | None) -> None:
        self._source = FileRevocations(path) if path else None
        self._revoked: frozenset[str] = frozenset()
        self._checked_at = float("-inf")

    async def is_revoked(self, device_id: str) -> bool:
        """True when ``device_id`` is in the current list."""
        if self._source is None:
            return False
        now = time.monotonic()
        if now - self._checked_at >= REVOCATION_REFRESH_S:
            self._checked_at = now
            try:
                self._revoked = await self._source.revoked_device_ids()
            except OSError as error:  # unreadable for now: the last list stays in force
                log.error("revocation_file_unreadable", error=type(error).__name__)  # noqa: TRY400
        return device_id in self._revoked


class TeddyAuthPlugin(BaseAuthPlugin):
    """Device connect tokens, service accounts, and anonymous only where enabled."""

    @dataclass
    class Config:
        """Plugin configuration (from ``broker_config``)."""

        connect_root_hex: str = ""
        allow_anonymous: bool = False
        revocation_file: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        root = bytes.fromhex(self.config.connect_root_hex)
        if len(root) != 32:
            raise ValueError("the broker's connect root must be 32 bytes")
        revocations = RevocationWatch(
            Path(self.config.revocation_file) if self.config.revocation_file else None
        )
        self.checker = LoginChecker(
            LoginPolicy(root, allow_anonymous=self.config.allow_anonymous),
            revocations.is_revoked,
        )

    async def authenticate(self, *, session: Session) -> bool | None:
        """Accept the login and attach its principal, or refuse it."""
        try:
            principal = await self.checker.check(
                session.client_id or "", session.username, session.password
            )
        except ConnectRefused:
            return False
        setattr(session, PRINCIPAL_ATTRIBUTE, principal)
        return True


class TeddyTopicPlugin(BaseTopicPlugin):
    """Per-device ACLs (broker.acl)."""

    @dataclass
    class Config:
        """Plugin configuration (from ``broker_config``)."""

        topic_root: str = "teddy"

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: AmqttAction | None = None,
    ) -> bool | None:
        """Allow only what :func:`broker.acl.is_allowed` allows; nothing without a login."""
        if session is None or topic is None or action is None:
            return False
        principal = principal_of(session)
        if principal is None:
            return False
        return is_allowed(principal, topic, _ACTIONS[action], self.config.topic_root)
