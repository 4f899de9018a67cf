"""The detector on the LVM backbone: finds bright isolated galaxies where they are."""

import numpy as np
import pytest
import torch

from galdb.detect.evaluate import MATCH_RADIUS_PX, best_threshold, greedy_match, score_at
from galdb.detect.fields import field_paths, read_truth
from galdb.detect.model import build_detector, features_backbone
from galdb.detect.train import detect, from_bytes, to_bytes
from galdb.errors import GaldbError
from galdb.lvm.specs import load_model
from galdb.sim.morphology import mag_to_nanomaggies
from tests.detect.conftest import SIZE


def _isolated_bright_galaxies(directory, field: str, truth) -> np.ndarray:
    """Galaxies (not mergers) brighter than r = 20.5, smaller than 1.5" (half-light), with no
    other object within 12 px, away from the edge."""
    import csv

    with (directory / "truth.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["field"] == field]
    objects = truth[field]
    keep = []
    for i, r in enumerate(rows):
        x, y = objects[i, 0], objects[i, 1]
        others = np.delete(np.hypot(objects[:, 0] - x, objects[:, 1] - y), i)
        if (
            r["kind"] == "galaxy"
            and r["morph_class"] != "merger"  # its position is one member's, not the light's
            and float(r["flux"]) > mag_to_nanomaggies(20.5)
            and float(r["size"]) < 1.5
            and (others.min() if len(others) else 99) > 12
            and 8 <= x < SIZE - 8
            and 8 <= y < SIZE - 8
        ):
            keep.append((x, y))
    return np.asarray(keep).reshape(-1, 2)


def test_finds_isolated_bright_galaxies_at_their_true_positions(trained, test_dir):
    truth = read_truth(test_dir)
    paths = field_paths(test_dir)
    found = dict((f.name, rows) for f, rows in detect(
        trained.detector, trained.preprocessing, paths, threshold=trained.threshold))  # fmt: skip
    n = 0
    for path in paths:
        targets = _isolated_bright_galaxies(test_dir, path.stem, truth)
        det = found[path.stem]
        for x, y in targets:
            d = np.hypot(det[:, 0] - x, det[:, 1] - y)
            where = f"{path.stem}: galaxy at ({x:.1f}, {y:.1f})"
            assert len(d) and d.min() < MATCH_RADIUS_PX, f"{where} missed"
            n += 1
    assert n >= 5
    # and not by covering the field with detections: most detections are real objects
    scores = score_at(list(found.values()), [truth[p.stem] for p in paths], trained.threshold)
    assert scores.precision > 0.8 and scores.recall > 0.8


def test_backbone_carries_the_lvm_weights(loaded):
    net, indices = features_backbone(loaded)
    state = loaded.model.state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key.removeprefix("model.")]), key
    assert len(indices) == 2
    x = torch.zeros(1, 3, 64, 64)
    heat, offset, size = build_detector(loaded)(x)
    assert heat.shape == (1, 2, 16, 16) and offset.shape == (1, 2, 16, 16)


@pytest.mark.parametrize("spec", ["timm:test_convnext", "timm:test_efficientnet"])
def test_other_lvm_architectures(spec):
    """ConvNeXt names its stages stages.0 … (flattened to stages_0 by timm's default feature
    wrapper): the LVM's weights still load."""
    loaded = load_model(spec)
    net, _ = features_backbone(loaded)
    state = loaded.model.state_dict()
    assert all(torch.equal(v, state[k.removeprefix("model.")]) for k, v in net.state_dict().items())
    heat, _, _ = build_detector(loaded)(torch.zeros(1, 3, 64, 64))
    assert heat.shape == (1, 2, 16, 16)


def test_an_lvm_without_stride_4_maps_is_refused():
    with pytest.raises(GaldbError, match="stride"):
        features_backbone(load_model("timm:test_vit"))


def test_stored_detector_predicts_the_same(trained, loaded, test_dir):
    data = to_bytes(trained, loaded.arch, loaded.in_chans)
    detector, prep, threshold = from_bytes(data, load_model("timm:test_resnet"))
    assert threshold == pytest.approx(trained.threshold)
    path = field_paths(test_dir)[:1]
    (_, a), (_, b) = (
        next(detect(d, prep, path, threshold=threshold)) for d in (trained.detector, detector)
    )
    assert np.allclose(a, b)


def test_matching_counts():
    ref = np.array([[10.0, 10.0], [20.0, 20.0], [40.0, 40.0]])
    det = np.array([[10.5, 10.0, 2, 0.9, 0], [11.0, 10.0, 2, 0.8, 0], [39.0, 41.0, 2, 0.3, 1],
                    [80.0, 80.0, 2, 0.7, 0]])  # fmt: skip
    order, is_match, matched = greedy_match(det[:, :2], det[:, 3], ref, 3.0)
    assert order.tolist() == [0, 1, 3, 2]
    assert is_match.tolist() == [True, False, False, True]  # the duplicate is a false positive
    assert matched.tolist() == [0, -1, -1, 2]
    s = score_at([det], [ref], 0.5)
    assert (s.tp, s.fp, s.fn) == (1, 2, 2)
    s = score_at([det], [ref], 0.0)
    assert (s.tp, s.fp, s.fn) == (2, 2, 1)
    assert best_threshold([det], [ref]) == pytest.approx(0.3)  # F1 4/7 beats 1/2 at 0.9
