"""``galdb simulate``: write a GalSim mock release with truth."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Seed
from galdb.cli.output import RichProgress, console


def simulate_command(
    out: Annotated[Path, typer.Argument(help="Directory to write cutouts/ and catalog.csv into.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of galaxies.")] = 200,
    seed: Seed = 0,
    size: Annotated[int, typer.Option(min=16, help='Cutout side in pixels (0.262"/px).')] = 64,
    ra: Annotated[float, typer.Option(help="Field centre RA, deg.")] = 150.0,
    dec: Annotated[float, typer.Option(help="Field centre Dec, deg.")] = 2.0,
    radius: Annotated[float, typer.Option(help="Field radius, deg.")] = 1.0,
) -> None:
    """Simulate a DESI-Legacy-Surveys-like release: g,r,z FITS cutouts and a truth catalog.

    Classes: elliptical, lenticular, spiral, edge_on, merger. The catalog holds the truth
    (class, Sersic n, half-light radius, ellipticity, magnitudes, ra, dec). Same seed, same files.

    Example: galdb simulate mock/ --n 500 --seed 1 && galdb ingest mock/ --catalog
    mock/catalog.csv --release mock-1
    """
    from galdb.sim import simulate_release  # GalSim is slow to import: only when needed

    with RichProgress() as progress:
        progress.start(n, "simulate")
        catalog = simulate_release(
            out,
            n,
            seed,
            size=size,
            ra_center=ra,
            dec_center=dec,
            field_radius_deg=radius,
            progress=progress.advance,
        )
    console.print(f"wrote {n} galaxies: {catalog}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
