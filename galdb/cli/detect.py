"""``galdb detect``: train a detector on the LVM backbone, run it over fields, list, switch."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Model, Seed
from galdb.cli.output import RichProgress, console, print_rows

app = typer.Typer(
    help="Object detection on the LVM backbone: versioned detectors and detection tables.",
    no_args_is_help=True,
)

Fields = Annotated[
    Path, typer.Argument(help="Directory of FITS fields (its fields/ folder if present).")
]
Version = Annotated[
    int | None, typer.Option("--version", help="Detector version (default: the newest).")
]
DetRelease = Annotated[
    str, typer.Option("--release", "-r", help="Detection release: the view galdb_detections.R.")
]


@app.command("train")
def train_command(
    ctx: typer.Context,
    fields: Fields,
    model: Model,
    steps: Annotated[int, typer.Option(min=1, help="Training steps.")] = 600,
    batch: Annotated[int, typer.Option(min=1, help="Fields per step.")] = 8,
    crop: Annotated[int, typer.Option(min=32, help="Random crop side per field, pixels.")] = 128,
    n_fields: Annotated[
        int | None, typer.Option("--fields", min=1, help="Train on the first N fields only.")
    ] = None,
    seed: Seed = 0,
) -> None:
    """Fine-tune a detector (the LVM's feature maps and a CenterNet-like head) on FIELDS,
    which must hold truth.csv (galdb simulate-fields writes both); record it as a version.

    Example: galdb detect train fields/ --model timm:resnet18 --steps 600
    """
    from galdb.db.connect import connect
    from galdb.detect.store import record_detector
    from galdb.detect.train import TrainConfig, train_detector
    from galdb.lvm.specs import load_model

    config = TrainConfig(steps=steps, batch=batch, crop=crop, seed=seed, n_fields=n_fields)
    loaded = load_model(model)
    with RichProgress() as progress:
        trained = train_detector(loaded, fields, config, progress=progress)
    with connect(ctx.obj) as conn:
        version = record_detector(conn, loaded, trained, fields)
        conn.commit()
    scores = trained.metrics["train_fields"]
    console.print(
        f"detector version {version.version_id} (model {version.model_id}, "
        f"{trained.n_fields} fields, {trained.seconds:.0f} s): threshold "
        f"{trained.threshold:.3f}, on training fields P={scores['precision']} "
        f"R={scores['recall']} F1={scores['f1']}"
    )


@app.command("run")
def run_command(
    ctx: typer.Context,
    fields: Fields,
    release: DetRelease,
    version: Version = None,
    threshold: Annotated[
        float | None, typer.Option(help="Score threshold (default: the version's).")
    ] = None,
    noise_match: Annotated[
        bool,
        typer.Option(
            "--noise-match",
            help="Frames in other units or depths (real data): subtract the background and "
            "scale the noise to the simulator's first.",
        ),
    ] = False,
) -> None:
    """Detect objects in every field of FIELDS and make the result the current run of the
    release (atomically: readers of galdb_detections.R never see a half-written run). A run
    that was interrupted resumes where it stopped.

    Example: galdb detect run fields/ --release sim-fields && galdb sql
    "SELECT kind, count(*) FROM galdb_detections.\\"sim-fields\\" GROUP BY kind"
    """
    from galdb.db.connect import connect
    from galdb.detect.store import run_detections

    with connect(ctx.obj) as conn, RichProgress() as progress:
        run = run_detections(
            conn, fields, release, version_id=version, threshold=threshold,
            noise_match=noise_match, progress=progress,
        )  # fmt: skip
    console.print(
        f"{run.n_detections:,} detections in {run.n_fields:,} fields: "
        f"galdb_detections.{release} (run {run.run_id}, detector version {run.version_id})"
    )


@app.command("switch")
def switch_command(
    ctx: typer.Context,
    release: DetRelease,
    run: Annotated[int, typer.Option("--run", help="A ready run of the release.")],
) -> None:
    """Point the release's view at another (e.g. an earlier) run, atomically.

    Example: galdb detect switch --release sim-fields --run 3
    """
    from galdb.db.connect import connect
    from galdb.detect.store import switch

    with connect(ctx.obj) as conn:
        switch(conn, release, run)
        conn.commit()
    console.print(f"galdb_detections.{release} now reads run {run}")


@app.command("cutouts")
def cutouts_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Directory to write cutouts/ and catalog.csv into.")],
    release: DetRelease,
    size: Annotated[int, typer.Option(min=16, help="Cutout side in pixels.")] = 64,
    kind: Annotated[str, typer.Option(help="Which detections: galaxy, star or all.")] = "galaxy",
    min_score: Annotated[float, typer.Option(help="Only detections scoring at least this.")] = 0.0,
) -> None:
    """Cut the release's current detections out of their fields (FITS with the field's WCS)
    and write a catalog that `galdb ingest` reads, so detections become galaxies.

    Detections whose square leaves the field are skipped and counted; a rerun keeps the files
    already written.

    Example: galdb detect cutouts det-cut/ --release sim-fields --size 64 && galdb ingest
    det-cut/ --catalog det-cut/catalog.csv --release sim-fields-galaxies
    """
    from galdb.db.connect import connect
    from galdb.detect.cutouts import write_cutouts

    kinds = {"galaxy": ("galaxy",), "star": ("star",), "all": ("galaxy", "star")}
    if kind not in kinds:
        raise typer.BadParameter(f"{kind!r}: use galaxy, star or all", param_hint="--kind")
    with connect(ctx.obj) as conn, RichProgress() as progress:
        progress.start(None, "cutouts")
        done = write_cutouts(
            conn, release, out, size=size, kinds=kinds[kind], min_score=min_score,
            progress=progress.advance,
        )  # fmt: skip
    console.print(
        f"wrote {done.written:,} cutouts ({done.at_edge:,} at a field's edge skipped, "
        f"{done.without_wcs:,} without sky positions skipped): {done.catalog}\n"
        f"next: galdb ingest {out} --catalog {done.catalog} --release {release}-galaxies"
    )


@app.command("list")
def list_command(
    ctx: typer.Context,
    release: Annotated[str | None, typer.Option("--release", "-r", help="Only this one.")] = None,
) -> None:
    """Detector versions and detection runs.

    Example: galdb detect list
    """
    from galdb.db.connect import connect
    from galdb.detect.store import list_detectors, list_runs

    with connect(ctx.obj) as conn:
        versions, runs = list_detectors(conn), list_runs(conn, release)
    print_rows(
        ["version", "model", "fields", "objects", "threshold", "train F1"],
        [
            (
                v.version_id,
                v.model_id,
                v.n_fields,
                v.n_objects,
                f"{v.threshold:.3f}",
                v.metrics.get("train_fields", {}).get("f1", ""),
            )
            for v in versions
        ],  # fmt: skip
        title="detectors",
    )
    print_rows(
        ["run", "release", "version", "status", "fields", "detections", "current"],
        [
            (
                r.run_id,
                r.release,
                r.version_id,
                r.status,
                r.n_fields,
                r.n_detections,
                "*" if r.current else "",
            )
            for r in runs
        ],  # fmt: skip
        title="runs: detections of run N in galdb_detection_runs.rN",
    )
