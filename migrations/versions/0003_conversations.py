"""Conversations, turns (encrypted transcripts) and safety alerts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0001: the models are never imported, so this migration stays what it was.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("last_turn_at", UTC_DATETIME, nullable=False),
        sa.Column("turn_count", sa.Integer(), nullable=False),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["children.id"],
            name=op.f("fk_conversations_child_id_children"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(
        "ix_conversations_child_last_turn", "conversations", ["child_id", "last_turn_at"]
    )
    op.create_index(op.f("ix_conversations_last_turn_at"), "conversations", ["last_turn_at"])
    op.create_table(
        "turns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("child_text_enc", sa.LargeBinary(), nullable=False),
        sa.Column("reply_text_enc", sa.LargeBinary(), nullable=False),
        sa.Column("input_mode", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("timings", JSON_DOCUMENT, nullable=False),
        sa.Column("safety_flags", JSON_DOCUMENT, nullable=False),
        sa.Column("redactions", JSON_DOCUMENT, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["children.id"],
            name=op.f("fk_turns_child_id_children"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_turns_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turns")),
    )
    op.create_index(op.f("ix_turns_at"), "turns", ["at"])
    op.create_index("ix_turns_child_at", "turns", ["child_id", "at"])
    op.create_index(op.f("ix_turns_conversation_id"), "turns", ["conversation_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("turn_id", sa.Uuid(), nullable=True),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("categories", JSON_DOCUMENT, nullable=False),
        sa.Column("excerpt_enc", sa.LargeBinary(), nullable=False),
        sa.Column("acknowledged_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["children.id"],
            name=op.f("fk_alerts_child_id_children"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["turn_id"],
            ["turns.id"],
            name=op.f("fk_alerts_turn_id_turns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_at"), "alerts", ["at"])
    op.create_index("ix_alerts_child_at", "alerts", ["child_id", "at"])
    op.create_index(op.f("ix_alerts_turn_id"), "alerts", ["turn_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes; the referencing tables go first.
    op.drop_table("alerts")
    op.drop_table("turns")
    op.drop_table("conversations")
