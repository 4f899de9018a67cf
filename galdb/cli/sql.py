"""``galdb sql``: run one read-only SQL statement."""

from typing import Annotated

import typer

from galdb.cli.options import Force, Out
from galdb.cli.output import console, err_console, print_rows
from galdb.db.readonly import stream_readonly
from galdb.export import STREAMED, TableOutput


def sql_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="One SQL statement (SELECT, WITH, EXPLAIN, …).")],
    out: Out = None,
    force: Force = False,
    max_rows: Annotated[
        int, typer.Option(min=1, help="Print at most this many rows (files get all rows).")
    ] = 100,
) -> None:
    """Run one read-only statement as the galdb_reader role and print or save the result.

    Writes of any kind are refused. Rows are read as they arrive; a result larger than
    GALDB_SQL_MAX_BYTES (default 256 MiB) held in memory stops with a message (CSV, ECSV
    and VOTable files are written as rows arrive, so only one row need fit).
    Tables: galdb.galaxies, galdb.releases, galdb.surveys, galdb.ingest_runs,
    galdb.quarantine; view galdb.catalog; function galdb.cone_search().

    Examples:

      galdb sql "SELECT release, count(*) FROM galdb.catalog GROUP BY 1"

      galdb sql "SELECT * FROM galdb.cone_search(150, 2, 0.05)" --out cone.fits
    """
    if out:
        with TableOutput(out, overwrite=force) as output:  # checked before the query runs
            hold = output.format not in STREAMED
            with stream_readonly(ctx.obj, query, hold=hold) as result:
                n = output.write(result.columns, result.chunks(), result.type_names)
        console.print(f"wrote {n} rows to {out}")
        return
    with stream_readonly(ctx.obj, query, max_rows=max_rows) as result:
        rows = list(result.rows())
    print_rows(result.columns, rows)
    if result.truncated:
        err_console.print(f"(first {max_rows} rows shown; use --max-rows or --out for all)")


def register(app: typer.Typer) -> None:
    app.command("sql")(sql_command)
