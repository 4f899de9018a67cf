"""The review app driven by Textual's Pilot against the real database, as the reviewer role."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from textual_image.widget import HalfcellImage

from galdb.heads.kinds.classification import class_keys
from galdb.review.app.app import ReviewApp, image_widget_class
from galdb.review.app.run import open_session

CLASSES = ("disk", "bulge", "merger")


def decisions(conn, task):
    conn.rollback()
    return conn.execute(
        "SELECT action, answer_class, flag_reason, note, undoes IS NOT NULL "
        "FROM galdb.review_decisions WHERE task_id = %s ORDER BY decision_id",
        (task.task_id,),
    ).fetchall()


def test_class_keys_skip_command_initials():
    keys = class_keys(("spiral", "elliptical", "edge_on", "merger"))
    assert keys["1"] == "spiral" and keys["4"] == "merger"
    assert "s" not in keys  # s skips
    assert "e" not in keys  # two classes start with e
    assert keys["m"] == "merger"


def test_headless_images_are_half_cell_blocks():
    assert image_widget_class() is HalfcellImage


def test_keys_make_decisions_labels_undo_and_quit_releases(conn, settings, make_task):
    r = make_task()
    conn.commit()
    session = open_session(settings, r.task.name, "ada")
    app = ReviewApp(session, show=["cluster"])

    async def drive():
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.pause()
            first = app.item
            assert first is not None
            details = str(app.query_one("#details").render())
            assert first.source_id in details and f"head version {first.head_version}" in details
            cutout = app.query_one("#cutout")
            assert isinstance(cutout, HalfcellImage) and cutout.image is not None
            assert len(app.query(".neighbour")) == 6
            await pilot.press("2")  # bulge
            await pilot.pause()
            assert session.decisions == 1
            second = app.item
            await pilot.press("enter")  # accept
            await pilot.pause()
            assert session.decisions == 2
            third = app.item
            await pilot.press("f")
            await pilot.pause()
            await pilot.press("i")
            await pilot.press(*"odd ring")
            await pilot.press("enter")
            await pilot.pause()
            assert session.decisions == 3
            await pilot.press("u")  # undo the flag: that galaxy comes back
            await pilot.pause()
            assert session.decisions == 4
            assert app.item.galaxy_id == third.galaxy_id
            await pilot.press("s")
            await pilot.pause()
            status = str(app.query_one("#status").render())
            assert "decisions 5" in status and "toward retrain" in status
            await pilot.press("q")
            await pilot.pause()
            return first, second

    first, second = asyncio.run(drive())
    session.conn.close()
    rows = decisions(conn, r.task)
    assert [row[0] for row in rows] == ["label", "accept", "flag", "undo", "skip"]
    assert rows[0][1] == "bulge" and rows[1][1] == second.predicted
    assert rows[2][2:4] == ("interesting", "odd ring")
    labels = dict(
        conn.execute(
            "SELECT galaxy_id, class FROM galdb.labels WHERE task_id = %s AND source = 'human' "
            "AND author = 'ada'",
            (r.task.task_id,),
        ).fetchall()
    )
    assert labels == {first.galaxy_id: "bulge", second.galaxy_id: second.predicted}
    leases = conn.execute(
        "SELECT count(*) FROM galdb.review_leases WHERE session = %s", (session.session,)
    ).fetchone()[0]
    assert leases == 0  # quitting released them


def test_the_reviewer_role_cannot_change_or_delete_decisions(conn, settings, make_task):
    r = make_task()
    conn.commit()
    session = open_session(settings, r.task.name, "mallory")
    item = session.next_item()
    session.decide(item, "label", answer="merger")
    for statement in (
        "UPDATE galdb.review_decisions SET answer_class = 'disk'",
        "DELETE FROM galdb.review_decisions",
        "TRUNCATE galdb.review_decisions",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            session.conn.execute(statement)
        session.conn.rollback()
    # nor can the owner: the table is append-only for everyone
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM galdb.review_decisions WHERE task_id = %s", (r.task.task_id,))
    conn.rollback()
    session.close()
    session.conn.close()
