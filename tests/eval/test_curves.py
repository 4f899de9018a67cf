"""Few-shot curves: CSV round trip, summaries, label ratios against a hand-made baseline."""

import numpy as np
import pytest
from PIL import Image

from galdb.eval.curves import (
    CurvePoint,
    label_ratios,
    markdown_table,
    plot,
    read_csv,
    summarize,
    write_csv,
)

BASE = "resnet18_scratch"


def _points(method: str, curve: dict[int, list[float]], metric: str = "auc") -> list[CurvePoint]:
    return [
        CurvePoint(method, n, repeat, metric, value)
        for n, values in curve.items()
        for repeat, value in enumerate(values)
    ]


def _study() -> list[CurvePoint]:
    """The head beats a baseline measured at 0.6@10, 0.8@100, 0.9@1000 by a known margin."""
    return _points("head", {10: [0.79, 0.81], 100: [0.84, 0.86], 1000: [0.95, 0.95]}) + _points(
        BASE, {10: [0.55, 0.65], 100: [0.8, 0.8], 1000: [0.9, 0.9]}
    )


def test_csv_round_trip(tmp_path):
    points = _study() + [CurvePoint("head+reviewer", 20, 0, "auc", 1 / 3)]
    write_csv(points, tmp_path / "curve.csv")
    assert (tmp_path / "curve.csv").read_text().splitlines()[
        0
    ] == "method,n_labels,repeat,metric,value"
    assert read_csv(tmp_path / "curve.csv") == points


def test_read_csv_rejects_another_header(tmp_path):
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected the header"):
        read_csv(tmp_path / "other.csv")


def test_summarize_gives_mean_std_and_repeats_sorted():
    rows = summarize(_study())
    assert [(s.method, s.n_labels) for s in rows] == [
        ("head", 10),
        ("head", 100),
        ("head", 1000),
        (BASE, 10),
        (BASE, 100),
        (BASE, 1000),
    ]
    first = rows[0]
    assert first.mean == pytest.approx(0.80) and first.std == pytest.approx(0.01)
    assert first.repeats == 2
    assert rows[3].mean == pytest.approx(0.6) and rows[3].std == pytest.approx(0.05)


def test_mixed_metrics_are_rejected():
    with pytest.raises(ValueError, match="mix metrics"):
        summarize(_points("head", {10: [0.8]}) + _points(BASE, {10: [0.3]}, metric="r2"))


def test_label_ratios_interpolate_the_baseline_in_log_labels():
    ratios = {r.n_labels: r for r in label_ratios(_study())}
    assert set(ratios) == {10, 100, 1000}
    assert {r.method for r in ratios.values()} == {"head"}
    # 0.8 at 10 labels: the baseline's measured point at 100.
    assert ratios[10].baseline_labels == pytest.approx(100)
    assert ratios[10].ratio == pytest.approx(10)
    # 0.85 at 100: halfway from 0.8@100 to 0.9@1000 in log n, i.e. 10**2.5.
    assert ratios[100].value == pytest.approx(0.85)
    assert ratios[100].baseline_labels == pytest.approx(10**2.5)
    assert ratios[100].ratio == pytest.approx(10**2.5 / 100)
    # 0.95 is beyond the baseline's best.
    assert ratios[1000].baseline_labels is None and ratios[1000].ratio is None


def test_label_ratio_takes_the_first_crossing_and_credits_an_early_baseline():
    baseline = _points(BASE, {10: [0.6], 100: [0.9], 1000: [0.7], 10000: [0.95]})
    crossing = label_ratios(_points("head", {10: [0.8]}) + baseline)[0]
    assert crossing.baseline_labels == pytest.approx(10 ** (1 + 2 / 3))
    early = label_ratios(_points("head", {20: [0.5]}) + baseline)[0]
    assert early.baseline_labels == 10 and early.ratio == pytest.approx(0.5)


def test_label_ratios_without_a_baseline_are_empty():
    assert label_ratios(_points("head", {10: [0.8]})) == []


def test_markdown_table_has_means_and_ratios():
    table = markdown_table(_study())
    lines = table.splitlines()
    assert lines[0] == "| labels | head | resnet18_scratch | head label ratio |"
    assert lines[2] == "| 10 | 0.800 ± 0.010 | 0.600 ± 0.050 | ×10 |"
    assert lines[3] == "| 100 | 0.850 ± 0.010 | 0.800 ± 0.000 | ×3.2 |"
    assert lines[4] == "| 1000 | 0.950 ± 0.000 | 0.900 ± 0.000 | > ×1.0 |"
    assert "AUC, mean ± std" in table


def test_markdown_table_marks_missing_cells_and_unreached_ratios():
    points = _points("propagation", {10: [0.95]}, "r2") + _points(
        BASE, {10: [0.2], 1000: [0.5]}, "r2"
    )
    lines = markdown_table(points).splitlines()
    assert lines[2] == "| 10 | 0.950 ± 0.000 | 0.200 ± 0.000 | > ×100 |"
    assert lines[3] == "| 1000 | – | 0.500 ± 0.000 | – |"
    assert lines[-1].startswith("R², mean ± std")


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "curve.png"
    plot(_study(), path, title="spiral vs smooth")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (960, 600)
        pixels = np.asarray(image.convert("L"))
    assert pixels.min() < 100 < pixels.max()  # something drawn on a light background


def test_plot_refuses_no_points(tmp_path):
    with pytest.raises(ValueError, match="no curve points"):
        plot([], tmp_path / "empty.png", title="nothing")
    assert not (tmp_path / "empty.png").exists()
    assert summarize([]) == []
