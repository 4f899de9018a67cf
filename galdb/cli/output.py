"""Printing for the CLI: consoles, tables, progress bars and the error wrapper."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

# No console markup: printed text holds user data (release names, ids, paths, messages)
# whose brackets must show as typed; styles are given with ``styled``.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from plain strings and ``(text, style)`` pairs, e.g.
    ``styled(("error:", "bold red"), " ", message)``; no markup is parsed."""
    return Text.assemble(*parts)


MAX_CELL_CHARS = 2000
"""A printed cell shows at most this many characters (a terminal is no place for more)."""


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    if len(text) > MAX_CELL_CHARS:
        return f"{text[:MAX_CELL_CHARS]}… ({len(text):,} characters; --out for all)"
    return text


def print_rows(columns: Sequence[str], rows: Sequence[tuple], title: str | None = None) -> None:
    """Print rows as a rich table (NULL shows as an empty cell)."""
    table = Table(title=title, show_lines=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


class RichProgress:
    """A rich progress bar that implements :class:`galdb.progress.Progress`."""

    def __init__(self) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}", style="cyan", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self._task = None

    def __enter__(self) -> RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def start(self, total: int | None, description: str = "") -> None:
        self._task = self._bar.add_task(description, total=total, rate="")

    def advance(self, n: int = 1) -> None:
        if self._task is None:
            self.start(None)
        self._bar.advance(self._task, n)
        speed = self._bar.tasks[self._task].speed
        self._bar.update(self._task, rate=f"{speed:,.0f}/s" if speed else "")
