"""A read → compute → write loop whose reading and writing overlap with the compute.

:class:`Prefetched` iterates a source (a DataLoader: reading pixels from the survey files and
preprocessing them, or receiving and collating the batches of its worker processes) in a
background thread; :class:`BackgroundWriter` runs a write function (binary COPY of a batch of
vectors, then commit) in another. The loop's own thread only computes, so the forward pass
of one batch runs while the next is read and the previous one is stored. Torch and psycopg
release the GIL in their heavy parts, which is what makes threads enough.

Both hand items over bounded queues (:data:`DEPTH` items), so memory is bounded by a few
batches whatever the number of galaxies, and a killed run loses at most the batches in
flight (each written batch is still its own transaction). An error in either thread is
raised in the loop's thread. Leaving the ``with`` blocks early (an error, Ctrl-C) stops the
reader and lets the writer finish what was submitted, before they return, so the caller may
use its connection again at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

DEPTH = 2  # items waiting in each queue
POLL_S = 0.1  # how often a blocked thread checks whether to stop

_END = object()


class _Stopped(Exception):
    pass


class _Worker:
    """A thread with a bounded queue, a stop flag and the first error it met."""

    def __init__(self, depth: int, name: str):
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def _guarded(self) -> None:
        try:
            self.run()
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the loop's thread
            self.error = exc
            self.stop.set()

    def run(self) -> None:
        raise NotImplementedError

    def put(self, item: Any) -> None:
        """Put ``item``, waiting while the queue is full, unless told to stop."""
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                self.items.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        """Take the next item, waiting while the queue is empty, unless told to stop."""
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                return self.items.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def halt(self) -> None:
        self.stop.set()
        self.thread.join()


class Prefetched(_Worker):
    """Iterate ``source`` in a background thread, :data:`DEPTH` items ahead of the consumer."""

    def __init__(self, source: Iterable, depth: int = DEPTH):
        super().__init__(depth, "galdb-prefetch")
        self.source = source

    def run(self) -> None:
        iterator = iter(self.source)
        try:
            for item in iterator:
                self.put(item)
            self.put(_END)
        finally:
            del iterator  # a DataLoader iterator shuts its worker processes down

    def __enter__(self) -> Iterator:
        self.thread.start()
        return self._items()

    def _items(self) -> Iterator:
        while True:
            try:
                item = self.items.get(timeout=POLL_S)
            except queue.Empty:
                item = None
            if item is _END:
                return
            if item is not None:
                yield item
            elif self.error is not None:
                raise self.error
            elif not self.thread.is_alive() and self.items.empty():
                raise RuntimeError("the prefetching thread stopped without finishing")

    def __exit__(self, *exc) -> None:
        self.halt()


class BackgroundWriter(_Worker):
    """Call ``write(*args)`` for each :meth:`submit` in a background thread, in order."""

    def __init__(self, write: Callable[..., None], depth: int = DEPTH):
        super().__init__(depth, "galdb-writer")
        self.write = write

    def run(self) -> None:
        while (args := self.get()) is not _END:
            self.write(*args)

    def submit(self, *args: Any) -> None:
        """Queue one write; raises the writer's error if an earlier write failed."""
        self._raise()
        try:
            self.put(args)
        except _Stopped:
            self._raise()
            raise

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def __enter__(self) -> BackgroundWriter:
        self.thread.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        # Also when the loop failed: what it submitted is valid work, written before returning.
        try:
            self.put(_END)
        except _Stopped:  # the writer itself failed
            pass
        self.thread.join()
        if exc_type is None:
            self._raise()


class _Direct:
    """The writer of a loop without overlap: each write runs at once, in the loop's thread."""

    def __init__(self, write: Callable[..., None]):
        self.submit = write


def reading(source: Iterable, overlap: bool = True) -> AbstractContextManager[Iterator]:
    """``source``'s items, read ahead in a thread, or in the loop's thread if not ``overlap``."""
    return Prefetched(source) if overlap else nullcontext(iter(source))


def writing(write: Callable[..., None], overlap: bool = True) -> AbstractContextManager:
    """A writer with ``submit(*args)``: a background thread, or direct if not ``overlap``."""
    return BackgroundWriter(write) if overlap else nullcontext(_Direct(write))
