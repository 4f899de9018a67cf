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


def simulate_fields_command(
    out: Annotated[Path, typer.Argument(help="Directory to write fields/ and truth.csv into.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of fields.")] = 100,
    seed: Seed = 0,
    size: Annotated[int, typer.Option(min=32, help='Field side in pixels (0.262"/px).')] = 256,
    ra: Annotated[float, typer.Option(help="Centre RA of the fields' area, deg.")] = 150.0,
    dec: Annotated[float, typer.Option(help="Centre Dec of that area, deg.")] = 2.0,
    radius: Annotated[float, typer.Option(help="Radius of that area, deg.")] = 1.0,
) -> None:
    """Simulate detection fields: g,r,z FITS images (TAN WCS) of galaxies and stars at known
    positions, with a truth catalog (field, x, y, ra, dec, kind, flux, size, morph_class).

    x, y are 0-based pixel positions. Fields already on disk are kept (a rerun resumes); the
    same seed gives the same files.

    Example: galdb simulate-fields fields/ --n 300 --seed 1 && galdb detect train fields/
    --model timm:resnet18
    """
    from galdb.sim.fields import simulate_fields

    with RichProgress() as progress:
        progress.start(n, "simulate fields")
        truth = simulate_fields(
            out,
            n,
            seed,
            size=size,
            ra_center=ra,
            dec_center=dec,
            field_radius_deg=radius,
            progress=progress.advance,
        )
    console.print(f"wrote {n} fields: {truth}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
    # A command of its own: `galdb simulate OUT` takes a positional directory, so a
    # `simulate fields` subcommand would read "fields" as that directory.
    app.command("simulate-fields")(simulate_fields_command)
