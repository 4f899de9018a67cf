"""Lineage of a later release matched to an earlier one: galaxies/s, per phase, against a
per-galaxy cone search, and the pairs found against the truth.

Steps, all in one run against one fresh embedded server:

1. an earlier release of ``--n`` clustered positions keyed ``9010/<brick>/<objid>``, and a
   later one of the same sky keyed ``10000/...``: 90% of the objects kept (same
   brickid/objid, moved by 0.05-0.28"), 3% renumbered (new objid, moved as much), 7% gone,
   plus 7% new objects; both written as CSV and ingested with galdb's own
   :func:`galdb.ingest.ingest`, then ``ANALYZE``;
2. :func:`galdb.ingest.lineage.match_releases` (1 arcsec, ``--page-size``): seconds per
   phase and galaxies/s, the pairs against the truth of step 1;
3. the same match again (nothing changed: the recorded result) and with ``redo`` and a
   page size 4x smaller (the same rows?);
4. the per-galaxy alternative for a sample of ``--sample`` later galaxies: one
   ``galdb.cone_search`` call each (prepared, one connection), extrapolated to the release.

    python benchmarks/bench_lineage.py --n 1000000
    python benchmarks/bench_lineage.py --n 20000          # quick smoke run
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
from _common import Figures, command_line, embedded_server, log, machine, parser, print_table

from galdb.datasets.sky import clustered
from galdb.db.connect import connect
from galdb.ingest import ingest
from galdb.ingest.lineage import match_releases

KEPT, RENUMBERED, NEW = 0.90, 0.03, 0.07  # the rest of the earlier release is gone
BRICK_SIZE = 5000  # objects per brickid


class PhaseClock:
    """A progress sink recording when each phase started (and its pages)."""

    def __init__(self):
        self.marks: list[tuple[str, float]] = []
        self.pages = 0

    def start(self, total, description=""):
        self.marks.append((description, time.perf_counter()))
        log(f"{description}: {total:,} galaxy ids")

    def advance(self, n=1):
        self.pages += 1

    def seconds(self, end: float) -> dict[str, float]:
        """Seconds per phase (assign passes added up)."""
        out: dict[str, float] = {}
        stops = [t for _, t in self.marks[1:]] + [end]
        for (name, t0), t1 in zip(self.marks, stops, strict=True):
            out[name] = out.get(name, 0.0) + t1 - t0
        return out


def moved(ra, dec, rng, lo=0.05, hi=0.28):
    """Positions moved by lo..hi arcsec in random directions."""
    d = rng.uniform(lo, hi, ra.size) / 3600.0
    a = rng.uniform(0, 2 * np.pi, ra.size)
    dec2 = np.clip(dec + d * np.cos(a), -90, 90)
    ra2 = (ra + d * np.sin(a) / np.maximum(np.cos(np.radians(dec)), 1e-6)) % 360.0
    return ra2, dec2


def write_csv(path: Path, release: int, objid: np.ndarray, ra, dec) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source_id", "ra", "dec"])
        for o, r, d in zip(objid.tolist(), ra.tolist(), dec.tolist(), strict=True):
            w.writerow([f"{release}/{o // BRICK_SIZE}/{o % BRICK_SIZE}", f"{r:.9f}", f"{d:.9f}"])
    return path


def make_releases(folder: Path, n: int, seed: int):
    """Both catalogs and the truth: later objid -> (earlier objid or -1, 'key'/'position'/'new')."""
    rng = np.random.default_rng(seed)
    ra, dec = clustered(n, rng, n_clusters=max(1, n // 50))
    objid = np.arange(n)
    fate = rng.permutation(n)
    kept = fate[: int(KEPT * n)]
    renum = fate[int(KEPT * n) : int((KEPT + RENUMBERED) * n)]
    n_new = int(NEW * n)
    new_ra, new_dec = clustered(n_new, rng, n_clusters=max(1, n_new // 50))
    ra_k, dec_k = moved(ra[kept], dec[kept], rng)
    ra_r, dec_r = moved(ra[renum], dec[renum], rng)
    later_ids = np.concatenate([kept, n + np.arange(renum.size), 2 * n + np.arange(n_new)])
    later_ra = np.concatenate([ra_k, ra_r, new_ra])
    later_dec = np.concatenate([dec_k, dec_r, new_dec])
    truth = {int(k): (int(k), "key") for k in kept}
    truth |= {int(n + i): (int(o), "position") for i, o in enumerate(renum)}
    truth |= {int(2 * n + i): (-1, "new") for i in range(n_new)}
    order = rng.permutation(later_ids.size)  # rows in no particular order
    old = write_csv(folder / "earlier.csv", 9010, objid, ra, dec)
    new = write_csv(
        folder / "later.csv", 10000, later_ids[order], later_ra[order], later_dec[order]
    )
    return old, new, truth


def agreement(conn, new: str, truth: dict) -> tuple[int, int]:
    """(rows as the truth says, rows) of the later release's lineage."""

    def objid(source_id):
        if source_id is None:
            return -1
        _, brick, obj = source_id.split("/")
        return int(brick) * BRICK_SIZE + int(obj)

    same = total = 0
    with conn.cursor(name="lineage_rows") as cur:
        cur.execute(
            "SELECT g.source_id, p.source_id, l.matched_by FROM galdb.galaxy_lineage l "
            "JOIN galdb.catalog g USING (galaxy_id) "
            "LEFT JOIN galdb.galaxies p ON p.galaxy_id = l.previous_id WHERE g.release = %s",
            (new,),
        )
        for sid, previous, how in cur:
            total += 1
            same += truth[objid(sid)] == (objid(previous), how)
    conn.rollback()
    return same, total


def snapshot(conn, new: str) -> list[tuple]:
    rows = conn.execute(
        "SELECT l.* FROM galdb.galaxy_lineage l JOIN galdb.galaxies g USING (galaxy_id) "
        "JOIN galdb.releases r USING (release_id) WHERE r.name = %s ORDER BY galaxy_id",
        (new,),
    ).fetchall()
    conn.rollback()
    return rows


def per_galaxy(conn, new: str, old: str, sample: int, seed: int) -> float:
    """Seconds per later galaxy of galdb.cone_search (1") + the old release's filter."""
    rows = conn.execute(
        "SELECT ra, dec FROM galdb.catalog WHERE release = %s ORDER BY galaxy_id", (new,)
    ).fetchall()
    pick = np.random.default_rng(seed).choice(len(rows), size=min(sample, len(rows)))
    old_id = conn.execute("SELECT release_id FROM galdb.releases WHERE name = %s", (old,))
    old_id = old_id.fetchone()[0]
    sql = (
        "SELECT c.galaxy_id, c.separation_deg FROM galdb.cone_search(%s, %s, %s) c "
        "JOIN galdb.galaxies g USING (galaxy_id) WHERE g.release_id = %s"
    )
    for i in pick[:20]:  # warm-up
        conn.execute(sql, (*rows[i], 1 / 3600, old_id), prepare=True).fetchall()
    t0 = time.perf_counter()
    for i in pick:
        conn.execute(sql, (*rows[i], 1 / 3600, old_id), prepare=True).fetchall()
    conn.rollback()
    return (time.perf_counter() - t0) / pick.size


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--page-size", type=int, default=50_000, help="galaxy ids per page")
    p.add_argument("--sample", type=int, default=5000, help="galaxies of the per-galaxy run")
    args = p.parse_args()
    with embedded_server(args.home, args.keep) as settings, connect(settings) as conn:
        log(f"writing both catalogs ({args.n:,} earlier objects)")
        old_csv, new_csv, truth = make_releases(settings.home, args.n, args.seed)
        for name, path in (("bench-dr9", old_csv), ("bench-dr10", new_csv)):
            s = ingest(conn, path, name, survey="bench-ls")
            log(f"ingested {s.inserted:,} into {name} in {s.seconds:.1f} s")
        conn.execute("ANALYZE galdb.galaxies")
        conn.commit()

        clock = PhaseClock()
        t0 = time.perf_counter()
        summary = match_releases(
            conn, "bench-dr10", "bench-dr9", page_size=args.page_size, progress=clock
        )
        seconds = time.perf_counter() - t0
        phases = clock.seconds(t0 + seconds)
        n_new = summary.matched + summary.new
        log(f"matched in {seconds:.1f} s: {summary.as_dict()}")
        same, total = agreement(conn, "bench-dr10", truth)
        first = snapshot(conn, "bench-dr10")

        t1 = time.perf_counter()
        again = match_releases(conn, "bench-dr10", "bench-dr9")
        reused_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        match_releases(
            conn, "bench-dr10", "bench-dr9", page_size=max(1, args.page_size // 4), redo=True
        )
        redo_s = time.perf_counter() - t2
        equal = snapshot(conn, "bench-dr10") == first
        log(f"rerun reused={again.reused} in {reused_s:.2f} s; redo in {redo_s:.1f} s")

        with connect(settings, autocommit=True) as auto:
            per = per_galaxy(auto, "bench-dr10", "bench-dr9", args.sample, args.seed)

    rows = [(name, f"{s:.1f}", f"{n_new / s:,.0f}") for name, s in phases.items()]
    rows.append(("total", f"{seconds:.1f}", f"{n_new / seconds:,.0f}"))
    print_table(
        f"Lineage of {n_new:,} later galaxies onto {args.n:,} -- {command_line()}",
        ("phase", "seconds", "later galaxies/s"),
        rows,
    )
    print(
        f"\nby key {summary.by_key:,}, by position {summary.by_position:,}, new "
        f"{summary.new:,}, not found again {summary.not_found:,}"
    )
    print(f"rows as generated (pair and kind): {same:,}/{total:,} ({same / total:.4%})")
    print(f"rerun with nothing changed: {reused_s:.2f} s (reused: {again.reused})")
    smaller = max(1, args.page_size // 4)
    print(f"redo with page size {smaller:,}: {redo_s:.1f} s, rows equal: {equal}")
    print(
        f"per-galaxy cone_search: {per * 1e3:.3f} ms/galaxy -> {per * n_new:.0f} s for the "
        f"release, {per * n_new / seconds:.1f}x the set-based match "
        "(candidates only: no one-to-one assignment, no writes)"
    )
    print(f"machine at the end: {machine()}")
    figures = Figures("bench_lineage.py")
    figures.add(
        f"release match, {n_new:,} later galaxies onto {args.n:,}",
        n_new / seconds,
        "galaxies/s",
        reference=1 / per,
        reference_name="per-galaxy cone_search loop on a sample (candidates only)",
        note=f"{seconds:.1f} s; rows as generated {same / total:.4%}; redo equal {equal}",
    )
    figures.add("rerun with nothing changed", reused_s, "s", better="lower")
    figures.write(args.json)
    if not equal:
        raise SystemExit("the redo with another page size gave other rows")


if __name__ == "__main__":
    main()
