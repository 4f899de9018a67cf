"""nearest_many: batched kNN over several connections, against exact kNN on a real PostgreSQL."""

import numpy as np
import pytest

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.db.connect import database_url
from galdb.lvm.registry import ensure_index
from galdb.search.batch import nearest_many


@pytest.fixture()
def stored(conn, unique_release):
    vectors, _ = clustered_vectors(400, 16, 5, spread=0.4, seed=3)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    ensure_index(conn, record)
    conn.commit()
    x = vectors.astype(np.float16).astype(np.float64)
    return record, ids, vectors, x / np.linalg.norm(x, axis=1, keepdims=True)


def test_parallel_connections_give_the_exact_neighbours_in_query_order(settings, stored):
    record, ids, vectors, x = stored
    queries = vectors[::7]  # 58 queries: batches of 10 leave a short last one
    url = database_url(settings)
    one, d_one = nearest_many(url, record, queries, 6, connections=1, batch=10, ef_search=200)
    three, d_three = nearest_many(url, record, queries, 6, connections=3, batch=10, ef_search=200)
    np.testing.assert_array_equal(one, three)
    np.testing.assert_allclose(d_one, d_three)
    sims = x[::7] @ x.T
    truth = ids[np.argsort(-sims, axis=1)[:, :6]]
    hits = sum(len(set(a) & set(b)) for a, b in zip(one, truth, strict=True))
    assert hits / truth.size > 0.98
    assert (one[:, 0] == ids[::7]).all()  # a stored vector's nearest is itself
    assert (np.diff(d_one, axis=1) >= 0).all()
    np.testing.assert_allclose(d_one[:, 1], 1 - np.sort(sims, axis=1)[:, -2], atol=2e-3)


def test_fewer_galaxies_than_k_are_padded(settings, conn, unique_release):
    vectors, _ = clustered_vectors(3, 8, 1, seed=4)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    conn.commit()
    found, distances = nearest_many(database_url(settings), record, vectors[:2], 5)
    assert (found[:, 3:] == -1).all() and np.isinf(distances[:, 3:]).all()
    assert set(found[0, :3]) == set(ids)


def test_bad_arguments_are_refused(settings, stored):
    with pytest.raises(ValueError, match="connections"):
        nearest_many(database_url(settings), stored[0], stored[2][:2], 5, connections=0)
