"""The restoration network: the LVM backbone as encoder, identity at start, learns to restore."""

import numpy as np
import pytest
import torch

from galdb.errors import GaldbError
from galdb.lvm.specs import load_model
from galdb.restore.metrics import psnr
from galdb.restore.network import from_backbone, from_bytes, restore, to_bytes
from galdb.restore.pairs import load_pairs
from galdb.restore.train import TrainConfig, split, train
from galdb.sim import simulate_galaxy


@pytest.mark.parametrize("size", [32, 45])
def test_untrained_network_returns_a_noiseless_input_unchanged(pairs, size):
    """By construction (zero last layer) the output is the input: what is left to fail is
    the stretch and its inverse, the band order, the padding to the encoder's stride and the
    crop back; a sign or order slip anywhere breaks the equality."""
    net = from_backbone(load_model(pairs.spec))
    images = np.stack([simulate_galaxy(5, i, size=size, noise=False).image for i in range(3)])
    images[0, 2] *= 40.0  # far above the stretch's full scale: nothing is clipped
    restored = restore(net, images, ["g", "r", "z"], batch_size=2)
    assert restored.shape == images.shape
    np.testing.assert_allclose(restored, images, rtol=1e-4, atol=1e-6)
    # bands given in another order come back in that order
    flipped = restore(net, images[:, ::-1].copy(), ["z", "r", "g"])
    np.testing.assert_allclose(flipped[:, ::-1], images, rtol=1e-4, atol=1e-6)
    with pytest.raises(GaldbError, match="bands u are not channels"):
        restore(net, images[:, :1], ["u"])


def test_encoder_carries_the_backbone_weights(pairs):
    loaded = load_model(pairs.spec)
    net = from_backbone(loaded)
    source = loaded.model.state_dict()
    for key, value in net.encoder.state_dict().items():
        assert torch.equal(value, source[key]), key


def test_brief_training_restores_better_than_the_degraded_image(pairs):
    data = load_pairs(pairs.dir)
    net = from_backbone(load_model(pairs.spec))
    config = TrainConfig(epochs=12, batch_size=8, lr=3e-3, val_fraction=0.25)
    metrics = train(net, data, config)
    assert metrics["n_val"] == 6 and metrics["n_train"] == pairs.n - 6
    assert metrics["val_psnr"] > metrics["val_psnr_noop"] + 1.0
    assert metrics["val_ssim"] > metrics["val_ssim_noop"]
    # the stored weights rebuild the same network
    again = from_bytes(net.config, to_bytes(net))
    _, val = split(len(data), config.val_fraction, config.seed)
    x = data.degraded[val]
    np.testing.assert_array_equal(restore(again, x, data.bands), restore(net, x, data.bands))
    restored = restore(net, x, data.bands)
    assert psnr(data.clean[val][0, 1], restored[0, 1]) > psnr(data.clean[val][0, 1], x[0, 1])
