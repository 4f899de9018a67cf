"""Model specs (``galdb:``, ``timm:``, ``hf-hub:``, ``checkpoint:``) and loading them as embedders.

Every loaded model is a timm backbone with its classifier removed (``num_classes=0``), so its
output is the pooled feature vector: the embedding.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import timm
import torch

from galdb.errors import GaldbError
from galdb.lvm.preprocess import Preprocessing

CHECKPOINT_FORMAT = "galdb-checkpoint"
CHECKPOINT_VERSION = 1
KINDS = ("galdb", "timm", "hf-hub", "checkpoint")
DEFAULT_SPEC = "galdb:default"
RANDOM_INIT_SEED = 0


@dataclass
class LoadedModel:
    """A backbone ready to embed, with everything the registry records about it."""

    spec: str
    arch: str
    model: torch.nn.Module
    preprocessing: Preprocessing
    embedding_dim: int
    weights_sha256: str

    @property
    def in_chans(self) -> int:
        return len(self.preprocessing.channels)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``kind:value``; fail clearly on an unknown kind."""
    kind, sep, value = spec.partition(":")
    if not sep or kind not in KINDS or not value:
        raise GaldbError(
            f"model spec {spec!r} not understood: use galdb:default (the encoder shipped "
            "with galdb), timm:<name> (random init), "
            "hf-hub:<repo> (e.g. hf-hub:mwalmsley/zoobot-encoder-convnext_nano) or "
            "checkpoint:<path>"
        )
    return kind, value


def weights_checksum(model: torch.nn.Module) -> str:
    """sha256 over the state dict (names and bytes, in order): the weights' identity."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _finish(spec: str, arch: str, model: torch.nn.Module, prep: Preprocessing) -> LoadedModel:
    model.eval()
    return LoadedModel(spec, arch, model, prep, int(model.num_features), weights_checksum(model))


def load_model(
    spec: str, *, input_size: int | None = None, crop_fraction: float | None = None
) -> LoadedModel:
    """Load the backbone a spec names, in eval mode.

    Parameters
    ----------
    spec : str
        ``galdb:<name>`` (built in, e.g. ``galdb:default``), ``timm:<name>``,
        ``hf-hub:<repo>`` or ``checkpoint:<path>``.
    input_size : int, optional
        Override the input side in pixels (``timm:`` defaults to 96; the others keep theirs).
    crop_fraction : float, optional
        Override the centre-crop fraction applied before resizing.
    """
    kind, value = parse_spec(spec)
    if kind == "checkpoint":
        loaded = load_checkpoint(Path(value), spec)
    elif kind == "galdb":
        from galdb.lvm.builtin import existing_builtin

        loaded = load_checkpoint(existing_builtin(value), spec)
    elif kind == "timm":
        loaded = _load_timm(spec, value)
    else:
        loaded = _load_hub(spec, value)
    if input_size is not None:
        loaded.preprocessing = replace(loaded.preprocessing, input_size=input_size)
    if crop_fraction is not None:
        loaded.preprocessing = replace(loaded.preprocessing, crop_fraction=crop_fraction)
    return loaded


def _load_timm(spec: str, name: str) -> LoadedModel:
    if name not in timm.list_models():
        raise GaldbError(f"timm has no architecture {name!r} (see timm.list_models())")
    torch.manual_seed(RANDOM_INIT_SEED)  # random init, but the same every time
    model = timm.create_model(name, pretrained=False, num_classes=0)
    return _finish(spec, name, model, Preprocessing())


def _load_hub(spec: str, repo: str) -> LoadedModel:
    try:
        model = timm.create_model(f"hf-hub:{repo}", pretrained=True, num_classes=0)
    except Exception as exc:  # hub, network and cache errors come in many types
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise GaldbError(
            f"could not load {spec} from the Hugging Face hub{offline}: {type(exc).__name__}. "
            "Without network access use timm:<name> (random init, e.g. timm:convnext_nano) "
            "or checkpoint:<path> (e.g. one written by `galdb lvm pretrain`); a hub model "
            "downloaded elsewhere works offline from a copied HF_HOME cache."
        ) from exc
    config = timm.data.resolve_data_config({}, model=model)
    prep = Preprocessing(
        input_size=int(config["input_size"][-1]),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
    )
    return _finish(spec, f"hf-hub:{repo}", model, prep)


def save_checkpoint(
    path: Path,
    arch: str,
    model: torch.nn.Module,
    prep: Preprocessing,
    meta: dict | None = None,
    *,
    model_kwargs: dict | None = None,
) -> Path:
    """Write a ``checkpoint:`` file: architecture, preprocessing and weights together.

    ``model_kwargs`` are the further ``timm.create_model`` arguments the architecture was
    built with (a ViT's ``img_size`` and ``patch_size``); loading passes them again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch,
        "preprocessing": prep.to_dict(),
        "embedding_dim": int(model.num_features),
        "model_kwargs": dict(model_kwargs or {}),
        "state_dict": model.state_dict(),
        "meta": meta or {},
    }
    return atomic_save(payload, path)


def atomic_save(payload, path: Path) -> Path:
    """``torch.save`` to a side file renamed over ``path``: a reader (or a run killed while
    writing) never sees a half-written file."""
    tmp = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path, spec: str | None = None) -> LoadedModel:
    """Read a file written by :func:`save_checkpoint` (float16 weights are loaded as float32)."""
    if not path.exists():
        raise GaldbError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GaldbError(f"{path} is not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise GaldbError(f"{path} is not a galdb checkpoint (write one with galdb lvm pretrain)")
    try:
        prep = Preprocessing.from_dict(payload["preprocessing"])
        kwargs = payload.get("model_kwargs", {})  # absent from checkpoints of CNNs written earlier
        model = timm.create_model(
            payload["arch"], pretrained=False, num_classes=0, in_chans=len(prep.channels), **kwargs
        )
        state = {
            k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise GaldbError(
            f"{path} is a damaged galdb checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise GaldbError(
            f"{path} is a damaged galdb checkpoint: the weights do not fit {payload['arch']} "
            f"built with {kwargs} ({exc})"
        ) from exc
    return _finish(spec or f"checkpoint:{path}", payload["arch"], model, prep)
