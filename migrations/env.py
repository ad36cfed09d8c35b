"""Alembic environment: the connection (already SET ROLE to the owner) is handed in by wg_api."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `wg-api migrate`, which supplies the connection.")

context.configure(connection=connection, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
