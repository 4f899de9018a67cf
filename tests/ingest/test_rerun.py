"""When a rerun may skip an input as unchanged, and when it must read it again."""

import numpy as np
from PIL import Image

from galdb.cli import main
from galdb.datasets.bad_inputs import write_misplaced_images
from galdb.ingest import Columns, ingest


def _ids(conn, release):
    return [
        r[0]
        for r in conn.execute(
            "SELECT source_id FROM galdb.catalog WHERE release = %s ORDER BY 1", (release,)
        )
    ]


def test_wrong_image_directory_then_the_right_one(settings, conn, tmp_path, unique_release):
    catalog, images, wrong = write_misplaced_images(tmp_path)
    argv = ["--catalog", str(catalog), "--release", unique_release]
    assert main(["ingest", str(wrong), *argv]) == 5  # every row file_missing: nothing stored
    assert main(["ingest", str(images), *argv]) == 0
    assert _ids(conn, unique_release) == ["p", "q", "r"]
    again = ingest(conn, images, unique_release, catalog=catalog)
    assert again.skipped_unchanged and again.present == 3


def test_missing_image_is_retried_until_it_is_there(conn, tmp_path, unique_release):
    catalog, images, _ = write_misplaced_images(tmp_path)
    kept = (images / "q.png").read_bytes()
    (images / "q.png").unlink()
    first = ingest(conn, images, unique_release, catalog=catalog)
    assert (first.inserted, first.quarantined) == (2, 1)
    (images / "q.png").write_bytes(kept)
    second = ingest(conn, images, unique_release, catalog=catalog)
    assert not second.skipped_unchanged
    assert (second.inserted, second.present, second.quarantined) == (1, 2, 0)
    third = ingest(conn, images, unique_release, catalog=catalog)
    assert third.skipped_unchanged and third.present == 3


def test_changed_column_options_read_again(conn, tmp_path, unique_release):
    path = tmp_path / "cat.csv"
    path.write_text("source_id,alias,ra,dec\na,x1,1.0,2.0\nb,x2,3.0,4.0\n")
    assert ingest(conn, path, unique_release).inserted == 2
    by_alias = ingest(conn, path, unique_release, columns=Columns(id="alias"))
    assert not by_alias.skipped_unchanged and by_alias.inserted == 2
    assert _ids(conn, unique_release) == ["a", "b", "x1", "x2"]
    assert ingest(conn, path, unique_release, columns=Columns(id="alias")).skipped_unchanged


def test_cutout_directory_with_an_unreadable_file_is_retried(conn, tmp_path, unique_release):
    root = tmp_path / "cutouts"
    root.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "a.png")
    (root / "b.png").symlink_to("b.png")  # ELOOP until someone fixes it
    first = ingest(conn, root, unique_release)
    assert (first.inserted, first.quarantined) == (1, 1)
    (root / "b.png").unlink()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "b.png")
    second = ingest(conn, root, unique_release)
    assert (second.inserted, second.present) == (1, 1)
    assert ingest(conn, root, unique_release).skipped_unchanged
