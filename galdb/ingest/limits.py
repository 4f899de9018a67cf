"""Bounds on what one ingest input may declare, so a hostile or broken file costs little.

Each bound is checked before the expensive work it protects (decoding pixels, parsing rows),
from what the file declares about itself (an image header, a CSV header line):

* :data:`MAX_PIXELS` — pixels per band of one cutout: 4096 x 4096 = 16,777,216. Survey
  cutouts are 64 to 512 px on a side (Legacy Surveys' service gives at most 512, Galaxy Zoo
  424); 4096 leaves room for large mosaics of nearby galaxies while a band of float64 stays
  under 128 MiB. Pillow's own decompression-bomb limit (~89 Mpx) is far looser. A larger
  image is quarantined as ``image_too_large`` without its pixels being read.
* :data:`MAX_ID_LENGTH` — characters of a source id: 256. Real ids are short (Legacy Surveys
  ``release/brickid/objid``, IAU names like ``J001240.06-000210.4``, relative file paths); a
  longer one is quarantined as ``id_too_long``.
* :data:`MAX_COLUMNS` — columns of a catalog: 4096. Real catalogs have a few hundred (DESI
  tractor catalogs ~200) up to ~2000 columns; the FITS standard allows 999 per table.
* :data:`MAX_HEADER_BYTES` — bytes of a text catalog's header (the CSV header line, or the
  ECSV header): 1 MiB, 4096 names of 256 characters. Both header bounds are checked before
  any row is read and fail the run with a message naming the file and the bound.
"""

MAX_PIXELS = 4096 * 4096
MAX_ID_LENGTH = 256
MAX_COLUMNS = 4096
MAX_HEADER_BYTES = 1024 * 1024
