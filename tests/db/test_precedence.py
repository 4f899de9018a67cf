"""The label-precedence rule lives in one SQL function; the view and the code both use it."""

from __future__ import annotations

import uuid

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.ingest.runs import release_id_of
from galdb.labels.store import effective_labels, import_labels
from galdb.labels.tasks import create_task


def test_view_function_and_code_agree(conn):
    release = f"prec-{uuid.uuid4().hex[:6]}"
    vectors, _ = clustered_vectors(6, 4, 2, seed=0)
    store_vectors(conn, vectors, release, f"synthetic:{release}")
    rid = release_id_of(conn, release)
    task = create_task(conn, f"prec_{uuid.uuid4().hex[:8]}", "classification", classes=["a", "b"])
    ids = [f"v{i:08d}" for i in range(6)]
    # galaxy 0: catalog only; 1: catalog + propagated; 2: catalog + propagated + human;
    # 3: two humans (the newer wins); 4, 5: none
    import_labels(
        conn, task, rid, [[(0, ids[0], "a"), (1, ids[1], "a"), (2, ids[2], "a")]], author="cat"
    )
    import_labels(
        conn, task, rid, [[(0, ids[1], "b"), (1, ids[2], "b")]], source="propagated", author="prop"
    )
    import_labels(
        conn, task, rid, [[(0, ids[2], "a"), (1, ids[3], "a")]], source="human", author="ann"
    )
    import_labels(conn, task, rid, [[(0, ids[3], "b")]], source="human", author="ben")
    view = conn.execute(
        "SELECT g.source_id, e.class, e.source FROM galdb.effective_labels e "
        "JOIN galdb.galaxies g USING (galaxy_id) WHERE e.task_id = %s ORDER BY 1",
        (task.task_id,),
    ).fetchall()
    assert view == [
        (ids[0], "a", "catalog"),
        (ids[1], "b", "propagated"),
        (ids[2], "a", "human"),
        (ids[3], "b", "human"),
    ]
    function = conn.execute(
        "SELECT g.source_id, e.class FROM galdb.effective_labels_of(%s, '{catalog}') e "
        "JOIN galdb.galaxies g USING (galaxy_id) ORDER BY 1",
        (task.task_id,),
    ).fetchall()
    assert function == [(ids[0], "a"), (ids[1], "a"), (ids[2], "a")]
    code = effective_labels(conn, task, ("human", "catalog"))
    assert list(code.sources) == ["catalog", "catalog", "human", "human"]
    conn.rollback()
