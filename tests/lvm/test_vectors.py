"""Reading embeddings back with binary COPY gives exactly what pgvector stores."""

import numpy as np
from pgvector.psycopg import register_vector

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.lvm.vectors import count_embeddings, iter_embeddings, load_embeddings


def test_binary_copy_matches_pgvector(conn, unique_release):
    vectors, _ = clustered_vectors(300, 24, 3, seed=1)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    chunks = list(iter_embeddings(conn, record, chunk_rows=128))
    assert [len(c[0]) for c in chunks] == [128, 128, 44]
    got_ids = np.concatenate([c[0] for c in chunks])
    got = np.concatenate([c[1] for c in chunks])
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_allclose(got, vectors, atol=1e-3)  # halfvec: float16 precision
    register_vector(conn)
    one = conn.execute(
        f"SELECT embedding FROM galdb.{record.partition} WHERE galaxy_id = %s", (int(ids[7]),)
    ).fetchone()[0]
    np.testing.assert_array_equal(one.to_numpy().astype(np.float32), got[7])
    assert count_embeddings(conn, record) == 300


def test_load_subset(conn, unique_release):
    vectors, _ = clustered_vectors(50, 8, 2, seed=2)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    want = ids[[40, 3, 17]]
    got_ids, got = load_embeddings(conn, record, np.append(want, -5))
    np.testing.assert_array_equal(got_ids, np.sort(want))
    np.testing.assert_allclose(got[0], vectors[3], atol=1e-3)
    empty_ids, empty = load_embeddings(conn, record, np.array([-1]))
    assert empty_ids.shape == (0,) and empty.shape == (0, 8)
