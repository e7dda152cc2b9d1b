"""Audit entries: who did what to which child or device; ids and counts only, never content."""

from __future__ import annotations

import uuid
from typing import Any, Final

from hub.db.models import AuditAction, AuditEntry, Parent

CHILD_SUBJECT: Final = "child"
DEVICE_SUBJECT: Final = "device"


def audit_child(
    parent: Parent, action: AuditAction, child_id: uuid.UUID, **detail: Any
) -> AuditEntry:
    """An audit entry about one of ``parent``'s children."""
    return AuditEntry(
        actor_parent_id=parent.id,
        action=action.value,
        subject_type=CHILD_SUBJECT,
        subject_id=str(child_id),
        detail=detail,
    )


def audit_device(
    parent: Parent | uuid.UUID | None, action: AuditAction, device_id: str | None, **detail: Any
) -> AuditEntry:
    """An audit entry about a device (``device_id`` None: a code that named none).

    ``parent`` may be given by id: a refusal audited after a rolled-back session cannot read
    attributes of the objects it had loaded.
    """
    actor = parent.id if isinstance(parent, Parent) else parent
    return AuditEntry(
        actor_parent_id=actor,
        action=action.value,
        subject_type=DEVICE_SUBJECT,
        subject_id=device_id,
        detail=detail,
    )
