"""galdb on a real Citus cluster (coordinator + 2 workers): db init --citus, ingest, cone
search, embed, similarity search, head training and materialization, the kNN graph and label
propagation, and the demo end to end (review decisions applied, retrained by the worker)."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest
from astropy.coordinates import angular_separation
from pgvector.psycopg import register_vector

from galdb.cli import main
from galdb.datasets.vectors import store_clusters
from galdb.db import admin, citus
from galdb.db.connect import connect, database_url
from galdb.errors import GaldbError
from galdb.heads.materialize import materialize
from galdb.heads.versions import train_head
from galdb.ingest import ingest
from galdb.ingest.runs import release_id_of
from galdb.labels.store import import_labels
from galdb.labels.tasks import create_task, get_task
from galdb.lvm import registry
from galdb.lvm.embed import embed
from galdb.lvm.specs import load_model
from galdb.propagate.graph import ensure_graph, read_edges
from galdb.propagate.run import propagate
from galdb.review.session import ReviewSession
from galdb.search.batch import nearest_many
from galdb.search.cone import cone_search
from galdb.search.similar import search, stored_vector
from galdb.sim import simulate_release
from tests.citus.conftest import SHARDS

SPEC = "timm:resnet10t"
N_SIM = 60


def _galdb(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "galdb", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _citus_tables(conn) -> dict[str, tuple[str, int, int]]:
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, t.citus_table_type, t.colocation_id, "
        "t.shard_count "
        "FROM citus_tables t JOIN pg_class c ON c.oid = t.table_name "
        "JOIN pg_namespace n ON n.oid = c.relnamespace"
    ).fetchall()
    return {name: tuple(rest) for name, *rest in rows}


def test_db_init_citus_distributes_on_galaxy_id_and_is_idempotent(settings, conn):
    tables = _citus_tables(conn)
    colocation = tables["galdb.galaxies"][1]
    for name in citus.DISTRIBUTED:
        assert tables[f"galdb.{name}"] == ("distributed", colocation, SHARDS), name
    for name in citus.REFERENCE:
        assert tables[f"galdb.{name}"][0] == "reference", name
    keys = conn.execute(
        "SELECT t.relname, r.relname FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid "
        "JOIN pg_class r ON r.oid = k.confrelid WHERE k.contype = 'f' "
        "AND k.connamespace = 'galdb'::regnamespace AND t.relname = ANY(%s)",
        (list(citus.CITUS_TABLES),),
    ).fetchall()
    # only the keys between co-located distributed tables remain (see galdb.db.citus)
    assert sorted(keys) == [("labels", "galaxies"), ("review_leases", "galaxies")]
    conn.commit()
    admin.init(settings, citus=True)  # again: nothing left to do, nothing breaks
    with connect(settings, autocommit=True, check_schema=False) as again:
        assert citus.distribute(again) == []
    # what the CLI says, and that a plain `db init` keeps the layout
    assert "distributed with Citus" in _galdb("db", "init", "--citus")
    _galdb("db", "init")
    assert _citus_tables(conn) == tables


@pytest.fixture(scope="module")
def simulated(settings, tmp_path_factory):
    """A simulated release ingested and embedded on the cluster."""
    out = tmp_path_factory.mktemp("sim")
    catalog = simulate_release(out, N_SIM, seed=5, size=32)
    release = f"citus-{uuid.uuid4().hex[:6]}"
    with connect(settings) as conn:
        summary = ingest(conn, out, release, catalog=catalog)
        loaded = load_model(SPEC, input_size=32)
        rid = release_id_of(conn, release)
        embedded = embed(
            conn, database_url(settings), loaded, release_id=rid, batch_size=16, workers=0
        )
    return {
        "release": release,
        "summary": summary,
        "embedded": embedded,
        "out": out,
        "catalog": catalog,
    }


def test_ingest_on_the_cluster_and_again_inserts_nothing(settings, conn, simulated):
    assert simulated["summary"].inserted == N_SIM
    rid = release_id_of(conn, simulated["release"])
    placed = conn.execute(
        "SELECT count(DISTINCT nodeport) FROM citus_shards s "
        "WHERE s.table_name = 'galdb.galaxies'::regclass AND s.shard_size > 0"
    ).fetchone()[0]
    assert placed == 2  # rows on both workers
    again = ingest(conn, simulated["out"], simulated["release"], catalog=simulated["catalog"])
    assert again.inserted == 0 and again.present == N_SIM
    assert (
        conn.execute(
            "SELECT count(*) FROM galdb.galaxies WHERE release_id = %s", (rid,)
        ).fetchone()[0]
        == N_SIM
    )


def test_cone_search_equals_exact_separations(conn, simulated, tmp_path):
    rid = release_id_of(conn, simulated["release"])
    rows = conn.execute(
        "SELECT galaxy_id, ra, dec FROM galdb.galaxies WHERE release_id = %s", (rid,)
    ).fetchall()
    ids = np.array([r[0] for r in rows])
    ra, dec = np.radians([r[1] for r in rows]), np.radians([r[2] for r in rows])
    ra0, dec0, radius = 150.0, 2.0, 0.6
    sep = np.degrees(angular_separation(np.radians(ra0), np.radians(dec0), ra, dec))
    want = set(ids[sep <= radius].tolist())
    got = cone_search(conn, ra0, dec0, radius, release=simulated["release"])
    assert {m.galaxy_id for m in got} == want and 0 < len(want) < N_SIM
    seps = [m.separation_arcsec for m in got]
    assert seps == sorted(seps)
    np.testing.assert_allclose(
        sorted(seps), np.sort(sep[sep <= radius]) * 3600, rtol=1e-9, atol=1e-6
    )
    out = tmp_path / "cone.csv"
    _galdb(
        "cone",
        str(ra0),
        str(dec0),
        f"{radius}deg",
        "--release",
        simulated["release"],
        "-o",
        str(out),
    )
    assert len(out.read_text().splitlines()) == len(want) + 1  # header + one row each


def test_similar_and_search_equal_exact_knn(settings, conn, simulated):
    assert simulated["embedded"].embedded == N_SIM and simulated["embedded"].index_built
    record = registry.lookup(conn, SPEC)
    register_vector(conn)
    rows = conn.execute(
        f"SELECT e.galaxy_id, e.embedding FROM galdb.{record.partition} e "
        "JOIN galdb.galaxies g USING (galaxy_id) JOIN galdb.releases r USING (release_id) "
        "WHERE r.name = %s ORDER BY 1",
        (simulated["release"],),
    ).fetchall()
    ids = np.array([r[0] for r in rows])
    x = np.array([r[1].to_numpy() for r in rows], dtype=np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for q in (0, 17, 41):
        exact = ids[np.argsort(1 - x @ x[q], kind="stable")][:5]
        got = conn.execute(
            "SELECT galaxy_id FROM galdb.similar(%s, 5, %s)", (int(ids[q]), SPEC)
        ).fetchall()
        assert [r[0] for r in got] == exact.tolist()
    source = conn.execute(
        "SELECT source_id FROM galdb.galaxies WHERE galaxy_id = %s", (int(ids[17]),)
    ).fetchone()[0]
    assert "3 nearest to" in _galdb("search", "-m", SPEC, "--like", source, "-k", "3")
    found = search(conn, record, stored_vector(conn, record, int(ids[17])), k=5, dedup_arcsec=None)
    exact = ids[np.argsort(1 - x @ x[17], kind="stable")][:5]
    assert [n.galaxy_id for n in found] == exact.tolist()


def test_head_train_and_materialize_on_the_cluster(settings, conn):
    c = store_clusters(conn, "citus-heads", 600, 32, 3, spread=0.6, seed=3)
    classes = ("disk", "bulge", "merger")
    task = create_task(conn, f"t_{uuid.uuid4().hex[:10]}", "classification", classes=list(classes))
    picks = np.random.default_rng(0).choice(600, 60, replace=False)
    chunk = [(i, f"v{p:08d}", classes[c.cluster[p]]) for i, p in enumerate(picks)]
    import_labels(conn, task, c.release_id, [chunk], author="test catalog")
    version = train_head(conn, task, c.record)
    assert version.n_labels == 60 and version.metrics["cv_auc"] > 0.95
    conn.commit()
    assert materialize(conn, task, version.version_id, chunk_rows=128) == 600
    tables = _citus_tables(conn)
    assert tables[f"galdb_predictions.v{version.version_id}"] == tables["galdb.galaxies"]
    labels = dict(conn.execute(f"SELECT source_id, label FROM galdb_tasks.{task.name}").fetchall())
    accuracy = np.mean([labels[f"v{i:08d}"] == classes[k] for i, k in enumerate(c.cluster)])
    assert len(labels) == 600 and accuracy > 0.95


def test_knn_graph_is_exact_and_propagation_labels_the_clusters(settings, conn):
    c = store_clusters(conn, "citus-graph", 400, 16, 4, spread=0.5, seed=9)
    classes = ("a", "b", "c", "d")
    task = create_task(conn, f"t_{uuid.uuid4().hex[:10]}", "classification", classes=list(classes))
    picks = np.random.default_rng(1).choice(400, 40, replace=False)
    chunk = [(i, f"v{p:08d}", classes[c.cluster[p]]) for i, p in enumerate(picks)]
    import_labels(conn, task, c.release_id, [chunk], author="test catalog")
    summary = propagate(conn, database_url(settings), task, c.record, k=5, workers=2)
    assert summary.graph.mode == "built" and summary.nodes == 400
    x = c.vectors.astype(np.float16).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    row_of = {int(g): i for i, g in enumerate(c.ids)}
    hits = 0
    for galaxy, neighbours in conn.execute(
        "SELECT galaxy_id, neighbour_ids FROM galdb.knn_neighbours WHERE graph_id = %s",
        (summary.graph.graph_id,),
    ).fetchall():
        i = row_of[galaxy]
        order = [j for j in np.argsort(-(x @ x[i]), kind="stable") if j != i][:5]
        hits += len({row_of[n] for n in neighbours} & set(order))
    assert hits / (400 * 5) > 0.97  # each row's 5 neighbours against exact kNN
    labels = dict(
        conn.execute(
            "SELECT g.source_id, l.class FROM galdb.labels l JOIN galdb.galaxies g "
            "USING (galaxy_id) WHERE l.task_id = %s AND l.source = 'propagated'",
            (task.task_id,),
        ).fetchall()
    )
    truth = {f"v{i:08d}": classes[k] for i, k in enumerate(c.cluster)}
    assert len(labels) == 360 and np.mean([truth[s] == v for s, v in labels.items()]) > 0.95
    again = propagate(conn, database_url(settings), task, c.record, k=5)
    assert again.graph.mode == "reused"


@pytest.mark.parametrize("method", ["blocks", "pgvector"])
def test_knn_graph_build_methods_on_the_cluster(settings, conn, method):
    """Both full-build methods (vectors read out and rows COPYed back; per-galaxy HNSW queries
    through nearest_vectors) against exact kNN on the cluster."""
    c = store_clusters(conn, f"citus-graph-{method}", 300, 16, 4, spread=0.5, seed=10)
    url = database_url(settings)
    graph = ensure_graph(conn, url, c.record, 5, workers=2, method=method, rebuild=True)
    assert graph.mode == "built" and graph.n_embeddings == 300
    edges = read_edges(conn, graph.graph_id)
    np.testing.assert_array_equal(edges.node_ids, np.sort(c.ids))
    x = c.vectors.astype(np.float16).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    truth = np.argsort(-sims, axis=1)[:, :5]
    row = np.searchsorted(np.sort(c.ids), c.ids)  # row of c.vectors -> node index
    found = np.empty((300, 5), np.int64)
    found[row] = edges.targets.reshape(300, 5)
    hits = sum(len(set(row[found[i]]) & set(row[truth[i]])) for i in range(300))
    assert hits / (300 * 5) > 0.97


def test_nearest_many_over_connections_equals_exact_on_the_cluster(settings, conn):
    c = store_clusters(conn, "citus-many", 300, 16, 4, spread=0.5, seed=11)
    ids, distances = nearest_many(
        database_url(settings), c.record, c.vectors[:50], 5, connections=2, batch=8, ef_search=100
    )
    x = c.vectors.astype(np.float16).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    truth = c.ids[np.argsort(-(x[:50] @ x.T), axis=1)[:, :5]]
    hits = sum(len(set(a) & set(b)) for a, b in zip(ids, truth, strict=True))
    assert hits / (50 * 5) > 0.97 and (np.diff(distances, axis=1) >= 0).all()


def test_the_demo_runs_on_the_cluster(settings, capsys):
    """Everything the demo shows, from ingest to a review round's retrained head, on Citus."""
    assert main(["demo", "--n", "40", "--seed", "4", "--pretrain-minutes", "0.05"]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "40 inserted" in flat
    assert re.search(r"9\. propagated the \d+ labels over the k=10 graph", flat)
    assert "10. review" in flat and "agrees_with_truth" in flat


def test_init_citus_without_the_extension_says_what_to_do(cluster_url, cluster):
    cluster.execute("DROP DATABASE IF EXISTS plain")
    cluster.execute("CREATE DATABASE plain")
    with psycopg.connect(cluster_url.rsplit("/", 1)[0] + "/plain", autocommit=True) as conn:
        with pytest.raises(GaldbError, match="CREATE EXTENSION citus"):
            citus.distribute(conn)
        assert citus.distribute_like_galaxies(conn, "pg_catalog.pg_class") is False
    cluster.execute("DROP DATABASE plain")


def _review_round(settings, task_name: str, reviewer: str) -> list[int]:
    """One reviewer works through the whole queue as `galdb review` does; returns the galaxies."""
    with connect(settings) as conn:
        session = ReviewSession(conn, get_task(conn, task_name), reviewer)
        seen = []
        while (item := session.next_item()) is not None:
            seen.append(item.galaxy_id)
            session.decide(item, "accept")
        session.close()
    return seen


def test_review_queue_on_the_cluster(settings, conn):
    """Claims, leases, decisions, undo and two reviewers at once, with the queue on Citus."""
    c = store_clusters(conn, "citus-review", 120, 16, 2, spread=0.6, seed=4)
    classes = ("disk", "bulge")
    task = create_task(conn, f"t_{uuid.uuid4().hex[:10]}", "classification", classes=list(classes))
    chunk = [(i, f"v{p:08d}", classes[c.cluster[p]]) for i, p in enumerate(range(0, 120, 6))]
    import_labels(conn, task, c.release_id, [chunk], author="test catalog")
    version = train_head(conn, task, c.record)
    conn.commit()
    materialize(conn, task, version.version_id)
    conn.commit()
    task = get_task(conn, task.name)

    # one session: lease, decide, undo (the galaxy is leased again), quit (leases freed)
    session = ReviewSession(conn, task, "alice")
    first = session.next_item()
    assert first is not None and session.prefetched > 0
    held = conn.execute(
        "SELECT galaxy_id FROM galdb.review_leases WHERE session = %s", (session.session,)
    ).fetchall()
    assert first.galaxy_id in {r[0] for r in held}
    context, near = session.context(first), session.neighbours(first, k=4)
    assert context.labels.keys() <= {"catalog"} and len(near) == 4
    labelled = [n for n in near if n.label is not None]
    assert all(n.label in classes for n in labelled)
    session.decide(first, "label", answer="bulge")
    assert session.status()["decisions"] == 1
    assert session.context(first).labels == {"human (alice)": "bulge"} | (
        {"catalog": context.labels["catalog"]} if context.labels else {}
    )
    again = session.undo()
    assert again is not None and again.galaxy_id == first.galaxy_id
    session.close()
    assert conn.execute(
        "SELECT count(*) FROM galdb.review_leases WHERE session = %s", (session.session,)
    ).fetchone() == (0,)

    # two reviewers at once never get the same galaxy, and between them see the whole queue
    with ThreadPoolExecutor(2) as pool:
        seen = list(pool.map(lambda who: _review_round(settings, task.name, who), ["bob", "eve"]))
    assert set(seen[0]).isdisjoint(seen[1]) and seen[0] and seen[1]
    assert sorted(seen[0] + seen[1]) == sorted(c.ids.tolist())  # accepted: all decided once
    accepted = conn.execute(
        "SELECT count(DISTINCT galaxy_id) FROM galdb.labels WHERE task_id = %s "
        "AND source = 'human'",
        (task.task_id,),
    ).fetchone()[0]
    assert accepted == 120


def test_knn_graph_is_extended_on_the_cluster(settings, conn):
    """Embeddings added to a model with a ready graph: the graph is extended in place (new
    rows through nearest_vectors, old rows updated), as close to exact kNN as a rebuild."""
    from galdb.datasets.vectors import clustered_vectors, store_vectors

    n_old, n_new, k = 400, 80, 5
    vectors, _ = clustered_vectors(n_old + n_new, 16, 6, spread=0.6, seed=12)
    release = f"citus-append-{uuid.uuid4().hex[:6]}"
    spec = f"synthetic:{release}"
    record, old_ids = store_vectors(conn, vectors[:n_old], release, spec)
    url = database_url(settings)
    first = ensure_graph(conn, url, record, k, workers=2)
    before = dict(
        conn.execute(
            "SELECT galaxy_id, neighbour_ids FROM galdb.knn_neighbours WHERE graph_id = %s",
            (first.graph_id,),
        ).fetchall()
    )
    _, new_ids = store_vectors(conn, vectors[n_old:], f"{release}-b", spec)
    extended = ensure_graph(conn, url, record, k, workers=2, extend_up_to=1.0)
    assert extended.mode == "extended" and extended.graph_id == first.graph_id
    assert extended.n_embeddings == n_old + n_new
    ids = np.concatenate([old_ids, new_ids])
    row_of = {int(g): i for i, g in enumerate(ids)}
    x = vectors.astype(np.float16).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    truth = np.argsort(-sims, axis=1)[:, :k]
    rows = dict(
        conn.execute(
            "SELECT galaxy_id, neighbour_ids FROM galdb.knn_neighbours WHERE graph_id = %s",
            (first.graph_id,),
        ).fetchall()
    )
    assert len(rows) == n_old + n_new
    hits = sum(len({row_of[h] for h in rows[int(g)]} & set(truth[i])) for i, g in enumerate(ids))
    assert hits / (len(ids) * k) > 0.95
    new = set(new_ids.tolist())
    gained = [g for g in old_ids.tolist() if set(rows[g]) - set(before[g])]
    assert gained and all(set(rows[g]) - set(before[g]) <= new for g in gained)
    assert ensure_graph(conn, url, record, k).mode == "reused"
