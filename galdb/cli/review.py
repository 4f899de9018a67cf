"""``galdb review``: the review app, and decisions applied, exported and summarised."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import OptionalRelease, Release, Task
from galdb.cli.output import console, err_console, print_rows

app = typer.Typer(invoke_without_command=True)  # help: the callback's docstring

Reviewer = Annotated[
    str | None, typer.Option("--reviewer", help="Your name; every decision records it.")
]
OptionalTask = Annotated[
    str | None, typer.Option("--task", "-t", help="Task name (galdb task list).")
]


@app.callback()
def review_app(
    ctx: typer.Context,
    task: OptionalTask = None,
    reviewer: Reviewer = None,
    strategy: Annotated[
        str,
        typer.Option(
            help="Queue order: margin, entropy, least_confident, rare, random, disagreement, "
            "similar (with --similar-to), flagged."
        ),
    ] = "margin",
    similar_to: Annotated[
        str | None, typer.Option(help="Look-alikes of this galaxy first (a source id).")
    ] = None,
    release: OptionalRelease = None,
    cone: Annotated[
        tuple[float, float, float] | None,
        typer.Option(help="RA DEC RADIUS_DEG: only galaxies in this cone."),
    ] = None,
    column: Annotated[str | None, typer.Option(help="A catalog column for --min/--max.")] = None,
    min_value: Annotated[float | None, typer.Option("--min")] = None,
    max_value: Annotated[float | None, typer.Option("--max")] = None,
    predicted: Annotated[
        str | None, typer.Option(help="Only galaxies the head predicts as this class.")
    ] = None,
    show: Annotated[str, typer.Option(help="Catalog columns to show, comma-separated.")] = "",
    redo: Annotated[bool, typer.Option(help="Also galaxies already decided.")] = False,
) -> None:
    """Review a task's predictions: with no subcommand, open the review app on the task's
    queue; apply decisions made elsewhere, export the audit, agreement stats, or serve the app
    to a browser.

    Keys in the app: a digit or a class's initial labels it (a number for a regression),
    Enter accepts the prediction, f flags, s skips, u undoes, n shows more neighbours, ? help,
    q quits.

    Examples:

      galdb review --task morphology --reviewer ada

      galdb review --task morphology --reviewer ada --strategy rare --release dr9-south

      galdb review --task morphology --reviewer ada --strategy similar --similar-to J001240.06
    """
    if ctx.invoked_subcommand is not None:
        return
    if not task or not reviewer:
        err_console.print("galdb review needs --task and --reviewer (see galdb review --help)")
        raise typer.Exit(1)
    from galdb.review.app.run import run_app
    from galdb.review.queue import QueueFilters

    filters = QueueFilters(
        release=release,
        cone=cone,
        column=column,
        min=min_value,
        max=max_value,
        predicted_class=predicted,
    )
    run_app(
        ctx.obj,
        task,
        reviewer,
        strategy=strategy,
        filters=filters,
        redo=redo,
        similar_to=similar_to,
        show=[c for c in show.split(",") if c],
    )


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    task: Task,
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who reviews in this browser.")],
    strategy: Annotated[str, typer.Option(help="Queue order (see galdb review --help).")] = (
        "margin"
    ),
    release: OptionalRelease = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the review app to a web browser (textual-serve): each browser tab runs its own
    review session, with the same keys and the same database as the terminal app.

    Example:

      galdb review serve --task morphology --reviewer ada --port 8000
    """
    import shlex
    import sys

    from textual_serve.server import Server

    command = [sys.executable, "-m", "galdb"]
    if ctx.obj is not None:
        command += ["--data-dir", str(ctx.obj.home)]
    command += ["review", "--task", task, "--reviewer", reviewer, "--strategy", strategy]
    if release:
        command += ["--release", release]
    Server(shlex.join(command), host=host, port=port, title=f"galdb review {task}").serve()


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Decisions table.")],
    task: Task,
    release: Release,
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who made these decisions.")],
    id_col: Annotated[str, typer.Option(help="Column with the source id.")] = "source_id",
    answer_col: Annotated[str, typer.Option(help="Column with the class or value.")] = "answer",
    action_col: Annotated[
        str | None,
        typer.Option(help="Column with label/accept/flag/skip (default: every row a label)."),
    ] = None,
) -> None:
    """Apply decisions made elsewhere (e.g. a citizen-science export) as REVIEWER's.

    Each row becomes an audited decision and a human label, exactly as in the app; corrections
    count toward the task's retrain threshold. Optional columns flag_reason and note are read
    when present. Bad rows are listed by row and id; the good ones are kept.

    Example:

      galdb review apply votes.csv --task morphology -r dr9-south --reviewer gz-volunteers
    """
    from galdb.db.connect import connect
    from galdb.ingest.runs import release_id_of
    from galdb.labels.tasks import get_task
    from galdb.review.batch import apply_decisions, decision_rows

    with connect(ctx.obj) as conn:
        t = get_task(conn, task)
        summary = apply_decisions(
            conn,
            t,
            release_id_of(conn, release),
            decision_rows(path, id_col, answer_col, action_col),
            reviewer,
            origin=f"apply:{path.name}",
        )
    console.print(
        f"{summary.applied:,} of {summary.read:,} decisions applied "
        f"({summary.corrections:,} corrections); retrain jobs: "
        f"{', '.join(map(str, summary.jobs)) or 'none'}"
    )
    if summary.problems:
        print_rows(["row", "id", "problem"], summary.problems, title="not applied")
        if summary.n_problems > len(summary.problems):
            err_console.print(f"({summary.n_problems:,} problems in all)")


@app.command("export")
def export_command(
    ctx: typer.Context,
    task: Task,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="File (.csv .ecsv .fits .parquet .vot).")
    ],
) -> None:
    """Write every decision of a task (the whole audit, undos included) to a file.

    Example:

      galdb review export --task morphology --out decisions.csv
    """
    from galdb.db.connect import connect
    from galdb.export import write_table
    from galdb.labels.tasks import get_task
    from galdb.review.batch import EXPORT_COLUMNS, export_sql

    with connect(ctx.obj) as conn:
        t = get_task(conn, task)
        rows = conn.execute(export_sql(), (t.task_id,)).fetchall()
    write_table(EXPORT_COLUMNS, rows, out)
    console.print(f"wrote {len(rows):,} decisions to {out}")


@app.command("stats")
def stats_command(ctx: typer.Context, task: Task) -> None:
    """Per reviewer: decisions, corrections, agreement with the head; Cohen's kappa between
    reviewers who labelled the same galaxies.

    Example:

      galdb review stats --task morphology
    """
    from galdb.db.connect import connect
    from galdb.labels.tasks import get_task
    from galdb.review.decisions import corrections_since_current
    from galdb.review.stats import pair_agreement, reviewer_stats

    with connect(ctx.obj) as conn:
        t = get_task(conn, task)
        per = reviewer_stats(conn, t)
        pairs = pair_agreement(conn, t)
        corrections, threshold = corrections_since_current(conn, t)
    print_rows(
        ["reviewer", "decisions", "labels", "corrections", "flags", "skips", "agree with head"],
        [
            (*vars(s).values(),)[:-1]
            + (None if s.agreement_with_head is None else f"{s.agreement_with_head:.1%}",)
            for s in per
        ],
        title=f"{task}: reviewers",
    )
    if pairs:
        print_rows(
            ["reviewer A", "reviewer B", "galaxies in common", "Cohen's kappa"],
            [(p.a, p.b, p.n_common, None if p.kappa is None else f"{p.kappa:.3f}") for p in pairs],
            title="agreement between reviewers",
        )
    console.print(
        f"{corrections} of {threshold} corrections toward the next retrain "
        f"(current version {t.current_version})"
    )


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="review")
