"""The end-to-end demo: simulate → ingest → cone search → SQL → pretrain → embed → search.

Runs offline on the embedded database; every step is an ordinary library call, so the demo is
also a worked example of the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from galdb.db import admin
from galdb.db.connect import connect, database_url
from galdb.db.readonly import QueryResult, run_readonly
from galdb.db.settings import Settings
from galdb.ingest import IngestSummary, ingest
from galdb.lvm.embed import EmbedSummary, embed
from galdb.lvm.pretrain import PretrainConfig, pretrain
from galdb.lvm.specs import load_model
from galdb.progress import Progress
from galdb.search import ConeMatch, cone_search
from galdb.search.service import Query, SearchResult, run_search
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
# A small backbone pretrained briefly on the demo's own cutouts (SimCLR), then used to embed.
DEMO_PRETRAIN = PretrainConfig(
    arch="resnet10t",
    input_size=48,
    crop_fraction=0.8,
    batch_size=32,
    epochs=30,
    releases=(RELEASE,),
)


@dataclass
class DemoResult:
    catalog: Path
    summary: IngestSummary
    centre: tuple[float, float]
    radius_deg: float
    matches: list[ConeMatch]
    classes: QueryResult
    checkpoint: Path
    embedded: EmbedSummary
    similar: SearchResult
    query_class: str
    grid: Path


def run_demo(
    settings: Settings,
    *,
    n: int = 200,
    seed: int = 1,
    radius_deg: float = 0.1,
    pretrain_minutes: float = 1.0,
    progress: Progress | None = None,
) -> DemoResult:
    """Simulate ``n`` galaxies and run every step of the pipeline on them."""
    admin.init(settings)
    out = settings.home / "demo" / f"sim-n{n}-seed{seed}"
    catalog = out / "catalog.csv"
    if not catalog.exists():
        if progress:
            progress.start(n, "simulate")
        simulate_release(
            out, n, seed, field_radius_deg=0.5, progress=progress.advance if progress else None
        )
    checkpoint = out / f"ssl-{DEMO_PRETRAIN.arch}.pt"
    with connect(settings) as conn:
        summary = ingest(conn, out, RELEASE, catalog=catalog, survey="galdb-sim", progress=progress)
        centre = conn.execute(
            "SELECT ra, dec FROM galdb.catalog WHERE release = %s ORDER BY source_id LIMIT 1",
            (RELEASE,),
        ).fetchone()
        matches = cone_search(conn, centre[0], centre[1], radius_deg, release=RELEASE)
        if not checkpoint.exists():
            cfg = PretrainConfig(**{**DEMO_PRETRAIN.__dict__, "minutes": pretrain_minutes})
            pretrain(conn, cfg, checkpoint, progress)
        loaded = load_model(f"checkpoint:{checkpoint}")
        embedded = embed(conn, database_url(settings), loaded, workers=0, progress=progress)
    classes = run_readonly(settings, CLASS_QUERY)
    grid = out / "similar.png"
    similar = run_search(
        settings,
        loaded.spec,
        Query(like=f"{RELEASE}::sim_{seed}_0000002"),
        k=11,
        release=RELEASE,
        grid=grid,
    )
    with connect(settings) as conn:
        query_class = conn.execute(
            "SELECT props->>'morph_class' FROM galdb.galaxies WHERE galaxy_id = %s",
            (similar.query_galaxy,),
        ).fetchone()[0]
    return DemoResult(
        catalog,
        summary,
        tuple(centre),
        radius_deg,
        matches,
        classes,
        checkpoint,
        embedded,
        similar,
        query_class,
        grid,
    )
