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


def latent_vectors(
    n: int, dim: int, *, seed: int = 0, latent: int = 32, clusters: int = 1_000
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors shaped like image embeddings, and each one's cluster.

    A ``latent``-d ``z`` is drawn from a mixture of ``clusters`` Gaussians whose sizes follow
    a Zipf-like law (weight ~ 1/rank^1.1) and whose widths vary from 0.3 to 1.2;
    ``x = normalise(A @ z + noise)`` with a fixed random projection ``A`` and noise of sigma
    0.02 per dimension: clustered, unevenly dense, near a low-dimension subspace. Rounded to
    float16 (what ``halfvec`` stores) and re-normalised. The mixture and the projection do
    not depend on ``seed``, so two seeds give a base and held-out queries of one distribution.
    """
    rng = np.random.default_rng(seed)
    design = np.random.default_rng(12345)
    centres = design.normal(size=(clusters, latent)).astype(np.float32)
    widths = design.uniform(0.3, 1.2, size=clusters).astype(np.float32)
    weights = 1.0 / np.arange(1, clusters + 1) ** 1.1
    project = (design.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)
    out, cluster = np.empty((n, dim), dtype=np.float32), np.empty(n, np.int64)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        c = rng.choice(clusters, size=m, p=weights / weights.sum())
        z = centres[c] + widths[c, None] * rng.normal(size=(m, latent)).astype(np.float32)
        x = z @ project + 0.02 * rng.normal(size=(m, dim)).astype(np.float32)
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        cluster[start : start + m] = c
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
