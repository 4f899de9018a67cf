"""The registry of job kinds: a kind is a name and a function
``run(conn, job, settings) -> result``.

``settings`` lets a handler open connections of its own (embedding readers, graph builders).
Adding a kind is one module with a ``run`` function and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from galdb.jobs import embed, graph, ingest, lineage, predict, propagate, retrain

KINDS: dict[str, Callable] = {
    "retrain": retrain.run,
    "ingest": ingest.run,
    "embed": embed.run,
    "predict": predict.run,
    "graph": graph.run,
    "propagate": propagate.run,
    "lineage": lineage.run,
}
