"""``galdb head``: train heads on embeddings and materialize their predictions."""

from typing import Annotated

import typer

from galdb.cli.options import OptionalModel, Task
from galdb.cli.output import RichProgress, console, print_rows

app = typer.Typer(help="Train task heads and write their predictions.", no_args_is_help=True)

Sources = Annotated[str, typer.Option(help="Label sources to train on, comma-separated.")]


@app.command("train")
def train_command(
    ctx: typer.Context,
    task: Task,
    model: OptionalModel = None,
    sources: Sources = "human,catalog",
    c: Annotated[
        float | None, typer.Option("--C", help="Inverse regularisation (classification).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the cross-validation folds.")] = 0,
    predict: Annotated[
        bool, typer.Option(help="Materialize predictions for every galaxy after training.")
    ] = True,
    finetune: Annotated[
        bool, typer.Option(help="Fine-tune the backbone's last stages on the cutouts.")
    ] = False,
    unfreeze: Annotated[int, typer.Option(min=1, help="--finetune: stages trained.")] = 2,
    epochs: Annotated[int, typer.Option(min=1, help="--finetune: epoch cap.")] = 30,
    patience: Annotated[
        int, typer.Option(min=1, help="--finetune: epochs without held-out gain before stop.")
    ] = 5,
) -> None:
    """Train a head for TASK on the LVM's embeddings; a new version with cross-validated
    metrics, then (by default) its predictions for every embedded galaxy, made current.

    --finetune trains the backbone's last --unfreeze stages with a linear classifier on the
    labelled cutouts (pretraining's augmentations, class weights, early stopping on a
    held-out fold); the version stores the network and its predictions take a forward pass
    per galaxy (resumable: rerun `galdb head predict` after an interruption).

    Examples:

      galdb head train --task morphology --model checkpoint:ssl.pt

      galdb head train --task half_light_radius --sources catalog,human --no-predict

      galdb head train --task spiral --model checkpoint:ssl.pt --finetune --unfreeze 2
    """
    from galdb.db.connect import connect
    from galdb.heads.materialize import materialize
    from galdb.heads.versions import train_finetuned_head, train_head
    from galdb.labels.tasks import get_task
    from galdb.lvm.registry import lookup

    with connect(ctx.obj) as conn:
        t = get_task(conn, task)
        if finetune:
            from galdb.heads.finetune import FinetuneConfig

            config = FinetuneConfig(
                unfreeze=unfreeze, max_epochs=epochs, patience=patience, seed=seed
            )
            with RichProgress() as progress:
                version = train_finetuned_head(
                    conn,
                    t,
                    lookup(conn, model),
                    config,
                    sources=tuple(sources.split(",")),
                    progress=progress,
                )
        else:
            version = train_head(
                conn,
                t,
                lookup(conn, model),
                sources=tuple(sources.split(",")),
                hyperparameters={"C": c} if c is not None and "C" in t.kind_spec.tunable else None,
                seed=seed,
            )
        conn.commit()
        console.print(
            f"{task} head version {version.version_id} ({version.algorithm}, model "
            f"{version.model_id}, {version.n_labels:,} labels)"
        )
        shown = sorted((k, v) for k, v in version.metrics.items() if not isinstance(v, list))
        print_rows(["metric", "value"], shown, title="held-out" if finetune else "cross-validated")
        if predict:
            with RichProgress() as progress:
                n = materialize(conn, t, version.version_id, progress=progress)
            console.print(f"{n:,} predictions in galdb_tasks.{task} (version {version.version_id})")


@app.command("predict")
def predict_command(
    ctx: typer.Context,
    task: Task,
    version: Annotated[int | None, typer.Option(help="Head version (default: the newest).")] = None,
) -> None:
    """Write the predictions of a head version for every embedded galaxy, then make that
    version current (atomically: readers of the task's view never see a half-written one).

    Examples:

      galdb head predict --task morphology

      galdb head predict --task morphology --version 3   # roll back to version 3
    """
    from galdb.db.connect import connect
    from galdb.heads.materialize import materialize
    from galdb.heads.versions import get_version
    from galdb.labels.tasks import get_task

    with connect(ctx.obj) as conn, RichProgress() as progress:
        t = get_task(conn, task)
        v = get_version(conn, t, version)
        n = materialize(conn, t, v.version_id, progress=progress)
    console.print(f"{n:,} predictions in galdb_tasks.{task} (version {v.version_id}, now current)")


@app.command("list")
def list_command(ctx: typer.Context, task: Task) -> None:
    """Versions of a task's head, with their labels, metrics and predictions table.

    Example: galdb head list --task morphology
    """
    from galdb.db.connect import connect
    from galdb.heads.versions import list_versions
    from galdb.labels.tasks import get_task

    with connect(ctx.obj) as conn:
        t = get_task(conn, task)
        versions = list_versions(conn, t)
    keys = t.kind_spec.summary_metrics
    print_rows(
        ["version", "model", "labels", *keys, "status", "predictions", "current"],
        [
            (
                v.version_id,
                v.model_id,
                v.n_labels,
                *(_number(v.metrics.get(k)) for k in keys),
                v.status,
                v.n_predictions,
                "*" if v.version_id == t.current_version else "",
            )
            for v in versions
        ],
        title=f"{task}: predictions of version N in galdb_predictions.vN",
    )


def _number(value) -> str:
    return "" if value is None else f"{value:.3f}"
