"""Label and value spreading on small graphs whose answer is known, and one large random graph."""

import numpy as np
import pytest
from scipy import sparse

from galdb.propagate.spreading import knn_adjacency, label_spreading, value_spreading


def _undirected(edges: list[tuple[int, int, float]], n: int) -> sparse.csr_matrix:
    sources, targets, weights = zip(*edges, strict=True)
    return knn_adjacency(np.array(sources), np.array(targets), np.array(weights), n)


def _chain(n: int, weights: list[float] | None = None) -> sparse.csr_matrix:
    weights = weights or [1.0] * (n - 1)
    return _undirected([(i, i + 1, w) for i, w in enumerate(weights)], n)


def test_two_cliques_take_the_label_of_their_seed():
    clique = [(a, b, 1.0) for a in range(4) for b in range(a + 1, 4)]
    edges = clique + [(a + 4, b + 4, w) for a, b, w in clique] + [(3, 4, 0.05)]
    seeds = np.array([0, -1, -1, -1, -1, -1, -1, 1])
    spread = label_spreading(_undirected(edges, 8), seeds, 2)
    assert spread.label.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert spread.converged
    np.testing.assert_allclose(spread.scores.sum(axis=1), 1, rtol=1e-6)
    # The bridge nodes hear the other clique more than the interior does.
    assert spread.confidence[3] < spread.confidence[1]
    assert spread.confidence[4] < spread.confidence[6]
    assert spread.scores.dtype == np.float32 and spread.confidence.dtype == np.float32


def test_iteration_matches_the_closed_form():
    alpha = 0.9
    adjacency = _chain(6, [1.0, 0.5, 2.0, 0.3, 1.5])
    seeds = np.array([0, -1, 2, -1, -1, 1])
    dense = adjacency.toarray().astype(np.float64)
    inv_sqrt = 1 / np.sqrt(dense.sum(axis=1))
    normalised = inv_sqrt[:, None] * dense * inv_sqrt[None, :]
    one_hot = np.zeros((6, 3))
    one_hot[[0, 2, 5], [0, 2, 1]] = 1
    closed = (1 - alpha) * np.linalg.solve(np.eye(6) - alpha * normalised, one_hot)
    expected = closed / closed.sum(axis=1, keepdims=True)

    spread = label_spreading(adjacency, seeds, 3, alpha=alpha)
    np.testing.assert_allclose(spread.scores, expected, atol=1e-4)
    np.testing.assert_array_equal(spread.label, expected.argmax(axis=1))
    assert spread.converged and 1 < spread.iterations < 200


def test_fixed_seed_holds_where_a_soft_seed_flips():
    # Node 0 (class 0) sits in the middle of five class-1 seeds that also know each other.
    ring = [(i, i % 5 + 1, 1.0) for i in range(1, 6)]
    adjacency = _undirected([(0, i, 1.0) for i in range(1, 6)] + ring, 6)
    seeds = np.array([0, 1, 1, 1, 1, 1])

    soft = label_spreading(adjacency, seeds, 2)
    assert soft.label[0] == 1

    fixed = np.zeros(6, bool)
    fixed[0] = True
    hard = label_spreading(adjacency, seeds, 2, fixed=fixed)
    assert hard.scores[0].tolist() == [1.0, 0.0]
    assert hard.label[0] == 0 and hard.confidence[0] == 1.0
    # The clamped node pulls its neighbours harder than a soft one does.
    assert (hard.scores[1:, 0] > soft.scores[1:, 0]).all()


def test_nodes_cut_off_from_every_seed_get_no_label():
    # 0-1-2 holds the seed, 3 is isolated, 4-5 is a component without seeds.
    adjacency = _undirected([(0, 1, 1.0), (1, 2, 1.0), (4, 5, 1.0)], 6)
    with np.errstate(all="raise"):
        spread = label_spreading(adjacency, np.array([1, -1, -1, -1, -1, -1]), 2)
    assert spread.label.tolist() == [1, 1, 1, -1, -1, -1]
    assert spread.confidence.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert not np.isnan(spread.scores).any()
    assert (spread.scores[3:] == 0).all()


def test_no_seeds_at_all():
    spread = label_spreading(_chain(3), np.full(3, -1), 2)
    assert spread.label.tolist() == [-1, -1, -1] and spread.converged


def test_knn_adjacency_symmetrises_and_drops_self_loops_and_negative_weights():
    adjacency = knn_adjacency(
        sources=np.array([0, 1, 1, 2, 3, 2]),
        targets=np.array([1, 0, 1, 3, 0, 0]),
        similarities=np.array([0.2, 0.6, 0.9, 0.4, -0.5, 0.0]),
        n=5,
    )
    expected = np.zeros((5, 5), np.float32)
    expected[0, 1] = expected[1, 0] = 0.6  # the larger of the two directions
    expected[2, 3] = expected[3, 2] = 0.4  # one direction is enough
    assert adjacency.dtype == np.float32 and adjacency.shape == (5, 5)
    np.testing.assert_array_equal(adjacency.toarray(), expected)
    assert adjacency.nnz == 4  # no stored zeros for the self loop or the clipped edges


def test_knn_adjacency_keeps_the_largest_copy_of_a_repeated_edge():
    adjacency = knn_adjacency(
        np.array([0, 0, 0, 1]), np.array([1, 1, 2, 0]), np.array([0.3, 0.8, 0.5, 0.4]), 3
    )
    np.testing.assert_allclose(
        adjacency.toarray(), [[0, 0.8, 0.5], [0.8, 0, 0], [0.5, 0, 0]], rtol=1e-7
    )


@pytest.mark.parametrize(
    ("sources", "targets", "similarities", "n"),
    [([0, 1], [1], [0.5], 2), ([0], [2], [0.5], 2), ([-1], [0], [0.5], 2), ([0], [1], [np.nan], 2)],
)
def test_knn_adjacency_rejects_bad_edges(sources, targets, similarities, n):
    with pytest.raises(ValueError):
        knn_adjacency(np.array(sources), np.array(targets), np.array(similarities), n)


def test_value_spreading_interpolates_along_a_chain():
    adjacency = _undirected([(i, i + 1, 1.0) for i in range(6)], 8)  # node 7 is isolated
    values = np.full(8, np.nan)
    values[0], values[6] = 0.0, 1.0
    estimate, weight = value_spreading(adjacency, values)

    assert (np.diff(estimate[:7]) > 0).all()
    assert 0 < estimate[1] and estimate[5] < 1
    assert estimate[3] == pytest.approx(0.5, abs=1e-6)  # the chain is symmetric about node 3
    assert np.isnan(estimate[7]) and weight[7] == 0
    assert weight.max() == 1 and weight.dtype == np.float32 and estimate.dtype == np.float64
    assert weight[3] < weight[1]  # further from the known values, less sure

    fixed = ~np.isnan(values)
    clamped, _ = value_spreading(adjacency, values, fixed=fixed)
    assert clamped[0] == 0 and clamped[6] == 1
    assert (np.diff(clamped[:7]) > 0).all()


def test_value_spreading_keeps_precision_far_from_zero():
    values = np.array([1e6, np.nan, 1e6 + 1])
    estimate, _ = value_spreading(_chain(3), values)
    assert estimate[1] == pytest.approx(1e6 + 0.5, abs=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seeds": np.array([0, 2, -1])},  # class out of range
        {"seeds": np.array([0, -2, -1])},
        {"seeds": np.array([0.0, -1, -1])},  # not integers
        {"seeds": np.array([0, -1])},  # wrong length
        {"seeds": np.array([0, -1, -1]), "fixed": np.array([False, True, False])},  # no seed
        {"seeds": np.array([0, -1, -1]), "alpha": 1.0},
    ],
)
def test_label_spreading_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        label_spreading(_chain(3), n_classes=2, **kwargs)


def test_large_random_graph():
    n, k, n_seeds = 200_000, 15, 600
    rng = np.random.default_rng(1)
    adjacency = knn_adjacency(
        np.repeat(np.arange(n), k),
        rng.integers(0, n, n * k),
        rng.random(n * k, dtype=np.float32),
        n,
    )
    seeds = np.full(n, -1)
    seeded = rng.choice(n, n_seeds, replace=False)
    seeds[seeded] = rng.integers(0, 3, n_seeds)

    spread = label_spreading(adjacency, seeds, 3)
    assert spread.converged
    assert (spread.label >= 0).all()  # a random graph this dense is connected
    np.testing.assert_allclose(spread.scores.sum(axis=1), 1, rtol=1e-5)
    assert (spread.label[seeded] == seeds[seeded]).all()
    assert set(np.unique(spread.label)) == {0, 1, 2}
