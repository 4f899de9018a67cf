"""Batch embedding: every galaxy lacking a vector for a model, streamed through the model.

DataLoader workers each read a shard of the galaxies (``galaxy_id % workers``) page by page
from PostgreSQL, read the pixels from the survey files and preprocess them (with no workers,
the DataLoader does this itself); the main process runs the model in inference mode and
writes the vectors with binary COPY, one transaction per batch. The three overlap
(:mod:`galdb.lvm.overlap`): a thread takes the DataLoader's batches ahead of the model and
another writes the previous batch's vectors, so the forward pass does not wait for either.
Memory is bounded by pages and a few batches, not by the release; a killed run loses at most
the batches in flight and the next run embeds exactly the galaxies still missing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import torch
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from galdb.db import locks
from galdb.errors import GaldbError
from galdb.ingest.cutouts import inspect_cutout
from galdb.ingest.records import BadInput
from galdb.lvm import registry
from galdb.lvm.overlap import reading, writing
from galdb.lvm.pixels import PixelRef, parse_bands, pixel_columns, read_pixels
from galdb.lvm.preprocess import Preprocessing, to_tensor
from galdb.lvm.specs import LoadedModel
from galdb.progress import NoProgress, Progress

PAGE = 256
LOCK_NAMESPACE = locks.EMBED_MODEL  # (namespace, model_id): one embed per model at a time


PIXEL_COLUMNS = "g.galaxy_id, " + pixel_columns("g")


def missing_sql(
    record: registry.ModelRecord,
    release: bool,
    sharded: bool,
    *,
    select: str = PIXEL_COLUMNS,
    page: bool = True,
) -> str:
    """Galaxies with pixels and no vector for the model, after a galaxy id, in id order."""
    return (
        f"SELECT {select} FROM galdb.galaxies AS g "
        "WHERE g.galaxy_id > %(after)s AND g.pixel_uri IS NOT NULL"
        + (" AND g.release_id = %(release_id)s" if release else "")
        + (" AND g.galaxy_id %% %(workers)s = %(worker)s" if sharded else "")
        + f" AND NOT EXISTS (SELECT 1 FROM galdb.{record.partition} AS e"
        " WHERE e.galaxy_id = g.galaxy_id)"
        + (" ORDER BY g.galaxy_id LIMIT %(page)s" if page else "")
    )


class MissingGalaxies(IterableDataset):
    """Yields (galaxy_id, input tensor or None if the pixels could not be read)."""

    def __init__(
        self, url: str, record: registry.ModelRecord, release_id: int | None, prep: Preprocessing
    ):
        super().__init__()
        self.url, self.record, self.release_id, self.prep = url, record, release_id, prep

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor | None]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        query = missing_sql(self.record, self.release_id is not None, workers > 1)
        params = {
            "release_id": self.release_id,
            "workers": workers,
            "worker": worker,
            "page": PAGE,
            "after": 0,
        }
        with psycopg.connect(self.url, autocommit=True) as conn:
            while rows := conn.execute(query, params).fetchall():
                for galaxy_id, *pixels in rows:
                    yield galaxy_id, self._tensor(PixelRef.from_row(pixels))
                params["after"] = rows[-1][0]

    def _tensor(self, ref: PixelRef) -> torch.Tensor | None:
        try:
            pixels = read_pixels(ref)
        except GaldbError:
            return None  # reported by the main process; retried on the next run
        return to_tensor(pixels, ref.bands, self.prep)


def collate(items: list[tuple[int, torch.Tensor | None]]):
    ok = [(i, x) for i, x in items if x is not None]
    failed = [i for i, x in items if x is None]
    ids = [i for i, _ in ok]
    batch = torch.stack([x for _, x in ok]) if ok else None
    return ids, batch, failed


@dataclass
class EmbedSummary:
    """What one ``galdb embed`` did."""

    model_id: int
    spec: str
    embedding_dim: int
    embedded: int = 0
    failed: list[int] = field(default_factory=list)
    seconds: float = 0.0
    index_built: bool = False

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def count_missing(conn, record: registry.ModelRecord, release_id: int | None) -> int:
    query = missing_sql(record, release_id is not None, False, select="count(*)", page=False)
    return conn.execute(query, {"after": 0, "release_id": release_id}).fetchone()[0]


def write_vectors(
    conn: psycopg.Connection, record: registry.ModelRecord, ids: list[int], vectors: np.ndarray
) -> None:
    """COPY (binary) one batch of vectors into the model's partition and commit.

    Commits: each batch is complete on its own (its galaxies have vectors, no other rows are
    touched), so a run stopped between batches leaves a consistent partition to resume from.
    """
    with (
        conn.cursor() as cur,
        cur.copy(
            f"COPY galdb.{record.partition} (model_id, galaxy_id, embedding) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as cp,
    ):
        cp.set_types(["integer", "bigint", "halfvec"])
        for galaxy_id, vector in zip(ids, vectors, strict=True):
            cp.write_row((record.model_id, galaxy_id, HalfVector(vector)))
    conn.commit()


def default_workers() -> int:
    """DataLoader reader processes when none are asked for: none on a machine of 2 CPUs or
    fewer, where a reader process takes CPU the forward pass needs (resnet18@64 on 2 CPUs:
    0.78x the bare forward pass with none, 0.64-0.68x with 1-2; ``bench_embed.py``), else 2."""
    return 0 if (os.cpu_count() or 1) <= 2 else 2


def embed(
    conn: psycopg.Connection,
    url: str,
    loaded: LoadedModel,
    *,
    release_id: int | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    progress: Progress | None = None,
    overlap: bool = True,
) -> EmbedSummary:
    """Embed every galaxy (of a release) that has no vector for ``loaded`` yet.

    ``workers``: DataLoader reader processes (default :func:`default_workers`).
    ``overlap=False`` reads, runs the model and writes in turn in this thread (the path before
    :mod:`galdb.lvm.overlap`; ``bench_embed.py`` measures it as the reference).
    """
    workers = default_workers() if workers is None else workers
    progress = progress or NoProgress()
    register_vector(conn)
    record = registry.register(conn, loaded)
    summary = EmbedSummary(record.model_id, record.spec, record.embedding_dim)
    if not conn.execute(
        "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, record.model_id)
    ).fetchone()[0]:
        raise GaldbError(f"another `galdb embed` for {record.spec} is running")
    started = time.perf_counter()
    try:
        missing = count_missing(conn, record, release_id)
        progress.start(missing, f"embed {record.spec}")
        conn.commit()
        # Nothing missing: don't start reader processes at all.
        workers = workers if missing else 0
        data = MissingGalaxies(url, record, release_id, loaded.preprocessing)
        loader = DataLoader(
            data,
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=collate,
            persistent_workers=False,
        )

        def store(ids: list[int], vectors: np.ndarray | None, done: int) -> None:
            if ids:
                write_vectors(conn, record, ids, vectors)
            progress.advance(done)

        # conn belongs to the writer thread until the with block has closed it
        with reading(loader, overlap) as batches, writing(store, overlap) as writer:
            for ids, batch, failed in batches:
                summary.failed.extend(failed)
                vectors = None
                if ids:
                    with torch.inference_mode():
                        vectors = loaded.model(batch).float().numpy()
                    summary.embedded += len(ids)
                writer.submit(ids, vectors, len(ids) + len(failed))
        summary.seconds = time.perf_counter() - started
        summary.index_built = registry.ensure_index(conn, record)
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, record.model_id))
        conn.commit()
    return summary


def embed_file(loaded: LoadedModel, path: Path) -> np.ndarray:
    """The vector of an external cutout (FITS, JPEG, PNG), preprocessed as the catalog was."""
    try:
        info = inspect_cutout(Path(path))
    except BadInput as exc:
        raise GaldbError(f"{path}: {exc.reason}") from exc
    ref = PixelRef(str(path), info.member, None, parse_bands(info.bands))
    x = to_tensor(read_pixels(ref), ref.bands, loaded.preprocessing)
    with torch.inference_mode():
        return loaded.model(x.unsqueeze(0)).float().numpy()[0]
