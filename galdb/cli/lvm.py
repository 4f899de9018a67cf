"""``galdb lvm``: pretrain a backbone on the catalog's cutouts; probe embeddings with labels."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Model, Out
from galdb.cli.output import RichProgress, console, print_rows

app = typer.Typer(help="Pretrain and evaluate large vision models.", no_args_is_help=True)


@app.command("pretrain")
def pretrain_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint file to write.")],
    arch: Annotated[str, typer.Option(help="timm architecture, e.g. resnet18.")] = "resnet18",
    input_size: Annotated[int, typer.Option(min=16, help="Input side, pixels.")] = 64,
    crop: Annotated[float, typer.Option(help="Centre-crop fraction before resizing.")] = 0.6,
    minutes: Annotated[float, typer.Option(help="Time budget.")] = 30.0,
    epochs: Annotated[int, typer.Option(min=1, help="Epoch cap.")] = 100,
    batch_size: Annotated[int, typer.Option(min=8)] = 128,
    release: Annotated[list[str] | None, typer.Option(help="Only these releases.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Self-supervised SimCLR pretraining on every cutout in the catalog (or --release ones).

    Writes a checkpoint for `galdb embed --model checkpoint:OUT`.

    Example: galdb lvm pretrain --arch resnet18 --minutes 30 --out ssl-resnet18.pt
    """
    from galdb.db.connect import connect
    from galdb.lvm.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        arch=arch,
        input_size=input_size,
        crop_fraction=crop,
        minutes=minutes,
        epochs=epochs,
        batch_size=batch_size,
        releases=tuple(release or ()),
        seed=seed,
    )
    with connect(ctx.obj) as conn, RichProgress() as progress:
        s = pretrain(conn, cfg, out, progress)
    console.print(
        f"pretrained {arch} on {s.images:,} cutouts: {s.epochs} epochs, {s.steps} "
        f"steps in {s.seconds / 60:.1f} min; loss {s.losses[0]:.3f} -> "
        f"{s.losses[-1]:.3f}; wrote {s.checkpoint}"
    )


@app.command("probe")
def probe_command(
    ctx: typer.Context,
    model: Model,
    release: Annotated[str, typer.Option("--release", "-r", help="Labelled release.")],
    label: Annotated[str, typer.Option(help="Catalog column with the label.")],
    split: Annotated[str | None, typer.Option(help="Column with train/test split.")] = None,
    train_value: Annotated[str, typer.Option(help="Split value of training rows.")] = "train",
    test_value: Annotated[str | None, typer.Option(help="Split value of test rows.")] = None,
    labels: Annotated[str, typer.Option(help="Label counts, e.g. 32,100,all.")] = "32,100,all",
    repeats: Annotated[int, typer.Option(min=1)] = 5,
    out: Out = None,
) -> None:
    """kNN (k=10) accuracy and linear-probe AUC with few labels, on frozen embeddings.

    Example: galdb lvm probe -m checkpoint:ssl.pt -r gz2 --label spiral --split source_split
    --test-value validation
    """
    from galdb.db.connect import connect
    from galdb.eval.probe import knn_accuracy, linear_probe, load_labelled
    from galdb.lvm.registry import lookup

    with connect(ctx.obj) as conn:
        data = load_labelled(
            conn, lookup(conn, model), release, label, split, train_value, test_value
        )
    counts = [None if c == "all" else int(c) for c in labels.split(",")]
    rows = [("knn10_accuracy", "", round(knn_accuracy(data), 4), "")]
    for n in counts:
        r = linear_probe(data, n, repeats)
        rows.append(("linear_probe_auc", r.n_labels, round(r.auc_mean, 4), round(r.auc_std, 4)))
    columns = ("metric", "n_labels", "value", "std")
    title = (
        f"{model} on {release} ({label}): {int(data.train.sum())} train / "
        f"{int((~data.train).sum())} test"
    )
    if out:
        from galdb.export import write_table

        write_table(columns, rows, out)
    print_rows(columns, rows, title=title)
