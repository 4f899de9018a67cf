"""Lineage between two Legacy-Surveys-like releases of the same sky, ingested through the
real path (Tractor catalogs, cutouts from the local cutout server of test_legacysurvey).

The later release keeps most objects (same brickid/objid, positions jittered by < 0.3"),
renumbers a few (new objid, same position), loses two, and adds some: far away, within the
radius of an old object already taken (a key pair beats a nearer position pair; the nearer
of two position pairs wins), just beyond the radius, and an objid reused far away.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from test_legacysurvey import CutoutServer  # tests/ingest is on sys.path (rootdir import)

from galdb.cli import main
from galdb.errors import GaldbError
from galdb.ingest import LegacySurveyOptions, ingest
from galdb.ingest.lineage import earlier_release, match_releases
from galdb.jobs.status import release_status
from galdb.jobs.worker import run_worker
from galdb.sim.simulate import simulate_galaxy, write_cutout

SIZE = 16
BRICK = 330123
N_OLD = 22
OLD_RELEASE, NEW_RELEASE = 9010, 10000  # the Tractor `release` column of DR9 and DR10
quiet = {"log": lambda _: None}


def old_position(i: int) -> tuple[float, float]:
    """Objects 36" apart or more, but 21, a close pair with 20 (0.7" east of it)."""
    if i == 21:
        return offset(*old_position(20), 0.7, 90)
    return 150.0 + 0.01 * i, 2.0 + 0.003 * (i % 3)


def offset(ra: float, dec: float, arcsec: float, angle_deg: float) -> tuple[float, float]:
    """A position ``arcsec`` from (ra, dec) towards ``angle_deg`` (east of north)."""
    d = arcsec / 3600.0
    a = math.radians(angle_deg)
    return ra + d * math.sin(a) / math.cos(math.radians(dec)), dec + d * math.cos(a)


def later_sky() -> tuple[list[tuple[int, float, float]], dict[str, tuple[int | None, str]]]:
    """The later release's (objid, ra, dec) and, per objid, the expected (old objid or None,
    matched_by)."""
    rng = np.random.default_rng(5)
    rows, expected = [], {}

    def add(objid, position, old, how):
        rows.append((objid, *position))
        expected[objid] = (old, how)

    def jittered(i, arcsec=None):
        size = arcsec if arcsec is not None else rng.uniform(0.05, 0.28)
        return offset(*old_position(i), size, rng.uniform(0, 360))

    for i in [*range(11), 18, 19]:  # kept: same key, moved by < 0.3"
        add(i, jittered(i), i, "key")
    add(11, jittered(11, 0.8), 11, "key")  # moved more, still within the radius
    for i in (12, 13, 14):  # renumbered
        add(100 + i, jittered(i, 0.2), i, "position")
    add(117, jittered(17, 0.1), 17, "position")  # renumbered; its old objid 17 is reused
    add(17, (151.0, 2.5), None, "new")  # ... for a new object far away
    add(206, jittered(6, 0.05), None, "new")  # nearer to old 6 than new 6, which has its key
    add(212, jittered(12, 0.5), None, "new")  # old 12 is taken by the nearer 112
    add(315, jittered(15, 1.5), None, "new")  # old 15 is gone; this one is beyond 1"
    # renumbered pair near the old pair 20, 21: 421 is nearest to 20 (0.1"), so 420, nearer
    # to 20 (0.25") than to 21 (0.45"), takes 21; found in a second pass
    add(420, offset(*old_position(20), 0.25, 90), 21, "position")
    add(421, offset(*old_position(20), 0.1, 270), 20, "position")
    for k in range(3):  # new objects
        add(300 + k, (151.1 + 0.01 * k, 1.9), None, "new")
    return rows, expected  # old 15 and 16 are not found again


def write_tractor(path: Path, release: int, rows: list[tuple[int, float, float]]) -> Path:
    n = len(rows)
    table = Table(
        {
            "release": np.full(n, release, np.int16),
            "brickid": np.full(n, BRICK, np.int32),
            "objid": np.array([r[0] for r in rows], np.int32),
            "brick_primary": np.ones(n, bool),
            "type": np.full(n, "REX"),
            "ra": np.array([r[1] for r in rows]),
            "dec": np.array([r[2] for r in rows]),
        }
    )
    table.write(path, overwrite=True)
    return path


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """The two Tractor catalogs and a server answering a cutout for each of their rows."""
    folder = tmp_path_factory.mktemp("lineage")
    old_rows = [(i, *old_position(i)) for i in range(N_OLD)]
    new_rows, expected = later_sky()
    bodies = []
    for index in range(3):
        path = folder / f"sim{index}.fits"
        write_cutout(path, simulate_galaxy(3, index, size=SIZE))
        bodies.append(path.read_bytes())
    answers = {
        (f"{ra:.6f}", f"{dec:.6f}"): bodies[k % 3]
        for k, (_, ra, dec) in enumerate(old_rows + new_rows)
    }
    with CutoutServer(answers, {}) as server:
        yield {
            "old": write_tractor(folder / "tractor-dr9.fits", OLD_RELEASE, old_rows),
            "new": write_tractor(folder / "tractor-dr10.fits", NEW_RELEASE, new_rows),
            "expected": expected,
            "server": server,
            "cache": folder / "cutouts",
        }


def _options(releases) -> LegacySurveyOptions:
    return LegacySurveyOptions(
        cutouts=releases["cache"], size=SIZE, base_url=releases["server"].base_url, timeout=10
    )


@pytest.fixture(scope="module")
def ingested(settings, releases):
    """Both catalogs ingested (library path) into two releases of one new survey."""
    from galdb.db.connect import connect

    tag = uuid.uuid4().hex[:6]
    names = {"old": f"dr9-{tag}", "new": f"dr10-{tag}"}
    with connect(settings) as conn:
        for side in ("old", "new"):
            summary = ingest(
                conn,
                releases[side],
                names[side],
                legacysurvey=_options(releases),
                survey=f"LS-{tag}",
            )
            assert summary.quarantined == 0 and summary.inserted > 0
    return names


def lineage_rows(conn, release: str) -> dict[int, tuple]:
    """objid -> (previous objid or None, matched_by, separation, lineage root's source id)."""
    rows = conn.execute(
        "SELECT g.source_id, p.source_id, l.matched_by, l.separation_arcsec, root.source_id "
        "FROM galdb.galaxy_lineage l JOIN galdb.catalog g USING (galaxy_id) "
        "LEFT JOIN galdb.galaxies p ON p.galaxy_id = l.previous_id "
        "JOIN galdb.galaxies root ON root.galaxy_id = l.lineage_id WHERE g.release = %s",
        (release,),
    ).fetchall()
    conn.rollback()

    def objid(source_id):
        return None if source_id is None else int(source_id.split("/")[2])

    return {objid(r[0]): (objid(r[1]), r[2], r[3], r[4]) for r in rows}


def check_lineage(conn, names, expected) -> dict[int, tuple]:
    """Every pair, key vs position, new ones, one-to-one, lineage ids; returns the rows."""
    got = lineage_rows(conn, names["new"])
    assert {k: v[:2] for k, v in got.items()} == expected
    previous = [v[0] for v in got.values() if v[0] is not None]
    assert len(previous) == len(set(previous))  # one-to-one
    for objid, (old, _, separation, root) in got.items():
        if old is None:
            assert separation is None and root == f"{NEW_RELEASE}/{BRICK}/{objid}"
        else:
            assert 0 <= separation <= 1.0 and root == f"{OLD_RELEASE}/{BRICK}/{old}"
    assert got[11][2] == pytest.approx(0.8, abs=1e-3)
    # the earlier release's galaxies start their chains
    roots = lineage_rows(conn, names["old"])
    assert roots == {i: (None, "new", None, f"{OLD_RELEASE}/{BRICK}/{i}") for i in range(N_OLD)}
    return got


EXPECTED_COUNTS = {"by_key": 14, "by_position": 6, "new": 7, "not_found": 2}


def _counts(summary) -> dict:
    return {k: getattr(summary, k) for k in EXPECTED_COUNTS}


def test_later_release_matches_by_key_then_position_one_to_one(conn, ingested, releases):
    summary = match_releases(conn, ingested["new"], ingested["old"], redo=True)
    assert _counts(summary) == EXPECTED_COUNTS and not summary.reused
    check_lineage(conn, ingested, releases["expected"])
    # one object across both releases, earliest first
    galaxy = conn.execute(
        "SELECT galaxy_id FROM galdb.catalog WHERE release = %s AND source_id = %s",
        (ingested["new"], f"{NEW_RELEASE}/{BRICK}/117"),
    ).fetchone()[0]
    chain = conn.execute(
        "SELECT release, source_id, matched_by FROM galdb.lineage_of(%s)", (galaxy,)
    ).fetchall()
    assert chain == [
        (ingested["old"], f"{OLD_RELEASE}/{BRICK}/17", "new"),
        (ingested["new"], f"{NEW_RELEASE}/{BRICK}/117", "position"),
    ]
    assert earlier_release(conn, ingested["new"]) == ingested["old"]
    assert earlier_release(conn, ingested["old"]) is None
    conn.rollback()


def test_rerun_is_idempotent_and_independent_of_the_page_size(conn, ingested, releases):
    first = match_releases(conn, ingested["new"], ingested["old"], redo=True)
    before = lineage_rows(conn, ingested["new"])
    again = match_releases(conn, ingested["new"], ingested["old"])
    assert again.reused and _counts(again) == _counts(first)
    for page_size in (1, 3, 7):
        redone = match_releases(
            conn, ingested["new"], ingested["old"], page_size=page_size, redo=True
        )
        assert not redone.reused and _counts(redone) == EXPECTED_COUNTS
        assert lineage_rows(conn, ingested["new"]) == before
    left = conn.execute(
        "SELECT count(*) FROM galdb.lineage_candidates c JOIN galdb.releases r "
        "ON r.release_id = c.new_release_id WHERE r.name = %s",
        (ingested["new"],),
    ).fetchone()[0]
    assert left == 0  # a finished match leaves no work rows
    # a smaller radius is another match: the 0.8" pair is no longer one
    narrow = match_releases(conn, ingested["new"], ingested["old"], radius_arcsec=0.5)
    assert (narrow.by_key, narrow.new, narrow.not_found) == (13, 8, 3)
    assert lineage_rows(conn, ingested["new"])[11][:2] == (None, "new")
    match_releases(conn, ingested["new"], ingested["old"])  # back to 1"
    assert lineage_rows(conn, ingested["new"]) == before


class Killed(Exception):
    pass


class KillAt:
    """A progress sink that raises at its ``at``-th advance (after that page committed)."""

    def __init__(self, at: int):
        self.at, self.seen = at, 0

    def start(self, total, description=""):
        pass

    def advance(self, n=1):
        self.seen += 1
        if self.seen == self.at:
            raise Killed


def test_a_match_killed_anywhere_resumes_to_the_same_result(conn, ingested, releases):
    match_releases(conn, ingested["new"], ingested["old"], redo=True)
    expected = lineage_rows(conn, ingested["new"])
    count = KillAt(0)
    match_releases(conn, ingested["new"], ingested["old"], page_size=4, redo=True, progress=count)
    assert count.seen > 20  # pages of every phase, two assign passes
    phases = set()
    for at in range(1, count.seen + 1, 2):
        with pytest.raises(Killed):
            match_releases(
                conn, ingested["new"], ingested["old"], page_size=4, redo=True, progress=KillAt(at)
            )
        conn.rollback()
        phases.add(
            conn.execute(
                "SELECT phase FROM galdb.lineage_matches m JOIN galdb.releases r "
                "ON r.release_id = m.new_release_id WHERE r.name = %s",
                (ingested["new"],),
            ).fetchone()[0]
        )
        resumed = match_releases(conn, ingested["new"], ingested["old"], page_size=4)
        assert not resumed.reused and _counts(resumed) == EXPECTED_COUNTS, at
        assert lineage_rows(conn, ingested["new"]) == expected, at
    assert {"candidates", "assign", "write", "roots"} <= phases


def test_bad_matches_are_refused(conn, ingested, settings):
    new, old = ingested["new"], ingested["old"]
    with pytest.raises(GaldbError, match="to itself"):
        match_releases(conn, new, new)
    with pytest.raises(GaldbError, match="no release 'nope'"):
        match_releases(conn, new, "nope")
    with pytest.raises(GaldbError, match="arcsec"):
        match_releases(conn, new, old, radius_arcsec=0)
    match_releases(conn, new, old)
    with pytest.raises(GaldbError, match="cycle"):
        match_releases(conn, old, new)
    other = f"other-{uuid.uuid4().hex[:6]}"
    conn.execute("INSERT INTO galdb.surveys (name) VALUES (%s)", (other,))
    conn.execute(
        "INSERT INTO galdb.releases (survey_id, name) SELECT survey_id, %s FROM galdb.surveys "
        "WHERE name = %s",
        (other, other),
    )
    conn.commit()
    with pytest.raises(GaldbError, match="same survey"):
        match_releases(conn, new, other)


def test_cli_match_prints_the_counts(ingested, capsys):
    args = ["release", "match", ingested["new"], "--to", ingested["old"], "--radius", "1arcsec"]
    assert main([*args, "--redo", "--page-size", "5"]) == 0
    out = capsys.readouterr().out
    assert (
        f"{ingested['new']!r} matched to {ingested['old']!r} within 1 arcsec: 14 by key, "
        f"6 by position, 7 new, 2 of {ingested['old']!r} not found again"
    ) in out
    assert main(args) == 0
    assert "unchanged since their last match" in capsys.readouterr().out
    assert main(["release", "match", ingested["new"], "--to", ingested["new"]]) == 1
    assert "to itself" in capsys.readouterr().err
    assert main([*args[:-1], "2 parsecs"]) == 1
    assert "cannot read the angle" in capsys.readouterr().err


def test_queued_ingests_run_the_lineage_job(settings, conn, releases, capsys):
    """`galdb ingest --queue --format legacysurvey` of two releases: the worker ingests both,
    then matches the later to the earlier; a third, ingested directly with --lineage-from,
    is matched to the one named."""
    tag = uuid.uuid4().hex[:6]
    old, new, third = f"q9-{tag}", f"q10-{tag}", f"q11-{tag}"
    common = ["--format", "legacysurvey", "--survey", f"LSQ-{tag}", "--size", str(SIZE)]
    common += ["--cutouts", str(releases["cache"]), "--cutout-url", releases["server"].base_url]
    for release, path in ((old, releases["old"]), (new, releases["new"])):
        assert main(["ingest", str(path), "-r", release, *common, "--queue"]) == 0
        assert "queued as job" in capsys.readouterr().out
        run_worker(settings, once=True, **quiet)  # each ingest in its turn: old, then new
    stages = {s.stage: s for s in release_status(conn, new)}
    assert stages["ingest"].status == "done" and stages["ingest"].result["inserted"] == 27
    assert stages["ingest"].result["lineage"]["to"] == old
    assert stages["lineage"].status == "done"
    assert _counts_of(stages["lineage"].result) == EXPECTED_COUNTS
    assert "lineage" not in {s.stage for s in release_status(conn, old)}
    check_lineage(conn, {"old": old, "new": new}, releases["expected"])
    payload = conn.execute(
        "SELECT payload FROM galdb.jobs WHERE kind = 'ingest' AND payload->>'release' = %s",
        (new,),
    ).fetchone()[0]
    assert payload["legacysurvey"]["size"] == SIZE
    assert payload["legacysurvey"]["base_url"] == releases["server"].base_url
    conn.rollback()
    assert main(["release", "status", new]) == 0
    assert "│ lineage " in capsys.readouterr().out

    # direct ingest, with the lineage job's release named (the default would be `new`)
    assert earlier_release(conn, new) == old
    args = ["ingest", str(releases["new"]), "-r", third, *common, "--lineage-from", old]
    assert main(args) == 0
    assert f"lineage: match to {old!r} queued" in capsys.readouterr().out
    run_worker(settings, once=True, **quiet)
    lineage = {s.stage: s for s in release_status(conn, third)}["lineage"]
    assert lineage.status == "done" and lineage.result["previous"] == old
    assert _counts_of(lineage.result) == EXPECTED_COUNTS
    conn.rollback()


def _counts_of(result: dict) -> dict:
    return {k: result[k] for k in EXPECTED_COUNTS}


def test_options_travel_in_a_job_payload(tmp_path):
    options = LegacySurveyOptions(cutouts=tmp_path, size=SIZE, retries=1, kind="jpeg")
    payload = json.loads(json.dumps(options.to_payload()))
    assert LegacySurveyOptions.from_payload(payload) == LegacySurveyOptions(
        cutouts=tmp_path.resolve(), size=SIZE, retries=1, kind="jpeg"
    )


def test_matching_an_earlier_release_below_carries_the_lineage_down(settings, conn, releases):
    """dr10 → dr9 first, then dr9 → dr8 (dr8: the dr9 catalog again): dr10's galaxies now
    belong to dr8's lineages."""
    tag = uuid.uuid4().hex[:6]
    dr8, dr9, dr10 = f"d8-{tag}", f"d9-{tag}", f"d10-{tag}"
    for name, side in ((dr8, "old"), (dr9, "old"), (dr10, "new")):
        ingest(conn, releases[side], name, legacysurvey=_options(releases), survey=f"LSD-{tag}")
    match_releases(conn, dr10, dr9)
    assert {v[3] for v in lineage_rows(conn, dr10).values() if v[0] is not None} == {
        f"{OLD_RELEASE}/{BRICK}/{i}" for i in range(N_OLD) if i not in (15, 16)
    }
    below = match_releases(conn, dr9, dr8)
    assert (below.by_key, below.new, below.not_found) == (N_OLD, 0, 0)
    roots = conn.execute(
        "SELECT DISTINCT r.name FROM galdb.galaxy_lineage l JOIN galdb.catalog g "
        "USING (galaxy_id) JOIN galdb.catalog root ON root.galaxy_id = l.lineage_id "
        "JOIN galdb.releases r ON r.name = root.release WHERE g.release = %s "
        "AND l.previous_id IS NOT NULL",
        (dr10,),
    ).fetchall()
    assert roots == [(dr8,)]
    galaxy = conn.execute(
        "SELECT galaxy_id FROM galdb.catalog WHERE release = %s AND source_id = %s",
        (dr10, f"{NEW_RELEASE}/{BRICK}/3"),
    ).fetchone()[0]
    chain = conn.execute("SELECT release FROM galdb.lineage_of(%s)", (galaxy,)).fetchall()
    assert chain == [(dr8,), (dr9,), (dr10,)]
    conn.rollback()
