"""``galdb demo``: the offline end-to-end demo on the embedded database."""

from typing import Annotated

import typer

from galdb.cli.options import Seed
from galdb.cli.output import RichProgress, console, print_rows, styled


def demo_command(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("--n", min=10, help="Galaxies to simulate.")] = 200,
    seed: Seed = 1,
    pretrain_minutes: Annotated[
        float,
        typer.Option(
            help="0: embed with galdb:default (shipped); more: pretrain a backbone on the "
            "demo's cutouts (SimCLR) that long and embed with it."
        ),
    ] = 0.0,
) -> None:
    """Simulate a mock release, ingest it, cone search, SQL, embed with galdb:default,
    similarity search, then learn morphology from a few labels (head, predictions view, label
    propagation), and a review round that retrains the head.

    Prints each step's result and writes a PNG grid of look-alikes. Example: galdb demo --n 200
    """
    # imports GalSim: only when needed
    from galdb.demo import CLASS_QUERY, MORPHOLOGY_QUERY, TASK, run_demo

    with RichProgress() as progress:
        result = run_demo(
            ctx.obj, n=n, seed=seed, pretrain_minutes=pretrain_minutes, progress=progress
        )
    s = result.summary
    console.print(_title("1. simulated"), f"{n} galaxies -> {result.catalog}")
    console.print(
        _title("2. ingested"),
        f"release {s.release!r}: {s.inserted} inserted, "
        f"{s.present} already present, {s.quarantined} quarantined",
    )
    ra, dec = result.centre
    rows = [
        (m.source_id, round(m.separation_arcsec, 2), m.ra, m.dec, m.props.get("morph_class"))
        for m in result.matches
    ]
    console.print(
        _title("3. cone search"),
        f"{result.radius_deg * 60:.0f} arcmin around "
        f"({ra:.5f}, {dec:.5f}):  galdb cone {ra:.5f} {dec:.5f} "
        f"{result.radius_deg * 60:.0f}arcmin",
    )
    print_rows(("source_id", "sep_arcsec", "ra", "dec", "class"), rows)
    console.print(styled(("4. SQL", "bold"), " (read-only, as galdb_reader):"))
    console.print(CLASS_QUERY, highlight=False)
    print_rows(result.classes.columns, result.classes.rows)
    e = result.embedded
    if result.checkpoint:
        console.print(
            _title("5. pretrained"), f"a backbone on the demo cutouts -> {result.checkpoint}"
        )
    else:
        console.print(
            _title("5. encoder"), "galdb:default, shipped with galdb (see the README's model card)"
        )
    console.print(
        _title("6. embedded"), f"{e.embedded} galaxies with {e.spec} ({e.embedding_dim}-d)"
    )
    rows = [
        (i + 1, n.source_id, n.props.get("morph_class"), round(n.similarity, 3))
        for i, n in enumerate(result.similar.neighbours)
    ]
    console.print(
        _title("7. look-alikes"),
        f"of {result.similar.description} ({result.query_class}); grid: {result.grid}",
    )
    print_rows(("rank", "source_id", "class", "similarity"), rows)
    h = result.head
    metrics = ", ".join(
        f"{k} {h.metrics[k]:.2f}" for k in ("cv_auc", "cv_balanced_accuracy") if h.metrics.get(k)
    )
    console.print(
        _title("8. head"),
        f"for task {TASK!r} trained on {result.n_labels} labels (a few per "
        f"class): version {h.version_id}, {metrics or 'too few labels to cross-validate'}; "
        f"predictions for every galaxy in the view {TASK}:",
    )
    console.print(MORPHOLOGY_QUERY, highlight=False)
    print_rows(result.morphology.columns, result.morphology.rows)
    p = result.propagation
    console.print(
        _title("9. propagated"),
        f"the {p.seeds} labels over the k=10 graph of the embeddings to {p.propagated} galaxies:",
    )
    print_rows(result.propagated.columns, result.propagated.rows)
    r = result.review
    if r is None:
        console.print(_title("10. review"), "skipped: the head is right on every galaxy")
        return
    console.print(
        _title("10. review"),
        f"a reviewer worked down the margin queue: {r.applied} decisions "
        f"({r.corrections} corrections, the task's threshold is {r.threshold}) applied from "
        f"{r.decisions} as with galdb review apply; retrain job "
        f"{', '.join(map(str, r.jobs)) or 'none'}; galdb worker --once published version "
        f"{r.after.version_id} (was {r.before.version_id}):",
    )
    print_rows(
        ["version", "labels", "cv_auc", "cv_balanced_accuracy"],
        [
            (v.version_id, v.n_labels, *(_metric(v, k) for k in ("cv_auc", "cv_balanced_accuracy")))
            for v in (r.before, r.after)
        ],
    )
    print_rows(r.agreement.columns, r.agreement.rows)


def _metric(version, key: str) -> str:
    value = version.metrics.get(key)
    return "" if value is None else f"{value:.3f}"


def _title(text: str):
    return styled((text, "bold"))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
