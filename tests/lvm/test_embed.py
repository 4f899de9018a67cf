"""Embedding into pgvector and searching it, against a real PostgreSQL."""

import dataclasses
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from pgvector.psycopg import register_vector

from galdb.db.connect import connect, database_url
from galdb.ingest import ingest
from galdb.ingest.runs import ensure_release, release_id_of
from galdb.lvm import registry
from galdb.lvm.embed import embed, embed_file, write_vectors
from galdb.lvm.preprocess import Preprocessing
from galdb.lvm.specs import LoadedModel, load_model
from galdb.search.similar import Filters, search, stored_vector
from galdb.sim import simulate_release
from tests.conftest import kill_midway

SPEC = "timm:resnet10t"


@pytest.fixture(scope="module")
def embedded(settings, tmp_path_factory):
    """40 simulated galaxies, ingested and embedded with a tiny random-init backbone."""
    out = tmp_path_factory.mktemp("sim")
    catalog = simulate_release(out, 40, seed=11, size=32)
    with connect(settings) as conn:
        ingest(conn, out, "embed-test", catalog=catalog)
        loaded = load_model(SPEC, input_size=32)
        rid = release_id_of(conn, "embed-test")
        summary = embed(
            conn, database_url(settings), loaded, release_id=rid, batch_size=8, workers=0
        )
    return loaded, summary, out


def test_every_galaxy_embedded_once(settings, conn, embedded):
    loaded, summary, _ = embedded
    assert summary.embedded == 40 and not summary.failed and summary.index_built
    record = registry.lookup(conn, SPEC)
    rows = conn.execute(
        f"SELECT count(*), count(DISTINCT galaxy_id) FROM galdb.{record.partition} e "
        "JOIN galdb.catalog c USING (galaxy_id) WHERE c.release = 'embed-test'"
    ).fetchone()
    assert rows == (40, 40)
    again = embed(
        conn,
        database_url(settings),
        loaded,
        workers=2,
        release_id=release_id_of(conn, "embed-test"),
    )
    assert again.embedded == 0


def test_same_image_same_vector(conn, embedded):
    loaded, _, out = embedded
    path = out / "cutouts" / "sim_11_0000003.fits"
    a, b = embed_file(loaded, path), embed_file(load_model(SPEC, input_size=32), path)
    assert np.array_equal(a, b)
    record = registry.lookup(conn, SPEC)
    galaxy_id = conn.execute(
        "SELECT galaxy_id FROM galdb.catalog WHERE release = 'embed-test' "
        "AND source_id = 'sim_11_0000003'"
    ).fetchone()[0]
    stored = stored_vector(conn, record, galaxy_id)
    assert np.allclose(stored, a, rtol=2e-3, atol=2e-3)  # halfvec keeps ~3 digits


def test_nearest_neighbour_is_itself(conn, embedded):
    ids = [
        r[0]
        for r in conn.execute("SELECT galaxy_id FROM galdb.catalog WHERE release = 'embed-test'")
    ]
    for galaxy_id in ids[:10]:
        first = conn.execute(
            "SELECT galaxy_id, distance FROM galdb.similar(%s, 1, %s)", (galaxy_id, SPEC)
        ).fetchone()
        assert first[0] == galaxy_id and first[1] == pytest.approx(0, abs=1e-3)
    rows = conn.execute(
        "SELECT query_id, galaxy_id FROM galdb.similar_many(%s, 3, %s)", (ids[:5], SPEC)
    ).fetchall()
    assert len(rows) == 15 and all(q in {g for qq, g in rows if qq == q} for q, _ in rows)


def test_filtered_search_returns_k(conn, embedded):
    loaded, _, _ = embedded
    record = registry.lookup(conn, SPEC)
    ellipticals = conn.execute(
        "SELECT count(*) FROM galdb.catalog WHERE release = 'embed-test' "
        "AND (props->>'mag_r')::float <= 18.5"
    ).fetchone()[0]
    assert ellipticals >= 5
    vector = np.ones(record.embedding_dim, np.float32)
    found = search(
        conn,
        record,
        vector,
        k=5,
        filters=Filters(release="embed-test", column="mag_r", column_max=18.5),
        dedup_arcsec=None,
    )
    assert len(found) == 5
    assert all(n.props["mag_r"] <= 18.5 and n.release == "embed-test" for n in found)
    distances = [n.distance for n in found]
    assert distances == sorted(distances)


def test_killed_embed_resumes_to_one_vector_each(settings, conn, embedded, tmp_path):
    _, _, out = embedded
    release = "embed-kill"
    ingest(conn, out, release, catalog=out / "catalog.csv")
    spec = "timm:resnet14t"
    env = {**os.environ, "GALDB_HOME": str(settings.home)}
    cmd = [
        sys.executable,
        "-m",
        "galdb",
        "embed",
        "--model",
        spec,
        "--release",
        release,
        "--batch-size",
        "1",
        "--workers",
        "0",
        "--input-size",  # large enough that 40 cutouts take a second, so the poll sees them
        "128",
    ]

    def count(c):
        row = c.execute("SELECT model_id FROM galdb.models WHERE spec = %s", (spec,)).fetchone()
        if not row:
            return 0
        return c.execute(
            f"SELECT count(*) FROM galdb.embeddings_m{row[0]} e JOIN galdb.catalog c "
            "USING (galaxy_id) WHERE c.release = %s",
            (release,),
        ).fetchone()[0]

    stored = kill_midway(cmd, conn, count, at_least=6)
    assert 0 < stored < 40, "embed should have been killed midway"
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    record = registry.lookup(conn, spec)
    counts = conn.execute(
        f"SELECT count(*), count(DISTINCT galaxy_id) FROM galdb.{record.partition} e "
        "JOIN galdb.catalog c USING (galaxy_id) WHERE c.release = %s",
        (release,),
    ).fetchone()
    assert counts == (40, 40)


def test_hnsw_recall_against_exact(conn):
    """3,000 clustered 64-d vectors: the index's top 10 against an exact cosine scan."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(30, 64))
    vectors = centres[rng.integers(0, 30, 3000)] + 0.3 * rng.normal(size=(3000, 64))
    vectors = vectors.astype(np.float32)
    fake = LoadedModel(
        "timm:synthetic-recall-test",
        "synthetic",
        torch.nn.Identity(),
        Preprocessing(),
        64,
        "0" * 64,
    )
    record = registry.register(conn, fake)
    rid = ensure_release(conn, "recall-test", "test")
    ids = [
        r[0]
        for r in conn.execute(
            "INSERT INTO galdb.galaxies (release_id, source_id) SELECT %s, 'v' || i "
            "FROM generate_series(1, 3000) i RETURNING galaxy_id",
            (rid,),
        )
    ]
    register_vector(conn)
    write_vectors(conn, record, ids, vectors)
    registry.ensure_index(conn, record)
    queries = list(range(0, 3000, 30))
    rows = conn.execute(
        "SELECT query_id, galaxy_id FROM galdb.similar_many(%s, 10, %s)",
        ([ids[q] for q in queries], str(record.model_id)),
    ).fetchall()
    got: dict[int, set] = {}
    for q, g in rows:
        got.setdefault(q, set()).add(g)
    half = vectors.astype(np.float16).astype(np.float32)
    unit = half / np.linalg.norm(half, axis=1, keepdims=True)
    recall = []
    for q in queries:
        exact = {ids[i] for i in np.argsort(-(unit @ unit[q]))[:10]}
        recall.append(len(exact & got[ids[q]]) / 10)
    assert np.mean(recall) >= 0.95
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            f"EXPLAIN SELECT galaxy_id FROM galdb.{record.partition} ORDER BY "
            "embedding::halfvec(64) <=> "
            "(SELECT embedding FROM galdb.embeddings LIMIT 1)::halfvec(64) "
            "LIMIT 5"
        )
    )
    assert record.index in plan


def test_search_cli_table_grid_and_export(settings, embedded, tmp_path, capsys):
    from astropy.table import Table

    from galdb.cli import main

    grid, out = tmp_path / "grid.png", tmp_path / "neighbours.csv"
    args = [
        "search",
        "--model",
        SPEC,
        "--like",
        "embed-test::sim_11_0000004",
        "-k",
        "5",
        "--release",
        "embed-test",
        "--grid",
        str(grid),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    table = Table.read(out)
    assert len(table) == 5 and "sim_11_0000004" not in list(table["source_id"])
    from PIL import Image

    with Image.open(grid) as img:
        assert img.size[0] > 0
    path = embedded[2] / "cutouts" / "sim_11_0000004.fits"
    assert main(["search", "-m", SPEC, "--image", str(path), "-k", "3"]) == 0
    assert "sim_11_0000004" in capsys.readouterr().out  # the file finds its own galaxy
    assert main(["search", "-m", SPEC, "--like", "x", "--ra", "1", "--dec", "2"]) == 1


class FailsOnThirdBatch(torch.nn.Module):
    """A real backbone that raises on its third forward pass (a model error mid-run)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("out of memory in the forward pass")
        return self.model(x)


@pytest.mark.parametrize("workers", [0, 2])
def test_an_error_mid_run_keeps_the_written_batches_and_frees_the_model(
    settings, conn, embedded, workers
):
    _, _, out = embedded
    release = f"embed-fail-{workers}"
    ingest(conn, out, release, catalog=out / "catalog.csv")
    rid = release_id_of(conn, release)
    spec = f"timm:resnet10t-fail{workers}"
    good = load_model("timm:resnet10t", input_size=32)
    failing = dataclasses.replace(good, spec=spec, model=FailsOnThirdBatch(good.model))
    url = database_url(settings)
    with pytest.raises(RuntimeError, match="out of memory"):
        embed(conn, url, failing, release_id=rid, batch_size=8, workers=workers)
    assert not [t for t in threading.enumerate() if t.name.startswith("galdb-")]
    record = registry.lookup(conn, spec)
    (written,) = conn.execute(f"SELECT count(*) FROM galdb.{record.partition}").fetchone()
    assert written == 16  # the two batches before the failure, committed
    # the model's lock is free: a rerun embeds exactly the rest
    rerun = dataclasses.replace(good, spec=spec)
    summary = embed(conn, url, rerun, release_id=rid, batch_size=8, workers=workers)
    assert summary.embedded == 24
