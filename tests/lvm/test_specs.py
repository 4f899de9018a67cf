"""Model specs: random init is reproducible, checkpoints round trip, offline hub fails clearly."""

import pytest
import torch

from galdb.errors import GaldbError
from galdb.lvm.preprocess import Preprocessing
from galdb.lvm.specs import load_checkpoint, load_model, parse_spec, save_checkpoint

TINY = "timm:resnet10t"


@pytest.mark.parametrize("spec", ["resnet18", "torch:resnet18", "timm:", "hf-hub:"])
def test_bad_specs(spec):
    with pytest.raises(GaldbError, match="not understood"):
        parse_spec(spec)


def test_unknown_timm_architecture():
    with pytest.raises(GaldbError, match="no architecture"):
        load_model("timm:not_a_real_net")


def test_random_init_is_reproducible():
    a, b = load_model(TINY, input_size=32), load_model(TINY, input_size=32)
    assert a.weights_sha256 == b.weights_sha256
    assert a.embedding_dim == 512 and a.preprocessing.input_size == 32
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(a.model(x), b.model(x))


def test_checkpoint_round_trip(tmp_path):
    loaded = load_model(TINY)
    with torch.no_grad():  # make the weights differ from the seeded random init
        next(loaded.model.parameters()).add_(0.5)
    prep = Preprocessing(input_size=40, crop_fraction=0.8)
    path = save_checkpoint(tmp_path / "ssl.pt", "resnet10t", loaded.model, prep, {"epochs": 1})
    back = load_checkpoint(path)
    assert back.preprocessing == prep and back.arch == "resnet10t"
    assert back.weights_sha256 != load_model(TINY).weights_sha256
    assert back.spec == f"checkpoint:{path}"
    x = torch.rand(1, 3, 40, 40)
    loaded.model.eval()
    with torch.inference_mode():
        assert torch.allclose(loaded.model(x), back.model(x))
    assert load_model(f"checkpoint:{path}").weights_sha256 == back.weights_sha256


def test_checkpoint_records_the_create_model_kwargs_of_a_vit(tmp_path):
    """A ViT built for 32 px with 8-px patches loads again only with those arguments."""
    import timm

    kwargs = {"img_size": 32, "patch_size": 8}
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **kwargs)
    prep = Preprocessing(input_size=32)
    path = save_checkpoint(
        tmp_path / "vit.pt", "vit_tiny_patch16_224", vit, prep, model_kwargs=kwargs
    )
    back = load_checkpoint(path)
    assert back.model.patch_embed.patch_size == (8, 8) and back.embedding_dim == 192
    x = torch.rand(2, 3, 32, 32)
    vit.eval()
    with torch.inference_mode():
        assert torch.allclose(vit(x), back.model(x), atol=1e-5)
    # the same weights saved without the arguments: a clear error naming the file
    save_checkpoint(tmp_path / "bad.pt", "vit_tiny_patch16_224", vit, prep)
    with pytest.raises(
        GaldbError, match="bad.pt is a damaged galdb checkpoint: the weights do not fit"
    ):
        load_checkpoint(tmp_path / "bad.pt")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not torch")
    with pytest.raises(GaldbError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "y.pt")
    with pytest.raises(GaldbError, match="not a galdb checkpoint"):
        load_checkpoint(tmp_path / "y.pt")
    with pytest.raises(GaldbError, match="does not exist"):
        load_model(f"checkpoint:{tmp_path / 'missing.pt'}")


def test_offline_hub_spec_names_the_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GaldbError) as err:
        load_model("hf-hub:mwalmsley/zoobot-encoder-convnext_nano")
    message = str(err.value)
    assert "timm:" in message and "checkpoint:" in message and "HF_HUB_OFFLINE" in message
