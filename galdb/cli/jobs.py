"""``galdb worker`` and ``galdb jobs``: run background jobs and look after them."""

from typing import Annotated

import typer

from galdb.cli.output import console, print_rows

app = typer.Typer(
    help="Background jobs (retraining heads): list, show, retry, cancel.", no_args_is_help=True
)

JobId = Annotated[int, typer.Argument(help="Job id (galdb jobs list).")]


def worker_command(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option(help="Run the jobs that are ready now, then exit (for cron, demos).")
    ] = False,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between polls while idle.")] = 5.0,
    heartbeat_timeout: Annotated[
        float,
        typer.Option(min=0.5, help="A running job silent this many seconds is claimed again."),
    ] = 60.0,
    heartbeat_every: Annotated[
        float, typer.Option(min=0.1, help="Seconds between a running job's heartbeats.")
    ] = 5.0,
) -> None:
    """Wait for jobs (retraining after review corrections) and run them; Ctrl-C stops.

    Jobs are claimed with FOR UPDATE SKIP LOCKED, so several workers (on several machines)
    can run side by side. A failed attempt is retried with backoff, up to the job's attempts.

    Examples:

      galdb worker

      galdb worker --once
    """
    from galdb.jobs.worker import run_worker

    n = run_worker(
        ctx.obj,
        once=once,
        poll=poll,
        heartbeat_timeout=heartbeat_timeout,
        heartbeat_every=heartbeat_every,
        log=console.print,
    )
    console.print(f"{n} job(s) run")


_COLUMNS = ["job", "kind", "status", "attempts", "created", "finished", "payload", "error"]


def _row(job) -> tuple:
    error = (job.error or "").splitlines()[0] if job.error else ""
    finished = f"{job.finished_at:%Y-%m-%d %H:%M:%S}" if job.finished_at else ""
    return (
        job.job_id,
        job.kind,
        job.status,
        f"{job.attempts}/{job.max_attempts}",
        f"{job.created_at:%Y-%m-%d %H:%M:%S}",
        finished,
        job.payload,
        error,
    )


@app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="queued, running, done, failed, cancelled")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind, e.g. retrain.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Newest first, at most this many.")] = 50,
) -> None:
    """List jobs, newest first.

    Example:

      galdb jobs list --status failed
    """
    from galdb.db.connect import connect
    from galdb.jobs.queue import list_jobs

    with connect(ctx.obj) as conn:
        jobs = list_jobs(conn, status=status, kind=kind, limit=limit)
    print_rows(_COLUMNS, [_row(j) for j in jobs])


@app.command("show")
def show_command(ctx: typer.Context, job_id: JobId) -> None:
    """Everything about one job: payload, progress, result, the whole last error.

    Example:

      galdb jobs show 12
    """
    from galdb.db.connect import connect
    from galdb.jobs.queue import get_job

    with connect(ctx.obj) as conn:
        job = get_job(conn, job_id)
    print_rows(["field", "value"], [(k, v) for k, v in vars(job).items()])


@app.command("retry")
def retry_command(ctx: typer.Context, job_id: JobId) -> None:
    """Queue a failed or cancelled job again with a fresh attempt budget.

    Example:

      galdb jobs retry 12
    """
    from galdb.db.connect import connect
    from galdb.jobs.queue import retry

    with connect(ctx.obj) as conn:
        job = retry(conn, job_id)
        conn.commit()
    console.print(f"job {job.job_id} queued again")


@app.command("cancel")
def cancel_command(ctx: typer.Context, job_id: JobId) -> None:
    """Cancel a queued or running job (a running one stops recording at its next heartbeat).

    Example:

      galdb jobs cancel 12
    """
    from galdb.db.connect import connect
    from galdb.jobs.queue import cancel

    with connect(ctx.obj) as conn:
        cancel(conn, job_id)
        conn.commit()
    console.print(f"job {job_id} cancelled")


def register(parent: typer.Typer) -> None:
    parent.command("worker")(worker_command)
    parent.add_typer(app, name="jobs")
