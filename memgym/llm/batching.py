"""An async micro-batcher: many coroutines submit one item each, a worker thread runs batches.

Offline engines such as `vllm.LLM.generate` take a list of prompts and block until all are
done. `MicroBatcher` lets concurrent episodes each `await submit(request)` while one worker
thread gathers what has arrived (up to `max_batch_size`, waiting at most `max_wait_ms` after
the first item) into a single call, and hands every caller its own result:

    >>> batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_wait_ms=2)
    >>> await asyncio.gather(*(batcher.submit(i) for i in range(3)))   # one call: [0, 2, 4]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from memgym.errors import BackendError

__all__ = ["MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Runs `fn(batch) -> results` on a worker thread over items submitted concurrently.

    Args:
        fn: processes a list of items and returns one result per item, in order. If it raises,
            every caller in that batch gets the exception.
        max_batch_size: most items per call.
        max_wait_ms: how long the worker waits after the first item for others to join.
        name: the worker thread's name (shows up in stack dumps).

    Attributes:
        batch_sizes: the size of every batch run so far (for tests and throughput stats).
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 256,
        max_wait_ms: float = 5.0,
        name: str = "memgym-batcher",
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size}: must be at least 1")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.name = name
        self.batch_sizes: list[int] = []
        self._queue: deque[tuple[T, concurrent.futures.Future, float]] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def _put(self, item: T) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cv:
            if self._closed:
                raise BackendError(f"{self.name}: the batcher is closed")
            self._queue.append((item, future, time.perf_counter()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cv.notify()
        return future

    async def submit(self, item: T) -> R:
        """Queue one item and wait (without blocking the event loop) for its result."""
        return await asyncio.wrap_future(self._put(item))

    def submit_many(self, items: Sequence[T]) -> list[R]:
        """Queue items (blocking) and return their results in order."""
        futures = [self._put(item) for item in items]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Stop the worker after the batch in progress; queued items fail with BackendError."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    def _take(self) -> list[tuple[T, concurrent.futures.Future, float]] | None:
        with self._cv:
            while not self._queue and not self._closed:
                self._cv.wait()
            if self._closed:
                for _, future, _ in self._queue:
                    _settle(future, exception=BackendError(f"{self.name}: closed before this ran"))
                self._queue.clear()
                return None
            deadline = self._queue[0][2] + self.max_wait_ms / 1000.0
            while len(self._queue) < self.max_batch_size and not self._closed:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cv.wait(left)
            n = min(self.max_batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self.batch_sizes.append(len(batch))
            try:
                results = list(self.fn([item for item, _, _ in batch]))
                if len(results) != len(batch):
                    raise BackendError(
                        f"{self.name}: the batch function returned {len(results)} results "
                        f"for {len(batch)} items"
                    )
            except BaseException as exc:  # noqa: BLE001 - handed to every caller
                for _, future, _ in batch:
                    _settle(future, exception=exc)
                continue
            for (_, future, _), result in zip(batch, results):
                _settle(future, result=result)


def _settle(future: concurrent.futures.Future, result: object = None, exception=None) -> None:
    """Resolve a future unless its caller already cancelled it."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass
