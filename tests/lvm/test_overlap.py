"""Reading and writing beside the compute: order, bounded lookahead, errors, early exits."""

import threading
import time

import pytest

from galdb.lvm.overlap import DEPTH, BackgroundWriter, Prefetched


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_prefetched_keeps_order_and_reads_a_bounded_way_ahead():
    produced = []

    def source():
        for i in range(50):
            produced.append(i)
            yield i

    seen, ahead = [], 0
    with Prefetched(source()) as items:
        for item in items:
            time.sleep(0.002)  # a slow consumer: the reader fills the queue and waits
            ahead = max(ahead, len(produced) - len(seen))
            seen.append(item)
    assert seen == list(range(50))
    # the queue, the item the reader holds while waiting, the one being consumed
    assert ahead <= DEPTH + 2
    assert not _threads("galdb-prefetch")


def test_prefetched_raises_the_readers_error_after_the_good_items():
    def source():
        yield 1
        yield 2
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"), Prefetched(source()) as items:
        for item in items:
            seen.append(item)
    assert seen == [1, 2]


def test_leaving_early_stops_the_reader():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    with pytest.raises(KeyError), Prefetched(endless()) as items:
        for item in items:
            if item == 3:
                raise KeyError("model failed")
    time.sleep(0.3)
    assert len(produced) <= 3 + DEPTH + 2  # it stopped, not reading on forever
    assert not _threads("galdb-prefetch")


def test_writer_writes_everything_in_order():
    written = []
    with BackgroundWriter(lambda a, b: written.append((a, b))) as writer:
        for i in range(20):
            writer.submit(i, -i)
    assert written == [(i, -i) for i in range(20)]
    assert not _threads("galdb-writer")


def test_writer_error_reaches_the_loop():
    def write(i):
        if i == 2:
            raise ValueError("COPY failed")

    with pytest.raises(ValueError, match="COPY failed"), BackgroundWriter(write) as writer:
        for i in range(100):
            writer.submit(i)
            time.sleep(0.01)
    assert not _threads("galdb-writer")


def test_an_error_in_the_loop_still_writes_what_was_submitted():
    written = []

    def slow(i):
        time.sleep(0.05)
        written.append(i)

    with pytest.raises(KeyboardInterrupt), BackgroundWriter(slow) as writer:
        for i in range(3):
            writer.submit(i)
        raise KeyboardInterrupt
    assert written == [0, 1, 2]
    assert not _threads("galdb-writer")
