"""``galdb eval``: how well do few labels teach a task? Curves against a from-scratch CNN."""

from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import OptionalModel, Task
from galdb.cli.output import RichProgress, console

app = typer.Typer(help="Evaluate heads, propagation and review.", no_args_is_help=True)


@app.command("fewshot")
def fewshot_command(
    ctx: typer.Context,
    task: Task,
    model: OptionalModel = None,
    labels: Annotated[
        str, typer.Option(help="Label counts, comma-separated (all training labels added).")
    ] = "10,20,50,100,200,500",
    repeats: Annotated[int, typer.Option(min=1, help="Draws of labels per count.")] = 3,
    k: Annotated[int, typer.Option("--k", min=2, help="Neighbours for propagation.")] = 15,
    strategy: Annotated[
        str, typer.Option(help="Review queue: margin, entropy, least_confident, rare, random.")
    ] = "margin",
    rounds: Annotated[int, typer.Option(min=1, help="Simulated review rounds.")] = 3,
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated subset of head,propagation,head+reviewer,resnet18_scratch."
        ),
    ] = "head,propagation,head+reviewer,resnet18_scratch",
    baseline_epochs: Annotated[int, typer.Option(min=1, help="Baseline CNN epochs.")] = 30,
    baseline_arch: Annotated[str, typer.Option(help="Baseline timm architecture.")] = "resnet18",
    baseline_max_labels: Annotated[
        int | None, typer.Option(help="Skip the baseline above this many labels.")
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Held-out test share.")] = 0.3,
    test_release: Annotated[
        str | None,
        typer.Option(help="Test on this release's labelled galaxies, train on the others'."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the CSV, PNG and table.")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """AUC (or R²) against the number of labels for the LVM + head, LVM + propagation,
    LVM + head with a simulated reviewer, and a ResNet18 trained from scratch on the images.

    Writes fewshot_TASK.csv, .png and .md (a table with the label ratio at which the
    baseline reaches galdb's AUC) into --out (default: <data dir>/eval).

    --test-release R tests on every labelled galaxy of release R (instead of a random
    --test-fraction) and draws the labels from the other releases.

    Example: galdb eval fewshot --task spiral --model checkpoint:ssl.pt --labels 10,20,50,100
    --repeats 3 (add --test-release gz2-test to test on a designated release)
    """
    from galdb.db.connect import connect
    from galdb.eval.baseline import BaselineConfig
    from galdb.eval.curves import markdown_table
    from galdb.eval.fewshot import FewshotConfig, run_fewshot
    from galdb.labels.tasks import get_task
    from galdb.lvm.registry import lookup, preprocessing_of

    config = FewshotConfig(
        label_counts=tuple(int(n) for n in labels.split(",")),
        repeats=repeats,
        test_fraction=test_fraction,
        test_release=test_release,
        k=k,
        reviewer_rounds=rounds,
        strategy=strategy,
        methods=tuple(methods.split(",")),
        baseline=BaselineConfig(arch=baseline_arch, epochs=baseline_epochs, seed=seed),
        baseline_max_labels=baseline_max_labels,
        seed=seed,
    )
    folder = out or ctx.obj.home / "eval"
    with connect(ctx.obj) as conn, RichProgress() as progress:
        record = lookup(conn, model)
        points = run_fewshot(
            conn,
            get_task(conn, task),
            record,
            config,
            folder,
            preprocessing=preprocessing_of(conn, record),
            progress=progress,
            log=console.print,
        )
    console.print(markdown_table(points), highlight=False)
    console.print(f"wrote {folder}/fewshot_{task}.csv, .png and .md")


@app.command("review")
def review_command(
    ctx: typer.Context,
    task: Task,
    model: OptionalModel = None,
    strategy: Annotated[
        str,
        typer.Option(help="Queue: margin, entropy, least_confident, rare, random, disagreement."),
    ] = "margin",
    rounds: Annotated[int, typer.Option(min=1, help="Review rounds (one retrain each).")] = 5,
    batch: Annotated[int, typer.Option(min=1, help="Labels per round.")] = 20,
    start: Annotated[int, typer.Option(min=2, help="Random starting labels.")] = 20,
    rare_class: Annotated[
        str | None, typer.Option(help="Also report this class's recall at 90% precision.")
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Held-out test share.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the split and the random draws.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the CSV and PNG.")] = Path(
        "."
    ),
) -> None:
    """Run a simulated reviewer (answers from held-back catalog labels) through the real
    queue, leases, decisions, retrain jobs and worker; after every round, the test AUC of the
    published version against a head on the same number of random labels. Writes
    review_<task>_<strategy>.csv and .png and prints a Markdown table.

    The evaluation makes its own task (<task>_rev<seed>_<id>), so TASK is left as it was.

    Examples:

      galdb eval review --task decals_ring --strategy margin --rounds 5 --batch 20

      galdb eval review --task gz1_parent --strategy rare --rare-class merger --start 40
    """
    from galdb.eval.review import ReviewEvalConfig, markdown, run_review_eval

    config = ReviewEvalConfig(
        strategy=strategy,
        rounds=rounds,
        batch=batch,
        start=start,
        test_fraction=test_fraction,
        seed=seed,
        rare_class=rare_class,
    )
    results = run_review_eval(ctx.obj, task, config, model=model, out_dir=out, log=console.print)
    console.print(markdown(results, rare_class), markup=False)
    console.print(f"wrote {out / f'review_{task}_{strategy}.csv'} and .png")
