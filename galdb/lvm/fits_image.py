"""Plain FITS images read straight from their bytes, for the pixels of every galaxy embedded.

Opening a small cutout with astropy costs about 0.25 ms, nearly all of it in parsing and
checking every header card; at survey scale (tens of millions of cutouts) that is CPU taken
from the model's forward pass (``benchmarks/bench_embed.py`` prints the CPU per image).
:func:`read_image` reads only the cards that place and scale the pixels (``SIMPLE`` or
``XTENSION``, ``BITPIX``, ``NAXISn``, ``PCOUNT``, ``GCOUNT``, ``BSCALE``, ``BZERO``) and the
data with ``numpy``, for the common case: an image HDU of 2 or 3 axes, with no ``BLANK``
value. Anything else (a compressed image in a binary table, random groups, a blank value to
turn into NaN, a header that does not parse, a truncated file) returns None, and the caller
reads the file with astropy, which handles it or says what is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

BLOCK = 2880
CARD = 80
DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
# the cards that place and scale the pixels (and NAXISn), or make this reader step aside
WANTED = {"SIMPLE", "XTENSION", "BITPIX", "PCOUNT", "GCOUNT", "BSCALE", "BZERO", "BLANK", "GROUPS"}


def read_image(path: str | Path, ext: int = 0) -> np.ndarray | None:
    """HDU ``ext`` of ``path`` as float32 (axes as FITS stores them, slowest first), or None
    when the file is not the plain case this reader handles (see the module docstring)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(9) != b"SIMPLE  =":  # not FITS, or compressed as a whole (.fits.gz)
                return None
            fh.seek(0)
            for _ in range(ext):
                cards = _header(fh)
                if cards is None:
                    return None
                size = _data_bytes(cards)
                if size is None:
                    return None
                fh.seek(_padded(size), 1)
            cards = _header(fh)
            if cards is None or not _plain_image(cards, first=ext == 0):
                return None
            shape = tuple(int(cards[f"NAXIS{i}"]) for i in range(int(cards["NAXIS"]), 0, -1))
            dtype = np.dtype(DTYPES[int(cards["BITPIX"])])
            count = math.prod(shape)
            scale, zero = float(cards.get("BSCALE", 1.0)), float(cards.get("BZERO", 0.0))
            raw = fh.read(count * dtype.itemsize)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if len(raw) < count * dtype.itemsize:
        return None  # truncated: astropy says so
    data = np.frombuffer(raw, dtype, count).reshape(shape)
    if scale == 1.0 and zero == 0.0:
        return data.astype(np.float32)
    return (data * scale + zero).astype(np.float32)


def _header(fh) -> dict[str, object] | None:
    """The :data:`WANTED` and ``NAXISn`` cards of the header at the file position (keyword:
    value), the position left at its end (block-aligned); None at the end of the file."""
    cards: dict[str, object] = {}
    while True:
        block = fh.read(BLOCK)
        if len(block) < BLOCK:
            return None
        for start in range(0, BLOCK, CARD):
            card = block[start : start + CARD]
            keyword = card[:8].rstrip().decode("ascii")
            if keyword == "END":
                return cards
            wanted = keyword in WANTED or keyword.startswith("NAXIS")
            if wanted and card[8:10] == b"= " and keyword not in cards:
                cards[keyword] = _value(card[10:].decode("ascii"))


def _value(text: str) -> object:
    """A card's value: a string (quoted, its inner text stripped), a logical (T/F), an int
    or a float; the comment after ``/`` dropped."""
    text = text.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1 : end + 2] == "'":  # '' is a quote inside
            end = text.find("'", end + 2)
        return text[1:end].replace("''", "'").strip()
    text = text.split("/", 1)[0].strip()
    if text in ("T", "F"):
        return text == "T"
    for parse in (int, lambda t: float(t.replace("D", "E"))):
        try:
            return parse(text)
        except ValueError:
            pass
    return text  # e.g. a complex value: kept as text; no card this reader needs is one


def _data_bytes(cards: dict) -> int | None:
    """Bytes of the data that follows a header (before padding), or None if it cannot tell."""
    bitpix, naxis = cards.get("BITPIX"), cards.get("NAXIS")
    if not isinstance(bitpix, int) or bitpix not in DTYPES or not isinstance(naxis, int):
        return None
    if naxis == 0:
        return 0
    axes = [cards.get(f"NAXIS{i}") for i in range(1, naxis + 1)]
    if not all(isinstance(a, int) and a >= 0 for a in axes):
        return None
    pcount, gcount = cards.get("PCOUNT", 0), cards.get("GCOUNT", 1)
    if not (isinstance(pcount, int) and isinstance(gcount, int)):
        return None
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(axes))


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _plain_image(cards: dict, first: bool) -> bool:
    """A primary array or IMAGE extension of 2 or 3 axes with nothing to decode."""
    if first:
        if cards.get("SIMPLE") is not True or cards.get("GROUPS") is True:
            return False
    elif cards.get("XTENSION") != "IMAGE":
        return False
    if cards.get("NAXIS") not in (2, 3) or "BLANK" in cards or _data_bytes(cards) is None:
        return False
    return cards.get("PCOUNT", 0) == 0 and cards.get("GCOUNT", 1) == 1
