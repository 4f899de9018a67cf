"""DESI Legacy Surveys releases: Tractor and sweep catalogs, with cutouts from the viewer.

A Tractor catalog (``tractor-<brick>.fits``) or a sweep (``sweep-<radec>.fits``) is a FITS
table with one row per detected object: ``release, brickid, objid, brick_primary, type, ra,
dec, flux_g/r/z, mw_transmission_g/r/z, shape_r``… (sweeps spell the names in capitals; both
are accepted). Galaxies are selected (:class:`Selection`): not of an excluded ``type`` (point
sources ``PSF`` and ``DUP`` by default), ``brick_primary`` when the column exists (sweeps hold
only primary objects), and, when ``max_mag`` is set, an extinction-corrected magnitude

    mag = 22.5 - 2.5 log10(flux / mw_transmission)

at most ``max_mag`` (a flux or transmission <= 0 fails the cut). Each galaxy is keyed
``release/brickid/objid``; its cutout is fetched by :mod:`galdb.ingest.cutout_service` into the
cache directory and the galaxy references that file, as any FITS cutout. The other
one-dimensional columns, and ``mag_<band>``, go to ``props``.

The table streams from a memory map in chunks; cutouts are fetched a group of rows at a time
before the loader sees them, so an interrupted ingest loses at most the group in flight and a
rerun fetches only what the cache lacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from astropy.table import Table

from galdb.errors import GaldbError
from galdb.ingest.catalog import column_values, props_json, read_catalog
from galdb.ingest.cutout_service import DEFAULT_BASE_URL, CutoutRequest, CutoutService, Fetched
from galdb.ingest.cutouts import inspect_cutout
from galdb.ingest.records import BadInput, Candidate, Galaxy, Rejected, check_coordinates

FETCH_GROUP = 256  # rows whose cutouts are fetched together before they go to the loader
KEY_COLUMNS = ("release", "brickid", "objid")
STORED_OPTIONS = ("cutouts", "selection", "layer", "pixscale", "bands", "size", "kind")
"""The options that decide what an ingest stores; the others only change how it fetches."""


@dataclass(frozen=True)
class Selection:
    """Which catalog rows are galaxies to ingest.

    Attributes
    ----------
    exclude_types : tuple of str
        Tractor ``type`` values left out (``PSF`` point sources, ``DUP`` Gaia duplicates).
    primary_only : bool
        Keep only ``brick_primary`` rows (ignored when the table has no such column).
    max_mag : float or None
        Faintest extinction-corrected magnitude in ``band`` kept; ``None``: no cut.
    band : str
        Band of the magnitude cut (``flux_<band>``, ``mw_transmission_<band>``).
    """

    exclude_types: tuple[str, ...] = ("PSF", "DUP")
    primary_only: bool = True
    max_mag: float | None = None
    band: str = "r"


@dataclass(frozen=True)
class LegacySurveyOptions:
    """How to read a Tractor/sweep catalog and fetch its cutouts (see :class:`CutoutRequest`).

    ``base_url``, ``concurrency``, ``timeout``, ``retries``, ``backoff`` and ``fetch_group``
    (rows fetched together before the loader sees them) change how the cutouts are fetched,
    not what is ingested: they are not part of the run's settings key.
    """

    cutouts: Path
    selection: Selection = field(default_factory=Selection)
    layer: str = "ls-dr10"
    pixscale: float = 0.262
    bands: str = "grz"
    size: int = 64
    kind: str = "fits"
    base_url: str = DEFAULT_BASE_URL
    concurrency: int = 8
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 1.0
    fetch_group: int = FETCH_GROUP

    def settings(self) -> dict:
        """The options that decide what an ingest stores (JSON-ready)."""
        values = self.to_payload()
        return {name: values[name] for name in STORED_OPTIONS}

    def to_payload(self) -> dict:
        """Every option as JSON-ready values (a queued ingest job carries them)."""
        values = asdict(self)
        values["cutouts"] = str(Path(self.cutouts).resolve())
        values["selection"]["exclude_types"] = list(self.selection.exclude_types)
        return values

    @classmethod
    def from_payload(cls, values: dict) -> LegacySurveyOptions:
        """The options :meth:`to_payload` wrote."""
        selection = dict(values["selection"])
        selection["exclude_types"] = tuple(selection["exclude_types"])
        return cls(
            **{**values, "cutouts": Path(values["cutouts"]), "selection": Selection(**selection)}
        )

    def request(self, ra: float, dec: float) -> CutoutRequest:
        return CutoutRequest(ra, dec, self.layer, self.pixscale, self.bands, self.size, self.kind)

    def service(self) -> CutoutService:
        return CutoutService(
            Path(self.cutouts),
            base_url=self.base_url,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
        )


def magnitude(flux: np.ndarray, transmission: np.ndarray) -> np.ndarray:
    """AB magnitude from nanomaggies corrected for Galactic extinction; NaN where undefined."""
    flux = np.asarray(flux, dtype=float)
    transmission = np.asarray(transmission, dtype=float)
    good = (flux > 0) & (transmission > 0)
    mag = np.full(flux.shape, np.nan)
    mag[good] = 22.5 - 2.5 * np.log10(flux[good] / transmission[good])
    return mag


def selected_rows(path: Path, selection: Selection) -> Iterator[tuple[Table, np.ndarray]]:
    """Yield each chunk of the table (lower-case column names) with its selected row indices.

    The rows are 1-based row numbers of the file, for quarantine messages: ``rows[i]`` is the
    number of the chunk's ``i``-th selected row.

    Raises
    ------
    GaldbError
        The file is not a table, or lacks a column the key or the selection needs.
    """
    start = 0
    for chunk in read_catalog(path):
        table = chunk.table
        if table is None:
            continue
        table = _lower_names(table, path)
        _check_columns(table, selection, path)
        keep = np.ones(len(table), dtype=bool)
        if selection.exclude_types and "type" in table.colnames:
            types = np.char.upper(np.char.strip(np.asarray(table["type"]).astype(str)))
            keep &= ~np.isin(types, [t.upper() for t in selection.exclude_types])
        if selection.primary_only and "brick_primary" in table.colnames:
            keep &= np.asarray(table["brick_primary"]).astype(bool)
        band = selection.band
        if f"flux_{band}" in table.colnames and f"mw_transmission_{band}" in table.colnames:
            mag = magnitude(table[f"flux_{band}"], table[f"mw_transmission_{band}"])
            table[f"mag_{band}"] = mag
            if selection.max_mag is not None:
                with np.errstate(invalid="ignore"):
                    keep &= mag <= selection.max_mag
        index = np.flatnonzero(keep)
        yield table[index], index + start + 1
        start += len(table)


def _lower_names(table: Table, path: Path) -> Table:
    lower = [n.lower() for n in table.colnames]
    if len(set(lower)) != len(lower):
        raise GaldbError(f"{path}: column names differ only in case; cannot read it as Tractor")
    table.rename_columns(list(table.colnames), lower)
    return table


def _check_columns(table: Table, selection: Selection, path: Path) -> None:
    needed = [*KEY_COLUMNS, "ra", "dec"]
    if selection.exclude_types:
        needed.append("type")
    if selection.max_mag is not None:
        needed += [f"flux_{selection.band}", f"mw_transmission_{selection.band}"]
    missing = [n for n in needed if n not in table.colnames]
    if missing:
        raise GaldbError(
            f"{path}: not a Tractor or sweep catalog: no column {', '.join(missing)} "
            f"(needed for the key release/brickid/objid, the position and the selection)"
        )


def source_ids(table: Table) -> list[str]:
    """``release/brickid/objid`` of each row, e.g. ``10000/330123/1234``."""
    parts = [np.asarray(table[c]).astype(np.int64) for c in KEY_COLUMNS]
    return [f"{r}/{b}/{o}" for r, b, o in zip(*(p.tolist() for p in parts), strict=True)]


def legacysurvey_candidates(
    path: Path, options: LegacySurveyOptions
) -> Iterator[Candidate | Rejected]:
    """One candidate per selected row, its cutout fetched (or found in the cache) first.

    A cutout that could not be fetched or is not a valid image makes its candidate's
    :meth:`~galdb.ingest.records.Candidate.load` raise :class:`BadInput` with the fetcher's
    code and reason, so the loader quarantines that row and goes on.
    """
    with options.service() as service:
        for table, rows in selected_rows(path, options.selection):
            step = max(1, options.fetch_group)
            for start in range(0, len(table), step):
                group = table[start : start + step]
                yield from _group_candidates(
                    group, rows[start : start + step], path, options, service
                )


def _group_candidates(
    table: Table,
    rows: np.ndarray,
    path: Path,
    options: LegacySurveyOptions,
    service: CutoutService,
) -> Iterator[Candidate]:
    ids = source_ids(table)
    ra, dec = column_values(table, "ra"), column_values(table, "dec")
    extra = [n for n in table.colnames if n not in {"ra", "dec"} and table[n].ndim == 1]
    props = props_json({name: column_values(table, name) for name in extra}, len(table))
    requests, positions = [], []
    for r, d in zip(ra, dec, strict=True):
        try:
            positions.append(check_coordinates(r, d, required=True))
            requests.append(options.request(*positions[-1]))
        except BadInput as exc:
            positions.append(exc)
    fetched = iter(service.fetch_many(requests))
    source = str(path)
    for i, source_id in enumerate(ids):
        where = positions[i]
        result = where if isinstance(where, BadInput) else next(fetched)
        galaxy = partial(_galaxy, source_id, where, result, props[i], options)
        yield Candidate(source_id, source, int(rows[i]), galaxy)


def _galaxy(source_id, position, result, props: str, options: LegacySurveyOptions) -> Galaxy:
    if isinstance(result, BadInput):
        raise result
    fetched: Fetched = result
    if not fetched.ok:
        raise BadInput(fetched.code, fetched.reason)
    pixels = inspect_cutout(fetched.path)
    if pixels.bands is None:
        pixels.bands = ",".join(options.bands.replace(",", ""))
    if pixels.pixel_scale is None:
        pixels.pixel_scale = options.pixscale
    ra, dec = position
    return Galaxy(source_id=source_id, ra=ra, dec=dec, pixels=pixels, props=props)
