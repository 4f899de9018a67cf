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
    arch: Annotated[
        str | None,
        typer.Option(
            help="timm architecture, e.g. resnet10t, convnext_atto, vit_tiny_patch16_224 "
            "(default: resnet10t, or the --init model's)."
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Start from this model's weights (e.g. galdb:default, checkpoint:ssl.pt) "
            "instead of random ones: adapt it to these cutouts without labels."
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="simclr (negatives; large batches), simsiam (small batches) or masked "
            "(SimMIM masked-pixel reconstruction)."
        ),
    ] = "simclr",
    input_size: Annotated[int, typer.Option(min=16, help="Input side, pixels.")] = 64,
    crop: Annotated[float, typer.Option(help="Centre-crop fraction before resizing.")] = 0.6,
    minutes: Annotated[float, typer.Option(help="Time budget, all resumed runs together.")] = 30.0,
    cpu_minutes: Annotated[
        float | None,
        typer.Option(help="CPU-time budget of this process (all threads), resumed runs together."),
    ] = None,
    patch_size: Annotated[
        int | None, typer.Option(min=1, help="A ViT's patch side (it is built for --input-size).")
    ] = None,
    mask_ratio: Annotated[float, typer.Option(help="masked: fraction of squares blanked.")] = 0.6,
    mask_patch: Annotated[int, typer.Option(min=1, help="masked: blanked square side, px.")] = 8,
    epochs: Annotated[int, typer.Option(min=1, help="Epoch cap.")] = 100,
    batch_size: Annotated[int, typer.Option(min=8)] = 128,
    release: Annotated[list[str] | None, typer.Option(help="Only these releases.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto (a GPU when present), cpu or cuda.")] = "auto",
    workers: Annotated[int, typer.Option(min=0, help="Processes reading cutouts.")] = 0,
    checkpoint_minutes: Annotated[
        float, typer.Option(help="Write OUT and OUT.state this often.")
    ] = 5.0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT.state.")] = False,
) -> None:
    """Self-supervised pretraining on every cutout in the catalog (or --release ones).

    Cutouts are streamed from their files; OUT (usable by `galdb embed --model
    checkpoint:OUT`) and OUT.state are written every --checkpoint-minutes, and --resume
    continues an interrupted run where it stopped. A GPU trains in bfloat16 mixed precision.

    --cpu-minutes counts this process's CPU time, the equal-compute budget on a shared
    machine (wall --minutes depend on the neighbours); whichever budget ends first stops it.

    --init continues from a trained model (same architecture) instead of random weights,
    e.g. the shipped encoder adapted to a survey's own cutouts:
    galdb lvm pretrain --init galdb:default --release dr10 --cpu-minutes 30 --out dr10.pt

    Example: galdb lvm pretrain --arch resnet18 --method simsiam --minutes 30 --out ssl.pt
    (interrupted? the same command with --resume)
    """
    from galdb.db.connect import connect
    from galdb.lvm.pretrain import PretrainConfig, pretrain

    if arch is None and init is not None:
        from galdb.lvm.specs import load_model

        arch = load_model(init).arch
    cfg = PretrainConfig(
        arch=arch or PretrainConfig.arch,
        init=init,
        method=method,
        input_size=input_size,
        crop_fraction=crop,
        minutes=minutes,
        cpu_minutes=cpu_minutes,
        patch_size=patch_size,
        mask_ratio=mask_ratio,
        mask_patch=mask_patch,
        epochs=epochs,
        batch_size=batch_size,
        releases=tuple(release or ()),
        seed=seed,
        device=device,
        workers=workers,
        checkpoint_minutes=checkpoint_minutes,
    )
    with connect(ctx.obj) as conn, RichProgress() as progress:
        s = pretrain(conn, cfg, out, progress, resume=resume)
    losses = f"; loss {s.losses[0]:.3f} -> {s.losses[-1]:.3f}" if s.losses else ""
    console.print(
        f"pretrained {cfg.arch} ({method}, {s.device}) on {s.images:,} cutouts: {s.epochs} epochs, "
        f"{s.steps} steps in {s.seconds / 60:.1f} min ({s.cpu_seconds / 60:.1f} CPU-min)"
        f"{losses}; wrote {s.checkpoint}"
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
