"""Files written whole or not at all: a reader, or a run killed while writing, sees the old
file or the new one, never half of one. Each writes ``<path>.partial`` and renames it over
``path`` at the end."""

from __future__ import annotations

import contextlib
import csv
import os
import pathlib
from collections.abc import Iterator

import numpy as np
from astropy.io import fits


def _partial(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".partial")


@contextlib.contextmanager
def streamed_csv(path: pathlib.Path, columns) -> Iterator:
    """A csv writer, header written, whose rows stream into the side file; it is renamed to
    ``path`` when the block ends without error, so an interrupted run leaves no catalog that
    looks complete."""
    partial = _partial(path)
    with partial.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        yield writer
    os.replace(partial, path)


def write_fits(path: pathlib.Path, data: np.ndarray, header: fits.Header) -> pathlib.Path:
    """One image (primary HDU) with its header, replacing ``path``."""
    partial = _partial(path)
    fits.PrimaryHDU(data=data, header=header).writeto(partial, overwrite=True)
    os.replace(partial, path)
    return path
