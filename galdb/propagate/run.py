"""``galdb propagate``: spread a task's labels over the kNN graph and store them.

Seeds are the task's human and catalog labels (the labels that count for each galaxy among
those two sources). Human labels are clamped: they never move, whatever their neighbours
say; catalog labels are soft seeds. Every other galaxy of the graph that the spreading
reaches gets a ``propagated`` label with its confidence (classification: the normalised
score of the winning class; regression: the seed mass that reached it, relative to the
best-connected galaxy). The previous propagated labels of the task are replaced in the
same transaction, so a reader sees one run's labels or the next one's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from galdb.db.binary_copy import copy_columns
from galdb.errors import GaldbError
from galdb.labels.store import effective_labels
from galdb.labels.tasks import Task
from galdb.lvm.registry import ModelRecord
from galdb.propagate.graph import Graph, Method, ensure_graph, locate, read_edges
from galdb.propagate.spreading import knn_adjacency

AUTHOR = "galdb propagate"
SEED_SOURCES = ("human", "catalog")


@dataclass
class PropagationSummary:
    graph: Graph
    nodes: int
    seeds: int
    fixed: int
    propagated: int
    iterations: int
    seconds: dict


def propagate(
    conn: psycopg.Connection,
    url: str,
    task: Task,
    record: ModelRecord,
    *,
    k: int = 15,
    alpha: float = 0.9,
    workers: int = 1,
    rebuild_graph: bool = False,
    graph_method: Method = "pgvector",
    progress=None,
) -> PropagationSummary:
    """Spread the task's human and catalog labels over the model's kNN graph and store the
    result as its ``propagated`` labels (see the module docstring).

    Commits: the graph is built or refreshed in its own transactions (page by page, see
    :mod:`galdb.propagate.graph`; an interrupted build resumes), then the task's propagated
    labels are replaced in one transaction, so a reader sees one run's labels or the next
    one's, never a mix.
    """
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    graph = ensure_graph(
        conn,
        url,
        record,
        k,
        workers=workers,
        rebuild=rebuild_graph,
        method=graph_method,
        progress=progress,
    )
    seconds["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    edges = read_edges(conn, graph.graph_id)
    adjacency = knn_adjacency(edges.sources, edges.targets, edges.similarities, len(edges.node_ids))
    labels = effective_labels(conn, task, SEED_SOURCES)
    at, on_graph = locate(edges.node_ids, labels.galaxy_ids)
    if not on_graph.any():
        raise GaldbError(
            f"none of the {len(labels.galaxy_ids):,} human/catalog labels of {task.name} is on "
            f"the graph of model {record.model_id}: embed the labelled galaxies first"
        )
    nodes = at[on_graph]
    fixed = np.zeros(len(edges.node_ids), bool)
    fixed[nodes] = labels.sources[on_graph] == "human"
    seconds["read"] = time.perf_counter() - t
    t = time.perf_counter()
    seeded = np.zeros(len(edges.node_ids), bool)
    seeded[nodes] = True
    spread = task.kind_spec.spread(adjacency, nodes, labels.targets[on_graph], fixed, alpha)
    seconds["spread"] = time.perf_counter() - t
    t = time.perf_counter()
    write = spread.reached & ~seeded
    _replace_propagated(
        conn, task, edges.node_ids[write], spread.targets[write], spread.confidence[write], graph
    )
    seconds["write"] = time.perf_counter() - t
    return PropagationSummary(
        graph,
        len(edges.node_ids),
        int(on_graph.sum()),
        int(fixed.sum()),
        int(write.sum()),
        spread.iterations,
        seconds,
    )


def _replace_propagated(conn, task: Task, ids, targets, confidence, graph: Graph) -> None:
    """Stage the targets, then swap the task's propagated labels in one transaction (the
    kind turns a target into its stored label in SQL)."""
    kind = task.kind_spec
    origin = f"graph {graph.graph_id} (model {graph.model_id}, k={graph.k})"
    with conn.transaction():
        conn.execute(
            f"CREATE TEMP TABLE propagated_stage (galaxy_id int8, target {kind.target_type}, "
            "confidence float4) ON COMMIT DROP"
        )
        copy_columns(
            conn,
            "propagated_stage",
            ["galaxy_id", "target", "confidence"],
            [(ids, "int8"), (targets, kind.target_type), (np.clip(confidence, 0, 1), "float4")],
        )
        conn.execute(
            "DELETE FROM galdb.labels WHERE task_id = %s AND source = 'propagated' AND author = %s",
            (task.task_id, AUTHOR),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO galdb.labels (task_id, galaxy_id, source, author, {column}, "
                "confidence, origin) SELECT t.task_id, s.galaxy_id, 'propagated', %s, {label}, "
                "s.confidence, %s FROM propagated_stage s, galdb.tasks t WHERE t.task_id = %s"
            ).format(
                column=sql.Identifier(kind.label_column),
                label=kind.label_sql(sql.SQL("s.target")),
            ),
            (AUTHOR, origin, task.task_id),
        )
    conn.commit()
