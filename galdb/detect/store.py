"""Detector versions and versioned detection tables in PostgreSQL.

Layout invariants (migration 0013):

- ``galdb.detector_versions``: one row per trained detector (LVM model, hyperparameters,
  training fields, threshold, metrics, the whole network as bytes);
- a *release* of detections (``galdb.detection_releases``) is read through the stable view
  ``galdb_detections.<release>``; each ``detect run`` is a row of ``galdb.detection_runs``
  with its own table ``galdb_detection_runs.r<run_id>`` (names from the id only; its
  indexes ``r<run_id>_pkey``, ``r<run_id>_zone_ra`` and ``r<run_id>_field``);
- a run fills ``r<run_id>_build`` (committing per chunk of fields) and only then, in one
  transaction, the table takes its final name, the view is pointed at it and the release's
  ``current_run`` changes: a reader sees the previous run or the new one, complete. Older
  runs' tables stay, so :func:`switch` can point the view back at one;
- a run that fails drops its build table and is marked ``failed``; a killed run stays
  ``building`` with its table, and the next run of the same release, detector version and
  directory resumes it, skipping the fields already in the table;
- rows: ``detection_id``, ``field`` (file stem), ``x``, ``y`` (0-based pixels), ``ra``,
  ``dec`` (through the field's WCS; NULL without one), ``zone`` (as ``galdb.galaxies``:
  :func:`cone_detections` and positional joins use the same zone index), a square box
  (``box_xmin`` … ``box_ymax``), ``radius_px``, ``score``, ``kind`` (galaxy/star) and the
  detector ``version``.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from galdb.detect.fields import field_paths, noise_matched, read_field
from galdb.detect.model import BOX_PER_RADIUS, KINDS
from galdb.detect.train import ALGORITHM, Trained, detect_images, from_bytes, to_bytes
from galdb.errors import GaldbError
from galdb.lvm.registry import load_registered, lookup, register
from galdb.lvm.specs import LoadedModel

VIEWS = "galdb_detections"
RUNS = "galdb_detection_runs"
CHUNK_FIELDS = 32
COLUMNS = (
    "detection_id", "field", "x", "y", "ra", "dec", "box_xmin", "box_ymin", "box_xmax",
    "box_ymax", "radius_px", "score", "kind", "version",
)  # fmt: skip


@dataclass(frozen=True)
class DetectorVersion:
    version_id: int
    model_id: int
    algorithm: str
    n_fields: int
    n_objects: int
    threshold: float
    metrics: dict
    created_at: object


@dataclass(frozen=True)
class Run:
    run_id: int
    release: str
    version_id: int
    status: str
    n_fields: int
    n_detections: int
    current: bool


def record_detector(
    conn: psycopg.Connection, loaded: LoadedModel, trained: Trained, fields_dir
) -> DetectorVersion:
    """Store a trained detector as a new version; registers its LVM first (which commits,
    as :func:`galdb.lvm.registry.register` does). The version itself is not committed."""
    record = register(conn, loaded)
    version_id = conn.execute(
        "INSERT INTO galdb.detector_versions (model_id, algorithm, hyperparameters, "
        "training_fields, n_fields, n_objects, threshold, metrics, parameters, train_seconds) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING version_id",
        (
            record.model_id,
            ALGORITHM,
            json.dumps(trained.config.as_dict()),
            str(pathlib.Path(fields_dir).resolve()),
            trained.n_fields,
            trained.n_objects,
            trained.threshold,
            json.dumps(trained.metrics),
            to_bytes(trained, loaded.arch, loaded.in_chans),
            trained.seconds,
        ),
    ).fetchone()[0]
    return get_detector(conn, version_id)


_VERSION = (
    "SELECT version_id, model_id, algorithm, n_fields, n_objects, threshold, metrics, "
    "created_at FROM galdb.detector_versions"
)


def get_detector(conn: psycopg.Connection, version_id: int | None = None) -> DetectorVersion:
    """A detector version (the newest when ``version_id`` is None)."""
    row = conn.execute(
        _VERSION + " WHERE %s::int IS NULL OR version_id = %s ORDER BY version_id DESC LIMIT 1",
        (version_id, version_id),
    ).fetchone()
    if row is None:
        what = f"detector version {version_id}" if version_id else "no detector version"
        raise GaldbError(f"{what} not found: train one with galdb detect train FIELDS --model M")
    return DetectorVersion(*row)


def list_detectors(conn: psycopg.Connection) -> list[DetectorVersion]:
    return [DetectorVersion(*r) for r in conn.execute(_VERSION + " ORDER BY version_id")]


def load_detector(conn: psycopg.Connection, version_id: int):
    """(network, preprocessing, threshold) of a stored version, on its registered LVM."""
    model_id, data = conn.execute(
        "SELECT model_id, parameters FROM galdb.detector_versions WHERE version_id = %s",
        (version_id,),
    ).fetchone()
    loaded = load_registered(conn, lookup(conn, str(model_id)))
    return from_bytes(bytes(data), loaded)


def _build(run_id: int) -> sql.Identifier:
    return sql.Identifier(RUNS, f"r{run_id}_build")


def _create_sql(run_id: int) -> sql.Composed:
    return sql.SQL(
        "CREATE TABLE {t} (detection_id bigint NOT NULL, field text NOT NULL, "
        "x float8 NOT NULL, y float8 NOT NULL, ra float8, dec float8, "
        "zone integer GENERATED ALWAYS AS (galdb.zone_of(dec)) STORED, "
        "box_xmin real NOT NULL, box_ymin real NOT NULL, box_xmax real NOT NULL, "
        "box_ymax real NOT NULL, radius_px real NOT NULL, score real NOT NULL, "
        "kind text NOT NULL CHECK (kind IN ('galaxy', 'star')), version integer NOT NULL)"
    ).format(t=_build(run_id))


def _open_run(conn, release: str, version: DetectorVersion, fields_dir: str, threshold: float):
    """A new run, or the killed run of the same release, version and directory to resume;
    (run_id, fields already done, next detection id)."""
    conn.execute(
        "INSERT INTO galdb.detection_releases (release) VALUES (%s) ON CONFLICT DO NOTHING",
        (release,),
    )
    row = conn.execute(
        "SELECT run_id FROM galdb.detection_runs WHERE release = %s AND version_id = %s "
        "AND fields_dir = %s AND threshold = %s AND status = 'building' "
        "ORDER BY run_id DESC LIMIT 1",
        (release, version.version_id, fields_dir, threshold),
    ).fetchone()
    if (
        row is not None
        and conn.execute("SELECT to_regclass(%s)", (f"{RUNS}.r{row[0]}_build",)).fetchone()[0]
    ):
        run_id = row[0]
        done = {r[0] for r in conn.execute(sql.SQL("SELECT DISTINCT field FROM {}").format(
            _build(run_id)))}  # fmt: skip
        next_id = conn.execute(
            sql.SQL("SELECT coalesce(max(detection_id), 0) + 1 FROM {}").format(_build(run_id))
        ).fetchone()[0]
        return run_id, done, next_id
    run_id = conn.execute(
        "INSERT INTO galdb.detection_runs (release, version_id, fields_dir, threshold) "
        "VALUES (%s, %s, %s, %s) RETURNING run_id",
        (release, version.version_id, fields_dir, threshold),
    ).fetchone()[0]
    conn.execute(_create_sql(run_id))
    return run_id, set(), 1


def run_detections(
    conn: psycopg.Connection,
    fields_dir,
    release: str,
    *,
    version_id: int | None = None,
    threshold: float | None = None,
    chunk_fields: int = CHUNK_FIELDS,
    noise_match: bool = False,
    progress=None,
) -> Run:
    """Detect objects in every field of ``fields_dir`` with a detector version (the newest
    by default) and make the result the current run of ``release``.

    Commits as it goes (one transaction per ``chunk_fields`` fields, then the switch); safe
    because rows go to the run's ``_build`` table, which no reader sees until the switch.
    Resumes a killed run (see the module docstring). ``threshold`` overrides the version's.
    ``noise_match`` rescales foreign frames (other units and depths) to the simulator's noise
    first (:func:`galdb.detect.fields.noise_matched`).
    """
    if not isinstance(release, str) or not release:
        raise GaldbError("--release: give the name of the detection release")
    version = get_detector(conn, version_id)
    detector, prep, stored = load_detector(conn, version.version_id)
    threshold = stored if threshold is None else float(threshold)
    paths = field_paths(fields_dir)
    directory = str(pathlib.Path(fields_dir).resolve())
    try:
        run_id, done, next_id = _open_run(conn, release, version, directory, threshold)
    except psycopg.errors.CheckViolation:
        conn.rollback()
        raise GaldbError(
            f"release {release!r}: use lower-case letters, digits, '_', '.', '-' (41 at most)"
        ) from None
    conn.commit()
    todo = [p for p in paths if p.stem not in done]
    if progress is not None:
        progress.start(len(paths), f"detecting into {release}")
        progress.advance(len(paths) - len(todo))
    try:
        for start in range(0, len(todo), chunk_fields):
            chunk = todo[start : start + chunk_fields]
            fields = map(read_field, chunk)
            if noise_match:
                fields = map(noise_matched, fields)
            results = detect_images(detector, prep, fields, threshold=threshold)
            with conn.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(
                    _build(run_id), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
                )
            ) as cp:
                for field, rows in results:
                    for row in _rows(field, rows, next_id, version.version_id):
                        cp.write_row(row)
                    next_id += len(rows)
            conn.commit()
            if progress is not None:
                progress.advance(len(chunk))
        _finish(conn, run_id, len(paths))
    except BaseException as exc:
        _abandon(conn, run_id, exc)
        raise
    return get_run(conn, run_id)


def _rows(field, rows: np.ndarray, first_id: int, version_id: int):
    sky = field.sky(rows[:, 0], rows[:, 1]) if len(rows) else None
    for i, (x, y, radius, score, kind) in enumerate(rows):
        half = BOX_PER_RADIUS / 2 * radius
        ra, dec = (float(sky[0][i]), float(sky[1][i])) if sky is not None else (None, None)
        yield (
            first_id + i, field.name, float(x), float(y), ra, dec, x - half, y - half,
            x + half, y + half, float(radius), float(score), KINDS[int(kind)], version_id,
        )  # fmt: skip


def _finish(conn: psycopg.Connection, run_id: int, n_fields: int) -> None:
    """Index the built table, then make it the release's current run (one transaction)."""
    build, final = _build(run_id), f"r{run_id}"
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (detection_id)").format(
            build, sql.Identifier(f"{final}_pkey")
        )
    )
    for suffix, key in (("zone_ra", "zone, ra"), ("field", "field")):
        conn.execute(
            sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(f"{final}_{suffix}"), build, sql.SQL(key)
            )
        )
    conn.execute(sql.SQL("ANALYZE {}").format(build))
    n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(build)).fetchone()[0]
    with conn.transaction():
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(build, sql.Identifier(final)))
        conn.execute(
            "UPDATE galdb.detection_runs SET status = 'ready', detections_table = %s, "
            "n_fields = %s, n_detections = %s, finished_at = now() WHERE run_id = %s",
            (f"{RUNS}.{final}", n_fields, n, run_id),
        )
        switch(conn, _release_of(conn, run_id), run_id)
    conn.commit()


def _release_of(conn: psycopg.Connection, run_id: int) -> str:
    return conn.execute(
        "SELECT release FROM galdb.detection_runs WHERE run_id = %s", (run_id,)
    ).fetchone()[0]


def switch(conn: psycopg.Connection, release: str, run_id: int) -> None:
    """Point ``galdb_detections.<release>`` at a ready run of that release, in one
    transaction (nested in the caller's when there is one). Does not commit."""
    row = conn.execute(
        "SELECT status FROM galdb.detection_runs WHERE run_id = %s AND release = %s",
        (run_id, release),
    ).fetchone()
    if row is None or row[0] != "ready":
        raise GaldbError(f"run {run_id} is not a ready run of detection release {release!r}")
    with conn.transaction():
        view, table = sql.Identifier(VIEWS, release), sql.Identifier(RUNS, f"r{run_id}")
        conn.execute(
            sql.SQL("CREATE OR REPLACE VIEW {} AS SELECT d.*, {}::integer AS run FROM {} d")
            .format(view, sql.Literal(run_id), table)
        )  # fmt: skip
        conn.execute(sql.SQL("GRANT SELECT ON {}, {} TO galdb_reader").format(table, view))
        conn.execute(
            "UPDATE galdb.detection_releases SET current_run = %s WHERE release = %s",
            (run_id, release),
        )


def _abandon(conn: psycopg.Connection, run_id: int, exc: BaseException) -> None:
    """Drop a failed run's build table and record why; never hides the original error."""
    try:
        conn.rollback()
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_build(run_id)))
        conn.execute(
            "UPDATE galdb.detection_runs SET status = 'failed', error = %s, finished_at = now() "
            "WHERE run_id = %s AND status = 'building'",
            (f"{type(exc).__name__}: {exc}"[:2000], run_id),
        )
        conn.commit()
    except Exception as cleanup:
        exc.add_note(f"galdb could not clean up {RUNS}.r{run_id}_build: {cleanup}")


_RUN = (
    "SELECT r.run_id, r.release, r.version_id, r.status, r.n_fields, r.n_detections, "
    "coalesce(d.current_run = r.run_id, false) FROM galdb.detection_runs r "
    "JOIN galdb.detection_releases d USING (release)"
)


def get_run(conn: psycopg.Connection, run_id: int) -> Run:
    return Run(*conn.execute(_RUN + " WHERE r.run_id = %s", (run_id,)).fetchone())


def list_runs(conn: psycopg.Connection, release: str | None = None) -> list[Run]:
    rows = conn.execute(
        _RUN + " WHERE %s::text IS NULL OR r.release = %s ORDER BY r.run_id", (release, release)
    )
    return [Run(*r) for r in rows]


def cone_detections(
    conn: psycopg.Connection, release: str, ra: float, dec: float, radius_deg: float
) -> list[tuple]:
    """Current detections of ``release`` within ``radius_deg`` of (ra, dec), nearest first:
    rows ``(detection_id, field, x, y, ra, dec, kind, score, separation_deg)``. Uses the
    zone index as ``galdb.cone_search`` does."""
    return conn.execute(
        sql.SQL(
            "SELECT d.detection_id, d.field, d.x, d.y, d.ra, d.dec, d.kind, d.score, s.sep "
            "FROM galdb.cone_zone_ranges(%(ra)s, %(dec)s, %(r)s) z "
            "JOIN {} d ON d.zone = z.zone AND d.ra BETWEEN z.ra_lo AND z.ra_hi "
            "CROSS JOIN LATERAL (SELECT galdb.angular_separation(%(ra)s, %(dec)s, d.ra, d.dec) "
            "AS sep) s WHERE s.sep <= %(r)s ORDER BY s.sep, d.detection_id"
        ).format(sql.Identifier(VIEWS, release)),
        {"ra": ra, "dec": dec, "r": radius_deg},
    ).fetchall()
