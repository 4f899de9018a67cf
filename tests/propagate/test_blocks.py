"""The in-memory kNN graph builds (clustered blocks, galdb.propagate.blocks; FAISS's HNSW,
galdb.propagate.hnsw_search) and their COPY write-back, against exact kNN and against the
pgvector build, on a real PostgreSQL."""

import numpy as np
import pytest

from galdb.datasets.vectors import clustered_vectors, latent_vectors, store_vectors
from galdb.db.connect import database_url
from galdb.errors import GaldbError
from galdb.propagate import blocks, hnsw_search
from galdb.propagate.graph import ensure_graph, read_edges
from galdb.propagate.graph_rows import write_rows


def exact(x: np.ndarray, k: int) -> np.ndarray:
    sims = x.astype(np.float32) @ x.astype(np.float32).T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


def test_one_list_is_exact_and_sorted():
    x = blocks.unit_half(clustered_vectors(400, 16, 3, seed=1)[0])
    graph = blocks.knn_blocks(x, 7, list_size=1000)
    truth = exact(x, 7)
    assert recall(graph.neighbours, truth) == 1.0
    assert (np.diff(graph.similarities, axis=1) <= 0).all()  # nearest first
    assert not (graph.neighbours == np.arange(400)[:, None]).any()  # never itself
    expected = np.einsum("id,ijd->ij", x.astype(np.float32), x[graph.neighbours].astype(np.float32))
    np.testing.assert_allclose(graph.similarities, expected, rtol=1e-5, atol=1e-6)


def test_many_lists_find_most_neighbours_and_fewer_probes_find_fewer():
    x = blocks.unit_half(clustered_vectors(6000, 32, 40, spread=0.3, seed=2)[0])
    truth = exact(x, 10)
    wide = recall(blocks.knn_blocks(x, 10, list_size=50, probe=24, threads=2).neighbours, truth)
    narrow = recall(blocks.knn_blocks(x, 10, list_size=50, probe=2).neighbours, truth)
    assert wide > 0.9 and narrow < wide


def test_too_few_galaxies_leave_short_rows():
    x = blocks.unit_half(np.random.default_rng(3).normal(size=(4, 8)))
    graph = blocks.knn_blocks(x, 6)
    assert (graph.neighbours[:, 3:] == -1).all() and (graph.neighbours[:, :3] >= 0).all()


def test_rows_of_different_lengths_are_written(conn, unique_release):
    vectors, _ = clustered_vectors(5, 8, 1, seed=4)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    graph_id = conn.execute(
        "INSERT INTO galdb.knn_graphs (model_id, k, ef_search, n_embeddings) "
        "VALUES (%s, 3, 40, 5) RETURNING graph_id",
        (record.model_id,),
    ).fetchone()[0]
    full, one, none = [ids[1], ids[2], ids[3]], [ids[0], -1, -1], [-1, -1, -1]
    neighbours = np.array([full, one, none, none, full])
    sims = np.array([[0.9, 0.8, 0.7], [0.5, 0, 0], [0, 0, 0], [0, 0, 0], [0.9, 0.8, 0.7]])
    assert write_rows(conn, graph_id, ids, neighbours, sims.astype(np.float32)) == 3
    rows = conn.execute(
        "SELECT galaxy_id, neighbour_ids, similarities FROM galdb.knn_neighbours "
        "WHERE graph_id = %s ORDER BY galaxy_id",
        (graph_id,),
    ).fetchall()
    assert [r[0] for r in rows] == [ids[0], ids[1], ids[4]]
    assert rows[0][1] == list(ids[1:4]) and rows[1][1] == [ids[0]]
    assert rows[0][2] == pytest.approx([0.9, 0.8, 0.7]) and rows[1][2] == pytest.approx([0.5])
    conn.rollback()


needs_faiss = pytest.mark.skipif(not hnsw_search.available(), reason="faiss-cpu not installed")


@pytest.mark.parametrize("method", ["blocks", pytest.param("faiss", marks=needs_faiss), "pgvector"])
def test_every_build_method_matches_exact_knn(settings, conn, unique_release, method):
    vectors, _ = clustered_vectors(1500, 24, 20, spread=0.4, seed=5)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    graph = ensure_graph(conn, database_url(settings), record, 8, workers=2, method=method)
    assert graph.mode == "built" and graph.n_embeddings == 1500
    edges = read_edges(conn, graph.graph_id)
    np.testing.assert_array_equal(edges.node_ids, ids)
    found = edges.targets.reshape(1500, 8)  # nearest first, row by row
    assert recall(found, exact(blocks.unit_half(vectors), 8)) > 0.97
    assert (np.diff(edges.similarities.reshape(1500, 8), axis=1) <= 1e-6).all()


@needs_faiss
def test_auto_builds_with_faiss_and_falls_back_to_pgvector_over_the_memory_limit(
    settings, conn, unique_release
):
    vectors, _ = clustered_vectors(200, 8, 2, seed=6)
    record, _ = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")

    class Described:
        def __init__(self):
            self.descriptions = []

        def start(self, total, description=""):
            self.descriptions.append(description)

        def advance(self, n=1):
            pass

    url, seen = database_url(settings), Described()
    ensure_graph(conn, url, record, 5, method="auto", memory_limit=1000, progress=seen)
    assert seen.descriptions == [f"kNN graph k=5 of model {record.model_id}"]
    seen = Described()
    ensure_graph(conn, url, record, 5, method="auto", rebuild=True, progress=seen)
    assert [d.split(": ")[-1] for d in seen.descriptions] == [
        "reading vectors",
        "neighbours by HNSW (FAISS)",
        "writing rows",
    ]


def test_the_faiss_method_without_faiss_says_how_to_get_it(
    settings, conn, unique_release, monkeypatch
):
    vectors, _ = clustered_vectors(50, 8, 2, seed=7)
    record, _ = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    monkeypatch.setattr(hnsw_search, "available", lambda: False)
    with pytest.raises(GaldbError, match=r"pip install 'galdb\[faiss\]'"):
        ensure_graph(conn, database_url(settings), record, 5, method="faiss")


@needs_faiss
def test_hnsw_search_never_returns_itself_and_counts_progress():
    x = blocks.unit_half(clustered_vectors(3000, 16, 12, spread=0.3, seed=10)[0])

    class Count:
        done = 0

        def advance(self, n=1):
            self.done += n

    count = Count()
    graph = hnsw_search.knn_hnsw(x, 10, threads=2, progress=count)
    assert count.done == 2 * 3000  # every row added, then looked up
    assert not (graph.neighbours == np.arange(3000)[:, None]).any()
    assert (np.diff(graph.similarities, axis=1) <= 1e-6).all()
    assert recall(graph.neighbours, exact(x, 10)) > 0.97
    tiny = hnsw_search.knn_hnsw(x[:3], 5)  # fewer rows than k: short rows
    assert (tiny.neighbours[:, 2:] == -1).all() and (tiny.neighbours[:, :2] >= 0).all()


def test_projected_search_keeps_recall_on_low_dimension_data():
    vectors, _ = latent_vectors(4000, 128, seed=8, latent=8, clusters=30)
    x = blocks.unit_half(vectors)
    assert blocks.principal_axes(x).shape[1] < 128  # 8-d latent: projected
    graph = blocks.knn_graph(x, 10, list_size=40, probe=24)
    truth = exact(x, 10)
    assert recall(graph.neighbours, truth) > 0.9
    assert (np.diff(graph.similarities, axis=1) <= 0).all()
    exact_sims = np.einsum(
        "id,ijd->ij", x.astype(np.float32), x[graph.neighbours].astype(np.float32)
    )
    np.testing.assert_allclose(graph.similarities, exact_sims, rtol=1e-5, atol=1e-6)
    isotropic = blocks.unit_half(np.random.default_rng(9).normal(size=(500, 64)))
    assert blocks.principal_axes(isotropic).shape == (64, 64)  # nothing to project on
