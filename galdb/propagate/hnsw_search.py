"""The neighbour search of a whole-graph build through an in-memory HNSW index (FAISS).

Used by the ``"faiss"`` build method of :func:`galdb.propagate.graph.ensure_graph` when the
optional ``faiss-cpu`` package is installed (``pip install 'galdb[faiss]'``). The vectors
are read once, as for the blocks build, and projected on their principal axes
(:func:`galdb.propagate.blocks.knn_graph`); FAISS builds an HNSW graph of the projected
vectors (``M`` links, ``efConstruction``), every vector is then looked up in it
(``efSearch``) for ``k + spare`` candidates, and the candidates are re-ranked by their exact
similarity in full dimension. Unlike the blocks search, whose recall falls as n grows at a
fixed probe (0.81 at 1M), an HNSW search keeps its recall with n as pgvector's does: the
same kind of graph, without a SQL statement per galaxy. Both steps run on ``threads``
OpenMP threads, in chunks, so progress is reported as they go.

Measured (``benchmarks/bench_graph_build.py --n 1000000 --pgvector-n 1000000``, 1M x 512-d
embedding-like vectors, k=15, a quiet 2-CPU machine): the whole build, reading and writing
included, 258 s at recall@15 0.985, against 740 s of pgvector queries (after 867 s for its
index) at recall 0.928.

Memory: the projected vectors as float32 and the graph (``2 * M`` level-0 links of 4 bytes
per vector, plus the upper levels), on top of what the blocks build holds
(:func:`memory_bytes`).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from galdb.propagate.blocks import SPARE, BlockGraph

# On 1M x 512-d embedding-like vectors (latent_vectors, projected on 32 axes), 2 CPUs:
# M 32, efConstruction 64, efSearch 64 gave recall@15 0.933; 32/64/128 0.972 (205 s for
# the index, the look-ups and the re-rank); 48/96/96 0.986 (214 s).
M = 48
EF_CONSTRUCTION = 96
EF_SEARCH = 96
CHUNK = 20_000


def available() -> bool:
    """Whether FAISS can be imported (the ``faiss`` build method needs it)."""
    return importlib.util.find_spec("faiss") is not None


def memory_bytes(n: int, dim: int, k: int) -> int:
    """An estimate of what a build with this search holds for ``n`` vectors of ``dim``:
    ids, float16 vectors, their float32 projection (at most ``dim`` wide), the HNSW links
    (with a tenth for the upper levels) and the candidates of every row."""
    looked_up = k + SPARE + 1  # the candidates of knn_graph, and the row itself
    return n * (8 + dim * 2 + dim * 4 + int(2 * M * 4 * 1.1) + looked_up * (8 + 4) * 2)


def knn_hnsw(y: np.ndarray, k: int, *, threads: int = 2, progress=None) -> BlockGraph:
    """The approximate k nearest other rows of every row of ``y`` by inner product.

    ``progress.advance`` is called after every chunk added to the index and every chunk
    looked up: ``2 * len(y)`` in all.
    """
    import faiss  # optional dependency: checked by the caller with available()

    n = len(y)
    data = np.ascontiguousarray(y, dtype=np.float32)
    faiss.omp_set_num_threads(max(1, threads))
    index = faiss.IndexHNSWFlat(data.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    for start in range(0, n, CHUNK):
        index.add(data[start : start + CHUNK])
        if progress is not None:
            progress.advance(len(data[start : start + CHUNK]))
    index.hnsw.efSearch = max(EF_SEARCH, 2 * (k + 1))
    neighbours = np.full((n, k), -1, np.int64)
    similarities = np.full((n, k), -np.inf, np.float32)
    for start in range(0, n, CHUNK):
        rows = np.arange(start, min(start + CHUNK, n))
        sims, found = index.search(data[rows], min(k + 1, n))
        drop = (found == rows[:, None]) | (found < 0)  # itself, or nothing found
        keep = np.argsort(drop, axis=1, kind="stable")[:, :k]  # the others, nearest first
        width = keep.shape[1]
        chosen = np.take_along_axis(found, keep, 1)
        ok = ~np.take_along_axis(drop, keep, 1)
        neighbours[rows, :width] = np.where(ok, chosen, -1)
        similarities[rows, :width] = np.where(ok, np.take_along_axis(sims, keep, 1), -np.inf)
        if progress is not None:
            progress.advance(len(rows))
    return BlockGraph(neighbours, similarities)
