"""A catalog read, parsed and rendered as COPY text in a separate process.

The in-process ingest takes turns: Python parses a chunk and formats its rows while the server
waits, then the server stores them while Python waits. Here a producer process reads the
catalog (:func:`~galdb.ingest.catalog.read_catalog`), renders each chunk of a catalog without
a file column as COPY lines (:mod:`galdb.ingest.copy_text`) and hands them over a bounded
queue, while the ingesting process only checks ids, streams the lines into COPY and commits:
client and server work overlap, and the parent's share of each row is a few microseconds.

What the loader sees is unchanged: a stream of :class:`~galdb.ingest.records.Candidate` and
:class:`~galdb.ingest.records.Rejected` in file order, so batches, quarantine (same codes and
row numbers), resume (stored ids skipped), counters and progress are the loader's, exactly as
in-process. A catalog with a file column is parsed in the producer too, but its rows' images
are inspected by the loader as before, so a resumed run still skips stored rows without
opening their files.

The producer is forked where the platform can (it starts at once, with galdb already
imported, and touches nothing of the parent but the job it is given), spawned elsewhere.
The queue holds at most :data:`QUEUE_MESSAGES` messages of at most a loader batch of rows,
so memory stays bounded. The producer ignores Ctrl-C (the ingesting process stops it) and
exits on its own when the ingesting process is gone (killed), so it never outlives a run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from galdb.errors import GaldbError
from galdb.ingest.catalog import Columns, chunk_candidates, read_catalog
from galdb.ingest.copy_text import CopyLine, Failed, RenderedRows, render_chunk
from galdb.ingest.records import Candidate, Code, Rejected

QUEUE_MESSAGES = 8
POLL_S = 1.0  # how often each side checks that the other is still alive


@dataclass(frozen=True)
class CatalogJob:
    """What the producer reads and the ids it renders into each line."""

    path: Path
    columns: Columns
    base: Path  # image paths of a file column are relative to it
    encoding: str
    release_id: int
    run_id: int
    batch_rows: int


@dataclass(frozen=True)
class _Failure:
    """The producer stopped on an error: a GaldbError's message, or another exception's."""

    message: str
    user_error: bool


_END = "end"


def process_candidates(job: CatalogJob) -> Iterator[Candidate | Rejected]:
    """The catalog's candidates and rejections, read and rendered by a producer process.

    Raises
    ------
    GaldbError
        The producer found the catalog unreadable (same message as in-process), or died.
    """
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    messages = ctx.Queue(maxsize=QUEUE_MESSAGES)
    producer = ctx.Process(
        target=_produce, args=(job, messages, os.getpid()), name="galdb-catalog-reader"
    )
    producer.daemon = True
    producer.start()
    try:
        while (message := _get(messages, producer)) != _END:
            if isinstance(message, _Failure):
                if message.user_error:
                    raise GaldbError(message.message)
                raise RuntimeError(f"the catalog reader process failed: {message.message}")
            yield from _expand(message)
        producer.join()
    finally:
        if producer.is_alive():
            producer.terminate()
            producer.join()
        messages.close()


def _get(messages, producer):
    while True:
        try:
            return messages.get(timeout=POLL_S)
        except queue_module.Empty:
            if not producer.is_alive() and messages.empty():
                raise GaldbError(
                    f"the catalog reader process stopped unexpectedly (exit code "
                    f"{producer.exitcode}); rerun the ingest to resume"
                ) from None


def _expand(message) -> Iterator[Candidate | Rejected]:
    if isinstance(message, RenderedRows):
        source, failed = message.source, message.failed
        for i, (source_id, row, line) in enumerate(
            zip(message.ids, message.rows, message.lines, strict=True)
        ):
            outcome = CopyLine(source_id, line) if line is not None else Failed(*failed[i])
            yield Candidate(source_id, source, row, outcome)
    else:
        yield from message


# ---------------------------------------------------------------- the producer process


def _produce(job: CatalogJob, messages, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the ingesting process decides when to stop
    try:
        for message in _messages(job):
            _put(messages, message, parent)
        _put(messages, _END, parent)
    except GaldbError as exc:
        _put(messages, _Failure(str(exc), True), parent)
    except Exception as exc:  # reported by the ingesting process, which fails the run
        _put(messages, _Failure(f"{type(exc).__name__}: {exc}", False), parent)


def _put(messages, message, parent: int) -> None:
    while True:
        try:
            messages.put(message, timeout=POLL_S)
            return
        except queue_module.Full:
            if os.getppid() != parent:  # the ingesting process was killed: stop too
                os._exit(0)


def _messages(job: CatalogJob) -> Iterator[object]:
    resolved: Columns | None = None
    for chunk in read_catalog(job.path, job.encoding):
        rejected = [
            Rejected(str(job.path), f"row {row}", Code.ENCODING_ERROR, reason)
            for row, reason in chunk.undecodable
        ] + [
            Rejected(str(job.path), f"row {row}", Code.BAD_ROW, reason)
            for row, reason in chunk.malformed
        ]
        if rejected:
            yield rejected
        if chunk.table is None:
            continue
        resolved = resolved or job.columns.resolve(list(chunk.table.colnames), job.path)
        for start in range(0, len(chunk.table), job.batch_rows):
            table = chunk.table[start : start + job.batch_rows]
            rows = chunk.rows[start : start + job.batch_rows]
            if resolved.file is None:
                yield render_chunk(table, resolved, job.path, rows, job.release_id, job.run_id)
            else:
                yield list(chunk_candidates(table, resolved, job.path, rows, job.base))
