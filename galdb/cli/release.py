"""``galdb release``: a release's pipeline stages."""

import typer

from galdb.cli.output import print_rows

app = typer.Typer(help="Releases: the state of their pipeline stages.", no_args_is_help=True)


def _when(t) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}" if t else ""


@app.command("status")
def status_command(
    ctx: typer.Context,
    release: str = typer.Argument(help="Release name."),
) -> None:
    """Each stage of RELEASE (ingest, embed, predict, graph, propagate): status, counts, times.

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


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="release")
