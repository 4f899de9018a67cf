"""Legacy Surveys releases: Tractor/sweep selection and the cutout fetcher against a local server.

The server answers the viewer's ``/viewer/fits-cutout`` URLs with FITS cubes written by the
simulator, and misbehaves on purpose for some positions: slow (past the client's timeout)
once, 503 twice, cut short once (fewer bytes than its Content-Length), always truncated (half a
FITS file with an honest length), and 404.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from astropy.table import Table

from galdb.errors import GaldbError
from galdb.ingest import LegacySurveyOptions, Selection, ingest
from galdb.ingest.cutout_service import CutoutRequest, CutoutService
from galdb.ingest.legacysurvey import magnitude, selected_rows, source_ids
from galdb.ingest.records import Code
from galdb.jobs.status import release_status
from galdb.jobs.worker import run_worker
from galdb.sim.simulate import simulate_galaxy, write_cutout

SIZE = 32
TIMEOUT = 1.0  # generous: only the "slow" answer (3x this) may time out
N_SIM = 9
# Rows 0..8 are simulated galaxies; the server misbehaves for some of them.
BEHAVIOUR = {2: "slow", 3: "fail503", 4: "truncated", 5: "not_found", 6: "short"}


def _key(ra: float, dec: float) -> tuple[str, str]:
    return f"{ra:.6f}", f"{dec:.6f}"


class CutoutServer:
    """``http.server`` in a thread answering cutout URLs; counts every request per position."""

    def __init__(self, cutouts: dict[tuple[str, str], bytes], behaviour: dict, delay: float = 0):
        self.cutouts, self.behaviour, self.delay = cutouts, behaviour, delay
        self.hits: Counter = Counter()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_GET(self):
                try:
                    server.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of "slow"

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/viewer"

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        endpoints = ("/viewer/fits-cutout", "/viewer/jpeg-cutout")
        if url.path not in endpoints or {"layer", "pixscale", "bands", "size"} - set(q):
            h.send_error(400, "bad cutout request")
            return
        key = (q["ra"], q["dec"])
        with self.lock:
            self.hits[key] += 1
            n = self.hits[key]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            self._respond(h, key, n, self.behaviour.get(key))
        finally:
            with self.lock:
                self.in_flight -= 1

    def _respond(self, h, key, n, behaviour) -> None:
        body = self.cutouts.get(key)
        if body is None or behaviour == "not_found":
            h.send_error(404, "no such cutout")
            return
        if behaviour == "slow" and n == 1:
            time.sleep(TIMEOUT * 3)
        if behaviour == "fail503" and n <= 2:
            h.send_error(503, "busy")
            return
        if behaviour == "truncated":
            body = body[: len(body) // 2]
        h.send_response(200)
        h.send_header("Content-Type", "application/fits")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if behaviour == "short" and n == 1:
            h.wfile.write(body[: len(body) // 3])  # then close: fewer bytes than announced
            h.close_connection = True
            return
        h.wfile.write(body)

    def __enter__(self) -> CutoutServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def sky(tmp_path_factory) -> list[tuple[float, float, bytes]]:
    """(ra, dec, FITS bytes) of simulated galaxies, as the service would answer them."""
    folder = tmp_path_factory.mktemp("sim")
    out = []
    for index in range(N_SIM):
        galaxy = simulate_galaxy(11, index, size=SIZE)
        path = folder / f"{index}.fits"
        write_cutout(path, galaxy)
        out.append((round(galaxy.ra, 6), round(galaxy.dec, 6), path.read_bytes()))
    return out


def _server(sky, behaviour=BEHAVIOUR, delay=0.0) -> CutoutServer:
    cutouts = {_key(ra, dec): body for ra, dec, body in sky}
    by_key = {_key(sky[i][0], sky[i][1]): b for i, b in behaviour.items()}
    return CutoutServer(cutouts, by_key, delay)


def _flux(mag: float, transmission: float) -> float:
    return 10 ** ((22.5 - mag) / 2.5) * transmission


def write_sweep(path: Path, sky, rows: list[int], *, upper: bool = False) -> Path:
    """A Tractor-like table: the galaxies ``rows`` of ``sky``, then rows the selection drops."""
    records = []
    for objid, i in enumerate(rows):
        ra, dec, _ = sky[i]
        records.append((10000, 330123, objid, True, "REX", ra, dec, _flux(19.0, 0.9), 0.9))
    ra, dec, _ = sky[0]
    dropped = [
        (10000, 330123, 900, True, "PSF", ra + 0.01, dec, _flux(18.0, 0.9), 0.9),  # star
        (10000, 330123, 901, True, "DUP", ra + 0.02, dec, _flux(18.0, 0.9), 0.9),  # Gaia dup
        (10000, 330124, 902, False, "EXP", ra + 0.03, dec, _flux(18.0, 0.9), 0.9),  # not primary
        (10000, 330123, 903, True, "DEV", ra + 0.04, dec, _flux(21.0, 0.9), 0.9),  # faint
        (10000, 330123, 904, True, "SER", ra + 0.05, dec, -1.0, 0.9),  # no flux
    ]
    names = ["release", "brickid", "objid", "brick_primary", "type", "ra", "dec"]
    names += ["flux_r", "mw_transmission_r"]
    table = Table(rows=records + dropped, names=names)
    table["release"] = table["release"].astype(np.int16)
    table["objid"] = table["objid"].astype(np.int32)
    table["shape_r"] = np.linspace(0.5, 3.0, len(table)).astype(np.float32)
    table["dchisq"] = np.zeros((len(table), 5), dtype=np.float32)  # a vector column
    if upper:
        table.rename_columns(table.colnames, [n.upper() for n in table.colnames])
    table.write(path, overwrite=True)
    return path


def _options(cache: Path, server: CutoutServer, **kw) -> LegacySurveyOptions:
    return LegacySurveyOptions(
        cutouts=cache,
        selection=Selection(max_mag=20.0),
        size=SIZE,
        base_url=server.base_url,
        concurrency=4,
        timeout=TIMEOUT,
        retries=3,
        backoff=0.01,
        **kw,
    )


@pytest.mark.parametrize("upper", [False, True], ids=["tractor", "sweep"])
def test_selection_keeps_primary_extended_bright_rows(tmp_path, sky, upper):
    path = write_sweep(tmp_path / "sweep.fits", sky, [0, 1, 2], upper=upper)
    chunks = list(selected_rows(path, Selection(max_mag=20.0)))
    table = Table(np.concatenate([np.asarray(t.as_array()) for t, _ in chunks]))
    rows = np.concatenate([r for _, r in chunks])
    assert source_ids(table) == ["10000/330123/0", "10000/330123/1", "10000/330123/2"]
    assert rows.tolist() == [1, 2, 3]
    assert np.allclose(table["mag_r"], 19.0)
    # Each rule is configurable: no magnitude cut keeps the faint row (not the fluxless one),
    # keeping PSF and non-primary rows keeps those.
    loose = Selection(exclude_types=("DUP",), primary_only=False)
    kept = set(source_ids(next(selected_rows(path, loose))[0]))
    assert {"10000/330123/900", "10000/330124/902", "10000/330123/903"} <= kept
    assert "10000/330123/901" not in kept


def test_magnitude_corrects_for_extinction():
    mag = magnitude(np.array([_flux(19.0, 0.5), 0.0, 10.0]), np.array([0.5, 0.9, 0.0]))
    assert mag[0] == pytest.approx(19.0)
    assert math.isnan(mag[1]) and math.isnan(mag[2])


def test_a_table_without_the_key_columns_is_refused(tmp_path):
    path = tmp_path / "not_tractor.fits"
    Table({"ra": [1.0], "dec": [2.0], "type": ["REX"]}).write(path)
    with pytest.raises(GaldbError, match="no column release, brickid, objid"):
        list(selected_rows(path, Selection()))


def test_urls_name_the_documented_parameters():
    fits_url = CutoutRequest(190.1086, 1.2005, "ls-dr10", 0.262, "grz", 64).url()
    assert fits_url == (
        "https://www.legacysurvey.org/viewer/fits-cutout?ra=190.108600&dec=1.200500"
        "&layer=ls-dr10&pixscale=0.262&bands=grz&size=64"
    )
    jpeg = CutoutRequest(1.0, -2.0, kind="jpeg")
    assert jpeg.url("http://h/viewer/").startswith("http://h/viewer/jpeg-cutout?ra=1.000000")
    assert jpeg.cache_path(Path("c")).name == "cutout_1.000000_-2.000000.jpg"
    with pytest.raises(GaldbError, match="unknown cutout kind"):
        CutoutRequest(1.0, 2.0, kind="png")


def test_fetcher_retries_caches_and_quarantines(tmp_path, sky):
    cache = tmp_path / "cache"
    requests = [CutoutRequest(ra, dec, size=SIZE) for ra, dec, _ in sky]
    with (
        _server(sky) as server,
        CutoutService(
            cache, base_url=server.base_url, concurrency=4, timeout=TIMEOUT, retries=3, backoff=0.01
        ) as service,
    ):
        results = service.fetch_many(requests)
        by_index = dict(enumerate(results))
        assert by_index[2].ok and by_index[2].attempts == 2  # slow once, then fine
        assert by_index[3].ok and by_index[3].attempts == 3  # 503 twice, then fine
        assert by_index[6].ok and by_index[6].attempts == 2  # cut short once, then fine
        assert by_index[0].ok and by_index[0].attempts == 1
        truncated, missing = by_index[4], by_index[5]
        assert not truncated.ok and truncated.code == Code.FITS_CORRUPT
        assert "truncated" in truncated.reason.lower() and truncated.url in truncated.reason
        assert truncated.attempts == 1  # a complete but invalid answer is not retried
        assert not missing.ok and missing.code == Code.FILE_MISSING and "404" in missing.reason
        ok = [r for r in results if r.ok]
        assert len(ok) == N_SIM - 2
        for r in ok:  # the cached file is the service's answer, byte for byte
            ra, dec, body = next(
                s for s in sky if _key(s[0], s[1]) == _key(r.request.ra, r.request.dec)
            )
            assert r.path.read_bytes() == body
        # The cache holds only valid answers: nothing for failures, no temporary files.
        files = sorted(p.name for p in cache.rglob("*") if p.is_file())
        assert len(files) == N_SIM - 2 and all(not f.startswith(".") for f in files)
        assert service.counts.fetched == N_SIM - 2 and service.counts.failed == 2

        hits_before = server.hits.copy()
        again = service.fetch_many(requests)
        assert [r.from_cache for r in again if r.ok] == [True] * (N_SIM - 2)
        failed_keys = {_key(sky[i][0], sky[i][1]) for i in (4, 5)}
        assert server.hits - hits_before == Counter({k: 1 for k in failed_keys})


def test_concurrency_is_limited(tmp_path, sky):
    requests = [CutoutRequest(ra, dec, size=SIZE) for ra, dec, _ in sky]
    for limit in (1, 3):
        with (
            _server(sky, behaviour={}, delay=0.1) as server,
            CutoutService(
                tmp_path / f"c{limit}", base_url=server.base_url, concurrency=limit, timeout=5
            ) as service,
        ):
            assert all(r.ok for r in service.fetch_many(requests))
        assert server.max_in_flight == limit


def test_retries_exhausted_is_a_clear_failure(tmp_path, sky):
    ra, dec, _ = sky[3]  # 503 on its first two requests
    with (
        _server(sky) as server,
        CutoutService(
            tmp_path, base_url=server.base_url, retries=1, backoff=0.01, timeout=TIMEOUT
        ) as service,
    ):
        result = service.fetch(CutoutRequest(ra, dec, size=SIZE))
    assert not result.ok and result.code == Code.READ_FAILED and result.attempts == 2
    assert "after 2 tries" in result.reason and "503" in result.reason


def test_jpeg_cutouts_are_checked_as_images(tmp_path):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)).save(buffer, "JPEG")
    good = CutoutRequest(1.0, 2.0, size=SIZE, kind="jpeg")
    bad = CutoutRequest(3.0, 4.0, kind="jpeg")
    answers = {_key(1.0, 2.0): buffer.getvalue(), _key(3.0, 4.0): b"<html>busy</html>"}
    with (
        CutoutServer(answers, {}) as server,
        CutoutService(tmp_path, base_url=server.base_url, timeout=5) as service,
    ):
        ok, html = service.fetch_many([good, bad])
    assert ok.ok and ok.path.suffix == ".jpg" and ok.path.read_bytes() == buffer.getvalue()
    assert not html.ok and html.code == Code.NOT_AN_IMAGE, html
    assert not bad.cache_path(tmp_path).exists()


class Interrupted(Exception):
    pass


class StopAfterFirstBatch:
    """A progress sink that kills the ingest once its first batch is committed."""

    def start(self, total, description):
        pass

    def advance(self, n=1):
        raise Interrupted

    def __getattr__(self, name):
        return lambda *a, **k: None


def _counts(conn, release):
    return conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE pixel_uri IS NOT NULL) FROM galdb.catalog "
        "WHERE release = %s",
        (release,),
    ).fetchone()


def test_ingest_killed_midway_resumes_from_the_cache(tmp_path, sky, conn, unique_release):
    sweep = write_sweep(tmp_path / "sweep.fits", sky, list(range(N_SIM)))
    cache = tmp_path / "cutouts"
    with _server(sky) as server:
        options = _options(cache, server, fetch_group=3)
        with pytest.raises(Interrupted):
            ingest(
                conn,
                sweep,
                unique_release,
                legacysurvey=options,
                batch_size=3,
                progress=StopAfterFirstBatch(),
            )
        conn.rollback()
        first = server.hits.copy()
        cached = {p.name for p in cache.rglob("*.fits")}
        assert 0 < len(cached) < N_SIM - 2  # it stopped midway
        assert _counts(conn, unique_release) == (3, 3)

        summary = ingest(conn, sweep, unique_release, legacysurvey=options, batch_size=3)
        assert (summary.inserted, summary.present, summary.quarantined) == (N_SIM - 5, 3, 2)
        # The rerun asked only for what the first run had not cached.
        asked = {
            f"cutout_{float(ra):.6f}_{float(dec):+.6f}.fits" for ra, dec in server.hits - first
        }
        assert len(asked) == N_SIM - len(cached) and not asked & cached
        codes = dict(
            conn.execute(
                "SELECT code, count(*) FROM galdb.quarantine WHERE run_id = %s GROUP BY code",
                (summary.run_id,),
            ).fetchall()
        )
        assert codes == {"fits_corrupt": 1, "file_missing": 1}
        row = conn.execute(
            "SELECT source_id, pixel_uri, bands, shape, pixel_scale, props->>'type', "
            "(props->>'mag_r')::float, props ? 'dchisq' FROM galdb.catalog "
            "WHERE release = %s AND source_id = '10000/330123/0'",
            (unique_release,),
        ).fetchone()
        assert Path(row[1]).parent.parent == cache / "ls-dr10"
        assert row[2:6] == ("g,r,z", [3, SIZE, SIZE], pytest.approx(0.262, rel=1e-3), "REX")
        assert row[6] == pytest.approx(19.0) and row[7] is False
        assert _counts(conn, unique_release) == (N_SIM - 2, N_SIM - 2)

        # A rerun retries the two failures only (their codes are worth a retry)…
        before = server.hits.copy()
        rerun = ingest(conn, sweep, unique_release, legacysurvey=options)
        assert (rerun.inserted, rerun.present, rerun.quarantined) == (0, N_SIM - 2, 2)
        assert sum((server.hits - before).values()) == 2


def test_a_clean_release_fetches_nothing_the_second_time(tmp_path, sky, conn, unique_release):
    sweep = write_sweep(tmp_path / "sweep.fits", sky, [0, 1, 7, 8])
    with _server(sky) as server:
        options = _options(tmp_path / "cutouts", server)
        first = ingest(conn, sweep, unique_release, legacysurvey=options)
        assert (first.inserted, first.quarantined) == (4, 0)
        assert sum(server.hits.values()) == 4
        second = ingest(conn, sweep, unique_release, legacysurvey=options)
        assert second.skipped_unchanged and second.present == 4
        assert sum(server.hits.values()) == 4
        # Another release of the same sky reads the same cache: nothing is fetched.
        third = ingest(conn, sweep, unique_release + "-b", legacysurvey=options)
        assert third.inserted == 4 and sum(server.hits.values()) == 4


def test_format_needs_a_cache_directory(tmp_path, sky, conn, unique_release):
    sweep = write_sweep(tmp_path / "sweep.fits", sky, [0])
    with pytest.raises(GaldbError, match="--cutouts"):
        ingest(conn, sweep, unique_release, fmt="legacysurvey")


def test_cli_ingests_a_sweep_and_resumes(tmp_path, sky, settings, conn, unique_release, capsys):
    from galdb.cli import main

    sweep = write_sweep(tmp_path / "sweep.fits", sky, [0, 1, 5, 7])
    cache = tmp_path / "ls cache"
    with _server(sky) as server:
        argv = ["ingest", str(sweep), "--format", "legacysurvey", "-r", unique_release]
        argv += ["--cutouts", str(cache), "--size", str(SIZE), "--max-mag", "20"]
        argv += ["--cutout-url", server.base_url, "--concurrency", "2", "--timeout", "5"]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "3 inserted" in out and "1 quarantined" in out and "404" in out
        assert sum(server.hits.values()) == 4
        assert main(argv) == 0  # the 404 is asked again; the three cached cutouts are not
        assert "3 already present" in capsys.readouterr().out
        assert sum(server.hits.values()) == 5
        assert main(argv[:6]) != 0
        assert "needs --cutouts" in "".join(capsys.readouterr())
        # queued: the job carries the options; the worker fetches the 404 again, no other
        assert main([*argv, "--queue"]) == 0
        assert "queued as job" in capsys.readouterr().out
        run_worker(settings, once=True, log=lambda _: None)
        assert sum(server.hits.values()) == 6
    job = release_status(conn, unique_release)[0]
    assert job.status == "done" and (job.result["present"], job.result["quarantined"]) == (3, 1)
    ids = conn.execute(
        "SELECT array_agg(source_id ORDER BY source_id) FROM galdb.catalog WHERE release = %s",
        (unique_release,),
    ).fetchone()[0]
    assert ids == ["10000/330123/0", "10000/330123/1", "10000/330123/3"]
