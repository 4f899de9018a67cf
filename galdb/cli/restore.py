"""``galdb restore``: denoise and deblur cutouts with a network on the LVM backbone."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Model, Release, Seed
from galdb.cli.output import RichProgress, console, print_rows

app = typer.Typer(
    help="Image restoration (denoising + deblurring): train on pairs, restore releases.",
    no_args_is_help=True,
)

Version = Annotated[
    int | None,
    typer.Option("--version", help="Restoration version (default: the current, else the newest)."),
]


@app.command("train")
def train_command(
    ctx: typer.Context,
    pairs: Annotated[Path, typer.Argument(help="Folder written by galdb simulate OUT --pairs.")],
    model: Model,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training pairs.")] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="Pairs per optimiser step.")] = 32,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (one-cycle).")] = 1e-3,
    val_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Pairs held out for the version's metrics.")
    ] = 0.1,
    limit: Annotated[int | None, typer.Option(min=2, help="Use only the first N pairs.")] = None,
    decoder_width: Annotated[
        int, typer.Option(min=4, help="Channels of each decoder stage at most.")
    ] = 32,
    seed: Seed = 0,
) -> None:
    """Train a restoration network on clean/degraded pairs, as a new version.

    The LVM backbone is the U-Net encoder, with a light decoder; the version records the
    PSNR and SSIM of held-out pairs.

    Example:

      galdb simulate pairs/ --n 2000 --pairs && galdb restore train pairs/ --model
      checkpoint:ssl.pt --epochs 10
    """
    from galdb.db.connect import connect
    from galdb.restore.train import TrainConfig, train_version

    config = TrainConfig(epochs, batch_size, lr, val_fraction=val_fraction, seed=seed)
    with connect(ctx.obj) as conn, RichProgress() as progress:
        version = train_version(
            conn, pairs, model, config, limit=limit, decoder_width=decoder_width,
            progress=progress,
        )  # fmt: skip
        conn.commit()
    console.print(f"restoration version {version.version_id} ({model})")
    print_rows(["metric", "value"], sorted(version.metrics.items()), title="held-out pairs")


@app.command("run")
def run_command(
    ctx: typer.Context,
    release: Release,
    version: Version = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder of the restored FITS (default: HOME/restored)."),
    ] = None,
    switch: Annotated[
        bool, typer.Option(help="Make the version current when the release is done.")
    ] = True,
) -> None:
    """Restore every cutout of a release into FITS files, referenced from Postgres.

    Files go under OUT/v<version>/, their paths into galdb.restorations
    (galdb.restorations_current: the current version's). Resumes where an interrupted run
    stopped.

    Example: galdb restore run --release mock-1 && galdb sql "SELECT * FROM
    galdb.restorations_current LIMIT 5"
    """
    from galdb.db.connect import connect
    from galdb.restore.run import run_restoration

    folder = out or ctx.obj.home / "restored"
    with connect(ctx.obj) as conn, RichProgress() as progress:
        s = run_restoration(
            conn, release, folder, version_id=version, switch=switch, progress=progress
        )
    console.print(
        f"restored {s.restored:,} cutouts of {release} with version {s.version_id} "
        f"({s.already:,} already done, {s.without_pixels:,} without pixels) in {s.seconds:.1f} s"
        + (f"; version {s.version_id} is current" if s.current else "")
    )


@app.command("use")
def use_command(ctx: typer.Context, version: Annotated[int, typer.Argument()]) -> None:
    """Make a version current (atomically).

    Example: galdb restore use 2
    """
    from galdb.db.connect import connect
    from galdb.restore.versions import make_current

    with connect(ctx.obj) as conn:
        make_current(conn, version)
        conn.commit()
    console.print(f"restoration version {version} is current")


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Restoration versions: backbone, held-out metrics, restored cutouts.

    Example: galdb restore list
    """
    from galdb.db.connect import connect
    from galdb.restore.versions import list_versions

    with connect(ctx.obj) as conn:
        versions = list_versions(conn)
    print_rows(
        ["version", "backbone", "val PSNR", "no-op PSNR", "val SSIM", "restored", "current"],
        [
            (
                v.version_id,
                v.model_spec,
                *(_number(v.metrics.get(k), d) for k, d in METRICS),
                v.n_restored,
                "*" if v.is_current else "",
            )
            for v in versions
        ],
    )


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    test_pairs: Annotated[Path, typer.Argument(help="Held-out pairs folder.")],
    tune_pairs: Annotated[
        Path, typer.Option(help="Pairs the baselines' parameters are tuned on (not the test's).")
    ],
    version: Version = None,
    tune_limit: Annotated[int, typer.Option(min=2, help="Tune on the first N pairs.")] = 100,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Per-image scores CSV.")] = None,
) -> None:
    """PSNR and SSIM of a version and of classical baselines on held-out pairs.

    The baselines: no-op, Gaussian smoothing and a Wiener filter, tuned on --tune-pairs.

    Example: galdb simulate test/ --n 300 --seed 2 --pairs && galdb restore eval test/
    --tune-pairs pairs/ --out scores.csv
    """
    from galdb.db.connect import connect
    from galdb.restore import evaluate as ev
    from galdb.restore.pairs import load_pairs
    from galdb.restore.run import pick_version
    from galdb.restore.versions import load_network

    test = load_pairs(test_pairs)
    methods = ev.tuned_baselines(load_pairs(tune_pairs, tune_limit))
    with connect(ctx.obj) as conn:
        v = pick_version(conn, version)
        methods[f"network v{v}"] = ev.network_restorer(load_network(conn, v))
    results = ev.evaluate(test, methods)
    if out is not None:
        ev.write_csv(out, test, results)
    print_rows(ev.SUMMARY_COLUMNS, ev.summary_rows(results, len(test)), title=str(test_pairs))


METRICS = (("val_psnr", 2), ("val_psnr_noop", 2), ("val_ssim", 3))


def _number(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
