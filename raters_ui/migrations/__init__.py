"""Alembic migrations of the study database (run by raters_ui.db.run_migrations)."""
