"""Fetch cutouts from the Legacy Surveys viewer's cutout service into an on-disk cache.

The service answers ``<base>/fits-cutout?ra=..&dec=..&layer=..&pixscale=..&bands=..&size=..``
with a FITS cube (``BANDS`` in the header, a TAN WCS) and ``<base>/jpeg-cutout?...`` with a
colour JPEG. :class:`CutoutService` fetches many such requests with a bounded thread pool:

* a request whose file is in the cache is not fetched again (that is what resumes an
  interrupted ingest, and what makes a second run fetch nothing);
* 5xx and 429 answers, timeouts, refused or dropped connections and answers shorter than
  their ``Content-Length`` are retried with exponential backoff;
* an answer is written to a temporary file in the cache, checked (a readable FITS image or
  JPEG, as ingest would check it) and only then renamed into place, so the cache never holds
  a partial or invalid file;
* what cannot be fetched (4xx, retries exhausted, an invalid answer) is a :class:`Fetched`
  with a quarantine code and reason, never an exception.

Tests point ``base_url`` at a local HTTP server.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from galdb.errors import GaldbError
from galdb.ingest import fits, image
from galdb.ingest.records import BadInput, Code

DEFAULT_BASE_URL = "https://www.legacysurvey.org/viewer"
KINDS = {"fits": ("fits-cutout", ".fits"), "jpeg": ("jpeg-cutout", ".jpg")}
MAX_ANSWER_BYTES = 256 * 1024**2  # a 3-band float32 cube of 4096x4096 is 192 MiB
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class CutoutRequest:
    """One cutout: centre (deg), layer (e.g. ``ls-dr10``), arcsec/px, bands, side (px), kind.

    The position is rounded to 6 decimals (3.6 mas) in the URL and in the cache name alike.
    """

    ra: float
    dec: float
    layer: str = "ls-dr10"
    pixscale: float = 0.262
    bands: str = "grz"
    size: int = 64
    kind: str = "fits"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GaldbError(f"unknown cutout kind {self.kind!r}; choose one of {sorted(KINDS)}")

    def params(self) -> dict[str, str]:
        """The query parameters the viewer's cutout endpoints take."""
        return {
            "ra": f"{self.ra:.6f}",
            "dec": f"{self.dec:.6f}",
            "layer": self.layer,
            "pixscale": f"{self.pixscale:g}",
            "bands": self.bands,
            "size": str(self.size),
        }

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        endpoint, _ = KINDS[self.kind]
        return f"{base_url.rstrip('/')}/{endpoint}?{urlencode(self.params())}"

    def cache_path(self, cache_dir: Path) -> Path:
        """Where the answer is kept: one folder per layer and setting, one file per position."""
        _, suffix = KINDS[self.kind]
        setting = f"{self.bands}_{self.pixscale:g}_{self.size}"
        name = f"cutout_{self.ra:.6f}_{self.dec:+.6f}{suffix}"
        return cache_dir / self.layer / setting / name


@dataclass(frozen=True)
class Fetched:
    """The outcome of one request: a cached file (``path``), or a quarantine code and reason."""

    request: CutoutRequest
    url: str
    path: Path | None
    from_cache: bool = False
    attempts: int = 0
    code: Code | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.path is not None


class _Retry(Exception):
    """A transient failure: worth another try after a pause."""


@dataclass
class FetchCounts:
    """What a service did so far (thread-safe updates through :meth:`CutoutService._count`)."""

    cached: int = 0
    fetched: int = 0
    failed: int = 0
    requests: int = 0  # HTTP requests sent, retries included


class CutoutService:
    """A cutout fetcher with a cache directory, a concurrency limit and retries.

    Parameters
    ----------
    cache_dir : Path
        Where answers are kept (created if missing).
    base_url : str
        The viewer's base URL; its ``fits-cutout`` and ``jpeg-cutout`` endpoints are used.
    concurrency : int
        Requests in flight at once, at least 1.
    timeout : float
        Seconds to wait for the connection and for each read.
    retries : int
        Further tries after a transient failure.
    backoff : float
        Pause before the first retry in seconds; doubled at each retry, at most ``max_backoff``.

    Use it as a context manager (the thread pool is shut down on exit).
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        base_url: str = DEFAULT_BASE_URL,
        concurrency: int = 8,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ):
        if concurrency < 1:
            raise GaldbError(f"concurrency must be at least 1, not {concurrency}")
        if retries < 0:
            raise GaldbError(f"retries must be 0 or more, not {retries}")
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url
        self.timeout, self.retries = timeout, retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.counts = FetchCounts()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cutout")
        self._opener = urllib.request.build_opener()

    def __enter__(self) -> CutoutService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def fetch_many(self, requests: Iterable[CutoutRequest]) -> list[Fetched]:
        """Fetch every request (at most ``concurrency`` at once); results in request order."""
        return list(self._pool.map(self.fetch, requests))

    def fetch(self, request: CutoutRequest) -> Fetched:
        """Fetch one request unless it is cached; never raises for what the service answers."""
        url = request.url(self.base_url)
        target = request.cache_path(self.cache_dir)
        if target.exists():
            self._count("cached")
            return Fetched(request, url, target, from_cache=True)
        attempt, last = 0, ""
        while True:
            attempt += 1
            try:
                body = self._get(url)
            except _Retry as exc:
                last = str(exc)
                if attempt > self.retries:
                    reason = f"no usable answer from {url} after {attempt} tries (last: {last})"
                    return self._failed(request, url, attempt, Code.READ_FAILED, reason)
                time.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
                continue
            except BadInput as exc:
                return self._failed(request, url, attempt, exc.code, exc.reason)
            try:
                self._store(body, target, request.kind)
            except BadInput as exc:
                reason = f"the answer from {url} ({len(body):,} bytes) is unusable: {exc.reason}"
                return self._failed(request, url, attempt, exc.code, reason)
            self._count("fetched")
            return Fetched(request, url, target, attempts=attempt)

    def _get(self, url: str) -> bytes:
        self._count("requests")
        try:
            with self._opener.open(url, timeout=self.timeout) as answer:
                body = answer.read(MAX_ANSWER_BYTES + 1)
                announced = answer.headers.get("Content-Length")
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in RETRY_STATUS:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
            code = Code.FILE_MISSING if exc.code in (404, 410) else Code.READ_FAILED
            raise BadInput(
                code, f"the cutout service answered HTTP {exc.code} {exc.reason} for {url}"
            ) from exc
        except http.client.IncompleteRead as exc:
            raise _Retry(
                f"the answer was cut short: {len(exc.partial):,} bytes of "
                f"{len(exc.partial) + (exc.expected or 0):,}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            what = getattr(exc, "reason", None) or exc
            raise _Retry(f"{type(exc).__name__}: {what}") from exc
        # read(n) returns what came before the connection closed: compare with the announced
        # length, or a dropped connection would pass for a complete answer.
        if announced is not None and announced.isdigit() and len(body) < int(announced):
            raise _Retry(f"the answer was cut short: {len(body):,} bytes of {int(announced):,}")
        if len(body) > MAX_ANSWER_BYTES:
            raise BadInput(
                Code.IMAGE_TOO_LARGE,
                f"the answer from {url} is over {MAX_ANSWER_BYTES:,} bytes",
            )
        return body

    def _store(self, body: bytes, target: Path, kind: str) -> None:
        """Write to a temporary file beside ``target``, check it, then rename it into place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            if kind == "fits":
                fits.inspect_fits(tmp)
            else:
                image.inspect_image(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _failed(self, request, url, attempts, code, reason) -> Fetched:
        self._count("failed")
        return Fetched(request, url, None, attempts=attempts, code=code, reason=reason)

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self.counts, what, getattr(self.counts, what) + 1)
