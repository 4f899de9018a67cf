"""Encoders that ship inside the package: the ``galdb:<name>`` model specs.

A built-in encoder is a ``checkpoint:`` file (see :func:`galdb.lvm.specs.save_checkpoint`)
stored as package data in ``galdb/lvm/weights/<name>.pt`` with its floating-point weights in
float16 (half the size on disk); :func:`galdb.lvm.specs.load_checkpoint` loads them back as
float32. Its ``meta`` says what it was trained on, how and with what compute.

``galdb:default`` is trained by ``scripts/train_default_encoder.py`` on galdb's own GalSim
simulations only (see the README's model card).
"""

from __future__ import annotations

from pathlib import Path

import torch

from galdb.errors import GaldbError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
NAMES = ("default",)


def builtin_path(name: str) -> Path:
    """The package file of built-in encoder ``name``; an unknown name lists the known ones."""
    if name not in NAMES:
        raise GaldbError(
            f"no built-in encoder galdb:{name}: the built-in encoders are "
            + ", ".join(f"galdb:{n}" for n in NAMES)
        )
    return WEIGHTS_DIR / f"{name}.pt"


def existing_builtin(name: str) -> Path:
    """:func:`builtin_path`, failing clearly when the package lacks the file."""
    path = builtin_path(name)
    if not path.is_file():
        raise GaldbError(
            f"the weights of galdb:{name} are missing from the installed package ({path}): "
            "reinstall galdb, or use checkpoint:<path> or timm:<name>"
        )
    return path


def half_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors as float16; integer ones (batch-norm counters) unchanged."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def write_builtin(checkpoint: Path, out: Path, meta: dict) -> Path:
    """Convert a ``checkpoint:`` file to a built-in encoder file at ``out``.

    The weights become float16 (``meta['dtype']`` says so) and ``meta`` is merged over the
    checkpoint's own (whose pretraining log it keeps under ``pretrain``).
    """
    from galdb.lvm.specs import CHECKPOINT_FORMAT, atomic_save

    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise GaldbError(f"{checkpoint} is not a galdb checkpoint")
    pretrain_meta = payload.get("meta", {})
    payload["state_dict"] = half_state_dict(payload["state_dict"])
    payload["meta"] = {
        **meta,
        "dtype": "float16",
        "pretrain": {k: v for k, v in pretrain_meta.items() if k != "config"},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_save(payload, out)
