"""What readers hand to the loader: galaxies, rejections, and the stable rejection codes.

A reader yields :class:`Candidate` objects. A candidate knows its source id cheaply (from a
file name or a catalog row) and inspects its pixels only when :meth:`Candidate.load` is called,
so the loader can skip galaxies already stored without opening their files (that is what makes
an interrupted ingest resume quickly). A reader may also yield a :class:`Rejected` directly,
for an input it could not even turn into a candidate (a directory the walk cannot read, a
catalog row whose bytes do not decode).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Code(StrEnum):
    """Stable quarantine reason codes (stored in ``galdb.quarantine.code``)."""

    FILE_MISSING = "file_missing"
    FITS_CORRUPT = "fits_corrupt"
    IMAGE_UNREADABLE = "image_unreadable"
    NOT_AN_IMAGE = "not_an_image"
    NO_IMAGE_DATA = "no_image_data"
    BAD_SHAPE = "bad_shape"
    ALL_NAN = "all_nan"
    MISSING_ID = "missing_id"
    DUPLICATE_ID = "duplicate_id"
    NO_COORDINATES = "no_coordinates"
    COORD_OUT_OF_RANGE = "coord_out_of_range"
    DB_REJECTED = "db_rejected"
    IMAGE_TOO_LARGE = "image_too_large"  # more pixels per band than limits.MAX_PIXELS
    UNREADABLE_PATH = "unreadable_path"  # the OS refused a file or directory (ELOOP, EACCES…)
    ENCODING_ERROR = "encoding_error"  # a catalog row or file name not in the encoding
    BAD_ROW = "bad_row"  # a catalog row with more or fewer fields than the header
    ID_TOO_LONG = "id_too_long"  # a source id longer than limits.MAX_ID_LENGTH
    READ_FAILED = "read_failed"  # any other error while reading one file or row


#: Codes about a file that the source's checksum does not cover (an image a catalog row
#: names, or a file of a directory listed by name and size): its problem may be fixed without
#: the source changing, so a run that gave any of them does not let the next run skip.
FILE_CODES = frozenset(
    {
        Code.FILE_MISSING,
        Code.FITS_CORRUPT,
        Code.IMAGE_UNREADABLE,
        Code.NOT_AN_IMAGE,
        Code.NO_IMAGE_DATA,
        Code.BAD_SHAPE,
        Code.ALL_NAN,
        Code.IMAGE_TOO_LARGE,
        Code.UNREADABLE_PATH,
        Code.READ_FAILED,
    }
)


class BadInput(Exception):
    """Raised by an inspector: this file or row cannot become a galaxy."""

    def __init__(self, code: Code, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Pixels:
    """Where a galaxy's pixels are and what they look like (the pixels stay in the file)."""

    uri: str
    member: str | None = None  # FITS HDU index or HDF5 dataset name
    index: int | None = None  # position along the first axis of an HDF5 image array
    bands: str | None = None  # comma-separated band names, e.g. "g,r,z" or "r,g,b"
    pixel_scale: float | None = None  # arcsec per pixel
    shape: tuple[int, ...] | None = None  # (bands, height, width)
    ra: float | None = None  # centre from the file itself (WCS or name), if it has one
    dec: float | None = None


@dataclass(slots=True)
class Galaxy:
    """One row of ``galdb.galaxies`` as a reader produced it."""

    source_id: str
    ra: float | None
    dec: float | None
    pixels: Pixels | None = None
    props: dict | str = field(default_factory=dict)  # a dict, or its JSON text already


@dataclass(slots=True)
class Rejected:
    """One row of ``galdb.quarantine``: the input (file/row) and what is wrong with it."""

    source: str
    item: str
    code: Code
    reason: str


@dataclass(slots=True)
class Candidate:
    """A galaxy-to-be: its id now, its full record from :meth:`load` (may raise BadInput)."""

    source_id: str
    source: str  # the file this came from
    item: str | int  # where in that file: a row number, "index 7", "" for a whole file
    load: Callable[[], Galaxy]  # or a pre-rendered COPY line (galdb.ingest.copy_text.CopyLine)

    def where(self) -> str:
        """``item`` as quarantine shows it, e.g. ``row 12 (id J0012-0002)``; long ids are cut."""
        if isinstance(self.item, int):
            if not self.source_id:
                return f"row {self.item}"
            shown = self.source_id if len(self.source_id) <= 60 else self.source_id[:57] + "..."
            return f"row {self.item} (id {shown})"
        return self.item


def is_storable(text: str) -> bool:
    """Whether PostgreSQL can store ``text``: valid UTF-8 (file names may not be) and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\0" not in text


def storable(text: str) -> str:
    """``text`` made storable: bytes of a non-UTF-8 file name and NULs shown as ``\\xNN``."""
    if is_storable(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")  # undecodable bytes of a file name
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace").replace("\0", "\\x00")


def check_coordinates(ra: object, dec: object, *, required: bool) -> tuple[float, float] | None:
    """Validate a position in degrees; RA 360 becomes 0. ``None`` when absent and not required."""
    if _missing(ra) and _missing(dec):
        if required:
            raise BadInput(Code.NO_COORDINATES, "ra/dec are empty")
        return None
    try:
        ra_f, dec_f = float(ra), float(dec)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise BadInput(Code.NO_COORDINATES, f"ra={ra!r}, dec={dec!r} are not numbers") from exc
    if not (math.isfinite(ra_f) and math.isfinite(dec_f)):
        raise BadInput(Code.NO_COORDINATES, f"ra={ra!r}, dec={dec!r} are not finite")
    if not (0.0 <= ra_f <= 360.0) or not (-90.0 <= dec_f <= 90.0):
        raise BadInput(
            Code.COORD_OUT_OF_RANGE,
            f"ra={ra_f} dec={dec_f} outside 0 <= ra <= 360, -90 <= dec <= 90 degrees",
        )
    return (0.0 if ra_f == 360.0 else ra_f), dec_f


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


_NAME_COORDS = re.compile(
    r"^(?:cutout_)?(?P<ra>\d+(?:\.\d+)?)_(?P<dec>[-+]?\d+(?:\.\d+)?)$", re.IGNORECASE
)


def coordinates_from_name(stem: str) -> tuple[float, float] | None:
    """RA/Dec from names like ``cutout_<ra>_<dec>`` or ``<ra>_<dec>`` (degrees), else ``None``."""
    match = _NAME_COORDS.match(stem)
    if not match:
        return None
    return float(match["ra"]), float(match["dec"])
