"""The restoration network: the LVM backbone as a U-Net encoder plus a light decoder.

The encoder is the backbone a model spec names, rebuilt by timm with ``features_only=True``
and given the spec's weights (the same state dict keys), so ``timm:`` starts from the
registry's deterministic random init and ``checkpoint:`` from the pretrained LVM. The decoder
upsamples from the deepest feature map, concatenating each shallower map (a skip connection)
and finally a full-resolution convolution of the input itself, and predicts a residual that
is added to the input. Each decoder stage has at most ``decoder_width`` channels, the
full-resolution stage half that: at full resolution every channel costs as much as the
encoder's deep stages, and the decoder's width is the trade between quality and speed
(``benchmarks/eval_restoration.py`` and ``bench_restoration.py`` measure both).

Images travel in the unclipped asinh stretch of the model's preprocessing
(:func:`galdb.lvm.preprocess.stretch_flux` with ``clip=False``), channels in the model's
order, at their own size: no crop, no resize (restoration keeps every pixel). The input is
padded (reflect) to a multiple of the encoder's largest stride and the output cropped back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from galdb.errors import GaldbError
from galdb.lvm.preprocess import Preprocessing, band_stretch, stretch_flux, unstretch_flux
from galdb.lvm.specs import LoadedModel

DECODER_WIDTH = 32  # channels of each decoder stage at most: light next to the encoder


@dataclass(frozen=True)
class NetConfig:
    """What rebuilds a restoration network: the backbone, its preprocessing, the decoder."""

    arch: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    decoder_width: int = DECODER_WIDTH

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "preprocessing": self.preprocessing.to_dict(),
            "decoder_width": self.decoder_width,
        }

    @classmethod
    def from_dict(cls, data: dict) -> NetConfig:
        prep = Preprocessing.from_dict(data["preprocessing"])
        return cls(data["arch"], prep, int(data["decoder_width"]))


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.GELU()
    )


class RestorationNet(nn.Module):
    """U-Net on a timm ``features_only`` encoder; input and output (N, C, H, W) stretched."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        in_chans = len(config.preprocessing.channels)
        self.encoder = features_encoder(config.arch, in_chans)
        channels = self.encoder.feature_info.channels()
        self.stride = max(self.encoder.feature_info.reduction())
        width = [min(c, config.decoder_width) for c in channels]
        full = max(8, width[0] // 2)  # the full-resolution stage is the costliest: narrowest
        self.stem = _conv(in_chans, full)
        # stage i merges the upsampled stage i+1 (or the deepest map) with skip i
        pairs = zip(channels, width, strict=True)
        self.lateral = nn.ModuleList(nn.Conv2d(c, w, 1) for c, w in pairs)
        self.merge = nn.ModuleList(
            _conv(width[i] + (width[i + 1] if i + 1 < len(width) else 0), width[i])
            for i in range(len(width))
        )
        self.full = _conv(full + width[0], full)
        self.out = nn.Conv2d(full, in_chans, 1)
        nn.init.zeros_(self.out.weight)  # starts as the identity: restored == input
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.stride, (-w) % self.stride
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else x
        features = self.encoder(padded)
        y = None
        for i in reversed(range(len(features))):
            skip = self.lateral[i](features[i])
            if y is not None:
                y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                skip = torch.cat([skip, y], dim=1)
            y = self.merge[i](skip)
        y = F.interpolate(y, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        y = self.full(torch.cat([self.stem(padded), y], dim=1))
        return (padded + self.out(y))[..., :h, :w]


def features_encoder(arch: str, in_chans: int) -> nn.Module:
    """timm's ``features_only`` form of an architecture (random init): a list of maps."""
    try:
        return timm.create_model(arch, pretrained=False, features_only=True, in_chans=in_chans)
    except Exception as exc:  # timm raises several types for unsupported architectures
        raise GaldbError(
            f"{arch} cannot serve as an encoder (timm features_only: {type(exc).__name__}: {exc})"
        ) from exc


def check_rebuildable(loaded: LoadedModel) -> None:
    """Raise unless timm can rebuild the backbone's architecture offline."""
    if loaded.arch.startswith("hf-hub:"):
        raise GaldbError(
            f"{loaded.spec}: a hub model cannot be rebuilt offline as an encoder; use "
            "timm:<name> or checkpoint:<path> (e.g. one written by galdb lvm pretrain)"
        )


def load_backbone_weights(encoder: nn.Module, loaded: LoadedModel) -> None:
    """Give a :func:`features_encoder` the loaded backbone's weights (same tensors)."""
    source = loaded.model.state_dict()
    target = encoder.state_dict()
    shared = {}
    for key, value in target.items():
        # features_only flattens nested top-level modules: ``stages.0`` becomes ``stages_0``
        head, _, rest = key.partition(".")
        for name in (key, f"{head.replace('_', '.')}.{rest}"):
            if name in source and source[name].shape == value.shape:
                shared[key] = source[name]
                break
    missing = sorted(set(target) - set(shared))
    if missing:
        raise GaldbError(
            f"{loaded.spec}: {len(missing)} encoder weights not found in the backbone "
            f"(e.g. {missing[0]}); the architecture's feature extractor differs from it"
        )
    encoder.load_state_dict(shared)


def from_backbone(loaded: LoadedModel, decoder_width: int = DECODER_WIDTH) -> RestorationNet:
    """A restoration network whose encoder carries the loaded backbone's weights."""
    check_rebuildable(loaded)
    net = RestorationNet(NetConfig(loaded.arch, loaded.preprocessing, decoder_width))
    load_backbone_weights(net.encoder, loaded)
    return net


def to_bytes(net: RestorationNet) -> bytes:
    """The network's weights (a torch state dict) as bytes for the database."""
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def from_bytes(config: NetConfig, data: bytes) -> RestorationNet:
    """Rebuild a network stored with :func:`to_bytes`, in eval mode."""
    net = RestorationNet(config)
    net.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
    return net.eval()


def stretch(images: np.ndarray, bands: list[str], prep: Preprocessing) -> np.ndarray:
    """(N, bands, H, W) flux → (N, channels, H, W) unclipped stretch, the network's space."""
    return np.stack([stretch_flux(im, bands, prep, clip=False) for im in images])


def unstretch(images: np.ndarray, bands: list[str], prep: Preprocessing) -> np.ndarray:
    """(N, channels, H, W) stretched → (N, bands, H, W) flux."""
    return np.stack([unstretch_flux(im, bands, prep) for im in images])


def unstretch_tensor(x: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """(N, channels, H, W) stretched → flux in channel order, differentiable (for the loss)."""
    pairs = [band_stretch(band, prep) for band in prep.channels]
    a = torch.tensor([p[0] for p in pairs], dtype=x.dtype)
    m = torch.tensor([p[1] for p in pairs], dtype=x.dtype)
    scale = torch.asinh(m / a)
    return a.view(-1, 1, 1) * torch.sinh(x * scale.view(-1, 1, 1))


@torch.no_grad()
def restore(
    net: RestorationNet, images: np.ndarray, bands: list[str], batch_size: int = 64
) -> np.ndarray:
    """Restore (N, bands, H, W) flux images; returns flux of the same shape (float32)."""
    prep = net.config.preprocessing
    missing = [b for b in bands if b not in prep.channels]
    if missing:
        raise GaldbError(
            f"bands {','.join(missing)} are not channels of the restoration model "
            f"({','.join(prep.channels)})"
        )
    net.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(stretch(images[start : start + batch_size], bands, prep))
        out.append(unstretch(net(x).numpy(), bands, prep))
    return np.concatenate(out) if out else np.zeros_like(images, dtype=np.float32)
