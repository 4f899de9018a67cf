"""``galdb db``: create, inspect, migrate and stop the database."""

import typer

from galdb.cli.output import console
from galdb.db import admin, server
from galdb.db.connect import _redact, database_url

app = typer.Typer(help="Create, inspect, migrate and stop galdb's database.", no_args_is_help=True)


@app.command()
def init(
    ctx: typer.Context,
    citus: bool = typer.Option(
        False,
        "--citus",
        help="Distribute galdb's tables over the Citus cluster whose coordinator "
        "GALDB_DATABASE_URL names (galaxies, embeddings, labels, predictions on galaxy_id; "
        "surveys, releases, models, tasks as reference tables).",
    ),
    shards: int = typer.Option(
        None,
        "--shards",
        min=1,
        help="With --citus: shards of the galaxies and the tables co-located with them "
        "(default: the server's citus.shard_count, 32). A few per worker core.",
    ),
) -> None:
    """Create the database (starting the embedded server if used) and apply all migrations.

    Example: galdb db init
    Example (Citus): GALDB_DATABASE_URL=postgresql://galdb@coordinator/galdb galdb db init --citus
    """
    revision = admin.init(ctx.obj, citus=citus, shards=shards)
    where = " (distributed with Citus)" if citus else ""
    console.print(f"database ready at schema revision {revision}{where}")


@app.command("migrate")
def migrate_command(ctx: typer.Context) -> None:
    """Apply migrations not yet applied (safe to run any time).

    Example: galdb db migrate
    """
    revision = admin.init(ctx.obj)
    console.print(f"schema at revision {revision}")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the server, schema revision, versions and row counts.

    Example: galdb db status
    """
    st = admin.status(ctx.obj)
    where = f"embedded (pid {st.server_pid})" if st.embedded else "external"
    console.print(f"database     {st.url}  [{where}]")
    console.print(
        f"versions     PostgreSQL {st.versions['postgresql']}, pgvector {st.versions['pgvector']}"
    )
    state = "up to date" if st.up_to_date else f"behind (head is {st.head}); run `galdb db migrate`"
    console.print(f"schema       {st.revision or 'not initialised'} ({state})")
    for table, n in st.counts.items():
        console.print(f"{table:<12} {n:,}")


@app.command()
def url(ctx: typer.Context) -> None:
    """Print the database URL (for psql or other clients); starts the embedded server if needed.

    Example: psql "$(galdb db url)"
    """
    console.print(_redact(database_url(ctx.obj)), highlight=False, soft_wrap=True)


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the embedded server (an external database is left alone).

    Example: galdb db stop
    """
    if not ctx.obj.embedded:
        console.print("GALDB_DATABASE_URL is set: galdb does not manage that server")
        return
    stopped = server.stop(ctx.obj.pgdata)
    console.print("stopped" if stopped else "the embedded server was not running")
