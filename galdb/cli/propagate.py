"""``galdb propagate``: spread a task's labels to look-alike galaxies."""

from enum import StrEnum
from typing import Annotated

import typer

from galdb.cli.options import OptionalModel, Task
from galdb.cli.output import RichProgress, console


class GraphMethod(StrEnum):
    """``ensure_graph``'s methods of a full build (see :mod:`galdb.propagate.graph`)."""

    pgvector = "pgvector"
    blocks = "blocks"
    faiss = "faiss"
    auto = "auto"


def propagate_command(
    ctx: typer.Context,
    task: Task,
    k: Annotated[int, typer.Option("--k", min=1, max=200, help="Neighbours per galaxy.")] = 15,
    model: OptionalModel = None,
    alpha: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Weight of neighbours against seeds.")
    ] = 0.9,
    workers: Annotated[int, typer.Option(min=1, help="Connections building the graph.")] = 2,
    rebuild_graph: Annotated[
        bool, typer.Option(help="Rebuild the kNN graph even if it is up to date.")
    ] = False,
    graph_method: Annotated[
        GraphMethod,
        typer.Option(
            help="How a full graph build runs: pgvector's HNSW queries (resumable), blocks "
            "(fast, in memory, lower recall on big sets), faiss (an HNSW graph built in "
            "memory; needs pip install 'galdb[faiss]'), or auto (faiss when installed and "
            "it fits in memory, else pgvector)."
        ),
    ] = GraphMethod.auto,
) -> None:
    """Label spreading over the kNN graph of the LVM's embeddings.

    The graph (k nearest neighbours of every embedded galaxy, from pgvector) is kept in
    galdb.knn_neighbours, extended in place when galaxies were added and rebuilt only when
    embeddings were removed. Human labels stay
    fixed; catalog labels are soft seeds; every other reached galaxy gets a 'propagated'
    label with a confidence, replacing the previous run's.

    Example: galdb propagate --task morphology --k 15
    """
    from galdb.db.connect import connect, database_url
    from galdb.labels.tasks import get_task
    from galdb.lvm.registry import lookup
    from galdb.propagate.run import propagate

    with connect(ctx.obj) as conn, RichProgress() as progress:
        summary = propagate(
            conn,
            database_url(ctx.obj),
            get_task(conn, task),
            lookup(conn, model),
            k=k,
            alpha=alpha,
            workers=workers,
            rebuild_graph=rebuild_graph,
            graph_method=graph_method.value,
            progress=progress,
        )
    g = summary.graph
    timings = ", ".join(f"{name} {s:.1f} s" for name, s in summary.seconds.items())
    console.print(
        f"{task}: {summary.propagated:,} propagated labels from {summary.seeds:,} seeds "
        f"({summary.fixed:,} human, fixed) over {summary.nodes:,} galaxies; graph "
        f"{g.graph_id} (k={g.k}, {g.mode}); {timings}"
    )


def register(app: typer.Typer) -> None:
    app.command("propagate")(propagate_command)
