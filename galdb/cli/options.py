"""Options shared by several commands, defined once (typer ``Annotated`` aliases)."""

from pathlib import Path
from typing import Annotated

import typer

Release = Annotated[str, typer.Option("--release", "-r", help="Release name, e.g. 'dr9-south'.")]
OptionalRelease = Annotated[
    str | None, typer.Option("--release", "-r", help="Only galaxies of this release.")
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Write the table to this file; format from the suffix: "
        ".csv .ecsv .fits .parquet .vot/.xml (VOTable).",
    ),
]
Force = Annotated[bool, typer.Option("--force", "-f", help="Replace the --out file if it exists.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same data.")]
_MODEL_SPECS = (
    "galdb:default (the encoder shipped with galdb), timm:<name> (random init), "
    "hf-hub:<repo> (e.g. hf-hub:mwalmsley/zoobot-encoder-convnext_nano) or checkpoint:<path>."
)
Model = Annotated[str, typer.Option("--model", "-m", help=_MODEL_SPECS)]
# galdb.lvm.specs.DEFAULT_SPEC, not imported from there: importing torch slows every command
DEFAULT_MODEL = "galdb:default"
OptionalModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="The LVM whose embeddings to use: a spec or a model id "
        "(default: the newest model with embeddings).",
    ),
]
Task = Annotated[str, typer.Option("--task", "-t", help="Task name (galdb task list).")]
