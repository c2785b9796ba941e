"""Instructions, consent and practice items; time on item and image-open events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Only additions, so a study that is under way keeps every rating and open item: new nullable
columns (or ones with a server default), two practice tables and the image-view events table.
Raters who already have assignments started before instructions existed: their ``started_at`` is
set to their first assignment, so the upgrade does not send them back to an instructions page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("studies", sa.Column("instructions", sa.Text, nullable=True))
    op.add_column("studies", sa.Column("consent", sa.Text, nullable=True))
    op.add_column("studies", sa.Column("practice_items", sa.Integer, nullable=False, server_default="0"))
    op.add_column("studies", sa.Column("min_seconds", sa.Float, nullable=True))
    op.add_column("raters", sa.Column("started_at", TZ, nullable=True))
    op.add_column("raters", sa.Column("consented_at", TZ, nullable=True))
    op.add_column("raters", sa.Column("practice_done", sa.Integer, nullable=False, server_default="0"))
    op.add_column("assignments", sa.Column("shown_at", TZ, nullable=True))
    op.add_column("ratings", sa.Column("client_seconds", sa.Float, nullable=True))
    op.execute(
        "UPDATE raters SET started_at = (SELECT MIN(a.assigned_at) FROM assignments a "
        "WHERE a.rater_id = raters.id) WHERE started_at IS NULL"
    )
    _practice()
    op.create_table(
        "image_views",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("assignment_id", sa.Integer, sa.ForeignKey("assignments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("set_shown", sa.String(1), nullable=False),
        sa.Column("image", sa.Integer, nullable=True),
        sa.Column("at_seconds", sa.Float, nullable=False),
        sa.Column("open_seconds", sa.Float, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("assignment_id", "seq"),
        sa.CheckConstraint("set_shown IN ('A', 'B')", name="set_shown"),
    )
    op.create_index("ix_image_views_study_id", "image_views", ["study_id"])


def _practice() -> None:
    op.create_table(
        "practice_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("expected_fidelity", sa.SmallInteger, nullable=True),
        sa.Column("expected_alignment", sa.SmallInteger, nullable=True),
        sa.UniqueConstraint("study_id", "position"),
        sa.CheckConstraint("expected_fidelity IN (1, 2)", name="expected_fidelity"),
        sa.CheckConstraint("expected_alignment IN (1, 2)", name="expected_alignment"),
    )
    op.create_index("ix_practice_items_study_id", "practice_items", ["study_id"])
    op.create_table(
        "practice_images",
        sa.Column("practice_id", sa.Integer, sa.ForeignKey("practice_items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("slot", sa.SmallInteger, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("file", sa.String(100), nullable=False),
        sa.CheckConstraint("slot IN (1, 2)", name="slot"),
    )


def downgrade() -> None:
    op.drop_table("image_views")
    op.drop_table("practice_images")
    op.drop_table("practice_items")
    for table, column in (
        ("ratings", "client_seconds"),
        ("assignments", "shown_at"),
        ("raters", "practice_done"),
        ("raters", "consented_at"),
        ("raters", "started_at"),
        ("studies", "min_seconds"),
        ("studies", "practice_items"),
        ("studies", "consent"),
        ("studies", "instructions"),
    ):
        # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), never a batch copy: on SQLite, dropping the
        # old copy of raters or assignments would cascade-delete every rating.
        op.drop_column(table, column)
