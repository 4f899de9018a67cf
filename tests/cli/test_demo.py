"""The README's main job, end to end: simulate -> ingest -> cone search -> SQL -> embed."""

import re

from galdb.cli import main


def test_demo_runs_end_to_end(settings, capsys):
    args = ["demo", "--n", "20", "--seed", "3"]  # embeds with galdb:default
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "20 inserted" in out
    assert "5. encoder galdb:default" in " ".join(out.split())
    assert re.search(
        r"look-alikes of demo-sim::sim_3_0000002 "
        r"\((elliptical|lenticular|spiral|edge_on|merger)\)",
        out,
    )
    assert (settings.home / "demo" / "sim-n20-seed3" / "similar.png").exists()
    for cls in ("edge_on", "elliptical", "lenticular", "merger", "spiral"):
        assert cls in out
    flat = " ".join(out.split())
    assert re.search(r"8\. head for task 'morphology' trained on \d+ labels", flat)
    assert re.search(r"9\. propagated the \d+ labels over the k=10 graph", flat)
    assert "agrees_with_truth" in flat
    review = re.search(
        r"10\. review a reviewer worked down the margin queue: \d+ decisions "
        r"\((\d+) corrections, the task's threshold is (\d+)\).*?"
        r"published version (\d+) \(was (\d+)\)",
        flat,
    )
    if "10. review skipped" not in flat:
        assert review, flat[-2000:]
        assert review.group(1) == review.group(2)  # the round crossed the threshold
        assert int(review.group(3)) > int(review.group(4))  # and a new version is current
    # Running it again finds the release already there: nothing is inserted twice.
    assert main(args) == 0
    assert "0 inserted, 20 already present" in capsys.readouterr().out
