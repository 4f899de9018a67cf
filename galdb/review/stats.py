"""``galdb review stats``: what each reviewer did, and how far reviewers agree.

Per reviewer: decisions (undone ones not counted), labels, corrections (labels that differ
from the prediction shown) and agreement with the head (the share of their labels and accepts
that equal the prediction shown). Between every two reviewers who both labelled some galaxies:
the number in common and Cohen's kappa on them (their standing answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import psycopg
from sklearn.metrics import cohen_kappa_score

from galdb.labels.tasks import Task

_STANDING = (
    "FROM galdb.review_decisions d WHERE d.task_id = %s AND d.action <> 'undo' "
    "AND NOT EXISTS (SELECT 1 FROM galdb.review_decisions u WHERE u.undoes = d.decision_id)"
)


@dataclass(frozen=True)
class ReviewerStats:
    reviewer: str
    decisions: int
    labels: int
    corrections: int
    flags: int
    skips: int
    agreement_with_head: float | None


@dataclass(frozen=True)
class PairAgreement:
    a: str
    b: str
    n_common: int
    kappa: float | None


def reviewer_stats(conn: psycopg.Connection, task: Task) -> list[ReviewerStats]:
    rows = conn.execute(
        "SELECT d.reviewer, count(*), count(*) FILTER (WHERE d.action IN ('label', 'accept')), "
        "count(*) FILTER (WHERE d.correction > 0), count(*) FILTER (WHERE d.action = 'flag'), "
        "count(*) FILTER (WHERE d.action = 'skip'), "
        "avg(CASE WHEN d.action IN ('label', 'accept') THEN (d.correction = 0)::int END) "
        + _STANDING
        + " GROUP BY d.reviewer ORDER BY d.reviewer",
        (task.task_id,),
    ).fetchall()
    return [ReviewerStats(*r[:6], None if r[6] is None else float(r[6])) for r in rows]


def pair_agreement(conn: psycopg.Connection, task: Task) -> list[PairAgreement]:
    """Cohen's kappa between reviewers on the galaxies both labelled (latest answers)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (d.reviewer, d.galaxy_id) d.reviewer, d.galaxy_id, "
        "coalesce(d.answer_class, d.answer_value::text) "
        + _STANDING
        + " AND d.action IN ('label', 'accept') ORDER BY d.reviewer, d.galaxy_id, "
        "d.decision_id DESC",
        (task.task_id,),
    ).fetchall()
    answers: dict[str, dict[int, str]] = {}
    for reviewer, galaxy_id, answer in rows:
        answers.setdefault(reviewer, {})[galaxy_id] = answer
    pairs = []
    for a, b in combinations(sorted(answers), 2):
        common = sorted(answers[a].keys() & answers[b].keys())
        if not common:
            continue
        x = [answers[a][g] for g in common]
        y = [answers[b][g] for g in common]
        kappa = None if len(set(x) | set(y)) < 2 else float(cohen_kappa_score(x, y))
        pairs.append(PairAgreement(a, b, len(common), kappa))
    return pairs
