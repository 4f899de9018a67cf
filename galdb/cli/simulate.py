"""``galdb simulate`` and ``galdb simulate-fields``: GalSim mock cutouts or fields, with truth."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Seed
from galdb.cli.output import RichProgress, console

Count = Annotated[int, typer.Option("--n", min=1, help="How many to simulate.")]
CentreRA = Annotated[float, typer.Option("--ra", help="Centre RA of the simulated area, deg.")]
CentreDec = Annotated[float, typer.Option("--dec", help="Centre Dec of that area, deg.")]
Radius = Annotated[float, typer.Option("--radius", help="Radius of that area, deg.")]


def _simulate(what: str, write, out: Path, n: int, seed: int, **options) -> None:
    """Run a simulator with a progress bar and say what it wrote."""
    with RichProgress() as progress:
        progress.start(n, f"simulate {what}")
        written = write(out, n, seed, progress=progress.advance, **options)
    console.print(f"wrote {n} {what}: {written}")


def simulate_command(
    out: Annotated[Path, typer.Argument(help="Directory to write cutouts/ and catalog.csv into.")],
    n: Count = 200,
    seed: Seed = 0,
    size: Annotated[int, typer.Option(min=16, help='Cutout side in pixels (0.262"/px).')] = 64,
    ra: CentreRA = 150.0,
    dec: CentreDec = 2.0,
    radius: Radius = 1.0,
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

    sky = {"ra_center": ra, "dec_center": dec, "field_radius_deg": radius}
    if pairs:
        _simulate("pairs", simulate_pairs, out, n, seed, size=size, clean_fwhm=clean_fwhm, **sky)
    else:
        _simulate("galaxies", simulate_release, out, n, seed, size=size, **sky)


def simulate_fields_command(
    out: Annotated[Path, typer.Argument(help="Directory to write fields/ and truth.csv into.")],
    n: Count = 100,
    seed: Seed = 0,
    size: Annotated[int, typer.Option(min=32, help='Field side in pixels (0.262"/px).')] = 256,
    ra: CentreRA = 150.0,
    dec: CentreDec = 2.0,
    radius: Radius = 1.0,
) -> None:
    """Simulate detection fields: g,r,z FITS images (TAN WCS) of galaxies and stars at known
    positions, with a truth catalog (field, x, y, ra, dec, kind, flux, size, morph_class).

    x, y are 0-based pixel positions. Fields already on disk are kept (a rerun resumes); the
    same seed gives the same files.

    Example: galdb simulate-fields fields/ --n 300 --seed 1 && galdb detect train fields/
    --model timm:resnet18
    """
    from galdb.sim.fields import simulate_fields

    sky = {"ra_center": ra, "dec_center": dec, "field_radius_deg": radius}
    _simulate("fields", simulate_fields, out, n, seed, size=size, **sky)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
    # A command of its own: `galdb simulate OUT` takes a positional directory, so a
    # `simulate fields` subcommand would read "fields" as that directory.
    app.command("simulate-fields")(simulate_fields_command)
