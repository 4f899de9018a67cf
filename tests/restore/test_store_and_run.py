"""Restoration versions in PostgreSQL, restored FITS files, resuming, the atomic switch."""

import psycopg
import pytest
import torch
from astropy.io import fits

from galdb.db.connect import connect
from galdb.errors import GaldbError
from galdb.ingest import ingest
from galdb.lvm.specs import load_model
from galdb.restore.network import from_backbone, restore
from galdb.restore.pairs import load_pairs
from galdb.restore.run import run_restoration
from galdb.restore.versions import (
    get_version,
    list_versions,
    load_network,
    make_current,
    store_version,
)


@pytest.fixture(scope="module")
def release(settings, pairs):
    """The degraded half of the pairs, ingested as a release."""
    name = f"restore-{pairs.seed}-{id(pairs)}"
    with connect(settings) as conn:
        ingest(conn, pairs.dir, name, catalog=pairs.dir / "pairs.csv", survey="galdb-sim")
        conn.commit()
    return name


def _version(conn, pairs, scale: float):
    """A stored version; ``scale`` != 0 perturbs the output layer so versions differ."""
    net = from_backbone(load_model(pairs.spec))
    with torch.no_grad():
        net.out.bias.fill_(scale)
    return store_version(
        conn, net, model_spec=pairs.spec, backbone_sha256="x", hyperparameters={"epochs": 0},
        pairs=str(pairs.dir), metrics={"val_psnr": 1.0, "val_psnr_noop": 1.0, "val_ssim": 0.5},
    )  # fmt: skip


def _current(conn, release):
    return conn.execute(
        "SELECT c.version_id, count(*) FROM galdb.restorations_current c JOIN galdb.catalog g "
        "USING (galaxy_id) WHERE g.release = %s GROUP BY 1",
        (release,),
    ).fetchall()


def test_store_load_run_resume(conn, release, pairs, tmp_path):
    version = _version(conn, pairs, 0.0)
    conn.commit()
    assert get_version(conn, version.version_id).n_restored == 0
    net = load_network(conn, version.version_id)
    summary = run_restoration(conn, release, tmp_path, version_id=version.version_id)
    assert (summary.restored, summary.already, summary.current) == (pairs.n, 0, True)
    rows = conn.execute(
        "SELECT r.path, g.pixel_uri FROM galdb.restorations r JOIN galdb.galaxies g "
        "USING (galaxy_id) WHERE r.version_id = %s ORDER BY galaxy_id",
        (version.version_id,),
    ).fetchall()
    assert len(rows) == pairs.n
    data = load_pairs(pairs.dir)
    for path, uri in rows[:3]:
        restored, header = fits.getdata(path, header=True)
        source, source_header = fits.getdata(uri, header=True)
        assert header["RESTVER"] == version.version_id
        assert header["CRVAL1"] == source_header["CRVAL1"]  # the WCS travels
        assert restored.shape == source.shape
        # the file holds what the version's network makes of the cutout
        expected = restore(net, source[None].astype("float32"), data.bands)[0]
        assert restored == pytest.approx(expected, rel=1e-5, abs=1e-7)
    # interrupted run: the rows of some galaxies are gone; the rerun restores only those
    conn.execute(
        "DELETE FROM galdb.restorations WHERE version_id = %s AND galaxy_id IN "
        "(SELECT galaxy_id FROM galdb.restorations WHERE version_id = %s "
        "ORDER BY galaxy_id DESC LIMIT 5)",
        (version.version_id, version.version_id),
    )
    conn.commit()
    again = run_restoration(conn, release, tmp_path, version_id=version.version_id)
    assert (again.restored, again.already) == (5, pairs.n - 5)
    assert run_restoration(conn, release, tmp_path).restored == 0  # default: the current one
    assert _current(conn, release) == [(version.version_id, pairs.n)]


def test_versions_switch_atomically(settings, conn, release, pairs, tmp_path):
    first, second = _version(conn, pairs, 0.0), _version(conn, pairs, 0.01)
    conn.commit()
    run_restoration(conn, release, tmp_path, version_id=first.version_id)
    run_restoration(conn, release, tmp_path, version_id=second.version_id, switch=False)
    make_current(conn, first.version_id)
    conn.commit()
    assert _current(conn, release) == [(first.version_id, pairs.n)]
    with connect(settings) as reader:
        make_current(conn, second.version_id)  # not committed yet
        assert _current(reader, release) == [(first.version_id, pairs.n)]
        reader.rollback()
        conn.commit()
        assert _current(reader, release) == [(second.version_id, pairs.n)]
    # never two current versions, whatever writes the table
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "UPDATE galdb.restoration_versions SET is_current = true WHERE version_id = %s",
            (first.version_id,),
        )
    conn.rollback()
    assert [v.version_id for v in list_versions(conn) if v.is_current] == [second.version_id]
    with pytest.raises(GaldbError, match="no restoration version 999999"):
        make_current(conn, 999999)
    with pytest.raises(GaldbError, match="no release"):
        run_restoration(conn, "no-such-release", tmp_path)
