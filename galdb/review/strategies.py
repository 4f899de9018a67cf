"""Queue strategies: which galaxies a reviewer (human, or a simulated oracle) sees first.

Each strategy has two forms that must agree: :func:`priority` / :func:`queue_order` rank rows of
predicted class probabilities in numpy, and :func:`order_by_sql` gives the ORDER BY expression for
a predictions table with the columns ``confidence``, ``margin``, ``entropy`` (as computed by
:func:`margin_and_entropy`) and one probability column per class. Ties go to the lower
``galaxy_id`` in SQL and to the lower row index in numpy, so the two agree on rows ordered by
``galaxy_id``. ``random`` agrees in kind only: the two draw from different generators.

>>> order_by_sql("margin")
'margin ASC, galaxy_id'
>>> order_by_sql("rare", rare_class_column="p_merger")
'p_merger DESC, galaxy_id'
"""

from __future__ import annotations

import re

import numpy as np
from scipy.special import entr

STRATEGIES: tuple[str, ...] = ("margin", "entropy", "least_confident", "rare", "random")

_ORDER_BY = {
    "margin": "margin ASC, galaxy_id",
    "entropy": "entropy DESC, galaxy_id",
    "least_confident": "confidence ASC, galaxy_id",
    "rare": "{column} DESC, galaxy_id",
    "random": "random()",
}
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def margin_and_entropy(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence, margin and entropy of each row of class probabilities.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(n, C)`` class probabilities.

    Returns
    -------
    confidence, margin, entropy : np.ndarray
        ``(n,)`` float32 each: the largest probability, the largest minus the second largest
        (the confidence itself when ``C`` is 1) and the natural-log entropy.
    """
    probabilities = _as_matrix(probabilities)
    n, n_classes = probabilities.shape
    if n_classes == 1:
        top1 = probabilities[:, 0]
        top2 = np.zeros(n)
    else:
        top2, top1 = np.partition(probabilities, n_classes - 2, axis=1)[:, -2:].T
    entropy = entr(probabilities).sum(axis=1)
    return top1.astype(np.float32), (top1 - top2).astype(np.float32), entropy.astype(np.float32)


def priority(
    strategy: str,
    probabilities: np.ndarray,
    *,
    label_counts: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Review priority of each row; higher is reviewed sooner.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`: ``margin`` (smallest top-1 minus top-2 first), ``entropy``
        (largest first), ``least_confident`` (smallest top-1 first), ``rare`` (largest
        probability of the class with the fewest labels so far first, to fish for rare classes
        such as mergers) or ``random``.
    probabilities : np.ndarray
        ``(n, C)`` predicted class probabilities.
    label_counts : np.ndarray, optional
        ``(C,)`` labels per class so far; required by ``rare`` (ties go to the lower class).
    rng : np.random.Generator, optional
        Generator for ``random``; a generator seeded with 0 when not given.

    Returns
    -------
    np.ndarray
        ``(n,)`` float64.
    """
    _check_strategy(strategy)
    probabilities = _as_matrix(probabilities)
    if strategy == "random":
        return (rng or np.random.default_rng(0)).random(len(probabilities))
    if strategy == "rare":
        if label_counts is None:
            raise ValueError("the rare strategy needs label_counts")
        label_counts = np.asarray(label_counts)
        if label_counts.shape != (probabilities.shape[1],):
            raise ValueError(
                f"label_counts must have one count per class ({probabilities.shape[1]})"
            )
        return probabilities[:, np.argmin(label_counts)].astype(np.float64)
    confidence, margin, entropy = margin_and_entropy(probabilities)
    by_strategy = {"margin": -margin, "entropy": entropy, "least_confident": -confidence}
    return by_strategy[strategy].astype(np.float64)


def queue_order(
    strategy: str,
    probabilities: np.ndarray,
    *,
    label_counts: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Row indices in review order: descending :func:`priority`, ties by index.

    Parameters
    ----------
    strategy, probabilities, label_counts, rng
        As in :func:`priority`.
    exclude : np.ndarray, optional
        ``(n,)`` bool mask of rows to leave out (e.g. already labelled).

    Returns
    -------
    np.ndarray
        Indices of the rows not excluded.
    """
    scores = priority(strategy, probabilities, label_counts=label_counts, rng=rng)
    order = np.argsort(-scores, kind="stable")
    if exclude is None:
        return order
    exclude = np.asarray(exclude)
    if exclude.shape != scores.shape or exclude.dtype != bool:
        raise ValueError(f"exclude must be a {scores.shape} bool mask")
    return order[~exclude[order]]


def order_by_sql(strategy: str, *, rare_class_column: str | None = None) -> str:
    """ORDER BY expression of a strategy for a predictions table.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    rare_class_column : str, optional
        Probability column of the rare class (e.g. ``p_merger``); required by ``rare``.

    Returns
    -------
    str
        E.g. ``'margin ASC, galaxy_id'``.
    """
    _check_strategy(strategy)
    if strategy != "rare":
        return _ORDER_BY[strategy]
    if rare_class_column is None:
        raise ValueError("the rare strategy needs rare_class_column")
    if not _IDENTIFIER.fullmatch(rare_class_column):
        raise ValueError(f"not a column name: {rare_class_column!r}")
    return _ORDER_BY["rare"].format(column=rare_class_column)


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


def _as_matrix(probabilities: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] == 0:
        raise ValueError(f"probabilities must be (n, C) with C >= 1, not {probabilities.shape}")
    return probabilities
