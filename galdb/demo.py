"""The end-to-end demo: simulate → ingest → cone search → SQL → embed → search →
a few labels → head → predictions view → label propagation → a review round that crosses the
retrain threshold → the worker publishes a new version.

Runs offline on the embedded database; every step is an ordinary library call, so the demo is
also a worked example of the API. It embeds with ``galdb:default`` (the encoder shipped with
galdb), or with a backbone pretrained for ``pretrain_minutes`` on the demo's own cutouts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from astropy.table import Table

from galdb.db import admin
from galdb.db.connect import connect, database_url
from galdb.db.readonly import QueryResult, run_readonly
from galdb.db.settings import Settings
from galdb.errors import GaldbError
from galdb.heads.materialize import materialize
from galdb.heads.versions import HeadVersion, get_version, train_head
from galdb.ingest import IngestSummary, ingest
from galdb.ingest.runs import release_id_of
from galdb.jobs.worker import run_worker
from galdb.labels.store import catalog_chunks, import_labels
from galdb.labels.tasks import Task, create_task, get_task, set_retrain_threshold
from galdb.lvm import registry
from galdb.lvm.embed import EmbedSummary, embed
from galdb.lvm.pretrain import PretrainConfig, pretrain
from galdb.lvm.specs import DEFAULT_SPEC, load_model
from galdb.progress import Progress
from galdb.propagate.run import PropagationSummary, propagate
from galdb.review.batch import apply_decisions, decision_rows
from galdb.search import ConeMatch, cone_search
from galdb.search.service import Query, SearchResult, run_search
from galdb.sim import CLASSES, simulate_release

RELEASE = "demo-sim"
CUTOUT_PX = 96  # the cutout side of galdb:default's training simulations
CLASS_QUERY = """
SELECT props->>'morph_class' AS morph_class, count(*) AS n,
       round(avg((props->>'half_light_radius_arcsec')::numeric), 2) AS mean_r_half_arcsec,
       round(avg((props->>'sersic_n')::numeric), 2) AS mean_sersic_n,
       round(avg((props->>'mag_r')::numeric), 2) AS mean_mag_r
FROM galdb.catalog WHERE release = 'demo-sim'
GROUP BY 1 ORDER BY 1
""".strip()
TASK = "morphology"
LABELS_PER_CLASS = 4  # "few labels": the rest of the truth only scores the predictions
MORPHOLOGY_QUERY = """
SELECT label, count(*) AS n, round(avg(confidence)::numeric, 2) AS mean_confidence,
       round(avg((label = props->>'morph_class')::int)::numeric, 2) AS agrees_with_truth
FROM morphology WHERE release = 'demo-sim' GROUP BY label ORDER BY n DESC
""".strip()
PROPAGATED_QUERY = """
SELECT count(*) AS propagated, round(avg(l.confidence)::numeric, 2) AS mean_confidence,
       round(avg((l.class = g.props->>'morph_class')::int)::numeric, 2) AS agrees_with_truth
FROM galdb.labels l JOIN galdb.galaxies g USING (galaxy_id) JOIN galdb.tasks t USING (task_id)
WHERE t.name = 'morphology' AND l.source = 'propagated'
""".strip()
REVIEW_CORRECTIONS = 10  # the demo task's retrain threshold (fewer if fewer are wrong)
REVIEW_QUEUE = """
SELECT source_id, props->>'morph_class' AS truth, label FROM morphology
WHERE release = 'demo-sim' ORDER BY margin, galaxy_id
""".strip()
AGREEMENT_QUERY = """
SELECT head_version, count(*) AS n,
       round(avg((label = props->>'morph_class')::int)::numeric, 2) AS agrees_with_truth
FROM morphology WHERE release = 'demo-sim' GROUP BY 1
""".strip()
# With pretrain_minutes > 0: a small backbone pretrained on the demo's own cutouts (SimCLR).
DEMO_PRETRAIN = PretrainConfig(
    arch="resnet10t",
    input_size=48,
    crop_fraction=0.8,
    batch_size=32,
    epochs=30,
    releases=(RELEASE,),
)


@dataclass
class ReviewRound:
    """The demo's scripted review: decisions applied, the retrain they caused, its result."""

    decisions: Path
    applied: int
    corrections: int
    threshold: int
    jobs: list[int]
    before: HeadVersion
    after: HeadVersion
    agreement: QueryResult


@dataclass
class DemoResult:
    catalog: Path
    summary: IngestSummary
    centre: tuple[float, float]
    radius_deg: float
    matches: list[ConeMatch]
    classes: QueryResult
    checkpoint: Path | None  # None: the shipped galdb:default
    embedded: EmbedSummary
    similar: SearchResult
    query_class: str
    grid: Path
    head: HeadVersion
    n_labels: int
    morphology: QueryResult
    propagation: PropagationSummary
    propagated: QueryResult
    review: ReviewRound | None


def run_demo(
    settings: Settings,
    *,
    n: int = 200,
    seed: int = 1,
    radius_deg: float = 0.1,
    pretrain_minutes: float = 0.0,
    progress: Progress | None = None,
) -> DemoResult:
    """Simulate ``n`` galaxies and run every step of the pipeline on them.

    The encoder is ``galdb:default``; with ``pretrain_minutes`` > 0 a backbone pretrained
    that long on the demo's cutouts instead."""
    admin.init(settings)
    out = settings.home / "demo" / f"sim-n{n}-seed{seed}"
    catalog = out / "catalog.csv"
    if not catalog.exists():
        if progress:
            progress.start(n, "simulate")
        simulate_release(
            out,
            n,
            seed,
            size=CUTOUT_PX,
            field_radius_deg=0.5,
            progress=progress.advance if progress else None,
        )
    checkpoint = out / f"ssl-{DEMO_PRETRAIN.arch}-{pretrain_minutes:g}min.pt"
    with connect(settings) as conn:
        summary = ingest(conn, out, RELEASE, catalog=catalog, survey="galdb-sim", progress=progress)
        centre = conn.execute(
            "SELECT ra, dec FROM galdb.catalog WHERE release = %s ORDER BY source_id LIMIT 1",
            (RELEASE,),
        ).fetchone()
        matches = cone_search(conn, centre[0], centre[1], radius_deg, release=RELEASE)
        if pretrain_minutes <= 0:
            checkpoint = None
        elif not checkpoint.exists():
            cfg = PretrainConfig(**{**DEMO_PRETRAIN.__dict__, "minutes": pretrain_minutes})
            pretrain(conn, cfg, checkpoint, progress)
        loaded = load_model(f"checkpoint:{checkpoint}" if checkpoint else DEFAULT_SPEC)
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
    with connect(settings) as conn:
        task = _morphology_task(conn)
        n_labels = _few_labels(conn, task)
        record = registry.lookup(conn, loaded.spec)
        head = train_head(conn, task, record)
        conn.commit()
        materialize(conn, task, head.version_id)
        propagation = propagate(conn, database_url(settings), task, record, k=10)
    morphology = run_readonly(settings, MORPHOLOGY_QUERY)
    propagated = run_readonly(settings, PROPAGATED_QUERY)
    review = _review_round(settings, out / "review_round.csv")
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
        head,
        n_labels,
        morphology,
        propagation,
        propagated,
        review,
    )


def _review_round(settings: Settings, path: Path) -> ReviewRound | None:
    """A reviewer works down the margin queue answering from the simulation's truth, until
    the corrections reach the task's retrain threshold; the decisions go in through
    ``galdb review apply``'s service, then the worker runs the retrain job once."""
    with connect(settings) as conn:
        task = get_task(conn, TASK)
        before = get_version(conn, task)
        queue = conn.execute(REVIEW_QUEUE).fetchall()
        wrong = sum(truth != label for _, truth, label in queue)
        if wrong == 0:
            return None  # the head is right everywhere: nothing to correct
        threshold = min(REVIEW_CORRECTIONS, wrong)
        set_retrain_threshold(conn, task, threshold)
        conn.commit()
        rows, corrections = [], 0
        for source_id, truth, label in queue:
            rows.append((source_id, truth))
            corrections += truth != label
            if corrections == threshold:
                break
        Table(rows=rows, names=("source_id", "answer")).write(path, overwrite=True)
        summary = apply_decisions(
            conn, task, release_id_of(conn, RELEASE),
            decision_rows(path, "source_id", "answer", None), "demo reviewer",
            origin=f"apply:{path.name}",
        )  # fmt: skip
    run_worker(settings, once=True, log=lambda _: None)
    with connect(settings) as conn:
        after = get_version(conn, task)
    return ReviewRound(
        path, summary.applied, summary.corrections, threshold, summary.jobs, before, after,
        run_readonly(settings, AGREEMENT_QUERY),
    )  # fmt: skip


def _morphology_task(conn) -> Task:
    try:
        return get_task(conn, TASK)
    except GaldbError:
        return create_task(conn, TASK, "classification", classes=list(CLASSES))


def _few_labels(conn, task: Task) -> int:
    """Label a few galaxies per class from the simulation's truth, as a catalog would."""
    rid = conn.execute(
        "SELECT release_id FROM galdb.releases WHERE name = %s", (RELEASE,)
    ).fetchone()[0]
    rows = [row for chunk in catalog_chunks(conn, rid, "morph_class") for row in chunk]
    sizes = Counter(label for _, _, label in rows)
    taken: Counter = Counter()
    chosen = []
    for row in rows:
        cap = min(LABELS_PER_CLASS, max(1, sizes[row[2]] // 2))  # at most half of a class
        if taken[row[2]] < cap:
            taken[row[2]] += 1
            chosen.append(row)
    import_labels(conn, task, rid, [chosen], author="demo: simulation truth")
    return len(chosen)
