"""Synthetic embeddings stored as if a model had produced them (tests and benchmarks).

The galaxies are catalog-only rows (no pixels) of a release of their own; the vectors go
into the partition of a registered pseudo-model, so every code path that reads embeddings
(heads, propagation, similarity search) runs unchanged at any scale.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import psycopg
import torch
from pgvector.psycopg import register_vector

from galdb.ingest.runs import ensure_release
from galdb.lvm import registry
from galdb.lvm.embed import write_vectors
from galdb.lvm.preprocess import Preprocessing
from galdb.lvm.specs import LoadedModel


def clustered_vectors(
    n: int, dim: int, n_clusters: int, *, spread: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around ``n_clusters`` random centres, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    cluster = rng.integers(0, n_clusters, size=n)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        c = cluster[start : start + 100_000]
        x = centres[c] + spread * rng.normal(size=(len(c), dim)).astype(np.float32)
        out[start : start + len(c)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, cluster


def store_vectors(
    conn: psycopg.Connection,
    vectors: np.ndarray,
    release: str,
    spec: str,
    *,
    batch: int = 50_000,
    progress=None,
    positions: np.ndarray | None = None,
) -> tuple[registry.ModelRecord, np.ndarray]:
    """Create ``len(vectors)`` galaxies in ``release`` and store the vectors under ``spec``.

    Returns the model record and the galaxy ids, row ``i`` of ``vectors`` being galaxy
    ``ids[i]`` (source ids ``v00000000``, ``v00000001``, …). ``positions``: (ra, dec) in
    degrees per row (default: none, catalog rows without a position).
    """
    loaded = LoadedModel(
        spec=spec,
        arch="synthetic",
        model=torch.nn.Identity(),
        preprocessing=Preprocessing(),
        embedding_dim=vectors.shape[1],
        weights_sha256="0" * 64,
    )
    register_vector(conn)
    record = registry.register(conn, loaded)
    release_id = ensure_release(conn, release, "synthetic")
    with (
        conn.cursor() as cur,
        cur.copy("COPY galdb.galaxies (release_id, source_id, ra, dec) FROM STDIN") as cp,
    ):
        for i in range(len(vectors)):
            ra, dec = (None, None) if positions is None else map(float, positions[i])
            cp.write_row((release_id, f"v{i:08d}", ra, dec))
    conn.commit()
    ids = np.array(
        conn.execute(
            "SELECT galaxy_id FROM galdb.galaxies WHERE release_id = %s ORDER BY source_id",
            (release_id,),
        ).fetchall(),
        dtype=np.int64,
    ).ravel()
    for start in range(0, len(vectors), batch):
        write_vectors(
            conn, record, ids[start : start + batch].tolist(), vectors[start : start + batch]
        )
        if progress is not None:
            progress.advance(min(batch, len(vectors) - start))
    return record, ids


@dataclass(frozen=True)
class StoredClusters:
    """Clustered vectors stored under a release and a pseudo-model of their own."""

    release: str
    release_id: int
    record: registry.ModelRecord
    ids: np.ndarray  # galaxy id of each row of ``vectors``
    vectors: np.ndarray
    cluster: np.ndarray  # each row's cluster: a true class for tests


def store_clusters(
    conn: psycopg.Connection,
    prefix: str,
    n: int,
    dim: int,
    n_clusters: int,
    *,
    spread: float = 0.5,
    seed: int = 0,
) -> StoredClusters:
    """:func:`clustered_vectors` stored by :func:`store_vectors` in a new release
    ``<prefix>-<random>`` under the spec ``synthetic:<release>``."""
    release = f"{prefix}-{uuid.uuid4().hex[:6]}"
    vectors, cluster = clustered_vectors(n, dim, n_clusters, spread=spread, seed=seed)
    record, ids = store_vectors(conn, vectors, release, f"synthetic:{release}")
    release_id = ensure_release(conn, release, "synthetic")
    return StoredClusters(release, release_id, record, ids, vectors, cluster)
