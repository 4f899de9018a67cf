"""``galdb pipeline``: what every newly ingested release gets, run as jobs by the worker."""

from typing import Annotated

import typer

from galdb.cli.options import Model
from galdb.cli.output import console, print_rows

app = typer.Typer(
    help="Pipelines: embed, predict, graph and propagate every new release as jobs.",
    no_args_is_help=True,
)


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


@app.command("set")
def set_command(
    ctx: typer.Context,
    model: Model,
    tasks: Annotated[
        str | None,
        typer.Option(help="Tasks to predict (default: every task whose head uses the model)."),
    ] = None,
    propagate: Annotated[
        str | None, typer.Option(help="Tasks whose labels are propagated on the kNN graph.")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=200, help="Graph neighbours.")] = 15,
) -> None:
    """Record what every ingested release gets with MODEL (replacing its earlier pipeline).

    After `galdb ingest` the worker embeds the release with the model, adds the new
    galaxies to each task's current version, brings the kNN graph up to date and
    propagates labels. The model must be registered (embedded once).

    Example:

      galdb pipeline set --model checkpoint:ssl.pt --tasks morphology --propagate morphology
    """
    from galdb.db.connect import connect
    from galdb.jobs.pipelines import set_pipeline
    from galdb.lvm.registry import lookup

    with connect(ctx.obj) as conn:
        p = set_pipeline(
            conn, lookup(conn, model), tasks=_names(tasks), propagate=_names(propagate), k=k
        )
        conn.commit()
    console.print(f"pipeline {p.pipeline_id} set for model {p.model_id}")


@app.command("show")
def show_command(ctx: typer.Context) -> None:
    """The active pipelines.

    Example:

      galdb pipeline show
    """
    from galdb.db.connect import connect
    from galdb.jobs.pipelines import active_pipelines

    with connect(ctx.obj) as conn:
        rows = [
            (
                p.pipeline_id,
                p.model_id,
                ",".join(p.tasks) or "(all using the model)",
                ",".join(p.propagate),
                p.k,
                f"{p.created_at:%Y-%m-%d %H:%M:%S}",
            )
            for p in active_pipelines(conn)
        ]
    print_rows(["pipeline", "model", "predict", "propagate", "k", "set"], rows)


@app.command("clear")
def clear_command(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only this model's (default: all).")
    ] = None,
) -> None:
    """Stop starting pipelines after ingests (jobs already queued still run).

    Example:

      galdb pipeline clear --model checkpoint:ssl.pt
    """
    from galdb.db.connect import connect
    from galdb.jobs.pipelines import clear_pipeline

    with connect(ctx.obj) as conn:
        n = clear_pipeline(conn, model)
        conn.commit()
    console.print(f"{n} pipeline(s) cleared")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="pipeline")
