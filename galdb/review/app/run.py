"""Start the review app for the CLI: a reviewer's connection, a session, the app."""

from __future__ import annotations

from galdb.db.connect import connect_reviewer
from galdb.db.settings import Settings
from galdb.errors import GaldbError
from galdb.labels.tasks import get_task
from galdb.review.queue import QUEUE_STRATEGIES, QueueFilters
from galdb.review.session import ReviewSession
from galdb.search.similar import find_galaxy


def open_session(
    settings: Settings,
    task: str,
    reviewer: str,
    *,
    strategy: str = "margin",
    filters: QueueFilters | None = None,
    redo: bool = False,
    similar_to: str | None = None,
) -> ReviewSession:
    """A session on a connection logged in as the reviewer role (which may add decisions but
    never change or delete one)."""
    if strategy not in QUEUE_STRATEGIES:
        raise GaldbError(f"unknown strategy {strategy!r}; known: {', '.join(QUEUE_STRATEGIES)}")
    if (strategy == "similar") != (similar_to is not None):
        raise GaldbError("--strategy similar and --similar-to ID go together")
    conn = connect_reviewer(settings)
    t = get_task(conn, task)
    anchor = find_galaxy(conn, similar_to) if similar_to else None
    conn.commit()
    return ReviewSession(
        conn,
        t,
        reviewer,
        strategy=strategy,
        filters=filters or QueueFilters(),
        redo=redo,
        similar_to=anchor,
    )


def run_app(settings: Settings, task: str, reviewer: str, *, show: list[str], **queue) -> None:
    from galdb.review.app.app import ReviewApp

    session = open_session(settings, task, reviewer, **queue)
    try:
        ReviewApp(session, show=show).run()
    finally:
        session.close()
        session.conn.close()
