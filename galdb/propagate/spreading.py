"""Label spreading on a kNN graph (Zhou et al. 2004, "Learning with local and global consistency").

Class scores ``F`` are iterated as ``F <- alpha S F + (1 - alpha) Y`` with the symmetrically
normalised adjacency ``S = D^-1/2 W D^-1/2`` and one-hot seed rows ``Y``; with nothing clamped this
converges to ``(1 - alpha) (I - alpha S)^-1 Y``. Fixed (human) seeds are reset to their one-hot row
after every iteration, scaled to the mass the graph gives them, so they never move and weigh
as much as any other seed, while soft seeds (e.g. catalogue labels) can be outvoted by their
neighbourhood.

:func:`value_spreading` runs the same iteration on a continuous value: it spreads
``value * known`` and ``known`` and takes their ratio, a graph-weighted mean of the known values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


def knn_adjacency(
    sources: np.ndarray, targets: np.ndarray, similarities: np.ndarray, n: int
) -> sparse.csr_matrix:
    """Symmetric weighted adjacency from directed kNN edges.

    Parameters
    ----------
    sources, targets : np.ndarray
        Node indices (0 .. n-1) of the directed edges ``source -> target``.
    similarities : np.ndarray
        Cosine similarity of each edge; clipped to >= 0 to give the weight.
    n : int
        Number of nodes.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n, n)`` float32 ``W`` with ``W_ij = max(w(i->j), w(j->i))`` over all copies of the edge;
        self-loops and zero-weight edges are dropped.
    """
    sources = np.asarray(sources, dtype=np.int64).ravel()
    targets = np.asarray(targets, dtype=np.int64).ravel()
    similarities = np.asarray(similarities, dtype=np.float32).ravel()
    if not len(sources) == len(targets) == len(similarities):
        raise ValueError("sources, targets and similarities must have the same length")
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    if len(sources) and min(sources.min(), targets.min()) < 0:
        raise ValueError("node indices must be >= 0")
    if len(sources) and max(sources.max(), targets.max()) >= n:
        raise ValueError(f"node indices must be < n = {n}")
    if not np.isfinite(similarities).all():
        raise ValueError("similarities must be finite")

    keep = (sources != targets) & (similarities > 0)
    sources, targets, weights = sources[keep], targets[keep], similarities[keep]
    directed = sparse.csr_matrix((weights, (sources, targets)), shape=(n, n), dtype=np.float32)
    if directed.nnz < len(weights):  # repeated edges were summed; they must keep the largest
        directed = _largest_per_edge(sources, targets, weights, n)
    return sparse.csr_matrix(directed.maximum(directed.T))


@dataclass(frozen=True)
class Spread:
    """Result of :func:`label_spreading`.

    Attributes
    ----------
    scores : np.ndarray
        ``(n, C)`` float32; rows sum to 1 where the node received any mass, else all zeros.
    label : np.ndarray
        ``(n,)`` int, argmax of ``scores``; -1 where the node is disconnected from every seed.
    confidence : np.ndarray
        ``(n,)`` float32 in [0, 1], the largest normalised score (0 where no mass).
    iterations : int
        Iterations run.
    converged : bool
        Whether the largest change fell below ``tol`` within ``max_iter`` iterations.
    """

    scores: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    iterations: int
    converged: bool


def label_spreading(
    adjacency: sparse.spmatrix | sparse.sparray,
    seeds: np.ndarray,
    n_classes: int,
    *,
    fixed: np.ndarray | None = None,
    alpha: float = 0.9,
    max_iter: int = 200,
    tol: float = 1e-3,
) -> Spread:
    """Spread seed labels over a weighted graph.

    Parameters
    ----------
    adjacency : sparse matrix
        ``(n, n)`` symmetric non-negative weights, e.g. from :func:`knn_adjacency`.
    seeds : np.ndarray
        ``(n,)`` int, class index in ``0 .. n_classes-1`` or -1 for unlabelled.
    n_classes : int
        Number of classes ``C``.
    fixed : np.ndarray, optional
        ``(n,)`` bool mask of seeds clamped to their one-hot row (times their mass) after every
        iteration (human labels never move). Other seeds are soft.
    alpha : float
        Weight of the neighbours against the seed row, in (0, 1).
    max_iter : int
        Most iterations to run.
    tol : float
        Converged when the largest relative change of a score is below this.

    Returns
    -------
    Spread
    """
    transition = _normalised(adjacency)
    n = transition.shape[0]
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, not {n_classes}")
    seeds = np.asarray(seeds)
    if seeds.shape != (n,) or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be an ({n},) integer array")
    if n and (seeds.min() < -1 or seeds.max() >= n_classes):
        raise ValueError(f"seeds must be -1 or a class index below {n_classes}")
    labelled = np.flatnonzero(seeds >= 0)
    one_hot = np.zeros((n, n_classes), dtype=np.float32)
    one_hot[labelled, seeds[labelled]] = 1

    mass, iterations, converged = _iterate(
        transition, one_hot, _fixed_rows(fixed, seeds >= 0), alpha, max_iter, tol
    )
    total = mass.sum(axis=1)
    reached = total > 0
    scores = np.zeros_like(mass)
    scores[reached] = mass[reached] / total[reached, None]
    label = np.where(reached, scores.argmax(axis=1), -1)
    return Spread(scores, label, scores.max(axis=1), iterations, converged)


def value_spreading(
    adjacency: sparse.spmatrix | sparse.sparray,
    values: np.ndarray,
    *,
    fixed: np.ndarray | None = None,
    alpha: float = 0.9,
    max_iter: int = 200,
    tol: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Spread known values over a weighted graph (the regression analogue of label spreading).

    Parameters
    ----------
    adjacency : sparse matrix
        ``(n, n)`` symmetric non-negative weights.
    values : np.ndarray
        ``(n,)`` float, NaN where unknown.
    fixed, alpha, max_iter, tol
        As in :func:`label_spreading`; ``fixed`` may only mark known values, and ``tol`` applies
        to the value (in its units) and to the indicator mass alike.

    Returns
    -------
    estimate : np.ndarray
        ``(n,)`` float64, NaN where no known value reaches the node.
    weight : np.ndarray
        ``(n,)`` float32 in [0, 1], the spread indicator mass over its maximum (a confidence).
    """
    transition = _normalised(adjacency)
    n = transition.shape[0]
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"values must be an ({n},) array")
    if np.isinf(values).any():
        raise ValueError("values must be finite or NaN")
    known = ~np.isnan(values)
    # The ratio is a weighted mean, so spreading offsets from the mean loses nothing and keeps
    # float32 precise for values far from zero.
    offset = float(values[known].mean()) if known.any() else 0.0
    columns = np.column_stack([np.where(known, values - offset, 0.0), known]).astype(np.float32)

    mass, _, _ = _iterate(
        transition, columns, _fixed_rows(fixed, known), alpha, max_iter, tol, mass_column=1
    )
    indicator = mass[:, 1]
    reached = indicator > 0
    estimate = np.full(n, np.nan)
    estimate[reached] = mass[reached, 0].astype(np.float64) / indicator[reached] + offset
    peak = indicator.max() if n else 0.0
    weight = indicator / peak if peak > 0 else np.zeros(n, dtype=np.float32)
    return estimate, weight.astype(np.float32)


def _largest_per_edge(
    sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, n: int
) -> sparse.csr_matrix:
    """Directed adjacency keeping the largest weight of each repeated edge."""
    # Sorting by (source, target) puts the copies of an edge side by side for one reduceat.
    key = sources * n + targets
    order = np.argsort(key)
    key, weights = key[order], weights[order]
    first = np.flatnonzero(np.diff(key, prepend=-1))
    sources, targets = np.divmod(key[first], n)
    largest = np.maximum.reduceat(weights, first)
    return sparse.csr_matrix((largest, (sources, targets)), shape=(n, n), dtype=np.float32)


def _normalised(adjacency: sparse.spmatrix | sparse.sparray) -> sparse.csr_matrix:
    """``D^-1/2 W D^-1/2`` as float32 CSR; nodes of degree 0 get empty rows and columns."""
    weights = sparse.csr_matrix(adjacency, dtype=np.float32)
    if weights.shape[0] != weights.shape[1]:
        raise ValueError(f"adjacency must be square, not {weights.shape}")
    if (weights.data < 0).any():
        raise ValueError("adjacency weights must be >= 0")
    degree = np.asarray(weights.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    np.divide(1, np.sqrt(degree), out=inv_sqrt, where=degree > 0)
    rows = np.repeat(np.arange(weights.shape[0]), np.diff(weights.indptr))
    data = weights.data * inv_sqrt[rows] * inv_sqrt[weights.indices]
    return sparse.csr_matrix((data, weights.indices, weights.indptr), shape=weights.shape)


def _fixed_rows(fixed: np.ndarray | None, seeded: np.ndarray) -> np.ndarray:
    """Indices of the clamped rows, checked to be seeds."""
    if fixed is None:
        return np.zeros(0, dtype=np.int64)
    fixed = np.asarray(fixed)
    if fixed.shape != seeded.shape or fixed.dtype != bool:
        raise ValueError(f"fixed must be a {seeded.shape} bool mask")
    if (fixed & ~seeded).any():
        raise ValueError("fixed marks nodes without a seed")
    return np.flatnonzero(fixed)


def _relative_change(new: np.ndarray, old: np.ndarray) -> float:
    """Largest change of an entry relative to its size; a node first reached counts as 1.

    An absolute tolerance would stop too early on a large graph, where the mass that
    reaches a node far from every seed is tiny but still decides its label.
    """
    if not new.size:
        return 0.0
    scale = np.maximum(np.abs(new), np.abs(old))
    moved = np.abs(new - old)
    return float(np.max(np.divide(moved, scale, out=np.zeros_like(moved), where=scale > 0)))


def _iterate(
    transition: sparse.csr_matrix,
    seed_rows: np.ndarray,
    fixed_rows: np.ndarray,
    alpha: float,
    max_iter: int,
    tol: float,
    mass_column: int | None = None,
) -> tuple[np.ndarray, int, bool]:
    """Iterate ``F <- alpha S F + (1 - alpha) Y`` from ``F = Y``, clamping the fixed rows.

    Returns the final ``F``, the iterations run and whether it converged.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha}")
    source = (1 - alpha) * seed_rows
    clamped = seed_rows[fixed_rows]
    current = seed_rows.copy()
    for iteration in range(1, max_iter + 1):
        following = transition @ current
        following *= alpha
        following += source
        # A fixed row keeps its label but takes the mass the graph gives it (its row sum, or
        # the indicator column for values): clamped to 1, a human seed would outweigh every
        # soft seed around it tenfold (1 against 1 - alpha).
        got = following[fixed_rows]
        mass = got.sum(axis=1) if mass_column is None else got[:, mass_column]
        following[fixed_rows] = clamped * mass[:, None]
        change = _relative_change(following, current)
        current = following
        if change < tol:
            return current, iteration, True
    return current, max_iter, False
