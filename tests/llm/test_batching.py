"""MicroBatcher: concurrent submits share one call, size cap, results in order, errors reach
every caller of the failed batch, closing."""

import asyncio
import threading
import time

import pytest

from memgym.errors import BackendError
from memgym.llm.batching import MicroBatcher


def test_concurrent_submits_share_one_call():
    batcher = MicroBatcher(lambda xs: [x * 10 for x in xs], max_wait_ms=50)

    async def run():
        return await asyncio.gather(*(batcher.submit(i) for i in range(5)))

    assert asyncio.run(run()) == [0, 10, 20, 30, 40]
    assert batcher.batch_sizes == [5]
    batcher.close()


def test_batches_are_capped_and_results_stay_in_order():
    batcher = MicroBatcher(lambda xs: [x + 1 for x in xs], max_batch_size=3, max_wait_ms=20)
    assert batcher.submit_many(list(range(7))) == list(range(1, 8))
    assert max(batcher.batch_sizes) <= 3 and sum(batcher.batch_sizes) == 7
    batcher.close()


def test_a_failing_batch_raises_for_each_caller_and_the_worker_survives():
    def fn(xs):
        if "bad" in xs:
            raise ValueError("boom")
        return xs

    batcher = MicroBatcher(fn, max_wait_ms=20)
    with pytest.raises(ValueError, match="boom"):
        batcher.submit_many(["ok", "bad"])
    assert batcher.submit_many(["fine"]) == ["fine"]
    wrong = MicroBatcher(lambda xs: xs[:-1], max_wait_ms=50)
    with pytest.raises(BackendError, match="returned 1 results for 2 items"):
        wrong.submit_many([1, 2])
    batcher.close(), wrong.close()


def test_close_fails_queued_items_and_later_submits():
    gate = threading.Event()
    batcher = MicroBatcher(lambda xs: (gate.wait(5), xs)[1], max_batch_size=1, max_wait_ms=0)
    results = []
    worker = threading.Thread(target=lambda: results.append(_try(batcher.submit_many, [1, 2])))
    worker.start()
    while not batcher.batch_sizes:
        time.sleep(0.001)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    gate.set()
    worker.join(5), closer.join(5)
    assert isinstance(results[0], BackendError)
    with pytest.raises(BackendError, match="closed"):
        batcher.submit_many([3])


def _try(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001
        return exc
