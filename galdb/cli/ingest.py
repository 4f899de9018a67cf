"""``galdb ingest``: load a survey release (cutouts, catalog + images, or HDF5)."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Release
from galdb.cli.output import RichProgress, console, print_rows, styled
from galdb.db.connect import connect
from galdb.errors import GaldbError, IngestFailed
from galdb.ingest import (
    FORMATS,
    READERS,
    Columns,
    IngestSummary,
    LegacySurveyOptions,
    Selection,
    ingest,
)
from galdb.ingest.cutout_service import DEFAULT_BASE_URL


def ingest_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Directory of cutouts, catalog table or HDF5 file.")],
    release: Release,
    catalog: Annotated[Path | None, typer.Option(help="Catalog naming id, ra, dec, file.")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"One of {', '.join(FORMATS)}; default: detect.")
    ] = None,
    survey: Annotated[str, typer.Option(help="Survey the release belongs to.")] = "unspecified",
    id_col: Annotated[str | None, typer.Option(help="Catalog column with the source id.")] = None,
    ra_col: Annotated[str | None, typer.Option(help="Catalog column with RA (deg).")] = None,
    dec_col: Annotated[str | None, typer.Option(help="Catalog column with Dec (deg).")] = None,
    file_col: Annotated[str | None, typer.Option(help="Catalog column with the file.")] = None,
    pixel_scale: Annotated[float | None, typer.Option(help="Arcsec/px if files lack it.")] = None,
    bands: Annotated[str | None, typer.Option(help="Band names, e.g. g,r,z.")] = None,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of a CSV catalog, e.g. latin-1.")
    ] = "utf-8",
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 5000,
    reader: Annotated[
        str,
        typer.Option(
            help="Where a catalog is parsed: auto (a separate process for catalogs of 8 MiB "
            "or more), inline or process."
        ),
    ] = "auto",
    queue: Annotated[
        bool, typer.Option("--queue", help="Enqueue the ingest as a job for `galdb worker`.")
    ] = False,
    cutouts: Annotated[
        Path | None,
        typer.Option(help="legacysurvey: cache directory the cutouts are fetched into."),
    ] = None,
    layer: Annotated[str, typer.Option(help="legacysurvey: viewer layer.")] = "ls-dr10",
    size: Annotated[int, typer.Option(min=8, help="legacysurvey: cutout side (px).")] = 64,
    pixscale: Annotated[float, typer.Option(help="legacysurvey: arcsec/px.")] = 0.262,
    max_mag: Annotated[
        float | None, typer.Option(help="legacysurvey: faintest dereddened mag kept.")
    ] = None,
    mag_band: Annotated[str, typer.Option(help="legacysurvey: band of --max-mag.")] = "r",
    exclude_types: Annotated[
        str, typer.Option(help="legacysurvey: Tractor types left out ('' keeps all).")
    ] = "PSF,DUP",
    all_bricks: Annotated[
        bool, typer.Option("--all-bricks", help="legacysurvey: keep non-brick_primary rows.")
    ] = False,
    jpeg: Annotated[
        bool, typer.Option("--jpeg", help="legacysurvey: fetch JPEG instead of FITS cutouts.")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, help="legacysurvey: cutout requests in flight at once.")
    ] = 8,
    retries: Annotated[int, typer.Option(min=0, help="legacysurvey: retries per cutout.")] = 4,
    timeout: Annotated[float, typer.Option(help="legacysurvey: seconds per request.")] = 60.0,
    cutout_url: Annotated[
        str, typer.Option(help="legacysurvey: base URL of the cutout service.")
    ] = DEFAULT_BASE_URL,
    lineage_from: Annotated[
        str | None,
        typer.Option(
            help="Match the release to this earlier one (default for legacysurvey: the newest "
            "earlier Legacy Surveys release of the same survey)."
        ),
    ] = None,
) -> None:
    """Ingest a release; re-running inserts nothing twice and resumes an interrupted run.

    Bad inputs (corrupt files, missing coordinates, duplicate ids, …) go to galdb.quarantine
    with a reason; the rest is stored. Exit status is non-zero only when nothing was stored.

    Examples:

      galdb ingest cutouts/ --release dr9-south --survey "DESI Legacy Surveys"

      galdb ingest images/ --catalog catalog.csv --release gzd5 --id-col iauname

      galdb ingest ssl_legacysurvey.h5 --release ssl-south

      galdb ingest old_catalog.csv --release legacy --encoding latin-1

      galdb ingest dr10/cutouts/ --release dr10-south --queue

      galdb ingest sweep.fits --format legacysurvey -r dr10-south --cutouts ls/ --max-mag 20

      galdb ingest tractor-1126p222.fits --format legacysurvey -r dr10 --cutouts ls/ --queue

    --format legacysurvey reads a Tractor or sweep catalog, keeps galaxies (not --exclude-types,
    brick_primary, --max-mag), keys them release/brickid/objid and fetches their cutouts from
    the Legacy Surveys viewer into --cutouts (cached: a rerun fetches only what is missing).

    With an active pipeline (galdb pipeline set), a successful ingest enqueues its first
    stage for `galdb worker`; --queue makes the ingest itself a job. A legacysurvey ingest
    into a release with an earlier Legacy Surveys release of the same survey (or any ingest
    with --lineage-from OLD) also enqueues the lineage match (galdb release match).
    """
    columns = Columns(id=id_col, ra=ra_col, dec=dec_col, file=file_col)
    if reader not in READERS:
        raise GaldbError(f"--reader must be one of {', '.join(READERS)}, not {reader!r}")
    legacysurvey = None
    if fmt == "legacysurvey" or cutouts is not None:
        if cutouts is None:
            raise GaldbError("--format legacysurvey needs --cutouts DIR (the cutout cache)")
        selection = Selection(
            exclude_types=tuple(t.strip() for t in exclude_types.split(",") if t.strip()),
            primary_only=not all_bricks,
            max_mag=max_mag,
            band=mag_band,
        )
        legacysurvey = LegacySurveyOptions(
            cutouts=cutouts,
            selection=selection,
            layer=layer,
            pixscale=pixscale,
            bands=(bands or "grz").replace(",", ""),
            size=size,
            kind="jpeg" if jpeg else "fits",
            base_url=cutout_url,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
        )
    if queue:
        _enqueue(
            ctx,
            path,
            release,
            catalog,
            columns,
            fmt=fmt,
            survey=survey,
            pixel_scale=pixel_scale,
            bands=bands,
            encoding=encoding,
            batch_size=batch_size,
            legacysurvey=legacysurvey,
            lineage_from=lineage_from,
        )
        return
    with connect(ctx.obj) as conn, RichProgress() as progress:
        summary = ingest(
            conn,
            path,
            release,
            catalog=catalog,
            fmt=fmt,
            columns=columns,
            survey=survey,
            pixel_scale=pixel_scale,
            bands=bands,
            encoding=encoding,
            batch_size=batch_size,
            progress=progress,
            legacysurvey=legacysurvey,
            reader=reader,
        )
        _print_summary(summary)
        if not summary.stored_anything:
            raise IngestFailed(f"nothing from {path} could be ingested (see the problems above)")
        _follow_up(conn, summary, lineage_from)


def _enqueue(ctx, path, release, catalog, columns, **options) -> None:
    from galdb.jobs.ingest import enqueue_ingest

    with connect(ctx.obj) as conn:
        job_id = enqueue_ingest(conn, path, release, catalog=catalog, columns=columns, **options)
        conn.commit()
    console.print(f"ingest of {path} into {release!r} queued as job {job_id} (galdb worker)")


def _follow_up(conn, s: IngestSummary, lineage_from: str | None) -> None:
    from galdb.jobs.ingest import follow_up

    after = follow_up(conn, s, lineage_from=lineage_from)
    conn.commit()
    for pipeline_id, job_id in after.pipelines:
        console.print(
            f"pipeline {pipeline_id}: embed job {job_id} queued (galdb release status {s.release})"
            if job_id
            else f"pipeline {pipeline_id}: already queued for run {s.run_id}"
        )
    if after.lineage_job:
        console.print(
            f"lineage: match to {after.lineage_from!r} queued as job {after.lineage_job} "
            f"(galdb worker; or now: galdb release match {s.release} --to {after.lineage_from})"
        )


def _print_summary(s: IngestSummary) -> None:
    if s.problems:
        rows = [(p.source, p.item, str(p.code), p.reason) for p in s.problems]
        print_rows(("file", "where", "code", "problem"), rows, title="quarantined")
        if s.quarantined > len(s.problems):
            console.print(
                f"… and {s.quarantined - len(s.problems)} more: "
                f"SELECT * FROM galdb.quarantine WHERE run_id = {s.run_id}"
            )
    if s.skipped_unchanged:
        console.print(f"{s.source} is unchanged since it was fully ingested: nothing to do")
    console.print(
        styled(
            f"run {s.run_id} ({s.format}) into release {s.release!r}: ",
            (f"{s.inserted:,} inserted", "green"),
            f", {s.present:,} already present, ",
            (f"{s.quarantined:,} quarantined", "yellow"),
            f" in {s.seconds:.1f} s ({s.rows_per_second:,.0f} rows/s)",
        ),
        soft_wrap=True,  # one line, so it can be grepped
    )


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
