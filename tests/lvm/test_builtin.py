"""The built-in encoders (``galdb:<name>``): the shipped fp16 file loads as a float32 model,
embeds deterministically, and every way of getting it wrong is a clear error."""

from __future__ import annotations

import pytest
import torch

from galdb.cli import main
from galdb.cli.options import DEFAULT_MODEL
from galdb.db.connect import connect
from galdb.errors import GaldbError
from galdb.ingest import ingest
from galdb.lvm import builtin
from galdb.lvm.builtin import builtin_path, write_builtin
from galdb.lvm.preprocess import Preprocessing
from galdb.lvm.specs import DEFAULT_SPEC, load_checkpoint, load_model, save_checkpoint
from galdb.sim import simulate_release


def test_the_cli_default_is_the_library_default():
    assert DEFAULT_MODEL == DEFAULT_SPEC == "galdb:default"


def test_default_file_is_fp16_with_a_model_card():
    path = builtin_path("default")
    assert path.is_file(), f"{path} is not in the package"
    assert path.stat().st_size <= 25 * 2**20
    payload = torch.load(path, map_location="cpu", weights_only=True)
    floats = [v for v in payload["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    meta = payload["meta"]
    assert meta["dtype"] == "float16"
    assert meta["data"]["source"].startswith("galdb simulate")
    assert "none" in meta["data"]["real_data"]
    assert meta["recipe"]["method"] == "simclr" and meta["recipe"]["arch"] == "resnet10t"
    assert meta["compute"]["steps"] > 0 and meta["compute"]["train_cpu_seconds"] > 0


def test_default_loads_as_a_float32_model():
    loaded = load_model("galdb:default")
    assert loaded.spec == "galdb:default" and loaded.arch == "resnet10t"
    assert loaded.preprocessing.input_size == 64 and loaded.embedding_dim == 512
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert not loaded.model.training
    assert loaded.weights_sha256 != load_model("timm:resnet10t").weights_sha256


def test_default_embeddings_are_deterministic():
    a, b = load_model("galdb:default"), load_model("galdb:default")
    assert a.weights_sha256 == b.weights_sha256
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ea, eb = a.model(x), b.model(x)
    assert torch.equal(ea, eb) and ea.dtype == torch.float32
    assert ea.shape == (3, 512) and torch.isfinite(ea).all()


def test_fp16_conversion_keeps_the_embeddings(tmp_path):
    """A float32 checkpoint and its float16 built-in copy embed alike (not bit for bit)."""
    loaded = load_model("timm:resnet10t", input_size=32)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    prep = Preprocessing(input_size=32)
    fp32 = save_checkpoint(tmp_path / "fp32.pt", "resnet10t", loaded.model, prep, {"a": 1})
    fp16 = write_builtin(fp32, tmp_path / "fp16.pt", {"data": "test"})
    assert fp16.stat().st_size < 0.6 * fp32.stat().st_size
    a, b = load_checkpoint(fp32), load_checkpoint(fp16)
    assert a.weights_sha256 != b.weights_sha256  # the weights were rounded
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        cos = torch.nn.functional.cosine_similarity(a.model(x), b.model(x), dim=1)
    assert cos.min() > 0.999
    meta = torch.load(fp16, weights_only=True)["meta"]
    assert meta["data"] == "test" and meta["pretrain"] == {"a": 1}


def test_unknown_name_lists_the_built_in_encoders():
    with pytest.raises(GaldbError, match=r"no built-in encoder galdb:nope.*galdb:default"):
        load_model("galdb:nope")
    with pytest.raises(GaldbError, match="galdb:default"):
        load_model("galdb:")


def test_missing_weights_file(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(GaldbError, match=r"weights of galdb:default are missing.*reinstall"):
        load_model("galdb:default")


def test_corrupt_weights_file(tmp_path, monkeypatch):
    shipped = builtin_path("default")
    monkeypatch.setattr(builtin, "WEIGHTS_DIR", tmp_path)
    data = shipped.read_bytes()
    (tmp_path / "default.pt").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(GaldbError, match="default.pt is not a readable checkpoint"):
        load_model("galdb:default")
    payload = torch.load(shipped, weights_only=True)
    payload["state_dict"].pop("conv1.0.weight")
    torch.save(payload, tmp_path / "default.pt")
    with pytest.raises(GaldbError, match="default.pt is a damaged galdb checkpoint"):
        load_model("galdb:default")


def test_embed_without_model_uses_the_default(settings, tmp_path, unique_release):
    catalog = simulate_release(tmp_path, 6, seed=17, size=32)
    with connect(settings) as conn:
        ingest(conn, tmp_path, unique_release, catalog=catalog)
        conn.commit()
    assert main(["embed", "-r", unique_release, "--workers", "0"]) == 0
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT m.spec, m.arch, m.input_size, count(*) FROM galdb.models m "
            "JOIN galdb.embeddings e USING (model_id) JOIN galdb.catalog c USING (galaxy_id) "
            "WHERE c.release = %s GROUP BY 1, 2, 3",
            (unique_release,),
        ).fetchall()
    assert rows == [("galdb:default", "resnet10t", 64, 6)]
