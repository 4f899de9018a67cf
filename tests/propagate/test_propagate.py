"""The kNN graph from pgvector and label propagation stored as labels, on a real PostgreSQL."""

import uuid

import numpy as np
import pytest

from galdb.datasets.vectors import clustered_vectors, store_clusters, store_vectors
from galdb.db.connect import connect, database_url
from galdb.labels.store import effective_labels, import_labels
from galdb.labels.tasks import create_task
from galdb.lvm.embed import write_vectors
from galdb.propagate.graph import ensure_graph, read_edges
from galdb.propagate.run import propagate

N, CLASSES = 300, ("a", "b", "c")


@pytest.fixture(scope="module")
def clusters(settings):
    with connect(settings) as conn:
        c = store_clusters(conn, "prop", N, 16, 3, spread=0.5, seed=5)
    return {
        "record": c.record,
        "ids": c.ids,
        "vectors": c.vectors,
        "cluster": c.cluster,
        "rid": c.release_id,
    }


def exact_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def test_graph_matches_exact_neighbours_and_is_reused(settings, conn, clusters):
    record, ids = clusters["record"], clusters["ids"]
    url = database_url(settings)
    graph = ensure_graph(conn, url, record, 10, workers=2)
    assert not graph.reused and graph.n_embeddings == N
    edges = read_edges(conn, graph.graph_id)
    np.testing.assert_array_equal(edges.node_ids, ids)
    assert len(edges.sources) == N * 10
    found = [set() for _ in range(N)]
    for s, t in zip(edges.sources, edges.targets, strict=True):
        found[s].add(t)
    truth = exact_neighbours(clusters["vectors"], 10)
    recall = np.mean([len(found[i] & set(truth[i])) / 10 for i in range(N)])
    assert recall > 0.95
    assert all(i not in found[i] for i in range(N))  # no self loops
    assert ensure_graph(conn, url, record, 10).reused


def test_propagation_labels_the_clusters_and_keeps_human_labels(settings, conn, clusters):
    task = create_task(conn, f"t_{uuid.uuid4().hex[:8]}", "classification", classes=list(CLASSES))
    cluster = clusters["cluster"]
    seeds = [int(np.flatnonzero(cluster == c)[j]) for c in range(3) for j in range(2)]
    catalog = [(i, f"v{p:08d}", CLASSES[cluster[p]]) for i, p in enumerate(seeds[:4])]
    import_labels(conn, task, clusters["rid"], [catalog], author="cat")
    # a human who disagrees with the cluster: the label must stay as given
    odd = int(np.flatnonzero(cluster == 0)[5])
    human = [(1, f"v{p:08d}", CLASSES[cluster[p]]) for p in seeds[4:]]
    human.append((2, f"v{odd:08d}", "c"))
    import_labels(conn, task, clusters["rid"], [human], source="human", author="ann")
    url = database_url(settings)
    summary = propagate(conn, url, task, clusters["record"], k=10)
    assert (summary.seeds, summary.fixed, summary.propagated) == (7, 3, N - 7)
    labels = effective_labels(conn, task)
    got = dict(zip(labels.galaxy_ids.tolist(), labels.targets.tolist(), strict=True))
    ids = clusters["ids"]
    truth = {int(ids[i]): int(cluster[i]) for i in range(N) if i != odd}
    accuracy = np.mean([got[g] == c for g, c in truth.items()])
    assert accuracy > 0.95
    assert got[int(ids[odd])] == 2
    confidence = conn.execute(
        "SELECT min(confidence), max(confidence), count(*) FROM galdb.labels "
        "WHERE task_id = %s AND source = 'propagated'",
        (task.task_id,),
    ).fetchone()
    assert 0 < confidence[0] <= confidence[1] <= 1 and confidence[2] == N - 7
    # a second run replaces the propagated labels instead of adding to them
    again = propagate(conn, url, task, clusters["record"], k=10)
    assert again.graph.reused and again.propagated == N - 7
    count = conn.execute(
        "SELECT count(*) FROM galdb.labels WHERE task_id = %s AND source = 'propagated'",
        (task.task_id,),
    ).fetchone()[0]
    assert count == N - 7


def test_regression_propagation_interpolates(settings, conn, clusters):
    task = create_task(conn, f"t_{uuid.uuid4().hex[:8]}", "regression", unit="mag")
    cluster = clusters["cluster"]
    truth = np.array([10.0, 20.0, 30.0])[cluster]
    seeds = [int(np.flatnonzero(cluster == c)[0]) for c in range(3)]
    chunk = [(i, f"v{p:08d}", truth[p]) for i, p in enumerate(seeds)]
    import_labels(conn, task, clusters["rid"], [chunk], author="sim")
    propagate(conn, database_url(settings), task, clusters["record"], k=10)
    labels = effective_labels(conn, task)
    index = np.searchsorted(clusters["ids"], labels.galaxy_ids)
    error = np.abs(labels.targets - truth[index])
    assert len(labels.targets) == N and np.median(error) < 1.0


def test_graph_is_rebuilt_when_embeddings_change(settings, conn, unique_release):
    vectors, _ = clustered_vectors(60, 8, 2, seed=9)
    record, ids = store_vectors(conn, vectors[:50], unique_release, f"synthetic:{unique_release}")
    url = database_url(settings)
    first = ensure_graph(conn, url, record, 5)
    # a galaxy leaves as others arrive: not an append, so the graph is rebuilt
    conn.execute(f"DELETE FROM galdb.{record.partition} WHERE galaxy_id = %s", (int(ids[1]),))
    extra = conn.execute(
        "INSERT INTO galdb.galaxies (release_id, source_id) SELECT release_id, 'x' || g "
        "FROM galdb.galaxies, generate_series(1, 10) g WHERE galaxy_id = %s RETURNING galaxy_id",
        (int(ids[0]),),
    ).fetchall()
    write_vectors(conn, record, [r[0] for r in extra], vectors[50:])
    second = ensure_graph(conn, url, record, 5)
    assert second.mode == "built" and second.n_embeddings == 59
    graphs = conn.execute(
        "SELECT graph_id FROM galdb.knn_graphs WHERE model_id = %s", (record.model_id,)
    ).fetchall()
    assert graphs == [(second.graph_id,)] and second.graph_id != first.graph_id


def test_interrupted_graph_build_resumes(settings, conn, unique_release):
    vectors, _ = clustered_vectors(120, 8, 2, seed=10)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    url = database_url(settings)
    graph = ensure_graph(conn, url, record, 5)
    # as if killed midway: half the rows written, the graph still 'building'
    conn.execute(
        "DELETE FROM galdb.knn_neighbours WHERE graph_id = %s AND galaxy_id %% 2 = 0",
        (graph.graph_id,),
    )
    conn.execute(
        "UPDATE galdb.knn_graphs SET status = 'building' WHERE graph_id = %s", (graph.graph_id,)
    )
    conn.commit()
    resumed = ensure_graph(conn, url, record, 5, workers=2)
    assert resumed.graph_id == graph.graph_id and not resumed.reused
    rows = conn.execute(
        "SELECT count(*), count(DISTINCT galaxy_id) FROM galdb.knn_neighbours WHERE graph_id = %s",
        (graph.graph_id,),
    ).fetchone()
    assert rows == (120, 120)
