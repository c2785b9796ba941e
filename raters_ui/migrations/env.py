"""Alembic environment for the study database.

Migrations are run programmatically by ``raters_ui.db.run_migrations``, which passes an open
connection in ``config.attributes["connection"]``; there is no alembic.ini. To write a new
migration, copy the newest file in ``versions/`` (or use ``script.py.mako``) and give it the next
revision id with ``down_revision`` pointing at the previous one.
"""

from __future__ import annotations

from alembic import context

from raters_ui.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through raters_ui.db.open_db(), which supplies a connection")

context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=connection.dialect.name == "sqlite"
)
with context.begin_transaction():
    context.run_migrations()
