"""Alembic environment: one chain for SQLite and Postgres (batch mode on SQLite)."""
from alembic import context

from flowdeck.server.models import Base

config = context.config
engine = config.attributes["engine"]


def run() -> None:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
