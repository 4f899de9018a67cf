"""``galdb embed``: vectors for every galaxy lacking one, for a model."""

from typing import Annotated

import typer

from galdb.cli.options import DEFAULT_MODEL, Model, OptionalRelease
from galdb.cli.output import RichProgress, console, err_console


def embed_command(
    ctx: typer.Context,
    model: Model = DEFAULT_MODEL,
    release: OptionalRelease = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 64,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="DataLoader reader processes (default: 0 on a machine of 2 CPUs or fewer, "
            "where they take CPU from the model, else 2).",
        ),
    ] = None,
    input_size: Annotated[
        int | None, typer.Option(min=16, help="Input side in pixels (default: the model's).")
    ] = None,
    crop: Annotated[
        float | None, typer.Option(help="Centre-crop fraction (default: the model's).")
    ] = None,
) -> None:
    """Embed every galaxy that has no vector for MODEL yet (resumable; index built at the end).

    Without --model, galdb:default: the encoder shipped with galdb (resnet10t, 64 px, trained
    on galdb's simulations; see the README's model card).

    Examples:

      galdb embed --release demo-sim

      galdb embed --model timm:convnext_nano --release demo-sim

      galdb embed --model checkpoint:pretrained.pt

      galdb embed --model hf-hub:mwalmsley/zoobot-encoder-convnext_nano
    """
    from galdb.db.connect import connect, database_url
    from galdb.ingest.runs import release_id_of
    from galdb.lvm.embed import embed
    from galdb.lvm.specs import load_model

    loaded = load_model(model, input_size=input_size, crop_fraction=crop)
    with connect(ctx.obj) as conn, RichProgress() as progress:
        rid = release_id_of(conn, release) if release else None
        summary = embed(
            conn,
            database_url(ctx.obj),
            loaded,
            release_id=rid,
            batch_size=batch_size,
            workers=workers,
            progress=progress,
        )
    console.print(
        f"model {summary.model_id} ({summary.spec}, {summary.embedding_dim}-d): "
        f"{summary.embedded:,} galaxies embedded in {summary.seconds:.1f} s "
        f"({summary.images_per_second:,.0f} images/s)"
        + ("; HNSW index built" if summary.index_built else "")
    )
    if summary.failed:
        err_console.print(
            f"{len(summary.failed)} galaxies could not be read (retried next run):"
            f" galaxy_id {summary.failed[:10]}"
        )


def register(app: typer.Typer) -> None:
    app.command("embed")(embed_command)
