"""The ``galdb`` command: one small module per command group, no logic beyond parse and print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from galdb.cli import (
    cone,
    db,
    demo,
    detect,
    embed,
    evaluate,
    head,
    ingest,
    jobs,
    label,
    lvm,
    pipeline,
    propagate,
    release,
    restore,
    review,
    search,
    simulate,
    sql,
    task,
)
from galdb.cli.output import err_console, styled
from galdb.db.connect import as_connection_error
from galdb.db.settings import Settings
from galdb.errors import GaldbError

app = typer.Typer(
    name="galdb",
    help="A catalog of galaxy images in PostgreSQL: ingest survey releases, cone search, SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="GALDB_HOME",
            help="galdb's data directory (embedded database, demo output). "
            "Default: the per-user data directory. GALDB_DATABASE_URL overrides the database.",
        ),
    ] = None,
) -> None:
    ctx.obj = Settings.from_env(data_dir)


app.add_typer(db.app, name="db")
app.add_typer(lvm.app, name="lvm")
app.add_typer(task.app, name="task")
app.add_typer(label.app, name="label")
app.add_typer(head.app, name="head")
app.add_typer(evaluate.app, name="eval")
app.add_typer(restore.app, name="restore")
app.add_typer(detect.app, name="detect")
for module in (ingest, embed, search, cone, sql, simulate, demo, propagate, jobs, review):
    module.register(app)
for module in (pipeline, release):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; domain errors print one line and return their exit status."""
    try:
        app(args=argv, prog_name="galdb")  # standalone mode: usage errors exit by themselves
    except GaldbError as exc:
        return _report(as_connection_error(exc) or exc)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        # A connection lost mid-command (server stopped or killed, backend terminated) surfaces
        # as a driver error anywhere in the library; anything else is a bug: traceback.
        lost = as_connection_error(exc)
        if lost is None:
            raise
        return _report(lost)
    return 0


def _report(exc: GaldbError) -> int:
    """Print ``exc`` as one line (never wrapped) and return its exit status."""
    message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    err_console.print(styled(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    return exc.exit_code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
