"""Alembic migrations: the schema's linear history (one file per step in ``versions/``)."""
