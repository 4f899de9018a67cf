"""The catalog reader process: the same rows, quarantine, resume and errors as in-process."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from galdb.datasets.bad_inputs import write_bad_catalog
from galdb.datasets.sky import write_catalog_csv
from galdb.errors import GaldbError
from galdb.ingest import ingest
from galdb.progress import NoProgress

HEADER = "source_id,ra,dec,note,mag\n"
ROWS = [
    "a,10.0,20.0,plain,1.5",
    "b,,,no coordinates,2",
    "c,11.0,95.0,dec out of range,3",
    "d,400,10,ra out of range,4",
    "a,10.5,20.5,duplicate of a in the same batch,5",
    ",13.0,22.0,missing id,6",
    "e,360,-90,ra 360 becomes 0,7",
    '"tab\tand back\\slash",12.0,21.0,"quote "" and back\\slash \u00e9",8',
    "f,nan,1,not finite,9",
    "x" * 300 + ",14.0,23.0,id too long,10",
    "g,1.0,2.0,one field too many,11,12",
    "h,1.0",
    "i,0,0,,",
    "a,1,1,duplicate of a in a later batch,13",
    "j,359.999,-89.5,last,14",
]


def _write(path, rows, latin1_row=True):
    data = (HEADER + "\n".join(rows) + "\n").encode()
    if latin1_row:  # bytes that are not UTF-8 in the middle of the file
        data += "k\xe9,1,2,latin-1 id,15\n".encode("latin-1")
    data += b"l,3,4,after the bad bytes,16\n"
    path.write_bytes(data)
    return path


def _stored(conn, release):
    return conn.execute(
        "SELECT source_id, ra, dec, props FROM galdb.catalog WHERE release = %s ORDER BY 1",
        (release,),
    ).fetchall()


def _quarantine(conn, run_id):
    return sorted(
        conn.execute(
            "SELECT source, item, code, reason FROM galdb.quarantine WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    )


class Counting(NoProgress):
    def __init__(self):
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n


def _both(conn, path, release, **kw):
    """Ingest ``path`` inline and with the reader process; return both summaries."""
    inline = ingest(conn, path, release + "-i", reader="inline", **kw)
    progress = Counting()
    process = ingest(conn, path, release + "-p", reader="process", progress=progress, **kw)
    assert progress.done == process.inserted + process.present + process.quarantined
    return inline, process


@pytest.mark.parametrize("numeric", [True, False], ids=["numeric-coords", "text-coords"])
def test_same_rows_and_quarantine_as_inline(conn, tmp_path, unique_release, numeric):
    rows = ROWS if numeric else [*ROWS, "m,abc,1,ra not a number,17"]
    path = _write(tmp_path / "cat.csv", rows)
    inline, process = _both(conn, path, unique_release, batch_size=4)
    assert _stored(conn, unique_release + "-p") == _stored(conn, unique_release + "-i")
    assert _quarantine(conn, process.run_id) == _quarantine(conn, inline.run_id)
    assert (process.inserted, process.quarantined) == (inline.inserted, inline.quarantined)
    stored = {r[0]: r for r in _stored(conn, unique_release + "-p")}
    assert stored["e"][1:3] == (0.0, -90.0)
    assert stored["tab\tand back\\slash"][3]["note"] == 'quote " and back\\slash \u00e9'
    codes = {code for *_, code, _ in _quarantine(conn, process.run_id)}
    assert {"duplicate_id", "missing_id", "id_too_long", "bad_row", "encoding_error"} <= codes
    assert "l" in stored and "j" in stored  # rows after bad bytes and bad rows are kept


def test_catalog_with_files_is_the_same(conn, tmp_path, unique_release):
    catalog, expected = write_bad_catalog(tmp_path)
    inline, process = _both(conn, tmp_path, unique_release, catalog=catalog, batch_size=3)
    assert _stored(conn, unique_release + "-p") == _stored(conn, unique_release + "-i")
    assert _quarantine(conn, process.run_id) == _quarantine(conn, inline.run_id)
    got = {int(item.split()[1]): code for _, item, code, _ in _quarantine(conn, process.run_id)}
    assert got == {row: code for row, code in expected.items() if code is not None}


def test_rerun_skips_stored_rows(conn, tmp_path, unique_release):
    path = write_catalog_csv(tmp_path / "cat.csv", 3000, seed=1)
    first = ingest(conn, path, unique_release, reader="process", batch_size=500)
    bigger = write_catalog_csv(tmp_path / "cat.csv", 3100, seed=1)
    second = ingest(conn, bigger, unique_release, reader="process", batch_size=500)
    assert (first.inserted, second.inserted, second.present) == (3000, 100, 3000)


def test_an_unknown_column_is_the_same_error(conn, tmp_path, unique_release):
    from galdb.ingest import Columns

    path = write_catalog_csv(tmp_path / "cat.csv", 10, seed=1)
    messages = []
    for reader in ("inline", "process"):
        with pytest.raises(GaldbError) as info:
            ingest(
                conn, path, f"{unique_release}-{reader}", columns=Columns(id="nope"), reader=reader
            )
        conn.rollback()
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "nope" in messages[0]
    status = conn.execute(
        "SELECT status FROM galdb.ingest_runs r JOIN galdb.releases USING (release_id) "
        "WHERE name = %s",
        (f"{unique_release}-process",),
    ).fetchone()[0]
    assert status == "failed"


def test_killed_ingest_resumes_and_the_reader_process_exits(conn, tmp_path, unique_release):
    path = write_catalog_csv(tmp_path / "cat.csv", 60_000, seed=5)
    clean = unique_release + "-clean"
    ingest(conn, path, clean, reader="inline")
    cmd = [sys.executable, "-m", "galdb", "ingest", str(path), "--release", unique_release]
    cmd += ["--batch-size", "500", "--reader", "process"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children, stored, deadline = [], 0, time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        children = children or psutil.Process(proc.pid).children()
        conn.rollback()
        stored = len(_stored(conn, unique_release))
        if stored >= 2000 and children:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    conn.rollback()
    assert children, "the ingest should have started a reader process"
    assert 0 < stored < 60_000, "the ingest should have been killed midway"
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, "the reader process outlived the killed ingest"

    resumed = ingest(conn, path, unique_release, reader="process")
    assert resumed.present >= 2000 and resumed.inserted + resumed.present == 60_000
    assert _stored(conn, unique_release) == _stored(conn, clean)


class CtrlCAfterFirstBatch(NoProgress):
    def advance(self, n: int = 1) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_stops_the_reader_process_at_once(conn, tmp_path, unique_release):
    path = write_catalog_csv(tmp_path / "cat.csv", 20_000, seed=2)
    before = {p.pid for p in psutil.Process().children()}
    try:
        ingest(
            conn,
            path,
            unique_release,
            reader="process",
            batch_size=500,
            progress=CtrlCAfterFirstBatch(),
        )
    except KeyboardInterrupt:
        # checked while the traceback (which holds the ingest's frames) is still alive
        left = [p.pid for p in psutil.Process().children() if p.pid not in before]
    else:
        pytest.fail("the interrupt did not reach the caller")
    assert not left, "the reader process outlived the interrupted ingest"
    (status,) = conn.execute(
        "SELECT status FROM galdb.ingest_runs r JOIN galdb.releases USING (release_id) "
        "WHERE name = %s",
        (unique_release,),
    ).fetchone()
    assert status == "interrupted"
    assert len(_stored(conn, unique_release)) == 500  # the first batch was committed
