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
    pairs: Annotated[
        bool,
        typer.Option(
            "--pairs",
            help="Restoration pairs: also clean/ (noise-free, narrow Gaussian PSF) beside the "
            "degraded cutouts/, indexed by pairs.csv instead of catalog.csv.",
        ),
    ] = False,
    clean_fwhm: Annotated[
        float, typer.Option(min=0.01, help="With --pairs: FWHM of the clean PSF, arcsec.")
    ] = 0.5,
) -> None:
    """Simulate a DESI-Legacy-Surveys-like release: g,r,z FITS cutouts and a truth catalog.

    Classes: elliptical, lenticular, spiral, edge_on, merger. The catalog holds the truth
    (class, Sersic n, half-light radius, ellipticity, magnitudes, ra, dec). Same seed, same files.

    Example: galdb simulate mock/ --n 500 --seed 1 && galdb ingest mock/ --catalog
    mock/catalog.csv --release mock-1

    Pairs for `galdb restore train`: galdb simulate pairs/ --n 2000 --pairs
    """
    from galdb.sim import simulate_release  # GalSim is slow to import: only when needed
    from galdb.sim.pairs import simulate_pairs

    field = {"ra_center": ra, "dec_center": dec, "field_radius_deg": radius}
    with RichProgress() as progress:
        progress.start(n, "simulate pairs" if pairs else "simulate")
        if pairs:
            catalog = simulate_pairs(
                out, n, seed, size=size, clean_fwhm=clean_fwhm, progress=progress.advance, **field
            )
        else:
            catalog = simulate_release(out, n, seed, size=size, progress=progress.advance, **field)
    console.print(f"wrote {n} {'pairs' if pairs else 'galaxies'}: {catalog}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
