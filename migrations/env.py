"""Alembic environment: runs migrations on the connection galdb hands over."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table_schema="public")
with context.begin_transaction():
    context.run_migrations()
