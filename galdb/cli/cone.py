"""``galdb cone``: galaxies within a radius of a position."""

from typing import Annotated

import typer

from galdb.cli.options import OptionalRelease, Out
from galdb.cli.output import console, print_rows
from galdb.db.connect import connect
from galdb.export import write_table
from galdb.search import cone_search, parse_angle

COLUMNS = ("galaxy_id", "sep_arcsec", "source_id", "release", "ra", "dec")


def cone_command(
    ctx: typer.Context,
    ra: Annotated[float, typer.Argument(help="Right ascension, degrees (ICRS).")],
    dec: Annotated[float, typer.Argument(help="Declination, degrees.")],
    radius: Annotated[str, typer.Argument(help="Radius with a unit: 30arcsec, 2arcmin, 0.1deg.")],
    release: OptionalRelease = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    out: Out = None,
) -> None:
    """List galaxies within RADIUS of (RA, DEC), nearest first, with exact separations.

    Same as SQL: SELECT * FROM galdb.cone_search(ra, dec, radius_deg);

    Example: galdb cone 150.1 2.2 2arcmin
    """
    with connect(ctx.obj) as conn:
        matches = cone_search(conn, ra, dec, parse_angle(radius), release=release, limit=limit)
    rows = [
        (m.galaxy_id, m.separation_arcsec, m.source_id, m.release, m.ra, m.dec) for m in matches
    ]
    if out:
        write_table(COLUMNS, rows, out)
        console.print(f"wrote {len(rows)} rows to {out}")
    else:
        print_rows(COLUMNS, rows, title=f"{len(rows)} galaxies within {radius} of ({ra}, {dec})")


def register(app: typer.Typer) -> None:
    # ignore_unknown_options lets a negative declination through as an argument.
    app.command("cone", context_settings={"ignore_unknown_options": True})(cone_command)
