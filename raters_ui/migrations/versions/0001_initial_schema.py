"""Initial schema: studies, systems, items (+ images), raters, assignments, ratings.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _fk(column: str, target: str, cascade: bool = True) -> sa.Column:
    return sa.Column(column, sa.Integer, sa.ForeignKey(target, ondelete="CASCADE" if cascade else None), nullable=False)


def upgrade() -> None:
    for create in (_studies, _systems, _items, _raters, _assignments, _ratings):
        create()


def _studies() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("suite", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("ratings_per_item", sa.Integer, nullable=False),
        sa.Column("items_per_rater", sa.Integer, nullable=True),
        sa.Column("control_every", sa.Integer, nullable=False),
        sa.Column("control_threshold", sa.Float, nullable=False),
        sa.Column("admin_token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("store_dir", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
    )


def _systems() -> None:
    op.create_table(
        "systems",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("study_id", "studies.id"),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(300), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.UniqueConstraint("study_id", "label"),
    )
    op.create_index("ix_systems_study_id", "systems", ["study_id"])


def _items() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("study_id", "studies.id"),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prompt_id", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("category", sa.String(200), nullable=True),
        _fk("system_1_id", "systems.id", cascade=False),
        sa.Column("system_2_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=True),
        sa.Column("control_mode", sa.String(16), nullable=True),
        sa.Column("expected_fidelity", sa.SmallInteger, nullable=True),
        sa.Column("expected_alignment", sa.SmallInteger, nullable=True),
        sa.UniqueConstraint("study_id", "key"),
        sa.CheckConstraint("kind IN ('main', 'control')", name="kind"),
        sa.CheckConstraint("expected_fidelity IN (1, 2)", name="expected_fidelity"),
        sa.CheckConstraint("expected_alignment IN (1, 2)", name="expected_alignment"),
    )
    op.create_index("ix_items_study_id", "items", ["study_id"])
    op.create_table(
        "item_images",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("slot", sa.SmallInteger, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("file", sa.String(100), nullable=False),
        sa.CheckConstraint("slot IN (1, 2)", name="slot"),
    )


def _raters() -> None:
    op.create_table(
        "raters",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("study_id", "studies.id"),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("study_id", "label"),
    )
    op.create_index("ix_raters_study_id", "raters", ["study_id"])


def _assignments() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("study_id", "studies.id"),
        _fk("rater_id", "raters.id"),
        _fk("item_id", "items.id"),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("a_slot", sa.SmallInteger, nullable=False),
        sa.Column("is_control", sa.Boolean, nullable=False),
        sa.Column("assigned_at", TZ, nullable=False),
        sa.Column("completed_at", TZ, nullable=True),
        sa.Column("expected_total", sa.Integer, nullable=True),
        sa.UniqueConstraint("rater_id", "item_id"),
        sa.CheckConstraint("a_slot IN (1, 2)", name="a_slot"),
    )
    op.create_index("ix_assignments_study_id", "assignments", ["study_id"])
    op.create_index("ix_assignments_item_state", "assignments", ["item_id", "completed_at"])


def _ratings() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True),
        _fk("study_id", "studies.id"),
        _fk("assignment_id", "assignments.id"),
        _fk("rater_id", "raters.id"),
        _fk("item_id", "items.id"),
        sa.Column("question", sa.String(16), nullable=False),
        sa.Column("choice", sa.String(16), nullable=False),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("rater_id", "item_id", "question"),
        sa.CheckConstraint("question IN ('fidelity', 'alignment')", name="question"),
        sa.CheckConstraint("choice IN ('A', 'B', 'indifferent')", name="choice"),
    )
    op.create_index("ix_ratings_study_id", "ratings", ["study_id"])


def downgrade() -> None:
    for table in ("ratings", "assignments", "raters", "item_images", "items", "systems", "studies"):
        op.drop_table(table)
