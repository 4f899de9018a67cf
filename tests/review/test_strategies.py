"""Review queue strategies: numpy rankings, their SQL twins, and that the two agree."""

import sqlite3

import numpy as np
import pytest

from galdb.review.strategies import (
    STRATEGIES,
    margin_and_entropy,
    order_by_sql,
    priority,
    queue_order,
)

# Confidence, margin and entropy each rank these rows differently; row 5 ties with row 2.
PROBABILITIES = np.array(
    [
        [0.50, 0.25, 0.25],  # confidence .50, margin .25, entropy 1.040
        [0.90, 0.05, 0.05],  # confidence .90, margin .85, entropy 0.394
        [0.34, 0.33, 0.33],  # confidence .34, margin .01, entropy 1.099
        [0.45, 0.10, 0.45],  # confidence .45, margin .00, entropy 0.949
        [0.10, 0.20, 0.70],  # confidence .70, margin .50, entropy 0.802
        [0.34, 0.33, 0.33],
    ]
)


@pytest.mark.parametrize(
    ("strategy", "label_counts", "expected"),
    [
        ("margin", None, [3, 2, 5, 0, 4, 1]),
        ("entropy", None, [2, 5, 0, 3, 4, 1]),
        ("least_confident", None, [2, 5, 3, 0, 4, 1]),
        ("rare", [10, 0, 5], [2, 5, 0, 4, 3, 1]),  # class 1 has no labels yet
        ("rare", [0, 10, 5], [1, 0, 3, 2, 5, 4]),
        ("rare", [3, 7, 3], [1, 0, 3, 2, 5, 4]),  # equal counts: the lower class
    ],
)
def test_each_strategy_ranks_the_rows(strategy, label_counts, expected):
    order = queue_order(strategy, PROBABILITIES, label_counts=label_counts)
    assert order.tolist() == expected


def test_priorities_are_the_documented_quantities():
    confidence, margin, entropy = margin_and_entropy(PROBABILITIES)
    np.testing.assert_array_equal(priority("margin", PROBABILITIES), -margin)
    np.testing.assert_array_equal(priority("entropy", PROBABILITIES), entropy)
    np.testing.assert_array_equal(priority("least_confident", PROBABILITIES), -confidence)
    rare = priority("rare", PROBABILITIES, label_counts=np.array([4, 1, 9]))
    np.testing.assert_array_equal(rare, PROBABILITIES[:, 1])


def test_margin_and_entropy_values():
    confidence, margin, entropy = margin_and_entropy(
        np.array([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0], [0.25, 0.25, 0.25]])[:, [2, 0, 1]]
    )
    np.testing.assert_allclose(confidence, [0.7, 1.0, 0.25], rtol=1e-6)
    np.testing.assert_allclose(margin, [0.5, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(
        entropy,
        [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)), 0.0, 3 * 0.25 * np.log(4)],
        rtol=1e-6,
    )
    assert {confidence.dtype, margin.dtype, entropy.dtype} == {np.dtype(np.float32)}


def test_single_class_margin_is_the_confidence():
    confidence, margin, entropy = margin_and_entropy(np.array([[0.8], [0.3]]))
    np.testing.assert_allclose(margin, [0.8, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(margin, confidence)


def test_random_is_seeded_and_uses_the_given_generator():
    default = queue_order("random", PROBABILITIES)
    assert sorted(default.tolist()) == list(range(6))
    assert default.tolist() == queue_order("random", PROBABILITIES).tolist()
    np.testing.assert_array_equal(
        priority("random", PROBABILITIES, rng=np.random.default_rng(7)),
        np.random.default_rng(7).random(6),
    )


def test_exclude_removes_rows_and_keeps_the_order():
    exclude = np.array([True, False, False, True, False, False])
    assert queue_order("margin", PROBABILITIES, exclude=exclude).tolist() == [2, 5, 4, 1]
    assert queue_order("margin", PROBABILITIES, exclude=np.ones(6, bool)).tolist() == []


def test_order_by_sql():
    assert order_by_sql("margin") == "margin ASC, galaxy_id"
    assert order_by_sql("entropy") == "entropy DESC, galaxy_id"
    assert order_by_sql("least_confident") == "confidence ASC, galaxy_id"
    assert order_by_sql("rare", rare_class_column="p_merger") == "p_merger DESC, galaxy_id"
    assert order_by_sql("random") == "random()"


@pytest.mark.parametrize("column", [None, "p merger", "P_merger", "1p", "p;drop table x", ""])
def test_rare_sql_needs_a_column_name(column):
    with pytest.raises(ValueError):
        order_by_sql("rare", rare_class_column=column)


def test_unknown_strategy_names_the_known_ones():
    for call in (lambda: priority("uncertain", PROBABILITIES), lambda: order_by_sql("uncertain")):
        with pytest.raises(ValueError, match="margin, entropy, least_confident, rare, random"):
            call()


def test_rare_needs_label_counts():
    with pytest.raises(ValueError, match="label_counts"):
        priority("rare", PROBABILITIES)
    with pytest.raises(ValueError, match="label_counts"):
        priority("rare", PROBABILITIES, label_counts=np.array([1, 2]))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        priority("margin", np.array([0.2, 0.8]))
    with pytest.raises(ValueError):
        queue_order("margin", PROBABILITIES, exclude=np.zeros(5, bool))


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "random"])
def test_sql_and_numpy_agree(strategy):
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet([0.5, 0.5, 0.5, 0.5], size=300).astype(np.float32)
    probabilities[200:] = probabilities[:100]  # ties, broken by galaxy_id and row index alike
    galaxy_ids = np.arange(300) * 7 + 1000  # rows are in galaxy_id order
    label_counts = np.array([40, 12, 3, 25])

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE predictions (galaxy_id INTEGER, label TEXT, confidence REAL, margin REAL,"
        " entropy REAL, p_a REAL, p_b REAL, p_c REAL, p_d REAL)"
    )
    confidence, margin, entropy = margin_and_entropy(probabilities)
    rows = [
        (int(g), "abcd"[int(np.argmax(p))], float(c), float(m), float(e), *map(float, p))
        for g, p, c, m, e in zip(
            galaxy_ids, probabilities, confidence, margin, entropy, strict=True
        )
    ]
    shuffled = [rows[i] for i in rng.permutation(len(rows))]  # storage order must not matter
    db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", shuffled)
    sql = order_by_sql(strategy, rare_class_column="p_c")
    from_sql = [g for (g,) in db.execute(f"SELECT galaxy_id FROM predictions ORDER BY {sql}")]

    order = queue_order(strategy, probabilities, label_counts=label_counts)
    assert from_sql == galaxy_ids[order].tolist()


def test_random_sql_runs():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE predictions (galaxy_id INTEGER)")
    db.executemany("INSERT INTO predictions VALUES (?)", [(i,) for i in range(50)])
    drawn = [
        g
        for (g,) in db.execute(
            f"SELECT galaxy_id FROM predictions ORDER BY {order_by_sql('random')}"
        )
    ]
    assert sorted(drawn) == list(range(50))
