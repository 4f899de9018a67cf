"""``galdb label``: load labels from catalogs and files."""

import getpass
from pathlib import Path
from typing import Annotated

import typer

from galdb.cli.options import Release, Task
from galdb.cli.output import RichProgress, console, err_console, print_rows
from galdb.errors import GaldbError

app = typer.Typer(help="Import labels for a task.", no_args_is_help=True)


def parse_mapping(text: str | None) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in text.split(",")] if text else []
    if any(len(p) != 2 for p in pairs):
        raise GaldbError(f"--map {text!r}: use FROM=TO pairs, e.g. 0=not_ring,1=ring")
    return dict(pairs)


@app.command("import")
def import_command(
    ctx: typer.Context,
    task: Task,
    release: Release,
    file: Annotated[
        Path | None, typer.Argument(help="CSV/FITS/Parquet/… table; omit with --column.")
    ] = None,
    id_col: Annotated[str, typer.Option(help="Column of source ids (in FILE).")] = "source_id",
    label_col: Annotated[str, typer.Option(help="Column of labels (in FILE).")] = "label",
    column: Annotated[
        str | None, typer.Option(help="Take labels from this ingested catalog column instead.")
    ] = None,
    source: Annotated[str, typer.Option(help="catalog, human or propagated.")] = "catalog",
    author: Annotated[
        str | None, typer.Option(help="Who gave them (default: the file, or you for human).")
    ] = None,
    mapping: Annotated[
        str | None, typer.Option("--map", help="Rename labels, e.g. 0=not_ring,1=ring.")
    ] = None,
    count_cols: Annotated[
        str | None,
        typer.Option(help="Vote task: columns (in FILE) of vote counts, one per answer, in order."),
    ] = None,
    fraction_cols: Annotated[
        str | None,
        typer.Option(help="Vote task: columns of vote fractions, one per answer, in order."),
    ] = None,
    total_col: Annotated[
        str | None, typer.Option(help="Vote task: column of the number of votes per galaxy.")
    ] = None,
    total: Annotated[
        float | None, typer.Option(help="Vote task: the same number of votes for every galaxy.")
    ] = None,
) -> None:
    """Import labels for TASK, matched to galaxies of RELEASE by source id.

    Bad rows (unknown class, not a number, no such galaxy, repeated id) are reported by row
    and id; the good rows are kept. Re-importing replaces labels of the same source and
    author instead of duplicating them.

    Examples:

      galdb label import --task spiral -r gz2 --column label_name

      galdb label import truth.csv --task sersic_n -r sim --id-col source_id --label-col sersic_n

      galdb label import --task ring -r rings --column ring --map 0=not_ring,1=ring

      galdb label import gz.csv --task bar -r dr5 --id-col iauname --count-cols bar_yes,bar_no

      galdb label import gz.csv --task bar -r dr5 --id-col iauname
      --fraction-cols bar_yes_fraction,bar_no_fraction --total-col bar_total
    """
    from galdb.db.connect import connect
    from galdb.ingest.runs import release_id_of
    from galdb.labels.store import catalog_chunks, file_chunks, import_labels, vote_chunks
    from galdb.labels.tasks import get_task

    if (file is None) == (column is None):
        raise GaldbError("give either FILE (with --id-col/--label-col) or --column")
    votes = count_cols or fraction_cols or total_col or total is not None
    if votes and file is None:
        raise GaldbError("--count-cols/--fraction-cols read a FILE (not --column)")
    with connect(ctx.obj) as conn, RichProgress() as progress:
        t = get_task(conn, task)
        rid = release_id_of(conn, release)
        if t.kind == "votes" and not votes:
            raise GaldbError(
                f"{task} is a vote task: give --count-cols, or --fraction-cols with "
                "--total-col or --total"
            )
        if votes and t.kind != "votes":
            raise GaldbError(f"{task} is a {t.kind} task: vote columns need a vote task")
        if votes:
            chunks, origin = (
                vote_chunks(
                    file,
                    id_col,
                    count_columns=count_cols.split(",") if count_cols else None,
                    fraction_columns=fraction_cols.split(",") if fraction_cols else None,
                    total_column=total_col,
                    total=total,
                ),
                str(file),
            )
        elif file is not None:
            chunks, origin = file_chunks(file, id_col, label_col), str(file)
        else:
            chunks, origin = catalog_chunks(conn, rid, column), f"{release}.props.{column}"
        who = author or (getpass.getuser() if source == "human" else origin)
        progress.start(None, f"importing {task} labels")
        summary = import_labels(
            conn,
            t,
            rid,
            chunks,
            source=source,
            author=who,
            origin=origin,
            mapping=parse_mapping(mapping),
            progress=progress,
        )
    console.print(
        f"{task}: {summary.stored:,} of {summary.read:,} labels stored ({source}, by {who}); "
        f"{summary.unknown:,} ids not in {release}, {summary.invalid:,} invalid"
    )
    if summary.problems:
        print_rows(
            ["row", "source_id", "problem"],
            [(p.row, p.source_id, p.reason) for p in summary.problems[:20]],
            title=f"first {min(20, len(summary.problems))} problems",
        )
    if summary.read and not summary.stored:
        err_console.print("no label was stored")
        raise typer.Exit(5)
