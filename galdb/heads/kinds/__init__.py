"""The registry of task kinds: a task's ``kind`` names one of :data:`KINDS`.

Everything kind-specific (labels, heads, predictions, review, propagation, evaluation) is a
method of the kind (see :class:`~galdb.heads.kinds.base.TaskKind`); code elsewhere calls
``task.kind_spec`` instead of asking which kind a task is. Adding a kind is one module here
plus its line in :data:`KINDS` (and, in a new migration, its name in the ``tasks.kind``
CHECK constraint).
"""

from __future__ import annotations

from galdb.errors import GaldbError
from galdb.heads.kinds.base import Shown, Spread, TaskKind
from galdb.heads.kinds.classification import Classification
from galdb.heads.kinds.regression import Regression
from galdb.heads.kinds.votes import Votes

KINDS: dict[str, type[TaskKind]] = {k.name: k for k in (Classification, Regression, Votes)}

__all__ = ["KINDS", "Shown", "Spread", "TaskKind", "kind_class"]


def kind_class(name: str) -> type[TaskKind]:
    """The kind registered as ``name``."""
    try:
        return KINDS[name]
    except KeyError:
        raise GaldbError(f"task kind {name!r}: use {' or '.join(KINDS)}") from None
