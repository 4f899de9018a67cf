"""``galdb task``: define what heads predict."""

from typing import Annotated

import typer

from galdb.cli.output import console, print_rows

app = typer.Typer(help="Define tasks: classifications and regressions.", no_args_is_help=True)


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Task name; also its SQL view galdb_tasks.NAME.")],
    kind: Annotated[
        str, typer.Option(help="classification, regression or votes.")
    ] = "classification",
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated classes (classification).")
    ] = None,
    answers: Annotated[
        str | None, typer.Option(help="Comma-separated answers of the question (votes).")
    ] = None,
    unit: Annotated[str | None, typer.Option(help="Unit of the value (regression).")] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    precedence: Annotated[
        str, typer.Option(help="Which label source wins when a galaxy has several.")
    ] = "human,propagated,catalog",
) -> None:
    """Create a task. Its predictions will be queryable as `SELECT … FROM NAME`.

    Examples:

      galdb task create morphology --classes elliptical,spiral,edge_on,merger

      galdb task create half_light_radius --kind regression --unit arcsec

      galdb task create rings --kind votes --answers ring,no_ring
    """
    from galdb.db.connect import connect
    from galdb.errors import GaldbError
    from galdb.labels.tasks import create_task

    if classes and answers:
        raise GaldbError("give --classes (classification) or --answers (votes), not both")
    classes = classes or answers

    with connect(ctx.obj) as conn:
        task = create_task(
            conn,
            name,
            kind,
            classes=classes.split(",") if classes else None,
            unit=unit,
            description=description,
            precedence=precedence.split(","),
        )
    console.print(f"created {task.kind} task {task.name} (id {task.task_id})")


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Tasks with their label counts by source and their current head version.

    Example: galdb task list
    """
    from galdb.db.connect import connect
    from galdb.labels.tasks import list_tasks

    with connect(ctx.obj) as conn:
        rows = list_tasks(conn)
    print_rows(
        [
            "task",
            "kind",
            "classes / unit",
            "catalog",
            "human",
            "propagated",
            "current version",
            "retrain after",
            "vote weight",
        ],
        rows,
    )


@app.command("set")
def set_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Task name.")],
    retrain_threshold: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Review corrections against the current version that enqueue a retrain job.",
        ),
    ] = None,
    vote_weight: Annotated[
        float | None,
        typer.Option(help="Votes a review decision adds to its answer (vote tasks; default 1)."),
    ] = None,
) -> None:
    """Change a task's settings.

    Examples:

      galdb task set morphology --retrain-threshold 50

      galdb task set rings --vote-weight 5
    """
    from galdb.db.connect import connect
    from galdb.errors import GaldbError
    from galdb.labels.tasks import get_task, set_retrain_threshold, set_vote_weight

    if retrain_threshold is None and vote_weight is None:
        raise GaldbError("give --retrain-threshold and/or --vote-weight")
    with connect(ctx.obj) as conn:
        task = get_task(conn, name)
        if retrain_threshold is not None:
            set_retrain_threshold(conn, task, retrain_threshold)
        if vote_weight is not None:
            set_vote_weight(conn, task, vote_weight)
        conn.commit()
    if retrain_threshold is not None:
        console.print(f"{name}: a retrain job after {retrain_threshold} corrections")
    if vote_weight is not None:
        console.print(f"{name}: a review decision adds {vote_weight:g} votes to its answer")
