"""One preprocessing for training and inference: survey pixels to a model's input tensor.

Two kinds of pixels arrive:

* **flux images** (FITS, float HDF5): per band ``x = asinh(f / a_b) / asinh(m_b / a_b)``,
  clipped to [0, 1], where ``a_b`` is the softening (about the sky noise, nanomaggies) and
  ``m_b`` the flux shown at full scale; NaN and infinities become 0 (no signal). Bands are
  mapped to model channels by name (``channels``, reddest first, as the Legacy Surveys colour
  images do: z→R, r→G, g→B); a missing band is a zero channel.
* **display images** (JPEG/PNG, uint8 HDF5): already stretched by the survey; scaled to [0, 1].
  Greyscale is repeated on every channel.

Then: centre crop to ``crop_fraction`` of the side, resize to ``input_size`` (bilinear,
antialiased), normalise with ``mean``/``std``. Everything is deterministic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

# Softening ~ 1-sigma sky per pixel of DECaLS DR9 g, r, z (nanomaggies), and the flux that
# maps to full scale. Other bands fall back to the r-band values.
DEFAULT_SOFTENING = {"g": 0.005, "r": 0.01, "z": 0.025}
DEFAULT_FULL_SCALE = {"g": 1.0, "r": 1.5, "z": 2.5}


@dataclass(frozen=True)
class Preprocessing:
    """Parameters of :func:`to_tensor`; stored with every registered model and checkpoint."""

    input_size: int = 96
    channels: tuple[str, ...] = ("z", "r", "g")
    crop_fraction: float = 1.0
    softening: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SOFTENING))
    full_scale: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FULL_SCALE))
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        data = dict(data)
        for key in ("channels", "mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def band_stretch(band: str, p: Preprocessing) -> tuple[float, float]:
    """(softening ``a``, full-scale flux ``m``) of a band; unknown bands take the r values."""
    return p.softening.get(band, p.softening.get("r", 0.01)), p.full_scale.get(
        band, p.full_scale.get("r", 1.5)
    )


def stretch_flux(
    pixels: np.ndarray, bands: list[str], p: Preprocessing, *, clip: bool = True
) -> np.ndarray:
    """(bands, H, W) flux → (channels, H, W) in [0, 1] by the asinh stretch above.

    With ``clip=False`` the stretch is not clipped (negative sky noise and fluxes above full
    scale keep their values) and :func:`unstretch_flux` inverts it exactly.
    """
    out = np.zeros((len(p.channels), *pixels.shape[1:]), np.float32)
    index = {b: i for i, b in enumerate(bands)}
    low, high = (0.0, 1.0) if clip else (-np.inf, np.inf)
    for c, band in enumerate(p.channels):
        if band not in index:
            continue
        a, m = band_stretch(band, p)
        flux = np.nan_to_num(
            pixels[index[band]].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0
        )
        out[c] = np.clip(np.arcsinh(flux / a) / np.arcsinh(m / a), low, high)
    if not index.keys() & set(p.channels) and pixels.shape[0] >= 1:
        # Bands unknown (e.g. a single unnamed band): stretch the first plane on every channel.
        a, m = p.softening["r"], p.full_scale["r"]
        plane = np.nan_to_num(pixels[0].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        out[:] = np.clip(np.arcsinh(plane / a) / np.arcsinh(m / a), 0.0, 1.0)
    return out


def unstretch_flux(stretched: np.ndarray, bands: list[str], p: Preprocessing) -> np.ndarray:
    """Inverse of the unclipped :func:`stretch_flux`: (channels, H, W) → (bands, H, W) flux.

    Every band of ``bands`` must be one of the model's ``channels``.
    """
    channel = {b: c for c, b in enumerate(p.channels)}
    out = np.empty((len(bands), *stretched.shape[1:]), np.float32)
    for i, band in enumerate(bands):
        a, m = band_stretch(band, p)
        out[i] = a * np.sinh(stretched[channel[band]] * np.arcsinh(m / a))
    return out


def scale_display(pixels: np.ndarray, n_channels: int) -> np.ndarray:
    """(bands, H, W) uint8 display image → (channels, H, W) float in [0, 1]."""
    x = pixels.astype(np.float32) / 255.0
    if x.shape[0] == 1:
        return np.repeat(x, n_channels, axis=0)
    return (
        x[:n_channels]
        if x.shape[0] >= n_channels
        else np.pad(x, ((0, n_channels - x.shape[0]), (0, 0), (0, 0)))
    )


def to_unit(
    pixels: np.ndarray, bands: list[str], p: Preprocessing, *, clip: bool = True
) -> np.ndarray:
    """Pixels of either kind → (channels, H, W) float32 in [0, 1] (before crop and resize);
    ``clip=False`` leaves flux images unclipped (see :func:`stretch_flux`)."""
    if pixels.dtype == np.uint8:
        return scale_display(pixels, len(p.channels))
    return stretch_flux(pixels, bands, p, clip=clip)


def crop_resize(x: torch.Tensor, p: Preprocessing) -> torch.Tensor:
    """Centre crop to ``crop_fraction`` and resize (C, H, W) or (N, C, H, W) to input_size."""
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    h, w = x.shape[-2:]
    side = max(1, round(min(h, w) * p.crop_fraction))
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    if side != p.input_size:
        x = F.interpolate(
            x,
            size=(p.input_size, p.input_size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
    return x.squeeze(0) if squeeze else x


def normalise(x: torch.Tensor, p: Preprocessing) -> torch.Tensor:
    mean = torch.tensor(p.mean, dtype=x.dtype).view(-1, 1, 1)
    std = torch.tensor(p.std, dtype=x.dtype).view(-1, 1, 1)
    return (x - mean) / std


def to_tensor(
    pixels: np.ndarray, bands: list[str], p: Preprocessing, *, clip: bool = True
) -> torch.Tensor:
    """Survey pixels (bands, H, W) → normalised model input (channels, size, size)."""
    unit = torch.from_numpy(to_unit(pixels, bands, p, clip=clip))
    return normalise(crop_resize(unit, p), p)
