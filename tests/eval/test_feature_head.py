"""The feature-map head reads the frozen backbone's maps and learns a target from them."""

import numpy as np
import torch

from galdb.eval.feature_head import LEVELS, FeatureMaps, fit_feature_head
from galdb.lvm.specs import load_model
from galdb.sim import simulate_galaxy


def test_maps_are_frozen_backbone_features_and_the_head_learns():
    loaded = load_model("timm:test_resnet", input_size=32)
    maps = FeatureMaps(loaded)
    images = np.stack([simulate_galaxy(9, i, size=32).image for i in range(48)])
    features = maps(images, ["g", "r", "z"], batch_size=20)
    assert [f.shape[-1] for f in features] == [32 // s for s in LEVELS]
    assert all(not f.requires_grad for f in features)
    # same weights as the backbone: the first convolution is the backbone's
    first = next(iter(maps.encoder.state_dict().items()))
    assert torch.equal(first[1], loaded.model.state_dict()[first[0]])
    target = np.log(images[:, 1].sum(axis=(1, 2)))[:, None]  # log r-band flux
    head = fit_feature_head(features, target, epochs=40, lr=3e-3, batch_size=16)
    predicted = head.predict(features)[:, 0]
    r2 = 1 - np.sum((target[:, 0] - predicted) ** 2) / np.sum((target - target.mean()) ** 2)
    assert r2 > 0.5
