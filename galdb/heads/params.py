"""A fitted head's parameters as an ``.npz`` archive (``head_versions.parameters``).

Every field of the head's dataclass is stored as an array; no pickle, so a stored head can
be read by anything that reads numpy files.
"""

from __future__ import annotations

import io
from dataclasses import fields

import numpy as np


def to_npz(head) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{f.name: np.asarray(getattr(head, f.name)) for f in fields(head)})
    return buffer.getvalue()


def from_npz(cls, data: bytes):
    with np.load(io.BytesIO(data)) as archive:
        values = {k: archive[k].item() if archive[k].ndim == 0 else archive[k] for k in archive}
    return cls(**values)
