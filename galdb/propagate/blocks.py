"""A whole kNN graph at once, by clustered blocks of matrix products (no per-galaxy query).

:func:`knn_graph` is the entry point: principal axes, blocks, exact re-rank.

Building a graph with pgvector asks the HNSW index once per galaxy (about 2 ms each on a
busy core at 100k x 512-d). Here the vectors are read once, grouped into lists of about
``list_size`` galaxies by k-means (an inverted file, as FAISS's IVF), and for each list the
k nearest of every member are taken among the members of the ``probe`` lists whose centres
are nearest the list's own centre: one matrix product (BLAS) per list, then a top-k. A
neighbour in a list that is not probed is missed, so the result is approximate like the
HNSW one; with a single list (``n <= list_size * probe``) it is exact. The cost is
``n * probe * list_size * d`` multiply-adds, linear in n at a fixed list size, plus the
k-means (``n * (n / list_size) * d`` to assign every vector to a list, which is about half
the total at 1M and would dominate from about 4M).

The search runs on the vectors projected on their leading principal axes (those holding 99 %
of the second moment, when that is at most three quarters of the dimensions: image
embeddings lie near a low-dimension subspace), for k + 10 candidates per galaxy that are
re-ranked by their exact similarity; recall is measured against exact kNN in full
dimension (``benchmarks/bench_propagate.py``).

Memory: the vectors are held once, as float16 (``n * d * 2`` bytes: 1 GB for 1M x 512),
with their projection (at most as big), plus per list the gathered candidates
(``probe * list_size * d * 4`` bytes) and their similarity block; :func:`memory_bytes`
gives the estimate, which the caller checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

LIST_SIZE = 256
PROBE = 64
ENERGY = 0.99
SPARE = 10
KMEANS_ITERATIONS = 6
KMEANS_SAMPLE_PER_LIST = 32


@dataclass
class BlockGraph:
    """The k nearest other rows of each row (row indices, -1 where fewer) and their cosine
    similarities, nearest first."""

    neighbours: np.ndarray
    similarities: np.ndarray


def memory_bytes(
    n: int, dim: int, k: int, list_size: int = LIST_SIZE, probe: int = PROBE, threads: int = 2
) -> int:
    """An estimate of the memory a graph build by blocks needs for ``n`` vectors of ``dim``:
    the ids and float16 vectors, the results and the neighbour ids written back, and per
    thread one list's candidates and similarity block, with room for lists twice
    ``list_size`` (k-means lists are uneven)."""
    candidates = 2 * probe * list_size
    per_thread = candidates * dim * 4 + 2 * list_size * candidates * (4 + 8)
    return n * (8 + dim * 4) + n * (k + SPARE) * (8 + 4 + 8) + threads * per_thread


def unit_half(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity = dot product), stored as float16."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1)).astype(np.float16)


def stack(chunks: Iterable[tuple[np.ndarray, np.ndarray]], n: int, dim: int, progress=None):
    """Galaxy ids and unit float16 vectors of ``chunks`` ((ids, float32 vectors), as
    :func:`galdb.lvm.vectors.iter_embeddings` yields them) in preallocated arrays."""
    ids, x, at = np.empty(n, np.int64), np.empty((n, dim), np.float16), 0
    for chunk_ids, chunk in chunks:
        if at + len(chunk_ids) > n:  # rows added while reading: grow (rare)
            ids = np.concatenate([ids, np.empty(len(chunk_ids), np.int64)])
            x = np.concatenate([x, np.empty((len(chunk_ids), dim), np.float16)])
        ids[at : at + len(chunk_ids)] = chunk_ids
        x[at : at + len(chunk_ids)] = unit_half(chunk)
        at += len(chunk_ids)
        if progress is not None:
            progress.advance(len(chunk_ids))
    return ids[:at], x[:at]


def kmeans(x: np.ndarray, n_lists: int, seed: int = 0) -> np.ndarray:
    """Spherical k-means centres (float32, unit rows) of a sample of ``x``."""
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(len(x), min(len(x), KMEANS_SAMPLE_PER_LIST * n_lists), False))]
    sample = sample.astype(np.float32)
    centres = sample[rng.choice(len(sample), n_lists, replace=False)]
    for _ in range(KMEANS_ITERATIONS):
        label = nearest_centre(sample, centres)
        counts = np.bincount(label, minlength=n_lists)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sums = np.empty_like(centres)
        full = counts > 0
        sums[full] = np.add.reduceat(sample[np.argsort(label, kind="stable")], starts[full])
        sums[~full] = sample[rng.choice(len(sample), int((~full).sum()))]  # reseed empty lists
        centres = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return centres


def nearest_centre(x: np.ndarray, centres: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """The index of each row's nearest centre (largest dot product), in chunks."""
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), chunk):
        out[start : start + chunk] = np.argmax(
            x[start : start + chunk].astype(np.float32) @ centres.T, axis=1
        )
    return out


def knn_blocks(
    x: np.ndarray,
    k: int,
    *,
    list_size: int = LIST_SIZE,
    probe: int = PROBE,
    threads: int = 2,
    seed: int = 0,
    progress=None,
) -> BlockGraph:
    """The approximate k nearest other rows of every row of ``x`` (unit rows, float16).

    ``progress.advance`` is called with the number of rows done after each list.
    """
    n = len(x)
    n_lists = max(1, min(n // max(list_size, 1), n))
    neighbours = np.full((n, k), -1, np.int64)
    similarities = np.full((n, k), -np.inf, np.float32)
    if n_lists * 1 <= probe:
        n_lists = 1
    if n_lists == 1:
        lists, near = [np.arange(n)], [np.array([0])]
    else:
        centres = kmeans(x, n_lists, seed)
        label = nearest_centre(x, centres)
        order = np.argsort(label, kind="stable")
        bounds = np.searchsorted(label[order], np.arange(n_lists + 1))
        lists = [order[bounds[i] : bounds[i + 1]] for i in range(n_lists)]
        near = np.argsort(-(centres @ centres.T), axis=1)[:, :probe]

    def one(i: int) -> int:
        members = lists[i]
        if not len(members):
            return 0
        candidates = np.concatenate([lists[j] for j in near[i]])
        sims = x[members].astype(np.float32) @ x[candidates].astype(np.float32).T
        sims[candidates[None, :] == members[:, None]] = -np.inf  # not itself
        kk = min(k, len(candidates) - 1)
        if kk <= 0:
            return len(members)
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        top_sims = np.take_along_axis(sims, top, 1)
        rank = np.argsort(-top_sims, axis=1, kind="stable")
        neighbours[members, :kk] = candidates[np.take_along_axis(top, rank, 1)]
        similarities[members, :kk] = np.take_along_axis(top_sims, rank, 1)
        return len(members)

    with ThreadPoolExecutor(threads) as pool:
        for done in pool.map(one, range(len(lists))):
            if progress is not None:
                progress.advance(done)
    bad = ~np.isfinite(similarities)
    neighbours[bad] = -1
    return BlockGraph(neighbours, similarities)


def principal_axes(x: np.ndarray, energy: float = ENERGY, sample: int = 20_000) -> np.ndarray:
    """The leading principal axes (``d x d'``, float32) holding ``energy`` of the vectors'
    second moment, ``d'`` rounded up to a multiple of 16; all ``d`` axes (no reduction) when
    that would keep more than three quarters of them."""
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(x), min(len(x), sample), replace=False))
    s = x[rows].astype(np.float32)
    values, vectors = np.linalg.eigh(s.T @ s)
    values, vectors = values[::-1], vectors[:, ::-1]
    share = np.cumsum(values) / max(values.sum(), 1e-30)
    dims = int(min(len(values), -(-(np.searchsorted(share, energy) + 1) // 16) * 16))
    if dims > 0.75 * x.shape[1]:
        return np.eye(x.shape[1], dtype=np.float32)
    return np.ascontiguousarray(vectors[:, :dims], dtype=np.float32)


def knn_graph(
    x: np.ndarray,
    k: int,
    *,
    energy: float = ENERGY,
    spare: int = SPARE,
    threads: int = 2,
    progress=None,
    search=knn_blocks,
    **options,
) -> BlockGraph:
    """The approximate k nearest other rows of each row of ``x`` (unit rows, float16).

    The search (``search(y, k, threads=, progress=, **options)``; by default the blocks
    search, :func:`knn_blocks`, ``options``: list_size, probe; or
    :func:`galdb.propagate.hnsw_search.knn_hnsw`) runs on the vectors projected on their
    principal axes holding ``energy`` of their second moment (image embeddings lie near a
    low-dimension subspace: fewer multiply-adds per candidate) for ``k + spare``
    candidates, which are then re-ranked by the exact similarity of the full vectors. On
    vectors with no such subspace nothing is projected.
    """
    axes = principal_axes(x, energy)
    if axes.shape[1] < x.shape[1]:
        y = np.empty((len(x), axes.shape[1]), np.float16)
        for start in range(0, len(x), 65536):
            y[start : start + 65536] = x[start : start + 65536].astype(np.float32) @ axes
        found = search(y, k + spare, threads=threads, progress=progress, **options)
        del y
    else:
        found = search(x, k + spare, threads=threads, progress=progress, **options)
    return rerank(x, found, k)


def rerank(x: np.ndarray, found: BlockGraph, k: int, chunk: int = 4096) -> BlockGraph:
    """The k most similar of each row's candidates by the exact similarity of ``x``."""
    n = len(x)
    neighbours = np.full((n, k), -1, np.int64)
    similarities = np.full((n, k), -np.inf, np.float32)
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        cand = found.neighbours[rows]
        sims = np.matmul(
            x[np.maximum(cand, 0)].astype(np.float32), x[rows].astype(np.float32)[:, :, None]
        )[:, :, 0]
        sims[cand < 0] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        neighbours[rows] = np.take_along_axis(cand, order, 1)
        similarities[rows] = np.take_along_axis(sims, order, 1)
    neighbours[~np.isfinite(similarities)] = -1
    return BlockGraph(neighbours, similarities)
