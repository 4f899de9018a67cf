"""``galdb release``: a release's pipeline stages; its lineage to an earlier release."""

import typer

from galdb.cli.output import RichProgress, console, print_rows

app = typer.Typer(
    help="Releases: the state of their pipeline stages; lineage between releases.",
    no_args_is_help=True,
)


def _when(t) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}" if t else ""


@app.command("status")
def status_command(
    ctx: typer.Context,
    release: str = typer.Argument(help="Release name."),
) -> None:
    """Each stage of RELEASE (ingest, lineage when it has one, embed, predict, graph,
    propagate): status, counts, times.

    Example:

      galdb release status dr10-south
    """
    from galdb.db.connect import connect
    from galdb.jobs.status import release_status

    with connect(ctx.obj) as conn:
        stages = release_status(conn, release)
    rows = [
        (
            s.stage,
            s.job_id,
            s.status,
            s.attempts or "",
            _when(s.created_at),
            _when(s.finished_at),
            f"{s.seconds:.1f}" if s.seconds is not None else "",
            s.result or ((s.error or "").splitlines() or [""])[0],
        )
        for s in stages
    ]
    print_rows(["stage", "job", "status", "attempts", "queued", "finished", "s", "result"], rows)


@app.command("match")
def match_command(
    ctx: typer.Context,
    release: str = typer.Argument(help="The later release (NEW)."),
    to: str = typer.Option(..., "--to", help="The earlier release of the same survey (OLD)."),
    radius: str = typer.Option("1arcsec", help="Largest separation of a match, e.g. 0.5arcsec."),
    page_size: int = typer.Option(50_000, min=1, help="Galaxy ids per transaction."),
    redo: bool = typer.Option(False, "--redo", help="Match again even if nothing changed."),
) -> None:
    """Match every galaxy of RELEASE to the release --to: the same object gets the same
    lineage (galdb.galaxy_lineage, galdb.lineage_of(galaxy_id)).

    A pair is matched by key (the same brickid/objid, positions within --radius) before any
    by position (the nearest within --radius); one-to-one, the closest pair wins. Galaxies
    left unmatched start their own lineage. Commits page by page: a killed match resumes
    where it stopped; a rerun with nothing changed returns the recorded result.

    Example:

      galdb release match dr10-south --to dr9-south --radius 1arcsec
    """
    from galdb.db.connect import connect
    from galdb.ingest.lineage import match_releases
    from galdb.search.cone import parse_angle

    radius_arcsec = parse_angle(radius) * 3600.0
    with connect(ctx.obj) as conn, RichProgress() as progress:
        s = match_releases(
            conn,
            release,
            to,
            radius_arcsec=radius_arcsec,
            page_size=page_size,
            redo=redo,
            progress=progress,
        )
    if s.reused:
        console.print(f"{release!r} and {to!r} are unchanged since their last match")
    console.print(
        f"{s.release!r} matched to {s.previous!r} within {s.radius_arcsec:g} arcsec: "
        f"{s.by_key:,} by key, {s.by_position:,} by position, {s.new:,} new, "
        f"{s.not_found:,} of {s.previous!r} not found again ({s.seconds:.1f} s)",
        soft_wrap=True,  # one line, so it can be grepped
    )


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="release")
