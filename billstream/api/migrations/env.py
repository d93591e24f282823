"""Alembic environment: migrates the connection the API hands over, else DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from billstream.api.models import metadata


def _migrate(connection: Connection) -> None:
    # Batch mode: SQLite can only alter a table by copying it.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    from billstream.api.store import engine_url
    from billstream.settings import load_settings

    url = context.config.get_main_option("sqlalchemy.url") or load_settings().database_url
    if context.is_offline_mode():
        context.configure(url=engine_url(url), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(engine_url(url))
    try:
        with engine.begin() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


main()
