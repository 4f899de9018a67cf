"""``galdb search``: galaxies that look like a given galaxy, position or image."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Model, OptionalRelease, Out
from galdb.cli.output import console, print_rows
from galdb.errors import GaldbError

COLUMNS = ("rank", "galaxy_id", "source_id", "release", "ra", "dec", "similarity")


def search_command(
    ctx: typer.Context,
    model: Model,
    like: Annotated[str | None, typer.Option(help="Source id (or RELEASE::ID) to match.")] = None,
    ra: Annotated[float | None, typer.Option(help="Query: nearest galaxy to RA (deg).")] = None,
    dec: Annotated[float | None, typer.Option(help="... and Dec (deg).")] = None,
    image: Annotated[Path | None, typer.Option(help="Query: a cutout file, embedded now.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Number of neighbours.")] = 10,
    release: OptionalRelease = None,
    column: Annotated[str | None, typer.Option(help="Catalog column to filter on.")] = None,
    min_value: Annotated[float | None, typer.Option("--min", help="Lower bound.")] = None,
    max_value: Annotated[float | None, typer.Option("--max", help="Upper bound.")] = None,
    cone: Annotated[
        tuple[float, float, str] | None,
        typer.Option(help="Only within a cone: RA DEC RADIUS, e.g. --cone 150 2 1deg."),
    ] = None,
    dedup: Annotated[
        str, typer.Option(help="Drop detections this close to a kept one.")
    ] = "1arcsec",
    ef_search: Annotated[int | None, typer.Option(min=1, help="HNSW ef_search.")] = None,
    grid: Annotated[Path | None, typer.Option(help="Write a labelled PNG grid here.")] = None,
    out: Out = None,
) -> None:
    """Find the K galaxies that look most like a galaxy, a position or an image.

    The query is --like ID, --ra/--dec (the nearest catalog galaxy) or --image FILE; similarity
    is the cosine similarity of MODEL's embeddings.

    Examples:

      galdb search --model timm:resnet18 --like sim_1_0000007 -k 12 --grid similar.png

      galdb search -m checkpoint:ssl.pt --ra 150.1 --dec 2.2 --column mag_r --max 18.5

      galdb search -m checkpoint:ssl.pt --image my_cutout.fits --release dr9-south
    """
    from galdb.search import service

    if sum(x is not None for x in (like, ra, image)) != 1 or (ra is None) != (dec is None):
        raise GaldbError("give exactly one query: --like ID, --ra RA --dec DEC, or --image FILE")
    query = service.Query(like=like, position=(ra, dec) if ra is not None else None, image=image)
    result = service.run_search(
        ctx.obj,
        model,
        query,
        k=k,
        release=release,
        column=column,
        column_min=min_value,
        column_max=max_value,
        cone=cone,
        dedup=dedup,
        ef_search=ef_search,
        grid=grid,
    )
    rows = [
        (i + 1, n.galaxy_id, n.source_id, n.release, n.ra, n.dec, round(n.similarity, 4))
        for i, n in enumerate(result.neighbours)
    ]
    if out:
        from galdb.export import write_table

        write_table(COLUMNS, rows, out)
        console.print(f"wrote {len(rows)} rows to {out}")
    else:
        print_rows(COLUMNS, rows, title=f"{len(rows)} nearest to {result.description}")
    if grid:
        console.print(f"grid written to {grid}")


def register(app: typer.Typer) -> None:
    app.command("search", context_settings={"ignore_unknown_options": True})(search_command)
