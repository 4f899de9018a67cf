"""The kNN graph extended in place when embeddings are added, against exact and rebuilt graphs."""

import uuid

import numpy as np
import pytest

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.db.connect import database_url
from galdb.propagate import graph as graph_module
from galdb.propagate.graph import (
    REACH,
    ensure_graph,
    enter_rows,
    read_edges,
    reverse_candidates_sql,
)

K = 10


def exact_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def neighbour_lists(conn, graph_id: int, ids: np.ndarray) -> list[list[int]]:
    """Each galaxy's neighbours as row indices of ``ids`` (nearest first)."""
    edges = read_edges(conn, graph_id)
    np.testing.assert_array_equal(edges.node_ids, ids)
    lists: list[list[int]] = [[] for _ in ids]
    for s, t in zip(edges.sources, edges.targets, strict=True):
        lists[s].append(int(t))
    return lists


def recall(lists: list[list[int]], truth: np.ndarray) -> float:
    found = [len(set(got) & set(t)) / len(t) for got, t in zip(lists, truth, strict=True)]
    return float(np.mean(found))


def rows_of(conn, graph_id: int) -> dict[int, tuple[list[int], list[float]]]:
    return {
        g: (ids, sims)
        for g, ids, sims in conn.execute(
            "SELECT galaxy_id, neighbour_ids, similarities FROM galdb.knn_neighbours "
            "WHERE graph_id = %s",
            (graph_id,),
        ).fetchall()
    }


def check_rows(rows, new_ids: set[int], k: int) -> None:
    """Every list is k long, nearest first, without repeats or self loops; and no old
    galaxy misses a new galaxy that lists it and is closer than its k-th neighbour (a new
    galaxy's row may come from a later page's HNSW query, approximate like any other)."""
    for g, (ids, sims) in rows.items():
        assert len(ids) == len(sims) == k and len(set(ids)) == k and g not in ids
        assert all(a >= b for a, b in zip(sims[:-1], sims[1:], strict=True))
    for g in new_ids:
        for h, s in zip(*rows[g], strict=True):
            if h in new_ids:
                continue
            h_ids, h_sims = rows[h]
            assert g in h_ids or s <= h_sims[-1], (g, h, s, h_sims[-1])


def add_batch(conn, vectors: np.ndarray, spec: str) -> np.ndarray:
    """Store more vectors under the same pseudo-model (a second release of its own)."""
    _, ids = store_vectors(conn, vectors, f"append-{uuid.uuid4().hex[:6]}", spec)
    return ids


@pytest.mark.parametrize("workers", [1, 2])
def test_appended_graph_matches_a_rebuild(settings, conn, unique_release, workers):
    n_old, n_new = 3000, 600
    vectors, _ = clustered_vectors(n_old + n_new, 32, 12, spread=0.6, seed=21 + workers)
    spec = f"synthetic:{unique_release}"
    record, old_ids = store_vectors(conn, vectors[:n_old], unique_release, spec)
    url = database_url(settings)
    first = ensure_graph(conn, url, record, K, workers=workers)
    assert first.mode == "built" and first.n_embeddings == n_old
    before = rows_of(conn, first.graph_id)

    new_ids = add_batch(conn, vectors[n_old:], spec)
    ids = np.concatenate([old_ids, new_ids])
    assert np.all(np.diff(ids) > 0)  # row i of vectors is the i-th smallest galaxy id
    extended = ensure_graph(conn, url, record, K, workers=workers, extend_up_to=1.0)
    assert extended.mode == "extended" and not extended.reused
    assert extended.graph_id == first.graph_id and extended.n_embeddings == n_old + n_new
    stored = conn.execute(
        "SELECT n_embeddings, status FROM galdb.knn_graphs WHERE graph_id = %s",
        (first.graph_id,),
    ).fetchone()
    assert stored == (n_old + n_new, "ready")
    after = rows_of(conn, first.graph_id)
    check_rows(after, set(new_ids.tolist()), K)
    gained = [g for g in old_ids.tolist() if set(after[g][0]) - set(before[g][0])]
    assert gained and all(
        set(after[g][0]) - set(before[g][0]) <= set(new_ids.tolist()) for g in gained
    )
    extended_lists = neighbour_lists(conn, first.graph_id, ids)
    assert ensure_graph(conn, url, record, K).mode == "reused"

    rebuilt = ensure_graph(conn, url, record, K, workers=workers, rebuild=True)
    assert rebuilt.mode == "built" and rebuilt.graph_id != first.graph_id
    rebuilt_lists = neighbour_lists(conn, rebuilt.graph_id, ids)
    truth = exact_neighbours(vectors, K)
    r_ext, r_reb = recall(extended_lists, truth), recall(rebuilt_lists, truth)
    # the old galaxies' rows are what the approximation touches (measured: 0.991-0.993 of
    # the rebuild's on them, 0.993-0.995 overall in 10 runs; pgvector draws HNSW levels at
    # random, and one CI run on the external server gave 0.9895 overall, so at this size the
    # bar is 0.985: bench_graph_append.py holds the 0.99 target at 300k)
    r_ext_old = recall(extended_lists[:n_old], truth[:n_old])
    r_reb_old = recall(rebuilt_lists[:n_old], truth[:n_old])
    assert r_ext >= 0.985 * r_reb, (r_ext, r_reb)
    assert r_ext_old >= 0.98 * r_reb_old, (r_ext_old, r_reb_old)
    # without the updates of old rows the bar is missed: the test can tell
    stale = [before[g][0] for g in old_ids.tolist()]
    position = {int(g): i for i, g in enumerate(ids)}
    stale_lists = [[position[h] for h in row] for row in stale]
    assert recall(stale_lists, truth[:n_old]) < 0.95 * r_reb_old


class Interrupt(Exception):
    """Stands for the process dying between two pages."""


class StopAfter:
    """A progress receiver that interrupts the run once ``pages`` pages have committed."""

    def __init__(self, pages: int):
        self.pages = pages

    def start(self, total, description=""):
        pass

    def advance(self, n=1):
        self.pages -= 1
        if self.pages <= 0:
            raise Interrupt


def test_interrupted_extension_continues_and_is_idempotent(
    settings, conn, unique_release, monkeypatch
):
    n_old, n_new = 1500, 400
    vectors, _ = clustered_vectors(n_old + n_new, 16, 6, seed=31)
    spec = f"synthetic:{unique_release}"
    record, old_ids = store_vectors(conn, vectors[:n_old], unique_release, spec)
    url = database_url(settings)
    # built by HNSW queries, so that the index exists before the new galaxies arrive
    graph_id = ensure_graph(conn, url, record, K, method="pgvector").graph_id
    new_ids = add_batch(conn, vectors[n_old:], spec)
    monkeypatch.setattr(graph_module, "PAGE", 100)
    with pytest.raises(Interrupt):
        ensure_graph(conn, url, record, K, progress=StopAfter(2), extend_up_to=1.0)
    conn.rollback()
    state = conn.execute(
        "SELECT g.n_embeddings, g.status, count(n.*) FROM galdb.knn_graphs g "
        "JOIN galdb.knn_neighbours n USING (graph_id) WHERE graph_id = %s GROUP BY 1, 2",
        (graph_id,),
    ).fetchone()
    assert state == (n_old, "ready", n_old + 200)  # two pages in, the count not yet moved
    resumed = ensure_graph(conn, url, record, K, extend_up_to=1.0)
    assert resumed.mode == "extended" and resumed.graph_id == graph_id
    assert resumed.n_embeddings == n_old + n_new
    rows = rows_of(conn, graph_id)
    assert len(rows) == n_old + n_new
    check_rows(rows, set(new_ids.tolist()), K)
    # re-running the updates for every new galaxy (searched as the extension searched them)
    # finds nothing left to do
    conn.execute(f"SET hnsw.ef_search = {REACH * K + 1}")
    candidates = conn.execute(
        reverse_candidates_sql(record, REACH * K), {"new": new_ids.tolist()}
    ).fetchall()
    assert len(candidates) == n_new
    assert enter_rows(conn, graph_id, K, candidates) == 0
    conn.rollback()


def test_removed_embedding_falls_back_to_a_rebuild(settings, conn, unique_release):
    vectors, _ = clustered_vectors(300, 16, 3, seed=41)
    spec = f"synthetic:{unique_release}"
    record, ids = store_vectors(conn, vectors[:250], unique_release, spec)
    url = database_url(settings)
    first = ensure_graph(conn, url, record, K)
    conn.execute(f"DELETE FROM galdb.{record.partition} WHERE galaxy_id = %s", (int(ids[7]),))
    conn.commit()
    add_batch(conn, vectors[250:], spec)  # the count grows, yet a galaxy is gone
    second = ensure_graph(conn, url, record, K)
    assert second.mode == "built" and second.graph_id != first.graph_id
    assert second.n_embeddings == 299
    assert int(ids[7]) not in rows_of(conn, second.graph_id)
    graphs = conn.execute(
        "SELECT graph_id FROM galdb.knn_graphs WHERE model_id = %s", (record.model_id,)
    ).fetchall()
    assert graphs == [(second.graph_id,)]
