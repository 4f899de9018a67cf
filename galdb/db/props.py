"""Catalog columns: the keys of ``galdb.galaxies.props``, read from a bounded sample.

A release can hold tens of millions of galaxies and ``props`` has no index, so "which columns
are there" is answered from the first :data:`SAMPLE` galaxies of each release concerned (the
``(release_id, source_id)`` unique index makes each a short index scan), never a full scan.
Callers use it to explain an empty answer, after the real work found no galaxy with a column.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

SAMPLE = 1000
SHOWN = 40  # columns listed in a message; the count says how many more


def sample_columns_sql(restricted: bool) -> str:
    """Distinct props keys over at most ``%(sample)s`` galaxies per release (optionally
    only the releases in ``%(release_ids)s``)."""
    return (
        "SELECT DISTINCT k.key FROM galdb.releases AS r "
        "CROSS JOIN LATERAL (SELECT g.props FROM galdb.galaxies AS g "
        "WHERE g.release_id = r.release_id LIMIT %(sample)s) AS s "
        "CROSS JOIN LATERAL jsonb_object_keys("
        "CASE WHEN jsonb_typeof(s.props) = 'object' THEN s.props END) AS k(key)"
        + (" WHERE r.release_id = ANY(%(release_ids)s)" if restricted else "")
        + " ORDER BY 1"
    )


def sample_columns(
    conn: psycopg.Connection, release_ids: Sequence[int] | None = None, sample: int = SAMPLE
) -> list[str]:
    """Catalog columns found in the first ``sample`` galaxies of each release (all releases
    if ``release_ids`` is None), sorted."""
    rows = conn.execute(
        sample_columns_sql(release_ids is not None),
        {"sample": sample, "release_ids": list(release_ids or [])},
    ).fetchall()
    return [r[0] for r in rows]


def describe(columns: Sequence[str]) -> str:
    """``a, b, c`` (at most :data:`SHOWN`, then how many more), or ``none``."""
    if not columns:
        return "none"
    shown = ", ".join(columns[:SHOWN])
    more = len(columns) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
