"""``galdb sql``: run one read-only SQL statement."""

from typing import Annotated

import typer

from galdb.cli.options import Out
from galdb.cli.output import console, err_console, print_rows
from galdb.db.readonly import run_readonly
from galdb.export import write_table


def sql_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="One SQL statement (SELECT, WITH, EXPLAIN, …).")],
    out: Out = None,
    max_rows: Annotated[
        int, typer.Option(min=1, help="Print at most this many rows (files get all rows).")
    ] = 100,
) -> None:
    """Run one read-only statement as the galdb_reader role and print or save the result.

    Writes of any kind are refused. Tables: galdb.galaxies, galdb.releases, galdb.surveys,
    galdb.ingest_runs, galdb.quarantine; view galdb.catalog; function galdb.cone_search().

    Examples:

      galdb sql "SELECT release, count(*) FROM galdb.catalog GROUP BY 1"

      galdb sql "SELECT * FROM galdb.cone_search(150, 2, 0.05)" --out cone.fits
    """
    result = run_readonly(ctx.obj, query, max_rows=None if out else max_rows)
    if out:
        write_table(result.columns, result.rows, out)
        console.print(f"wrote {len(result.rows)} rows to {out}")
        return
    print_rows(result.columns, result.rows)
    if result.truncated:
        err_console.print(f"(first {max_rows} rows shown; use --max-rows or --out for all)")


def register(app: typer.Typer) -> None:
    app.command("sql")(sql_command)
