"""Restoration versions in ``galdb.restoration_versions``: store, list, load, make current.

A version is a trained network: its configuration (backbone architecture, preprocessing,
decoder width), its weights, the backbone spec and checksum it started from, the training
hyperparameters, the pairs folder and the held-out metrics. At most one version is current;
:func:`make_current` switches in one transaction, so ``galdb.restorations_current`` shows the
old version's restorations or the new one's, never a mix and never none in between.

None of these functions commits: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import psycopg

from galdb.errors import GaldbError
from galdb.restore.network import NetConfig, RestorationNet, from_bytes, to_bytes


@dataclass(frozen=True)
class RestorationVersion:
    """One row of ``galdb.restoration_versions`` without its weights."""

    version_id: int
    model_spec: str
    config: dict
    hyperparameters: dict
    pairs: str
    metrics: dict
    is_current: bool
    n_restored: int


_SELECT = (
    "SELECT v.version_id, v.model_spec, v.config, v.hyperparameters, v.pairs, v.metrics, "
    "v.is_current, (SELECT count(*) FROM galdb.restorations r "
    "WHERE r.version_id = v.version_id) FROM galdb.restoration_versions v"
)


def store_version(
    conn: psycopg.Connection,
    net: RestorationNet,
    *,
    model_spec: str,
    backbone_sha256: str,
    hyperparameters: dict,
    pairs: str,
    metrics: dict,
) -> RestorationVersion:
    """Insert a trained network as a new (not current) version; return it."""
    weights = to_bytes(net)
    version_id = conn.execute(
        "INSERT INTO galdb.restoration_versions (model_spec, backbone_sha256, config, "
        "hyperparameters, pairs, metrics, weights, weights_sha256, train_seconds) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING version_id",
        (
            model_spec,
            backbone_sha256,
            json.dumps(net.config.to_dict()),
            json.dumps(hyperparameters),
            pairs,
            json.dumps(metrics),
            weights,
            hashlib.sha256(weights).hexdigest(),
            metrics.get("train_seconds"),
        ),
    ).fetchone()[0]
    return get_version(conn, version_id)


def get_version(conn: psycopg.Connection, version_id: int | None = None) -> RestorationVersion:
    """A version by id; the current one when ``version_id`` is None."""
    where = " WHERE v.is_current" if version_id is None else " WHERE v.version_id = %s"
    row = conn.execute(_SELECT + where, () if version_id is None else (version_id,)).fetchone()
    if row is None:
        what = (
            "no current restoration version"
            if version_id is None
            else (f"no restoration version {version_id}")
        )
        raise GaldbError(f"{what}: train one with galdb restore train (see galdb restore list)")
    return RestorationVersion(*row)


def list_versions(conn: psycopg.Connection) -> list[RestorationVersion]:
    rows = conn.execute(_SELECT + " ORDER BY v.version_id").fetchall()
    return [RestorationVersion(*r) for r in rows]


def load_network(conn: psycopg.Connection, version_id: int) -> RestorationNet:
    """The version's network, rebuilt with its weights, in eval mode."""
    row = conn.execute(
        "SELECT config, weights FROM galdb.restoration_versions WHERE version_id = %s",
        (version_id,),
    ).fetchone()
    if row is None:
        raise GaldbError(f"no restoration version {version_id} (see galdb restore list)")
    return from_bytes(NetConfig.from_dict(row[0]), bytes(row[1]))


def make_current(conn: psycopg.Connection, version_id: int) -> None:
    """Make a version the current one (in the caller's transaction: commit to publish)."""
    get_version(conn, version_id)  # a clear error for an unknown id
    # Two statements: a single UPDATE may set the new row before clearing the old one and
    # trip the one-current index, which is checked row by row.
    conn.execute("UPDATE galdb.restoration_versions SET is_current = false WHERE is_current")
    conn.execute(
        "UPDATE galdb.restoration_versions SET is_current = true WHERE version_id = %s",
        (version_id,),
    )
