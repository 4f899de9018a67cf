"""The review queue, leases and decisions against the real PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import uuid

import numpy as np
import psycopg
import pytest

from galdb.db.connect import connect
from galdb.errors import GaldbError
from galdb.jobs.queue import list_jobs
from galdb.labels.tasks import get_task
from galdb.review.decisions import corrections_since_current, decide, undo
from galdb.review.queue import QueueFilters, claim, release

CLASSES = ("disk", "bulge", "merger")


def session() -> str:
    return uuid.uuid4().hex


def test_margin_queue_is_the_smallest_margins_and_leases_exclude_others(conn, make_task):
    r = make_task()
    table = conn.execute(
        "SELECT predictions_table FROM galdb.head_versions WHERE version_id = %s",
        (r.task.current_version,),
    ).fetchone()[0]
    schema, _, name = table.rpartition(".")
    expected = [
        row[0]
        for row in conn.execute(
            psycopg.sql.SQL("SELECT galaxy_id FROM {} ORDER BY margin, galaxy_id LIMIT 5").format(
                psycopg.sql.Identifier(schema or "galdb", name)
            )
        )
    ]
    a, b = session(), session()
    first = claim(conn, r.task, "alice", a, n=3)
    conn.commit()
    assert [i.galaxy_id for i in first] == expected[:3]
    assert all(i.head_version == r.task.current_version for i in first)
    assert abs(sum(first[0].probabilities.values()) - 1) < 1e-4
    second = claim(conn, r.task, "bob", b, n=2)
    conn.commit()
    assert [i.galaxy_id for i in second] == expected[3:5]
    # quitting releases: bob's galaxies go back to the queue, first in line for carol
    release(conn, b)
    conn.commit()
    third = claim(conn, r.task, "carol", session(), n=2)
    assert [i.galaxy_id for i in third] == expected[3:5]


def test_expired_leases_go_back_to_the_queue(conn, make_task):
    r = make_task()
    got = claim(conn, r.task, "alice", session(), n=2, lease_seconds=0.001)
    conn.commit()
    again = claim(conn, r.task, "bob", session(), n=2)
    assert [i.galaxy_id for i in again] == [i.galaxy_id for i in got]


def test_decisions_label_audit_and_undo(conn, make_task):
    r = make_task()
    s = session()
    item, other = claim(conn, r.task, "alice", s, n=2)
    wrong = next(c for c in CLASSES if c != item.predicted)
    d = decide(conn, r.task, item, "alice", "label", answer=wrong, session=s)
    assert d.correction == 1
    accepted = decide(conn, r.task, other, "alice", "accept", session=s)
    assert accepted.answer == other.predicted and accepted.correction == 0
    labels = dict(
        conn.execute(
            "SELECT galaxy_id, class FROM galdb.labels WHERE task_id = %s AND source = 'human'",
            (r.task.task_id,),
        ).fetchall()
    )
    assert labels == {item.galaxy_id: wrong, other.galaxy_id: other.predicted}
    # undo takes back the latest decision (the accept): its label goes
    u = undo(conn, r.task, "alice", session=s)
    assert u.galaxy_id == other.galaxy_id
    assert (
        conn.execute(
            "SELECT count(*) FROM galdb.labels WHERE task_id = %s AND galaxy_id = %s "
            "AND source = 'human'",
            (r.task.task_id, other.galaxy_id),
        ).fetchone()[0]
        == 0
    )
    u2 = undo(conn, r.task, "alice", session=s)
    assert u2.galaxy_id == item.galaxy_id and u2.correction == -1
    assert corrections_since_current(conn, r.task)[0] == 0
    rows = conn.execute(
        "SELECT action, undoes IS NOT NULL FROM galdb.review_decisions WHERE task_id = %s "
        "ORDER BY decision_id",
        (r.task.task_id,),
    ).fetchall()
    assert rows == [("label", False), ("accept", False), ("undo", True), ("undo", True)]
    assert undo(conn, r.task, "alice", session=s) is None
    conn.commit()
    # undone galaxies are back in the queue: alice's again, everyone's once she quits
    assert {i.galaxy_id for i in claim(conn, r.task, "alice", s, n=2)} == {
        item.galaxy_id,
        other.galaxy_id,
    }
    release(conn, s)
    conn.commit()
    back = claim(conn, r.task, "bob", session(), n=2, strategy="margin")
    assert {i.galaxy_id for i in back} == {item.galaxy_id, other.galaxy_id}


def test_decided_galaxies_are_skipped_unless_redo_and_flagged_come_back(conn, make_task):
    r = make_task()
    s = session()
    a, b = claim(conn, r.task, "alice", s, n=2)
    decide(conn, r.task, a, "alice", "accept", session=s)
    decide(conn, r.task, b, "alice", "flag", flag_reason="artefact", note="satellite trail")
    release(conn, s)
    conn.commit()
    nxt = claim(conn, r.task, "alice", session(), n=5)
    assert not {a.galaxy_id, b.galaxy_id} & {i.galaxy_id for i in nxt}
    conn.rollback()
    redo = claim(conn, r.task, "alice", session(), n=2, redo=True)
    assert [i.galaxy_id for i in redo] == [a.galaxy_id, b.galaxy_id]
    conn.rollback()
    flagged = claim(conn, r.task, "bob", session(), n=5, strategy="flagged")
    assert [i.galaxy_id for i in flagged] == [b.galaxy_id]


def test_filters_and_bad_decisions(conn, make_task):
    r = make_task()
    got = claim(
        conn, r.task, "alice", session(), n=5, filters=QueueFilters(predicted_class="merger")
    )
    assert got and all(i.predicted == "merger" for i in got)
    conn.rollback()
    assert claim(conn, r.task, "alice", session(), n=3, filters=QueueFilters(release="nope")) == []
    item = claim(conn, r.task, "alice", session(), n=1)[0]
    with pytest.raises(GaldbError, match="not a class"):
        decide(conn, r.task, item, "alice", "label", answer="spiral")
    with pytest.raises(GaldbError, match="flag reason"):
        decide(conn, r.task, item, "alice", "flag", flag_reason="boring")
    with pytest.raises(GaldbError, match="unknown strategy"):
        claim(conn, r.task, "alice", session(), strategy="best")
    conn.rollback()
    sim = claim(conn, r.task, "alice", session(), n=4, strategy="similar", similar_to=int(r.ids[0]))
    assert sim[0].galaxy_id == int(r.ids[0])  # itself first, then its look-alikes
    assert len(sim) == 4


def test_threshold_crossing_enqueues_exactly_one_retrain(conn, make_task):
    r = make_task(threshold=3)
    s = session()
    items = claim(conn, r.task, "alice", s, n=4)
    jobs = []
    for item in items:
        wrong = next(c for c in CLASSES if c != item.predicted)
        jobs.append(
            decide(conn, r.task, item, "alice", "label", answer=wrong, session=s).retrain_job
        )
    assert jobs[:2] == [None, None] and jobs[2] is not None and jobs[3] is None
    conn.commit()
    # undo one and correct again: the same crossing, no second job
    undo(conn, r.task, "alice", session=s)
    undo(conn, r.task, "alice", session=s)
    again = claim(conn, r.task, "alice", s, n=1, redo=True)[0]
    wrong = next(c for c in CLASSES if c != again.predicted)
    assert decide(conn, r.task, again, "alice", "label", answer=wrong).retrain_job is None
    conn.commit()
    mine = [j for j in list_jobs(conn, kind="retrain") if j.payload["task"] == r.task.name]
    assert len(mine) == 1 and mine[0].payload["after_version"] == r.task.current_version


def _reviewer(args):
    """One reviewer process: works through the queue as the app does (a lease per galaxy on
    screen, released with the decision) until the queue is empty."""
    home, task_name, who = args
    import os

    os.environ["GALDB_HOME"] = home
    from galdb.db.settings import Settings
    from galdb.review.session import ReviewSession

    settings = Settings.from_env()
    seen, jobs = [], []
    with connect(settings) as conn:
        session = ReviewSession(conn, get_task(conn, task_name), who)
        while (item := session.next_item()) is not None:
            wrong = next(c for c in CLASSES if c != item.predicted)
            d = session.decide(item, "label", answer=wrong)
            seen.append(item.galaxy_id)
            if d.retrain_job:
                jobs.append(d.retrain_job)
        session.close()
    return seen, jobs


@pytest.mark.slow
def test_eight_concurrent_reviewers_never_share_a_galaxy(conn, settings, make_task):
    r = make_task(threshold=25)
    conn.commit()
    n_total = conn.execute(
        "SELECT count(*) FROM galdb.review_leases WHERE task_id = %s", (r.task.task_id,)
    ).fetchone()[0]
    assert n_total == 0
    args = [(str(settings.home), r.task.name, f"rev{i}") for i in range(8)]
    with mp.get_context("spawn").Pool(8) as pool:
        results = pool.map(_reviewer, args)
    seen = [g for s, _ in results for g in s]
    jobs = [j for _, js in results for j in js]
    assert len(seen) == len(set(seen))  # never the same galaxy twice
    n_pred = conn.execute(
        "SELECT n_predictions FROM galdb.head_versions WHERE version_id = %s",
        (r.task.current_version,),
    ).fetchone()[0]
    assert len(seen) == n_pred  # the whole queue, nothing lost
    stored = conn.execute(
        "SELECT count(*), count(DISTINCT galaxy_id) FROM galdb.review_decisions WHERE task_id = %s",
        (r.task.task_id,),
    ).fetchone()
    assert stored == (len(seen), len(seen))
    # every 25th correction crossed the threshold once, whoever made it
    assert len(jobs) == len(set(jobs)) == n_pred // 25
    assert np.all(np.diff(sorted(jobs)) > 0)


def test_every_queue_order_has_its_index(conn, make_task):
    r = make_task()
    table = f"v{r.task.current_version}"
    indexes = dict(
        conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'galdb_predictions' "
            "AND tablename = %s",
            (table,),
        ).fetchall()
    )
    keys = r.task.kind_spec.queue_index_keys()
    assert len(indexes) == 1 + len(keys)  # the primary key and one per order
    assert "(margin, galaxy_id)" in indexes[f"{table}_q0"]
    assert any("p_merger DESC, galaxy_id" in d for d in indexes.values())
    conn.execute("SET LOCAL enable_seqscan = off")  # 400 rows: the planner would rather scan
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            f"EXPLAIN SELECT galaxy_id FROM galdb_predictions.{table} "
            "ORDER BY margin ASC, galaxy_id LIMIT 5"
        )
    )
    conn.rollback()
    assert f"Scan using {table}_q0" in plan
