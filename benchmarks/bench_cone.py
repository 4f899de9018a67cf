"""1-arcmin cone on 1M rows: median latency (target <= 5 ms) and the ratio against no index.

Steps, all in one run against one fresh embedded server:

1. load ``--n`` clustered positions: :func:`galdb.datasets.sky.write_catalog_csv` then
   galdb's own :func:`galdb.ingest.ingest` (the path users take), then ``ANALYZE``;
2. pick 1,000 stored galaxies at random (seeded) as cone centres, so results are non-empty;
3. time 1,000 1-arcmin cones through one psycopg connection with the prepared statement
   ``SELECT galaxy_id, separation_deg FROM galdb.cone_search(%s, %s, %s)``, round trip and
   fetching included (after an untimed warm-up of 20 queries);
4. the same search written as a brute-force scan over ``galdb.angular_separation`` for the
   first 20 centres: median latency, speed-up, and a check that the result sets are equal;
5. 100 cones each of 10 arcmin and 1 degree through the indexed function.

    python benchmarks/bench_cone.py --n 1000000
    python benchmarks/bench_cone.py --n 20000          # quick smoke run
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from _common import (
    Figures,
    command_line,
    embedded_server,
    log,
    machine,
    parser,
    percentile_ms,
    print_table,
    verdict,
)

from galdb.datasets.sky import write_catalog_csv
from galdb.db.connect import connect
from galdb.ingest import ingest

TARGET_MEDIAN_MS = 5.0
N_CENTRES = 1_000
N_BRUTE = 20
N_WIDE = 100
WARM_UP = 20
ARCMIN = 1.0 / 60.0

INDEXED = "SELECT galaxy_id, separation_deg FROM galdb.cone_search(%s, %s, %s)"
BRUTE = (
    "SELECT galaxy_id, galdb.angular_separation(%s, %s, ra, dec) AS sep FROM galdb.galaxies "
    "WHERE galdb.angular_separation(%s, %s, ra, dec) <= %s"
)


@dataclass
class Timing:
    """Latencies of one query set and what it returned."""

    label: str
    seconds: list[float]
    results: list[set[int]]

    @property
    def median_ms(self) -> float:
        return percentile_ms(self.seconds, 50)

    def row(self) -> tuple:
        """One line of the report table."""
        mean_rows = float(np.mean([len(r) for r in self.results]))
        qps = len(self.seconds) / sum(self.seconds)
        return (
            self.label,
            len(self.seconds),
            f"{mean_rows:,.1f}",
            f"{self.median_ms:.3f}",
            f"{percentile_ms(self.seconds, 90):.3f}",
            f"{percentile_ms(self.seconds, 99):.3f}",
            f"{qps:,.0f}",
        )


def load(settings, n: int, seed: int) -> float:
    """Write and ingest the catalog, then ANALYZE; return the ingest seconds."""
    csv = settings.home / f"catalog-{n}.csv"
    log(f"writing a {n:,}-row clustered catalog to {csv}")
    write_catalog_csv(csv, n, seed)
    log("ingesting it with galdb.ingest (COPY)")
    with connect(settings) as conn:
        summary = ingest(conn, csv, "bench-cone", survey="galdb-bench")
        conn.execute("ANALYZE galdb.galaxies")
        conn.commit()
    log(f"loaded {summary.inserted:,} rows in {summary.seconds:.1f} s; ANALYZE done")
    csv.unlink()
    return summary.seconds


def centres(conn: psycopg.Connection, count: int, seed: int) -> list[tuple[float, float]]:
    """Positions of ``count`` stored galaxies chosen at random with ``seed``."""
    ids = np.array([r[0] for r in conn.execute("SELECT galaxy_id FROM galdb.galaxies")])
    pick = np.random.default_rng(seed).choice(ids, size=min(count, ids.size), replace=False)
    rows = conn.execute(
        "SELECT ra, dec FROM galdb.galaxies WHERE galaxy_id = ANY(%s) ORDER BY galaxy_id",
        (pick.tolist(),),
    ).fetchall()
    return [(float(ra), float(dec)) for ra, dec in rows]


def time_queries(conn, label: str, sql: str, params: list[tuple]) -> Timing:
    """Run ``sql`` once per parameter tuple as a prepared statement; time each round trip."""
    seconds, results = [], []
    every = max(1, len(params) // 4)
    for i, p in enumerate(params, 1):
        t0 = time.perf_counter()
        rows = conn.execute(sql, p, prepare=True).fetchall()
        seconds.append(time.perf_counter() - t0)
        results.append({r[0] for r in rows})
        if i % every == 0:
            median = percentile_ms(seconds, 50)
            log(f"{label}: {i}/{len(params)} queries, median so far {median:.2f} ms")
    return Timing(label, seconds, results)


def warm_up(conn, points: list[tuple[float, float]]) -> None:
    """Untimed queries so the statement is prepared and plpgsql has cached its plan."""
    for ra, dec in points[:WARM_UP]:
        conn.execute(INDEXED, (ra, dec, ARCMIN), prepare=True).fetchall()


def plan_outline(conn, sql: str, params: tuple) -> str:
    """The node types of a query's plan, outermost first, e.g. ``Gather > Seq Scan``."""
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()[0][0]["Plan"]
    nodes = []
    while plan:
        workers = plan.get("Workers Planned")
        nodes.append(plan["Node Type"] + (f" ({workers} workers)" if workers else ""))
        plan = (plan.get("Plans") or [None])[0]
    return " > ".join(nodes)


def measure(conn, points: list[tuple[float, float]]) -> dict[str, Timing]:
    """Every query set of the benchmark."""
    warm_up(conn, points)
    arcmin = time_queries(conn, "1 arcmin, indexed", INDEXED, [(*p, ARCMIN) for p in points])
    brute_params = [(ra, dec, ra, dec, ARCMIN) for ra, dec in points[:N_BRUTE]]
    log(f"no-index query plan: {plan_outline(conn, BRUTE, brute_params[0])}")
    brute = time_queries(conn, "1 arcmin, no index (scan)", BRUTE, brute_params)
    wide = points[:N_WIDE]
    ten = time_queries(conn, "10 arcmin, indexed", INDEXED, [(*p, 10 * ARCMIN) for p in wide])
    deg = time_queries(conn, "1 degree, indexed", INDEXED, [(*p, 1.0) for p in wide])
    return {"arcmin": arcmin, "brute": brute, "ten": ten, "deg": deg}


def run(args) -> tuple[dict[str, Timing], int, float]:
    """Load, measure, and return the timings, the row count and the load seconds."""
    with embedded_server(args.home, args.keep) as settings:
        load_seconds = load(settings, args.n, args.seed)
        with connect(settings, autocommit=True) as conn:
            n_rows = conn.execute("SELECT count(*) FROM galdb.galaxies").fetchone()[0]
            points = centres(conn, N_CENTRES, args.seed + 1)
            log(f"{len(points)} cone centres picked from {n_rows:,} stored galaxies")
            timings = measure(conn, points)
    return timings, n_rows, load_seconds


def report(
    timings: dict[str, Timing], n_rows: int, load_seconds: float, json_path: Path | None = None
) -> None:
    """Print the latency table, the target, the speed-up and the equality check."""
    header = ("query", "queries", "mean rows", "median ms", "p90 ms", "p99 ms", "queries/s")
    title = f"Cone search on {n_rows:,} rows -- {command_line()}"
    print_table(title, header, [t.row() for t in timings.values()])
    arcmin, brute = timings["arcmin"], timings["brute"]
    same = sum(a == b for a, b in zip(arcmin.results, brute.results, strict=False))
    speedup = percentile_ms(brute.seconds, 50) / arcmin.median_ms
    print(f"\nloaded by write_catalog_csv + galdb ingest ({load_seconds:.1f} s) + ANALYZE")
    print(
        f"1-arcmin median {arcmin.median_ms:.3f} ms, target <= {TARGET_MEDIAN_MS} ms: "
        f"{verdict(arcmin.median_ms <= TARGET_MEDIAN_MS)}"
    )
    print(f"speed-up of the index (no-index median / indexed median): {speedup:,.0f}x")
    print(f"result sets equal, indexed vs scan: {same}/{len(brute.results)}")
    print(f"machine at the end: {machine()}")
    figures = Figures("bench_cone.py")
    figures.add(
        f"1-arcmin cone search median, {n_rows:,} rows",
        arcmin.median_ms,
        "ms",
        target=TARGET_MEDIAN_MS,
        better="lower",
        reference=percentile_ms(brute.seconds, 50),
        reference_name="same query without the index (scan)",
        note=f"result sets equal {same}/{len(brute.results)}",
    )
    for key, label in (("ten", "10-arcmin"), ("deg", "1-degree")):
        figures.add(f"{label} cone search median", timings[key].median_ms, "ms", better="lower")
    figures.write(json_path)
    if same != len(brute.results):
        raise SystemExit("indexed and brute-force cone searches disagree")


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    report(*run(args), args.json)


if __name__ == "__main__":
    main()
