"""The end-to-end demo: simulate a mock release, ingest it, cone search, query with SQL.

Runs offline on the embedded database; every step is an ordinary library call, so the demo is
also a worked example of the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from galdb.db import admin
from galdb.db.connect import connect
from galdb.db.readonly import QueryResult, run_readonly
from galdb.db.settings import Settings
from galdb.ingest import IngestSummary, ingest
from galdb.progress import Progress
from galdb.search import ConeMatch, cone_search
from galdb.sim import simulate_release

RELEASE = "demo-sim"
CLASS_QUERY = """
SELECT props->>'morph_class' AS morph_class, count(*) AS n,
       round(avg((props->>'half_light_radius_arcsec')::numeric), 2) AS mean_r_half_arcsec,
       round(avg((props->>'sersic_n')::numeric), 2) AS mean_sersic_n,
       round(avg((props->>'mag_r')::numeric), 2) AS mean_mag_r
FROM galdb.catalog WHERE release = 'demo-sim'
GROUP BY 1 ORDER BY 1
""".strip()


@dataclass
class DemoResult:
    catalog: Path
    summary: IngestSummary
    centre: tuple[float, float]
    radius_deg: float
    matches: list[ConeMatch]
    classes: QueryResult


def run_demo(
    settings: Settings,
    *,
    n: int = 200,
    seed: int = 1,
    radius_deg: float = 0.1,
    progress: Progress | None = None,
) -> DemoResult:
    """Simulate ``n`` galaxies, ingest them, search a cone and count classes with SQL."""
    admin.init(settings)
    out = settings.home / "demo" / f"sim-n{n}-seed{seed}"
    catalog = out / "catalog.csv"
    if not catalog.exists():
        if progress:
            progress.start(n, "simulate")
        simulate_release(
            out, n, seed, field_radius_deg=0.5, progress=progress.advance if progress else None
        )
    with connect(settings) as conn:
        summary = ingest(conn, out, RELEASE, catalog=catalog, survey="galdb-sim", progress=progress)
        centre = conn.execute(
            "SELECT ra, dec FROM galdb.catalog WHERE release = %s ORDER BY source_id LIMIT 1",
            (RELEASE,),
        ).fetchone()
        matches = cone_search(conn, centre[0], centre[1], radius_deg, release=RELEASE)
    classes = run_readonly(settings, CLASS_QUERY)
    return DemoResult(catalog, summary, tuple(centre), radius_deg, matches, classes)
